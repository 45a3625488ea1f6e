"""ChromaStore against a real ``chroma run`` server: HTTP batching, native async, outages."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from llama_index_gemini_embed._errors import (
    FingerprintMismatchError,
    StoreError,
    StoreUnavailableError,
)
from llama_index_gemini_embed._store.flows import record_wire_bytes
from llama_index_gemini_embed._store.limits import DEFAULT_PAYLOAD_CAP, plan_batches
from llama_index_gemini_embed._store.records import encode_node
from llama_index_gemini_embed._store.store import ChromaStore
from tests.chroma_server import free_port, start_chroma
from tests.store.test_store import FP, make_nodes, same_node

pytestmark = pytest.mark.server
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

#: Cheap HNSW settings: the 3072-d test is about request sizes, not recall.
FAST_HNSW = {"ef_construction": 8, "max_neighbors": 4}


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(chroma_server: Any, name: str) -> Iterator[ChromaStore]:
    with ChromaStore.from_url(chroma_server.url, collection_name=name) as store:
        yield store
        store.client.delete_collection(name)


def test_sync_round_trip_with_stale_keys_over_http(store: ChromaStore) -> None:
    nodes = make_nodes(20)
    assert store.add(nodes) == [n.node_id for n in nodes]
    renewed = nodes[3].model_copy(update={"text": "new", "metadata": {"only": True}})
    renewed.relationships = {}
    store.add([renewed])
    [got] = store.get_nodes(["n3"], include_embeddings=True)
    assert same_node(got, renewed)
    result = store.query(VectorStoreQuery(query_embedding=nodes[5].embedding, similarity_top_k=2))
    assert result.ids is not None and result.ids[0] == "n5"
    assert result.similarities is not None
    assert result.similarities[0] == pytest.approx(1.0, abs=1e-6)
    group1 = MetadataFilters(filters=[MetadataFilter(key="group", value=1)])
    store.delete_nodes(filters=group1)  # filter-only
    store.delete_nodes(
        node_ids=["n0", "n2"],
        filters=MetadataFilters(filters=[MetadataFilter(key="group", value=2)]),
    )
    assert sorted(n.node_id for n in store.get_nodes()) == sorted(
        f"n{i}" for i in range(20) if i % 3 != 1 and i != 2
    )
    store.delete("doc-0")
    assert store.get_index() == {  # n3 lost its ref doc and hash on re-adding
        "": {"n3": ""},
        "doc-2": {f"n{i}": f"h{i}" for i in range(5, 20, 3)},
    }
    store.clear()
    assert store.count() == 0


def test_fingerprint_is_shared_by_every_client_of_the_server(chroma_server: Any, name: str) -> None:
    with ChromaStore.from_url(chroma_server.url, collection_name=name, fingerprint=FP) as first:
        assert first.fingerprint == FP
        with pytest.raises(FingerprintMismatchError, match="dimension: 8 -> 768"):
            ChromaStore.from_url(
                chroma_server.url, collection_name=name, fingerprint={**FP, "dimension": 768}
            )
        with ChromaStore(name, host=chroma_server.host, port=chroma_server.port) as second:
            assert second.fingerprint == FP
        first.client.delete_collection(name)


def test_3072_dimension_writes_are_split_under_the_request_limit(
    chroma_server: Any, name: str
) -> None:
    """2,700 x 3,072 is ~44 MB as one request, which chroma run refuses (40 MiB)."""
    nodes = make_nodes(2700, dim=3072, docs=2)
    with ChromaStore.from_url(chroma_server.url, collection_name=name, hnsw=FAST_HNSW) as store:
        ids = [n.node_id for n in nodes]
        embeddings = np.asarray([n.embedding for n in nodes], dtype=np.float32)
        with pytest.raises(Exception, match="Payload too large"):  # what plain Chroma does
            store.collection.upsert(ids=ids, embeddings=embeddings)
        sizes = [record_wire_bytes(encode_node(n), 3072, base64=True) for n in nodes]
        assert len(plan_batches(sizes, 5461, DEFAULT_PAYLOAD_CAP)) == 2

        assert store.add(nodes) == ids
        assert store.count() == 2700
        # Vectors from both requests came back intact (the cheap HNSW makes recall moot).
        got = store.get_nodes(["n0", "n1234", "n2699"], include_embeddings=True)
        assert all(same_node(g, nodes[int(g.node_id[1:])]) for g in got) and len(got) == 3
        store.client.delete_collection(name)


def test_payload_too_large_is_explained(chroma_server: Any, name: str) -> None:
    nodes = make_nodes(2700, dim=3072, docs=1)
    with ChromaStore.from_url(
        chroma_server.url, collection_name=name, payload_cap_bytes=200 * 2**20
    ) as store:
        with pytest.raises(StoreError, match="refused a request as too large") as info:
            store.add(nodes)
        assert "Payload too large" in str(info.value.__cause__)
        assert store.count() == 0
        store.client.delete_collection(name)


async def test_async_methods_use_the_async_http_client(store: ChromaStore) -> None:
    nodes = make_nodes(300, docs=3)
    assert await store.async_add(nodes) == [n.node_id for n in nodes]
    assert store._aserver is not None and store._aserver.io.started  # natively async
    assert type(store._aserver.collection).__name__ == "AsyncCollection"
    assert await store.acount() == 300
    results = await asyncio.gather(
        *(
            store.aquery(VectorStoreQuery(query_embedding=nodes[i].embedding, similarity_top_k=1))
            for i in range(8)
        )
    )
    assert [r.ids for r in results] == [[f"n{i}"] for i in range(8)]
    [got] = await store.aget_nodes(["n9"])
    assert same_node(got, nodes[9].model_copy(update={"embedding": None}))
    assert len((await store.aget_index(["doc-1"]))["doc-1"]) == 100
    await store.adelete("doc-1")
    high = MetadataFilters(
        filters=[MetadataFilter(key="i", value=290, operator=FilterOperator.GTE)]
    )
    await store.adelete_nodes(filters=high)
    await store.adelete_nodes(node_ids=["n0"])
    assert await store.acount() == 200 - 1 - len([i for i in range(290, 300) if i % 3 != 1])
    await store.aclear()
    assert await store.acount() == 0


async def test_a_supplied_http_client_also_gets_native_async(chroma_server: Any, name: str) -> None:
    client = chromadb.HttpClient(
        host=chroma_server.host,
        port=chroma_server.port,
        settings=Settings(anonymized_telemetry=False, _env_file=None),
    )
    with ChromaStore(name, client=client) as store:
        assert store.client is client
        assert await asyncio.gather(*(store.acount() for _ in range(4))) == [0, 0, 0, 0]
        assert store._aserver is not None  # concurrent first calls shared one client
        assert type(store._aserver.collection).__name__ == "AsyncCollection"
        await store.async_add(make_nodes(5))
        assert await store.acount() == 5
        client.delete_collection(name)


def test_unreachable_server_at_construction() -> None:
    port = free_port()
    with pytest.raises(StoreUnavailableError) as info:
        ChromaStore("docs", host="127.0.0.1", port=port)
    message = str(info.value)
    assert f"Cannot reach the Chroma server at 127.0.0.1:{port} while connecting" in message
    assert f"chroma run --path DIR --host 127.0.0.1 --port {port}" in message
    assert info.value.__cause__ is not None


async def test_server_going_away_mid_operation(tmp_path: Path) -> None:
    server = start_chroma(tmp_path / "private")
    try:
        store = ChromaStore.from_url(server.url, collection_name="docs")
        source = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id="d")}
        store.add([TextNode(id_="a", text="a", embedding=[1.0, 0.0], relationships=source)])
        assert await store.acount() == 1
    finally:
        server.stop()
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{server.port} while counting"):
        store.count()
    with pytest.raises(StoreUnavailableError, match="while adding nodes"):
        await store.async_add([TextNode(id_="b", text="b", embedding=[0.0, 1.0])])
    store.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_many_event_loops_keep_open_sockets_bounded(store: ChromaStore) -> None:
    """``asyncio.run(store.aquery(...))`` x 200: one set of connections, not one per loop."""
    nodes = make_nodes(10)
    store.add(nodes)
    query = VectorStoreQuery(query_embedding=nodes[3].embedding, similarity_top_k=1)
    assert asyncio.run(store.aquery(query)).ids == ["n3"]  # the first loop opens what it needs
    before = _open_fds()
    for i in range(200):
        result = asyncio.run(store.aquery(query))
        assert result.ids == ["n3"], i
    assert _open_fds() - before <= 5

    # Many concurrent calls from one loop still work (and share those connections).
    async def many() -> list[list[str] | None]:
        found = await asyncio.gather(*(store.aquery(query) for _ in range(20)))
        return [r.ids for r in found]

    assert asyncio.run(many()) == [["n3"]] * 20
    assert _open_fds() - before <= 25


def test_a_forked_child_gets_its_own_async_connections(store: ChromaStore) -> None:
    """The parent's loop thread does not exist in a fork: the child must not wait on it."""
    nodes = make_nodes(4)
    store.add(nodes)
    query = VectorStoreQuery(query_embedding=nodes[1].embedding, similarity_top_k=1)
    assert asyncio.run(store.aquery(query)).ids == ["n1"]  # the parent's loop thread runs
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: answer through the pipe, exit without running pytest's teardown
        code = 1
        try:
            ids = asyncio.run(asyncio.wait_for(store.aquery(query), 30)).ids
            os.write(write, ",".join(ids or []).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and answer == "n1"
    assert asyncio.run(store.aquery(query)).ids == ["n1"]  # the parent is unaffected
