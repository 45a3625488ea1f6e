"""ChromaStore keeps LlamaIndex's vector-store contract (as SimpleVectorStore/ChromaVectorStore do).

Hand-made 2-d vectors, so every expected ranking can be worked out by hand: the query
[1, 1] is closest to c-both ([1, 1]), then equally to a-one ([1, 0]) and c-two ([0, 1]).
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from llama_index_gemini_embed import ChromaStore
from tests.conformance.conftest import StoreFactory

A, B, C = "a-one", "c-two", "c-both"


def corpus() -> list[TextNode]:
    rows: list[tuple[str, list[float], dict[str, Any]]] = [
        (A, [1.0, 0.0], {"weight": 1.0, "rank": "a", "tags": ["medium", "high"], "code": "XY12ab"}),
        (B, [0.0, 1.0], {"weight": 2.0, "rank": "c", "tags": ["medium"], "code": "XY12cd"}),
        (C, [1.0, 1.0], {"weight": 3.0, "rank": "c", "tags": ["low", "high"], "code": "ZZ99"}),
    ]
    return [
        TextNode(
            id_=node_id,
            text=f"text of {node_id}",
            embedding=vector,
            metadata=metadata,
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{node_id}")},
        )
        for node_id, vector, metadata in rows
    ]


@pytest.fixture
def store(open_store: StoreFactory) -> ChromaStore:
    store = open_store()
    assert store.add(corpus()) == [A, B, C]
    return store


def ids(store: ChromaStore, top_k: int = 3, **query: Any) -> list[str]:
    result = store.query(
        VectorStoreQuery(query_embedding=[1.0, 1.0], similarity_top_k=top_k, **query)
    )
    assert result.ids is not None and result.nodes is not None and result.similarities is not None
    assert [n.node_id for n in result.nodes] == result.ids
    assert len(result.similarities) == len(result.ids)
    return result.ids


def where(*filters: MetadataFilter, condition: FilterCondition = FilterCondition.AND) -> Any:
    return MetadataFilters(filters=list(filters), condition=condition)


def f(key: str, value: Any, op: FilterOperator = FilterOperator.EQ) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


def test_query_ranks_every_row_by_similarity(store: ChromaStore) -> None:
    got = ids(store)
    assert got[0] == C and sorted(got) == sorted([A, B, C])
    result = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=3))
    assert result.ids == [A, C, B]
    assert result.similarities is not None
    assert result.similarities[0] == pytest.approx(1.0, abs=1e-6)  # cosine, higher is closer
    assert result.similarities[0] > result.similarities[1] > result.similarities[2]


def test_top_k_bounds_the_result(store: ChromaStore) -> None:
    assert ids(store, top_k=1) == [C]


def test_nodes_come_back_whole(store: ChromaStore) -> None:
    [node] = store.get_nodes([A])
    want = corpus()[0]
    assert node.get_content() == want.get_content()
    assert node.metadata == want.metadata
    assert node.ref_doc_id == f"doc-{A}"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (where(f("rank", "c")), [C, B]),
        (where(f("rank", "c"), f("weight", 2.0)), [B]),
        (where(f("weight", 2.0), f("weight", 3.0)), []),  # contradiction
        (where(f("no_such_key", "c")), []),
        (where(f("rank", "c"), f("weight", 1.0), condition=FilterCondition.OR), [C, A, B]),
        (where(f("rank", "a"), condition=FilterCondition.NOT), [C, B]),
        (where(f("weight", 1.0, FilterOperator.NE)), [C, B]),
        (where(f("weight", 1.5, FilterOperator.GT)), [C, B]),
        (where(f("weight", 2.0, FilterOperator.GTE)), [C, B]),
        (where(f("weight", 2.0, FilterOperator.LT)), [A]),
        (where(f("weight", 2.0, FilterOperator.LTE)), [A, B]),
        (where(f("rank", ["a", "c"], FilterOperator.IN)), [C, A, B]),
        (where(f("rank", ["c"], FilterOperator.NIN)), [A]),
        (where(f("tags", "high", FilterOperator.CONTAINS)), [C, A]),
        (where(f("tags", ["low", "medium"], FilterOperator.ANY)), [C, A, B]),
        (where(f("tags", ["medium", "high"], FilterOperator.ALL)), [A]),
        (where(f("no_such_key", None, FilterOperator.IS_EMPTY)), [C, A, B]),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, list) else ",".join(v) or "none",
)
def test_metadata_filters_select_what_llamaindex_selects(
    store: ChromaStore, filters: MetadataFilters, expected: list[str]
) -> None:
    got = ids(store, filters=filters)
    assert sorted(got) == sorted(expected)
    if expected:
        assert got[0] == expected[0]


def test_text_match_on_a_metadata_key(store: ChromaStore) -> None:
    """SimpleVectorStore: TEXT_MATCH is a substring match on the metadata value.

    Chroma cannot search inside metadata values, so issue 11 item 7 allows either the
    right rows or one clear ValueError that names the alternative (matching the text).
    """
    filters = where(f("code", "XY12", FilterOperator.TEXT_MATCH))
    try:
        got = ids(store, filters=filters)
    except ValueError as exc:
        message = str(exc)
        assert "'code'" in message and "not supported" in message and "key='text'" in message
        assert "\n" not in message
    else:
        assert sorted(got) == sorted([A, B])


def test_filters_apply_before_top_k(store: ChromaStore) -> None:
    assert ids(store, top_k=1, filters=where(f("rank", "c"))) == [C]
    assert ids(store, top_k=1, filters=where(f("rank", "a"))) == [A]


def test_node_ids_restrict_through_the_keyword(store: ChromaStore) -> None:
    """SimpleVectorStore restricts to ``VectorStoreQuery.node_ids``; ChromaVectorStore does
    not, and VectorStoreIndex lists there the IndexNode/ImageNode objects it keeps in its
    docstore. ChromaStore follows ChromaVectorStore and restricts by the documented
    ``node_ids=`` keyword, which combines with filters."""
    query = VectorStoreQuery(
        query_embedding=[1.0, 1.0], similarity_top_k=3, filters=where(f("rank", "c"))
    )
    assert store.query(query, node_ids=[B]).ids == [B]
    assert sorted(ids(store, node_ids=[B])) == sorted([A, B, C])


def test_delete_by_ref_doc_id(store: ChromaStore) -> None:
    store.delete(f"doc-{B}")
    assert ids(store) == [C, A]


def test_delete_nodes_by_id(store: ChromaStore) -> None:
    store.delete_nodes([A, B])
    assert ids(store) == [C]
    assert [n.node_id for n in store.get_nodes([A, B, C])] == [C]


def test_clear_empties_the_collection(store: ChromaStore) -> None:
    store.clear()
    assert ids(store) == []
    assert store.get_nodes([A, B, C]) == []


def test_re_adding_an_id_replaces_it(store: ChromaStore) -> None:
    changed = corpus()[0].model_copy(update={"text": "new text", "embedding": [0.0, 1.0]})
    store.add([changed])
    [node] = store.get_nodes([A])
    assert node.get_content() == "new text"
    assert ids(store, top_k=10).count(A) == 1


async def test_async_methods_match_the_sync_ones(open_store: StoreFactory) -> None:
    store = open_store()
    assert await store.async_add(corpus()) == [A, B, C]
    result = await store.aquery(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=3))
    assert result.ids == [A, C, B]
    assert [n.node_id for n in await store.aget_nodes([B])] == [B]
    await store.adelete(f"doc-{A}")
    await store.adelete_nodes([B])
    result = await store.aquery(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=3))
    assert result.ids == [C]
    await store.aclear()
    assert (await store.aquery(VectorStoreQuery(query_embedding=[1.0, 0.0]))).ids == []
