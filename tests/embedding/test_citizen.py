"""Issue 11 items 10 and 16: registered with LlamaIndex, copyable, unmistakable, clear settings."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from llama_index.core.embeddings.loading import RECOGNIZED_EMBEDDINGS, load_embed_model
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery

import llama_index_gemini_embed
from llama_index_gemini_embed import (
    ChromaStore,
    ConfigurationError,
    GeminiEmbedding,
    GeminiReranker,
)
from llama_index_gemini_embed.emulator import Emulator
from tests.embedding.support import make

# -- item 10: LlamaIndex's embedding loader ------------------------------------------------


def test_load_embed_model_rebuilds_our_class(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    embed = make(emulator, output_dimensionality=256, query_task_type="QUESTION_ANSWERING")
    data = embed.to_dict()
    assert "api_key" not in data  # the key never travels: the loader takes it from the env
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", emulator.api_key)
    loaded = load_embed_model(data)
    assert type(loaded) is GeminiEmbedding
    assert loaded.to_dict() == data
    assert len(loaded.get_query_embedding("where is the tower?")) == 256


def test_registration_does_not_claim_the_deprecated_gemini_class() -> None:
    assert llama_index_gemini_embed.GeminiEmbedding.class_name() != "GeminiEmbedding"
    assert RECOGNIZED_EMBEDDINGS[GeminiEmbedding.class_name()] is GeminiEmbedding
    assert RECOGNIZED_EMBEDDINGS.get("GeminiEmbedding") is not GeminiEmbedding
    doc = GeminiEmbedding.__doc__ or ""
    assert "llama_index.embeddings.gemini" in doc and "not" in doc


def test_reranker_and_store_rebuild_from_to_dict(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", emulator.api_key)
    reranker = GeminiReranker(base_url=emulator.base_url, top_n=2)
    again = GeminiReranker.from_dict(reranker.to_dict())
    assert again.to_dict() == reranker.to_dict()
    embed = make(emulator, output_dimensionality=128)
    store = ChromaStore("loader-docs", path=str(tmp_path / "s"), embed_model=embed)
    store.add([TextNode(text="hello", embedding=embed.get_text_embedding("hello"))])
    reopened = ChromaStore.from_dict(store.to_dict())
    query = VectorStoreQuery(query_embedding=embed.get_query_embedding("hello"), similarity_top_k=1)
    assert reopened.query(query).ids == store.query(query).ids != []


# -- item 10: copy.deepcopy on the three classes -------------------------------------------


def test_deepcopy_embedding_is_independent_and_works(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=128)
    embed.get_text_embedding("warm up the engine, its lock and the client")
    clone = copy.deepcopy(embed)
    assert clone is not embed and clone.to_dict() == embed.to_dict()
    assert clone.get_text_embedding("x") == embed.get_text_embedding("x")
    assert (clone.usage.items, embed.usage.items) == (1, 2)


def test_deepcopy_reranker_and_store(emulator: Emulator, tmp_path: Path) -> None:
    reranker = GeminiReranker(api_key=emulator.api_key, base_url=emulator.base_url, top_n=1)
    nodes = [
        NodeWithScore(node=TextNode(text="the eiffel tower is in paris"), score=0.5),
        NodeWithScore(node=TextNode(text="bread recipe"), score=0.4),
    ]
    query = QueryBundle("where is the eiffel tower?")
    first = reranker.postprocess_nodes(nodes, query_bundle=query)
    clone = copy.deepcopy(reranker)
    assert clone.to_dict() == reranker.to_dict()
    assert [n.node.get_content() for n in clone.postprocess_nodes(nodes, query_bundle=query)] == [
        n.node.get_content() for n in first
    ]
    embed = make(emulator, output_dimensionality=128)
    store = ChromaStore("copy-docs", path=str(tmp_path / "c"), embed_model=embed)
    store_clone = copy.deepcopy(store)
    assert store_clone.to_dict() == store.to_dict()


# -- item 10: import aliases in LlamaIndex's namespaces ------------------------------------


def test_llamaindex_namespace_aliases() -> None:
    from llama_index.embeddings.gemini_embed import GeminiEmbedding as AliasEmbedding
    from llama_index.postprocessor.gemini_rerank import GeminiReranker as AliasReranker
    from llama_index.vector_stores.gemini_chroma import ChromaStore as AliasStore

    assert AliasEmbedding is GeminiEmbedding
    assert AliasReranker is GeminiReranker
    assert AliasStore is ChromaStore


# -- item 16: output_dimensionality must be an integer -------------------------------------


@pytest.mark.parametrize("value", ["768", 768.0, True])
def test_output_dimensionality_must_be_an_integer(emulator: Emulator, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(emulator, output_dimensionality=value)
    message = str(info.value)
    assert "\n" not in message
    assert f"output_dimensionality={value!r} must be an integer" in message
    assert "output_dimensionality=768" in message
