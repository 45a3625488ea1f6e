"""Fixtures of the conformance suite: our classes on the emulator and on real Chroma.

The suite restates, against ``ChromaStore``, ``GeminiEmbedding`` and ``GeminiReranker``, the
behaviours LlamaIndex promises for vector stores, embeddings, node postprocessors and the
ingestion pipeline (its own reference implementations are ``SimpleVectorStore``,
``ChromaVectorStore``, ``MockEmbedding``), plus the application set-ups users build on them.
Every store test runs twice: a local ``PersistentClient`` directory and a ``chroma run`` server.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, GeminiReranker
from llama_index_gemini_embed.emulator import Emulator

#: A store opener: ``open_store(embed_model=None)`` -> a fresh empty collection.
StoreFactory = Callable[..., ChromaStore]

DIMENSION = 128


@pytest.fixture
def embed(emulator: Emulator) -> GeminiEmbedding:
    """GeminiEmbedding (gemini-embedding-001, 128 dimensions) talking to the emulator."""
    return GeminiEmbedding(
        api_key=emulator.api_key, base_url=emulator.base_url, output_dimensionality=DIMENSION
    )


@pytest.fixture
def embed2(emulator: Emulator) -> GeminiEmbedding:
    """GeminiEmbedding (gemini-embedding-2: text and media in one space, 256 dimensions)."""
    return GeminiEmbedding(
        model_name="gemini-embedding-2",
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        output_dimensionality=256,
    )


@pytest.fixture
def reranker(emulator: Emulator) -> GeminiReranker:
    """GeminiReranker judged by the emulator's word-overlap judge."""
    return GeminiReranker(api_key=emulator.api_key, base_url=emulator.base_url, top_n=3)


@pytest.fixture(params=["local", pytest.param("server", marks=pytest.mark.server)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens fresh collections in a local directory or on the session's ``chroma run``."""
    opened: list[ChromaStore] = []
    server: Any = request.getfixturevalue("chroma_server") if request.param == "server" else None

    def factory(embed_model: object | None = None, name: str | None = None) -> ChromaStore:
        name = name or f"c-{uuid.uuid4().hex[:12]}"
        if server is None:
            store = ChromaStore(name, path=str(tmp_path / "chroma"), embed_model=embed_model)
        else:
            store = ChromaStore.from_url(server.url, collection_name=name, embed_model=embed_model)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        if server is not None:
            with contextlib.suppress(Exception):  # already deleted by the test
                store.client.delete_collection(store.collection_name)
        store.close()
