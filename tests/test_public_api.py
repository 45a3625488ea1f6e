"""The public surface, used the way a user would: nothing but public imports."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.schema import Document

import llama_index_gemini_embed
from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, GeminiEmbedError, GeminiReranker
from llama_index_gemini_embed.emulator import Emulator
from tests.conftest import REAL_API_VARS

README = Path(__file__).resolve().parent.parent / "README.md"


def documented_names() -> set[str]:
    """The backticked names of README.md's "Public names" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Public names\n", 1)[1].split("\n## ", 1)[0]
    bullets = "\n".join(line for line in section.splitlines() if line.startswith(("- ", "  ")))
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", bullets))


def test_all_lists_exactly_the_public_names() -> None:
    public = sorted(
        name
        for name, value in vars(llama_index_gemini_embed).items()
        if not name.startswith("_") and not isinstance(value, type(os))  # not submodules
    )
    assert sorted(llama_index_gemini_embed.__all__) == sorted([*public, "__version__"])
    assert llama_index_gemini_embed.__version__ != "0.0.0", "installed metadata is read"


def test_all_is_exactly_the_documented_names() -> None:
    assert set(llama_index_gemini_embed.__all__) == documented_names()
    assert len(llama_index_gemini_embed.__all__) == len(set(llama_index_gemini_embed.__all__))


def test_public_errors_share_one_base() -> None:
    errors = [
        value
        for name in llama_index_gemini_embed.__all__
        if isinstance(value := getattr(llama_index_gemini_embed, name), type)
        and issubclass(value, BaseException)
    ]
    assert len(errors) >= 15
    assert all(issubclass(error, GeminiEmbedError) for error in errors)


def test_no_real_api_keys_reach_a_test() -> None:
    """The root conftest's autouse fixture clears them, whatever the developer's shell has."""
    assert not [var for var in REAL_API_VARS if var in os.environ]
    assert os.environ["ANONYMIZED_TELEMETRY"] == "False"


#: ``to_dict()`` as written by the release before this round's restructuring (captured from
#: commit ed2e255). Saved settings must load, keep every value, and keep the class names.
PREVIOUS_TO_DICT: dict[str, dict[str, Any]] = {
    "embedding": {
        "api_version": None,
        "base_url": None,
        "class_name": "LigeGeminiEmbedding",
        "document_task_type": "RETRIEVAL_DOCUMENT",
        "embed_batch_size": 100,
        "embeddings_cache": None,
        "location": None,
        "max_concurrency": 8,
        "max_retries": 8,
        "model_name": "gemini-embedding-001",
        "num_workers": None,
        "on_overlength": "warn",
        "output_dimensionality": 768,
        "project": None,
        "query_task_type": "RETRIEVAL_QUERY",
        "quota_window_seconds": 60.0,
        "requests_per_day": None,
        "requests_per_minute": 3000,
        "timeout": 60.0,
        "title_metadata_keys": ["title"],
        "tokens_per_minute": None,
        "vertexai": None,
    },
    "reranker": {
        "api_version": None,
        "base_url": None,
        "batch_size": 10,
        "class_name": "LigeGeminiReranker",
        "failure_policy": "fallback",
        "location": None,
        "max_concurrency": 4,
        "max_passage_chars": 2000,
        "max_retries": 3,
        "metadata_keys": [],
        "model": "gemini-2.5-flash-lite",
        "price_per_million_input_tokens": None,
        "price_per_million_output_tokens": None,
        "project": None,
        "quota_window_seconds": 60.0,
        "requests_per_day": None,
        "requests_per_minute": None,
        "score_threshold": None,
        "thinking_budget": "auto",
        "timeout": 30.0,
        "title_metadata_keys": ["title", "file_name"],
        "tokens_per_minute": None,
        "top_n": 4,
        "vertexai": None,
    },
    "store": {
        "class_name": "LigeChromaStore",
        "collection_name": "docs",
        "create": True,
        "expected_fingerprint": {
            "dimension": 768,
            "model": "gemini-embedding-001",
            "normalised": True,
            "scheme": "task_type:RETRIEVAL_DOCUMENT",
        },
        "flat_metadata": False,
        "hnsw": None,
        "host": None,
        "is_embedding_query": True,
        "path": "<tmp>",
        "payload_cap_bytes": None,
        "port": None,
        "space": "cosine",
        "ssl": False,
        "stores_text": True,
    },
}


