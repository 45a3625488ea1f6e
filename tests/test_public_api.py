"""The public surface, used the way a user would: nothing but public imports."""

from __future__ import annotations

import os

from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.schema import Document

import llama_index_gemini_embed
from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed.emulator import Emulator


def test_all_lists_exactly_the_public_names() -> None:
    public = sorted(
        name
        for name, value in vars(llama_index_gemini_embed).items()
        if not name.startswith("_") and not isinstance(value, type(os))  # not submodules
    )
    assert sorted(llama_index_gemini_embed.__all__) == sorted([*public, "__version__"])
    assert llama_index_gemini_embed.__version__ != "0.0.0", "installed metadata is read"


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
