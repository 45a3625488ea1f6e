"""GeminiEmbedding keeps LlamaIndex's BaseEmbedding contract, on the emulator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from llama_index.core import Settings
from llama_index.core.base.embeddings.base import SimilarityMode
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from llama_index.core.schema import TextNode
from llama_index_instrumentation import get_dispatcher

import llama_index_gemini_embed  # noqa: F401  (registers our classes where LlamaIndex looks)
from llama_index_gemini_embed import GeminiEmbedding, GeminiReranker
from tests.conformance.conftest import DIMENSION

TEXTS = ["Hello world.", "This is a test.", "Hello world.", "Another test entirely."]


def test_batch_returns_one_vector_per_text_in_order(embed: GeminiEmbedding) -> None:
    texts = [TEXTS[i % 4] for i in range(24)]
    vectors = embed.get_text_embedding_batch(texts)
    assert len(vectors) == 24
    assert all(len(v) == DIMENSION for v in vectors)
    singles = {t: embed.get_text_embedding(t) for t in set(texts)}
    for text, vector in zip(texts, vectors, strict=True):
        assert np.allclose(vector, singles[text], atol=1e-6)
    assert not np.allclose(singles[TEXTS[0]], singles[TEXTS[1]])


async def test_async_paths_equal_the_sync_ones(embed: GeminiEmbedding) -> None:
    assert np.allclose(
        await embed.aget_query_embedding("what is a test?"),
        embed.get_query_embedding("what is a test?"),
        atol=1e-6,
    )
    assert np.allclose(
        await embed.aget_text_embedding_batch(TEXTS),
        embed.get_text_embedding_batch(TEXTS),
        atol=1e-6,
    )


def test_similarity_modes(embed: GeminiEmbedding) -> None:
    q = embed.get_query_embedding("hello world")
    near, far = embed.get_text_embedding_batch(["Hello world.", "Quarterly tax filing rules."])
    assert embed.similarity(q, near) > embed.similarity(q, far)
    assert embed.similarity(q, near, mode=SimilarityMode.EUCLIDEAN) > embed.similarity(
        q, far, mode=SimilarityMode.EUCLIDEAN
    )
    assert embed.similarity([3.0, 4.0], [3.0, 4.0]) == pytest.approx(1.0)


def test_aggregated_query_embedding_is_the_mean(embed: GeminiEmbedding) -> None:
    queries = ["hello", "world"]
    mean = np.mean([embed.get_query_embedding(q) for q in queries], axis=0)
    assert np.allclose(embed.get_agg_embedding_from_queries(queries), mean, atol=1e-6)


def test_as_a_transformation_it_embeds_every_node(embed: GeminiEmbedding) -> None:
    nodes = [TextNode(text=t) for t in TEXTS]
    out = embed(nodes)
    assert [n.node_id for n in out] == [n.node_id for n in nodes]
    assert all(n.embedding is not None and len(n.embedding) == DIMENSION for n in out)


class Recorder(BaseEventHandler):
    events: list[BaseEvent]

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


def test_instrumentation_events_on_every_path(embed: GeminiEmbedding) -> None:
    recorder = Recorder(events=[])
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(recorder)
    try:
        embed.get_query_embedding("a query")
        embed.get_text_embedding_batch(TEXTS)
        embed([TextNode(text="a node")])
    finally:
        dispatcher.event_handlers.remove(recorder)
    starts = [e for e in recorder.events if isinstance(e, EmbeddingStartEvent)]
    ends = [e for e in recorder.events if isinstance(e, EmbeddingEndEvent)]
    assert len(starts) >= 3 and len(ends) == len(starts)
    chunks = [c for e in ends for c in e.chunks]
    assert "a query" in chunks and "Hello world." in chunks
    assert any("a node" in c for c in chunks)


def test_settings_accept_it(embed: GeminiEmbedding) -> None:
    previous = Settings._embed_model
    try:
        Settings.embed_model = embed
        assert Settings.embed_model is embed
    finally:
        Settings._embed_model = previous


def test_to_dict_round_trips_without_the_key(embed: GeminiEmbedding) -> None:
    data = embed.to_dict()
    assert data["class_name"] == GeminiEmbedding.class_name()
    key = secret(embed)
    assert key not in repr(data)
    rebuilt = GeminiEmbedding.from_dict({**data, "api_key": key})
    assert rebuilt.to_dict() == data


def test_class_name_is_not_llamaindex_deprecated_gemini_embedding() -> None:
    assert GeminiEmbedding.class_name() != "GeminiEmbedding"


def secret(model: GeminiEmbedding | GeminiReranker) -> str:
    assert model.api_key is not None
    return model.api_key.get_secret_value()