#: Settings renamed since then (issue 12: the embedder's ``requests_per_*`` counted items).
#: The old names still load (with a FutureWarning); their values must reappear here.
RENAMED_SINCE_PREVIOUS: dict[str, dict[str, str]] = {
    "embedding": {"requests_per_minute": "items_per_minute", "requests_per_day": "items_per_day"}
}


def build(kind: str, data: dict[str, Any], tmp_path: Path) -> Any:
    if kind == "embedding":
        return GeminiEmbedding.from_dict({**data, "api_key": "k"})
    if kind == "reranker":
        return GeminiReranker.from_dict({**data, "api_key": "k"})
    return ChromaStore.from_dict({**data, "path": str(tmp_path / "chroma")})


@pytest.mark.parametrize("kind", sorted(PREVIOUS_TO_DICT))
def test_previous_to_dict_loads_with_every_value_kept(kind: str, tmp_path: Path) -> None:
    old = dict(PREVIOUS_TO_DICT[kind])
    obj = build(kind, old, tmp_path)
    now = obj.to_dict()
    for was, is_now in RENAMED_SINCE_PREVIOUS.get(kind, {}).items():  # same value, new name
        old[is_now] = old.pop(was)
    old["path"] = now["path"] = None  # the store's directory is this test's
    missing = {k: v for k, v in old.items() if now.get(k, "<absent>") != v}
    assert missing == {}, f"{kind}: settings lost or changed when loading a saved to_dict()"
    assert type(obj).class_name() == old["class_name"]


@pytest.mark.parametrize("kind", sorted(PREVIOUS_TO_DICT))
def test_to_dict_round_trips(kind: str, tmp_path: Path) -> None:
    obj = build(kind, PREVIOUS_TO_DICT[kind], tmp_path)
    data = obj.to_dict()
    assert "k" not in {str(v) for v in data.values()}, "the API key is not serialised"
    again = build(kind, data, tmp_path).to_dict()
    assert again == data


def test_vector_store_index_in_memory_with_the_emulator() -> None:
    docs = [
        Document(
            text="The Eiffel Tower is a wrought-iron tower in Paris.", metadata={"title": "Eiffel"}
        ),
        Document(text="Mount Fuji is the highest mountain in Japan.", metadata={"title": "Fuji"}),
        Document(
            text="The Great Wall of China stretches thousands of kilometres.",
            metadata={"title": "Wall"},
        ),
    ]
    with Emulator() as emu:
        embed = GeminiEmbedding(
            api_key=emu.api_key, base_url=emu.base_url, output_dimensionality=768
        )
        index = VectorStoreIndex.from_documents(docs, embed_model=embed)
        retriever = index.as_retriever(similarity_top_k=1)
        hits = retriever.retrieve("Which tower stands in Paris?")
        assert hits[0].node.metadata["title"] == "Eiffel"
        hits = retriever.retrieve("highest mountain of Japan")
        assert hits[0].node.metadata["title"] == "Fuji"
        assert embed.usage.items == 5  # three documents, two queries
        assert Settings is not None


def test_standalone_emulator_process_when_ci_started_one() -> None:
    """CI starts `python -m llama_index_gemini_embed.emulator`; otherwise use one in-process."""
    url = os.environ.get("LIGE_EMULATOR_URL")
    key = os.environ.get("LIGE_EMULATOR_KEY")
    if url and key:
        embed = GeminiEmbedding(api_key=key, base_url=url, output_dimensionality=128)
        assert len(embed.get_query_embedding("served by a separate process")) == 128
        return
    with Emulator() as emu:
        embed = GeminiEmbedding(
            api_key=emu.api_key, base_url=emu.base_url, output_dimensionality=128
        )
        assert len(embed.get_query_embedding("served in-process")) == 128
