"""ChromaStore on a real local PersistentClient (one directory per test)."""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import (
    BaseNode,
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

from llama_index_gemini_embed._errors import (
    ConfigurationError,
    FingerprintMismatchError,
    StoreError,
)
from llama_index_gemini_embed._fingerprint import Fingerprint, fingerprint_mismatch_message
from llama_index_gemini_embed._store.store import ChromaStore, DimensionMismatchError

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

FP: Fingerprint = {
    "model": "gemini-embedding-001",
    "dimension": 8,
    "scheme": "task_type",
    "normalised": True,
}


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Seeded random unit vectors, exactly representable as float32."""
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    unit: np.ndarray = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return unit


def make_nodes(
    n: int, dim: int = 8, seed: int = 0, docs: int = 3, prefix: str = "n"
) -> list[TextNode]:
    vectors = unit_vectors(n, dim, seed)
    return [
        TextNode(
            id_=f"{prefix}{i}",
            text=f"chunk {i} of doc {i % docs}",
            embedding=vectors[i].tolist(),
            metadata={"i": i, "group": i % docs, "lige_hash": f"h{i}"},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i % docs}")},
        )
        for i in range(n)
    ]


def same_node(got: BaseNode, want: BaseNode) -> bool:
    """Equal apart from the embedding, which Chroma returns as float32 (cosine: to ~1 ulp)."""
    if (got.embedding is None) != (want.embedding is None):
        return False
    if (
        got.embedding is not None
        and want.embedding is not None
        and not np.allclose(got.embedding, want.embedding, rtol=1e-6, atol=1e-7)
    ):
        return False
    return got.model_copy(update={"embedding": None}) == want.model_copy(update={"embedding": None})


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "chroma")


@pytest.fixture
def store(path: str) -> Iterator[ChromaStore]:
    with ChromaStore("docs", path=path) as store:
        yield store


def ids_of(nodes: Sequence[BaseNode]) -> list[str]:
    return [node.node_id for node in nodes]


# ----------------------------------------------------------------------------- construction


def test_bad_collection_name_says_what_to_do(path: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ChromaStore("my docs", path=path)
    assert str(info.value) == (
        "Invalid Chroma collection name 'my docs': Chroma accepts 3-512 characters from "
        "[a-zA-Z0-9._-] that start and end with a letter or digit. "
        "Use for example collection_name='my-docs'."
    )
    assert not Path(path).exists()  # refused before anything was opened


def test_new_collection_is_cosine_with_no_embedding_function(path: str) -> None:
    with ChromaStore("docs", path=path, hnsw={"ef_search": 50}) as store:
        config = store.collection.configuration_json
        assert config["hnsw"]["space"] == "cosine"
        assert config["hnsw"]["ef_search"] == 50
        # No embedding function is recorded by name ("legacy" is how Chroma stores None).
        assert config.get("embedding_function") in (None, {"type": "legacy"})
        assert store.distance_space == "cosine"
        assert ChromaStore.class_name() == "LigeChromaStore"
        assert store.stores_text is True and store.flat_metadata is False
    # An existing collection keeps its space; asking for another one explicitly is refused.
    with ChromaStore("docs", path=path) as again:
        assert again.distance_space == "cosine"
    with pytest.raises(ConfigurationError, match="already exists with space='cosine', not 'l2'"):
        ChromaStore("docs", path=path, space="l2")
    with pytest.raises(ConfigurationError, match="Unknown hnsw settings"):
        ChromaStore("docs", path=path, hnsw={"M": 8})


# ----------------------------------------------------------------------------- writes


def test_upsert_replaces_stale_text_vector_and_metadata(store: ChromaStore) -> None:
    old_vec, new_vec = unit_vectors(2, 8, seed=1)
    source = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc")}
    old = TextNode(
        id_="n",
        text="old text",
        embedding=old_vec.tolist(),
        metadata={"keep": 1, "stale": "x", "stale_side": None},
        relationships=source,
        start_char_idx=5,
    )
    new = TextNode(id_="n", text="new text", embedding=new_vec.tolist(), metadata={"keep": 2})
    assert store.add([old]) == ["n"]
    assert store.add([new]) == ["n"]
    assert store.count() == 1
    [got] = store.get_nodes(["n"], include_embeddings=True)
    assert same_node(got, new)  # no stale text, keys, relationships or char offsets
    raw = store.collection.get(ids=["n"], include=["metadatas"])["metadatas"]
    assert raw is not None and raw[0] is not None
    assert set(raw[0]) == {"keep", "lige_keys"}
    result = store.query(VectorStoreQuery(query_embedding=new_vec.tolist(), similarity_top_k=1))
    assert result.ids == ["n"] and result.similarities is not None
    assert result.similarities[0] == pytest.approx(1.0, abs=1e-6)


def test_duplicate_ids_in_one_add_last_wins(store: ChromaStore) -> None:
    first, second = make_nodes(2, prefix="x")
    second.id_ = first.id_
    assert store.add([first, second]) == ["x0", "x0"]
    [got] = store.get_nodes(["x0"])
    assert got.get_content() == second.get_content()


def test_nodes_without_embeddings_are_refused(store: ChromaStore) -> None:
    with pytest.raises(ValueError, match="has no embedding"):
        store.add([*make_nodes(2), TextNode(id_="bare", text="x")])
    assert store.count() == 0


def test_past_the_batch_limit_add_get_index_delete_clear(store: ChromaStore) -> None:
    nodes = make_nodes(6200, dim=8, docs=3)
    assert store.client.get_max_batch_size() < len(nodes)
    assert store.add(nodes) == ids_of(nodes)
    assert store.count() == 6200

    everything = store.get_nodes()
    assert sorted(ids_of(everything)) == sorted(ids_of(nodes))
    by_id = {n.node_id: n for n in everything}
    assert all(same_node(by_id[n.node_id], n.model_copy(update={"embedding": None})) for n in nodes)
    wanted = [n.node_id for n in reversed(nodes)]
    assert ids_of(store.get_nodes([*wanted, "missing"])) == wanted  # order kept, missing skipped

    index = store.get_index()
    assert set(index) == {"doc-0", "doc-1", "doc-2"}
    assert sum(len(v) for v in index.values()) == 6200
    assert index["doc-1"]["n1"] == "h1"
    assert store.get_index(["doc-2", "nope"]) == {"doc-2": index["doc-2"]}

    group0 = MetadataFilters(filters=[MetadataFilter(key="group", value=0)])
    store.delete_nodes(filters=group0)  # filter-only, 2067 rows
    assert store.count() == 6200 - 2067
    assert store.get_nodes(filters=group0) == []
    store.delete_nodes(node_ids=[f"n{i}" for i in range(1, 6200, 3)])  # doc-1, in 2 batches
    assert store.count() == 2066
    store.delete("doc-2")
    assert store.count() == 0
    store.add(nodes[:10])
    store.clear()
    assert store.count() == 0
    assert store.get_nodes() == []


def test_clear_past_the_batch_limit(store: ChromaStore) -> None:
    store.add(make_nodes(6000, dim=4, docs=1))
    store.clear()
    assert store.count() == 0


def test_delete_nodes_with_ids_and_filters_deletes_the_intersection(store: ChromaStore) -> None:
    store.add(make_nodes(6))
    group1 = MetadataFilters(filters=[MetadataFilter(key="group", value=1)])
    store.delete_nodes(node_ids=["n0", "n1", "n4"], filters=group1)
    assert sorted(ids_of(store.get_nodes())) == ["n0", "n2", "n3", "n5"]
    store.delete_nodes()  # neither ids nor filters: nothing
    store.delete_nodes(node_ids=[])
    assert store.count() == 4


def test_delete_nodes_refuses_filters_that_match_everything(store: ChromaStore) -> None:
    store.add(make_nodes(3))
    with pytest.raises(ValueError, match=r"without any condition.*call clear\(\)"):
        store.delete_nodes(filters=MetadataFilters(filters=[]))
    assert store.count() == 3


def test_get_index_maps_missing_hashes_and_docs(store: ChromaStore) -> None:
    nodes = make_nodes(3)
    nodes[0].metadata.pop("lige_hash")
    nodes[2].relationships = {}
    store.add(nodes)
    assert store.get_index() == {"doc-0": {"n0": ""}, "doc-1": {"n1": "h1"}, "": {"n2": "h2"}}
    assert store.get_index([]) == {}


# ----------------------------------------------------------------------------- fingerprint


class FakeEmbedModel:
    """Anything with a ``fingerprint`` mapping will do; ChromaStore never embeds."""

    def __init__(self, **fingerprint: Any) -> None:
        self.fingerprint = fingerprint
        self.calls = 0

    def get_text_embedding(self, text: str) -> list[float]:  # pragma: no cover
        self.calls += 1
        raise AssertionError("ChromaStore must not embed")


def test_fingerprint_recorded_reopened_and_mismatch_refused(path: str) -> None:
    with ChromaStore("docs", path=path, embed_model=FakeEmbedModel(**FP)) as store:
        assert store.fingerprint == FP
        metadata = store.collection.metadata
        assert metadata == {
            "lige_model": "gemini-embedding-001",
            "lige_dimension": 8,
            "lige_scheme": "task_type",
            "lige_normalised": True,
            "lige_schema": 1,
        }
        store.add(make_nodes(5))
    with ChromaStore("docs", path=path, fingerprint=FP) as same:
        assert same.count() == 5
    with ChromaStore("docs", path=path) as unchecked:  # no fingerprint given: just opens
        assert unchecked.fingerprint == FP

    other_model = FakeEmbedModel(**{**FP, "dimension": 3072})
    with pytest.raises(FingerprintMismatchError) as info:
        ChromaStore("docs", path=path, embed_model=other_model)
    assert str(info.value) == fingerprint_mismatch_message("docs", FP, other_model.fingerprint)
    assert "collection_name='docs-gemini-embedding-001-3072'" in str(info.value)
    assert other_model.calls == 0
    with ChromaStore("docs", path=path) as untouched:
        assert untouched.collection.metadata == metadata
        assert untouched.count() == 5
        with pytest.raises(FingerprintMismatchError):
            untouched.check_fingerprint({**FP, "model": "other"})
        assert untouched.fingerprint == FP


def test_fingerprint_is_merged_into_existing_collection_metadata(path: str) -> None:
    with ChromaStore("docs", path=path) as plain:
        plain.collection.modify(metadata={"owner": "me"})
        plain.add(make_nodes(3))
        assert plain.fingerprint is None
        plain.check_fingerprint(FP)
        assert plain.fingerprint == FP
    with ChromaStore("docs", path=path, fingerprint=FP) as store:
        assert store.collection.metadata is not None
        assert store.collection.metadata["owner"] == "me"
        assert store.collection.metadata["lige_model"] == "gemini-embedding-001"
        assert store.count() == 3


def test_fingerprint_is_not_recorded_over_vectors_of_another_dimension(path: str) -> None:
    with ChromaStore("docs", path=path) as plain:
        plain.add(make_nodes(2, dim=4))
    with pytest.raises(FingerprintMismatchError, match="holds 4-dimensional vectors"):
        ChromaStore("docs", path=path, fingerprint=FP)
    with ChromaStore("docs", path=path) as again:
        assert again.fingerprint is None


def test_an_existing_collection_object_can_be_used(path: str) -> None:
    with ChromaStore("docs", path=path) as owner:
        owner.add(make_nodes(4))
        with ChromaStore("docs", collection=owner.collection, fingerprint=FP) as wrapped:
            assert wrapped.count() == 4
            assert wrapped.fingerprint == FP
            assert len(wrapped.query(VectorStoreQuery(query_embedding=[1.0] * 8)).ids or []) == 1
        with pytest.raises(ConfigurationError, match="pass the same name"):
            ChromaStore("other", collection=owner.collection)


def test_fingerprint_and_embed_model_must_agree(path: str) -> None:
    with pytest.raises(ConfigurationError, match="disagrees with embed_model"):
        ChromaStore("docs", path=path, fingerprint=FP, embed_model=FakeEmbedModel(model="x"))
    with pytest.raises(ConfigurationError, match="has no 'fingerprint' mapping"):
        ChromaStore("docs", path=path, embed_model=object())


def test_dimension_mismatch_is_named_before_writing(path: str) -> None:
    with ChromaStore("docs", path=path) as store:
        store.add(make_nodes(3, dim=4))
        with pytest.raises(DimensionMismatchError) as info:
            store.add(make_nodes(2, dim=3, prefix="m"))
        assert str(info.value).startswith(
            "Node 'm0' has a 3-dimensional embedding but collection 'docs' uses "
            "4-dimensional vectors; nothing was written."
        )
        with pytest.raises(DimensionMismatchError, match="has 3 dimensions but the collection"):
            store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0]))
        mixed = make_nodes(2, dim=4, prefix="k") + make_nodes(1, dim=5, prefix="z")
        with pytest.raises(DimensionMismatchError, match="Node 'z0' has a 5-dimensional"):
            store.add(mixed)
        assert store.count() == 3
    # The dimension is learnt from stored vectors, or from lige_dimension.
    with (
        ChromaStore("docs", path=path) as reopened,
        pytest.raises(DimensionMismatchError, match="4-dimensional vectors"),
    ):
        reopened.add(make_nodes(1, dim=2))
    with (
        ChromaStore("fp8", path=path, fingerprint=FP) as store,
        pytest.raises(DimensionMismatchError, match="'fp8' uses 8-dimensional"),
    ):
        store.add(make_nodes(1, dim=3))


# ----------------------------------------------------------------------------- queries


@pytest.mark.parametrize("space", ["cosine", "ip", "l2"])
def test_scores_are_real_similarities(path: str, space: Any) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((40, 16)).astype(np.float32)
    if space != "l2":
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    nodes = [TextNode(id_=f"v{i}", text=str(i), embedding=vectors[i].tolist()) for i in range(40)]
    query_vec = rng.standard_normal(16).astype(np.float32)
    with ChromaStore(f"space-{space}", path=path, space=space) as store:
        store.add(nodes)
        result = store.query(
            VectorStoreQuery(query_embedding=query_vec.tolist(), similarity_top_k=5)
        )
    q = query_vec.astype(np.float64)
    v = vectors.astype(np.float64)
    if space == "cosine":
        expected = v @ q / np.linalg.norm(v, axis=1) / np.linalg.norm(q)
    elif space == "ip":
        expected = v @ q
    else:
        expected = 1 / (1 + np.linalg.norm(v - q, axis=1))
    best = np.argsort(-expected)[:5]
    assert result.ids == [f"v{i}" for i in best]
    assert result.similarities == pytest.approx(expected[best].tolist(), abs=1e-5)
    assert result.nodes is not None and [n.get_content() for n in result.nodes] == [
        str(i) for i in best
    ]


def test_node_ids_and_doc_ids_restrict_queries(store: ChromaStore) -> None:
    nodes = make_nodes(30, docs=3)
    store.add(nodes)
    query = VectorStoreQuery(query_embedding=nodes[0].embedding, similarity_top_k=30)
    assert sorted(store.query(query).ids or []) == sorted(ids_of(nodes))
    assert sorted(store.query(query, node_ids=["n5", "n7", "unknown"]).ids or []) == ["n5", "n7"]
    query.doc_ids = ["doc-1"]
    assert sorted(store.query(query).ids or []) == sorted(f"n{i}" for i in range(1, 30, 3))
    assert sorted(store.query(query, node_ids=["n1", "n2", "n4"]).ids or []) == ["n1", "n4"]
    query.doc_ids = []  # empty means no restriction, as in LlamaIndex
    assert len(store.query(query).ids or []) == 30
    assert store.query(query, node_ids=["unknown"]).ids == []
    assert store.query(query, node_ids=[]).ids == []


def test_empty_collection_and_top_k_beyond_count(store: ChromaStore) -> None:
    query = VectorStoreQuery(query_embedding=[1.0] + [0.0] * 7, similarity_top_k=10)
    empty = store.query(query)
    assert empty.ids == [] and empty.nodes == [] and empty.similarities == []
    store.add(make_nodes(3))
    assert len(store.query(query).ids or []) == 3
    query.similarity_top_k = 0
    assert store.query(query).ids == []


def test_unsupported_query_modes_are_refused(store: ChromaStore) -> None:
    with pytest.raises(ValueError, match=r"VectorStoreQueryMode\.HYBRID is not supported"):
        store.query(VectorStoreQuery(query_embedding=[1.0] * 8, mode=VectorStoreQueryMode.HYBRID))


def test_mmr_prefers_diverse_results(store: ChromaStore) -> None:
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    vectors = {
        "best": [0.95, 0.31, 0.0],
        "near-duplicate": [0.95, 0.32, 0.01],
        "different": [0.8, 0.0, 0.6],
        "far": [0.0, 0.0, 1.0],
    }
    store.add(
        [
            TextNode(id_=k, text=k, embedding=(np.array(v) / np.linalg.norm(v)).tolist())
            for k, v in vectors.items()
        ]
    )
    plain = store.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=2))
    assert plain.ids == ["best", "near-duplicate"]
    mmr = store.query(
        VectorStoreQuery(
            query_embedding=q.tolist(), similarity_top_k=2, mode=VectorStoreQueryMode.MMR
        ),
        mmr_threshold=0.5,
    )
    assert mmr.ids == ["best", "different"]
    assert mmr.similarities == pytest.approx([0.95 / np.linalg.norm([0.95, 0.31]), 0.8], abs=1e-5)
    relevance_only = store.query(
        VectorStoreQuery(
            query_embedding=q.tolist(),
            similarity_top_k=2,
            mode=VectorStoreQueryMode.MMR,
            mmr_threshold=1.0,
        )
    )
    assert relevance_only.ids == ["best", "near-duplicate"]


def test_query_returns_embeddings_when_asked(store: ChromaStore) -> None:
    nodes = make_nodes(4)
    store.add(nodes)
    query = VectorStoreQuery(query_embedding=nodes[2].embedding, similarity_top_k=1)
    [plain] = store.query(query).nodes or []
    assert plain.embedding is None and same_node(
        plain, nodes[2].model_copy(update={"embedding": None})
    )
    [full] = store.query(query, include_embeddings=True).nodes or []
    assert same_node(full, nodes[2])


def test_vector_store_index_round_trip(store: ChromaStore) -> None:
    nodes = make_nodes(12, docs=2)
    index = VectorStoreIndex(
        nodes,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=MockEmbedding(embed_dim=8),
    )
    assert store.count() == 12
    retriever = index.as_retriever(similarity_top_k=3)
    hits = retriever.retrieve(QueryBundle(query_str="chunk", embedding=nodes[4].embedding))
    assert hits[0].node.node_id == "n4"
    assert hits[0].score == pytest.approx(1.0, abs=1e-6)
    assert same_node(hits[0].node, nodes[4].model_copy(update={"embedding": None}))
    index.delete_ref_doc("doc-0")
    assert sorted(ids_of(store.get_nodes())) == sorted(f"n{i}" for i in range(1, 12, 2))


# ----------------------------------------------------------------------------- lifetime


def test_pickle_and_to_dict_carry_settings_not_clients(path: str) -> None:
    with ChromaStore("docs", path=path, fingerprint=FP, headers={"x-token": "secret"}) as store:
        store.add(make_nodes(2))
        data = store.to_dict()
        assert data["class_name"] == "LigeChromaStore"
        assert data["collection_name"] == "docs" and data["expected_fingerprint"] == FP
        assert "headers" not in data and "secret" not in repr(store)
        clone = pickle.loads(pickle.dumps(store))
        try:
            assert clone.count() == 2 and clone.client is store.client  # shares the lock
            assert clone.headers == {"x-token": "secret"}
        finally:
            clone.close()
        from_dict = ChromaStore.from_dict(data)
        try:
            assert from_dict.count() == 2
        finally:
            from_dict.close()


def test_closed_store_refuses_work(path: str) -> None:
    store = ChromaStore("docs", path=path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="is closed; create a new ChromaStore"):
        store.count()


# ----------------------------------------------------------------------------- async (local)


async def test_async_methods_on_the_local_client(store: ChromaStore) -> None:
    nodes = make_nodes(1200, dim=8, docs=3)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    assert await store.async_add(nodes) == ids_of(nodes)
    done.set()
    await ticking
    assert ticks > 1  # the event loop kept running while Chroma worked in a thread

    assert await store.acount() == 1200
    results = await asyncio.gather(
        *(
            store.aquery(VectorStoreQuery(query_embedding=nodes[i].embedding, similarity_top_k=1))
            for i in range(5)
        )
    )
    assert [r.ids for r in results] == [[f"n{i}"] for i in range(5)]
    [got] = await store.aget_nodes(["n7"])
    assert same_node(got, nodes[7].model_copy(update={"embedding": None}))
    assert len((await store.aget_index(["doc-0"]))["doc-0"]) == 400
    await store.adelete("doc-0")
    await store.adelete_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="group", value=1)])
    )
    await store.adelete_nodes(node_ids=["n2"])
    assert await store.acount() == 399
    gt = MetadataFilters(filters=[MetadataFilter(key="i", value=1190, operator=FilterOperator.GT)])
    assert sorted(ids_of(await store.aget_nodes(filters=gt))) == ["n1193", "n1196", "n1199"]
    await store.aclear()
    assert await store.acount() == 0
