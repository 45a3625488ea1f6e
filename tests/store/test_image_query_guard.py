"""A query that asks for nothing (no embedding, text or filter) says so instead of silently
returning unranked rows: what a ``QueryBundle(image_path=...)`` gives a ``VectorStoreIndex``
retriever, which embeds only text (issue 15 §3; the fix is ``embed.image_query(path)``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import QueryBundle, TextNode
from llama_index.core.vector_stores.types import ExactMatchFilter, MetadataFilters

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import png_with_description


def test_an_image_path_bundle_without_a_vector_is_flagged(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embed = GeminiEmbedding(
        model_name="gemini-embedding-2",
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        output_dimensionality=128,
    )
    picture = tmp_path / "cat.png"
    picture.write_bytes(png_with_description("a sleeping cat"))
    with ChromaStore("guard", path=str(tmp_path / "chroma"), embed_model=embed) as store:
        store.add(embed([TextNode(id_="dog", text="a dog"), TextNode(id_="cat", text="a cat")]))
        retriever = VectorStoreIndex.from_vector_store(store, embed_model=embed).as_retriever()
        with caplog.at_level(logging.WARNING, logger="llama_index_gemini_embed"):
            hits = retriever.retrieve(QueryBundle(query_str="", image_path=str(picture)))
        assert [hit.score for hit in hits] == [None, None]  # LlamaIndex never embedded it
        [record] = caplog.records
        assert record.getMessage() == (
            "ChromaStore got a query with no embedding, text or filter: it returns the first "
            "2 rows, unranked. To search by image use retriever.retrieve(embed.image_query("
            "path)) (VectorStoreIndex retrievers do not embed QueryBundle.image_path)"
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="llama_index_gemini_embed"):
            ranked = retriever.retrieve(embed.image_query(picture))
            filtered = VectorStoreIndex.from_vector_store(store, embed_model=embed).as_retriever(
                filters=MetadataFilters(filters=[ExactMatchFilter(key="k", value="v")])
            )
            filtered.retrieve(QueryBundle(query_str="", image_path=str(picture)))
        assert caplog.records == []  # a real query, or a filter-only read, is not flagged
        assert ranked[0].node.node_id == "cat" and ranked[0].score is not None
