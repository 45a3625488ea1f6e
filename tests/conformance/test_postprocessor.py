"""GeminiReranker keeps LlamaIndex's node-postprocessor contract, on the emulator's judge."""

from __future__ import annotations

import pytest
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llama_index_gemini_embed import GeminiEmbedding, GeminiReranker

TEXTS = [
    "Bananas are yellow fruit.",
    "Paris is the capital of France.",
    "The capital of France has the Eiffel Tower.",
    "Cats sleep most of the day.",
    "France borders Spain.",
]
QUERY = "capital of France"


def candidates() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_=f"n{i}", text=t), score=1.0 - i / 10)
        for i, t in enumerate(TEXTS)
    ]


def test_is_a_node_postprocessor(reranker: GeminiReranker) -> None:
    assert isinstance(reranker, BaseNodePostprocessor)


def test_keeps_top_n_best_first(reranker: GeminiReranker) -> None:
    out = reranker.postprocess_nodes(candidates(), query_str=QUERY)
    assert len(out) == 3
    scores = [n.score for n in out]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert {n.node.node_id for n in out[:2]} == {"n1", "n2"}
    assert {n.node.node_id for n in out} <= {f"n{i}" for i in range(5)}


def test_query_bundle_and_query_str_are_the_same(reranker: GeminiReranker) -> None:
    a = reranker.postprocess_nodes(candidates(), query_str=QUERY)
    b = reranker.postprocess_nodes(candidates(), query_bundle=QueryBundle(QUERY))
    assert [n.node.node_id for n in a] == [n.node.node_id for n in b]


def test_both_query_forms_at_once_are_refused(reranker: GeminiReranker) -> None:
    with pytest.raises(ValueError, match="Cannot specify both"):
        reranker.postprocess_nodes(candidates(), query_bundle=QueryBundle(QUERY), query_str=QUERY)


def test_no_query_is_a_value_error(reranker: GeminiReranker) -> None:
    with pytest.raises(ValueError):
        reranker.postprocess_nodes(candidates())


def test_no_nodes_gives_no_nodes(reranker: GeminiReranker) -> None:
    assert reranker.postprocess_nodes([], query_str=QUERY) == []


def test_fewer_nodes_than_top_n_keeps_them_all(reranker: GeminiReranker) -> None:
    out = reranker.postprocess_nodes(candidates()[:2], query_str=QUERY)
    assert sorted(n.node.node_id for n in out) == ["n0", "n1"]


async def test_async_matches_sync(reranker: GeminiReranker) -> None:
    sync = reranker.postprocess_nodes(candidates(), query_str=QUERY)
    asynchronous = await reranker.apostprocess_nodes(candidates(), query_str=QUERY)
    assert [n.node.node_id for n in asynchronous] == [n.node.node_id for n in sync]


def test_to_dict_round_trips_without_the_key(reranker: GeminiReranker) -> None:
    data = reranker.to_dict()
    key = secret(reranker)
    assert key not in repr(data)
    assert data["class_name"] == GeminiReranker.class_name()
    assert GeminiReranker.from_dict({**data, "api_key": key}).to_dict() == data


def secret(model: GeminiEmbedding | GeminiReranker) -> str:
    assert model.api_key is not None
    return model.api_key.get_secret_value()
