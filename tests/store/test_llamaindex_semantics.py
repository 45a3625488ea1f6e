"""ChromaStore behind LlamaIndex's own VectorStoreIndex: what a user of the index sees.

Issue 11 items 1, 3, 5, 7: object nodes must not hide text results, metadata keeps its
key order (so ``node.hash`` and the LLM's metadata text survive a round trip), the ids
an index passes cost nothing, and filter-only queries work as in ``ChromaVectorStore``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import (
    ImageNode,
    IndexNode,
    MetadataMode,
    NodeRelationship,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from llama_index_gemini_embed._store.flows import Limits, plan_query, query_flow
from llama_index_gemini_embed._store.store import ChromaStore


def unit(seed: int, dim: int = 8) -> list[float]:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return [float(x) for x in (vector / np.linalg.norm(vector)).astype(np.float32)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChromaStore]:
    with ChromaStore("docs", path=str(tmp_path / "chroma")) as store:
        yield store


def text_nodes(n: int) -> list[TextNode]:
    return [
        TextNode(id_=f"t{i}", text=f"text {i}", embedding=unit(i), metadata={"i": i})
        for i in range(n)
    ]


# ----------------------------------------------------------------------------- item 1


def test_index_objects_do_not_hide_text_nodes(store: ChromaStore) -> None:
    texts = text_nodes(6)
    image = ImageNode(id_="img", text="a photo", image_path="/x/p.png", embedding=unit(100))
    pointer = IndexNode(id_="ptr", text="see elsewhere", index_id="other", embedding=unit(101))
    index = VectorStoreIndex(
        [*texts, image, pointer],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=MockEmbedding(embed_dim=8),
    )
    # The index lists only its object nodes for a store that keeps text.
    assert sorted(index.index_struct.nodes_dict.values()) == ["img", "ptr"]
    retriever = index.as_retriever(similarity_top_k=8)
    hits = retriever.retrieve(QueryBundle(query_str="q", embedding=texts[2].embedding))
    assert hits[0].node.node_id == "t2"
    assert sorted(h.node.node_id for h in hits) == sorted(
        ["img", "ptr", *(f"t{i}" for i in range(6))]
    )
    assert isinstance(next(h.node for h in hits if h.node.node_id == "img"), ImageNode)

    async def aretrieve() -> list[str]:
        found = await retriever.aretrieve(QueryBundle(query_str="q", embedding=texts[3].embedding))
        return [h.node.node_id for h in found]

    assert asyncio.run(aretrieve())[0] == "t3"


def test_explicit_node_id_restriction_is_a_keyword_option(store: ChromaStore) -> None:
    texts = text_nodes(6)
    store.add(texts)
    query = VectorStoreQuery(query_embedding=texts[0].embedding, similarity_top_k=6)
    restricted = store.query(query, node_ids=["t4", "t5", "unknown"])
    assert sorted(restricted.ids or []) == ["t4", "t5"]
    assert store.query(query, node_ids=["unknown"]).ids == []
    # VectorStoreQuery.node_ids is LlamaIndex's docstore bookkeeping: not a restriction.
    query.node_ids = ["t4"]
    assert len(store.query(query).ids or []) == 6
    # Through a retriever: vector_store_kwargs reach the store.
    index = VectorStoreIndex.from_vector_store(store, embed_model=MockEmbedding(embed_dim=8))
    retriever = index.as_retriever(similarity_top_k=6, vector_store_kwargs={"node_ids": ["t1"]})
    hits = retriever.retrieve(QueryBundle(query_str="q", embedding=texts[0].embedding))
    assert [h.node.node_id for h in hits] == ["t1"]


# ----------------------------------------------------------------------------- item 3


def test_metadata_key_order_survives_a_round_trip(store: ChromaStore) -> None:
    metadata: dict[str, Any] = {
        "zeta": "last letter first",
        "empty": "",
        "none": None,
        "alpha": 1,
        "nested": {"b": 1, "a": 2},
        "blank": [],
        "mid": 2.5,
    }
    node = TextNode(
        id_="n",
        text="body",
        embedding=unit(1),
        metadata=metadata,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc")},
    )
    plain = TextNode(id_="p", text="b", embedding=unit(2), metadata={"z": 1, "a": 2, "m": 3})
    store.add([node, plain])
    back, back_plain = store.get_nodes(node_ids=["n", "p"])
    assert list(back.metadata) == list(metadata)
    assert list(back.metadata["nested"]) == ["b", "a"]
    assert back.hash == node.hash
    assert back.get_content(MetadataMode.LLM) == node.get_content(MetadataMode.LLM)
    assert list(back_plain.metadata) == ["z", "a", "m"] and back_plain.hash == plain.hash
    [hit] = store.query(VectorStoreQuery(query_embedding=unit(1), similarity_top_k=1)).nodes or []
    assert list(hit.metadata) == list(metadata)


# ----------------------------------------------------------------------------- item 5


def test_store_nodes_override_queries_read_no_ids_first(store: ChromaStore) -> None:
    texts = text_nodes(5)
    index = VectorStoreIndex(
        texts,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=MockEmbedding(embed_dim=8),
        store_nodes_override=True,
    )
    retriever = index.as_retriever(similarity_top_k=2)
    # Every node id is listed (the docstore keeps them all) ...
    assert sorted(index.index_struct.nodes_dict.values()) == [f"t{i}" for i in range(5)]
    query = VectorStoreQuery(
        query_embedding=texts[1].embedding,
        similarity_top_k=2,
        node_ids=[f"t{i}" for i in range(20_000)],
    )
    # ... and the plan sends exactly one call, the query, with no id list to check.
    plan = plan_query(query, {}, "cosine", 8)
    assert plan is not None
    flow = query_flow(plan, Limits(max_batch=1000))
    call = next(flow)
    assert call.method == "query" and call.kwargs["ids"] is None
    hits = retriever.retrieve(QueryBundle(query_str="q", embedding=texts[1].embedding))
    assert hits[0].node.node_id == "t1"


# ----------------------------------------------------------------------------- item 7


def test_filter_only_query_returns_matching_nodes_unscored(store: ChromaStore) -> None:
    store.add(text_nodes(6))
    even = MetadataFilters(
        filters=[MetadataFilter(key="i", value=[0, 2, 4], operator=FilterOperator.IN)]
    )
    result = store.query(VectorStoreQuery(filters=even, similarity_top_k=10))
    assert sorted(result.ids or []) == ["t0", "t2", "t4"]
    assert result.similarities is None
    assert sorted(n.get_content() for n in result.nodes or []) == ["text 0", "text 2", "text 4"]
    # top_k bounds it; no filters at all gives any top_k rows (as ChromaVectorStore).
    assert len(store.query(VectorStoreQuery(filters=even, similarity_top_k=2)).ids or []) == 2
    assert len(store.query(VectorStoreQuery(similarity_top_k=4)).ids or []) == 4
    with_vectors = store.query(
        VectorStoreQuery(filters=even, similarity_top_k=1), include_embeddings=True
    )
    assert (with_vectors.nodes or [])[0].embedding is not None

    async def aquery() -> list[str]:
        found = await store.aquery(VectorStoreQuery(filters=even, similarity_top_k=10))
        return sorted(found.ids or [])

    assert asyncio.run(aquery()) == ["t0", "t2", "t4"]


def test_conflicting_mmr_prefetch_options_are_refused(store: ChromaStore) -> None:
    store.add(text_nodes(3))
    query = VectorStoreQuery(
        query_embedding=unit(0), similarity_top_k=2, mode=VectorStoreQueryMode.MMR
    )
    with pytest.raises(ValueError) as info:
        store.query(query, mmr_prefetch_k=10, mmr_prefetch_factor=2.0)
    assert str(info.value) == (
        "'mmr_prefetch_factor' and 'mmr_prefetch_k' cannot coexist in a call to query(): "
        "pass only one of them."
    )
    assert len(store.query(query, mmr_prefetch_k=3).ids or []) == 2


def test_text_match_on_a_metadata_key_is_refused_naming_the_alternatives(
    store: ChromaStore,
) -> None:
    store.add(text_nodes(2))
    title = MetadataFilters(
        filters=[MetadataFilter(key="title", value="intro", operator=FilterOperator.TEXT_MATCH)]
    )
    with pytest.raises(ValueError) as info:
        store.query(VectorStoreQuery(query_embedding=unit(0), filters=title))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("FilterOperator.TEXT_MATCH on metadata key 'title' is not supported")
    assert "FilterOperator.EQ" in message and "key='text'" in message
