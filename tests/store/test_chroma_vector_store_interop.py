"""Collections move both ways between ChromaStore and LlamaIndex's ChromaVectorStore.

Issue 11 item 9, tested with the real ``llama-index-vector-stores-chroma`` package on one
real local Chroma collection.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.vector_stores.chroma import ChromaVectorStore

from llama_index_gemini_embed._store.store import ChromaStore

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def docs_nodes(prefix: str) -> list[TextNode]:
    return [
        TextNode(
            id_=f"{prefix}{i}",
            text=f"{prefix} text {i}",
            embedding=[1.0, float(i), 0.5],
            metadata={"lang": "en" if i % 2 else "de", "page": i},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i % 2}")},
        )
        for i in range(4)
    ]


@pytest.fixture
def path(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "chroma")


def upstream(client: Any, name: str) -> ChromaVectorStore:
    collection = client.get_or_create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    return ChromaVectorStore(chroma_collection=collection)


def test_chroma_vector_store_reads_what_chroma_store_wrote(path: str) -> None:
    with ChromaStore("docs", path=path) as ours:
        ours.add(docs_nodes("a"))
        client = ours.client  # same process: share the locked client
        theirs = upstream(client, "docs")
        result = theirs.query(VectorStoreQuery(query_embedding=[1.0, 2.0, 0.5], similarity_top_k=1))
        [node] = result.nodes or []
        assert node.node_id == "a2" and node.get_content() == "a text 2"
        assert node.metadata["lang"] == "de" and node.metadata["page"] == 2
        # Their metadata filters and their delete(ref_doc_id) work on our rows.
        english = MetadataFilters(filters=[MetadataFilter(key="lang", value="en")])
        found = theirs.query(
            VectorStoreQuery(query_embedding=[1.0, 0.0, 0.5], similarity_top_k=4, filters=english)
        )
        assert sorted(found.ids or []) == ["a1", "a3"]
        theirs.delete("doc-1")
        assert sorted(n.node_id for n in ours.get_nodes()) == ["a0", "a2"]


def test_chroma_store_reads_and_extends_what_chroma_vector_store_wrote(path: str) -> None:
    client = chromadb.PersistentClient(path, Settings(anonymized_telemetry=False, _env_file=None))
    theirs = upstream(client, "legacy")
    written: list[BaseNode] = list(docs_nodes("b"))
    theirs.add(written)
    with ChromaStore("legacy", client=client) as ours:
        back = ours.get_nodes(node_ids=["b1"])
        assert len(back) == 1
        node = back[0]
        assert node.get_content() == "b text 1"
        assert node.metadata == {"lang": "en", "page": 1}  # no _node_content & co
        assert node.ref_doc_id == "doc-1"
        assert node.hash == written[1].hash
        hit = ours.query(VectorStoreQuery(query_embedding=[1.0, 3.0, 0.5], similarity_top_k=1))
        assert hit.ids == ["b3"] and (hit.nodes or [])[0].metadata == {"lang": "en", "page": 3}
        german = MetadataFilters(
            filters=[MetadataFilter(key="lang", value="de", operator=FilterOperator.EQ)]
        )
        assert sorted(n.node_id for n in ours.get_nodes(filters=german)) == ["b0", "b2"]
        assert ours.get_index(["doc-0"]) == {"doc-0": {"b0": "", "b2": ""}}
        # Our rows and theirs live side by side; our delete reaches theirs too.
        ours.add(docs_nodes("c"))
        ours.delete("doc-0")
        assert sorted(n.node_id for n in ours.get_nodes()) == ["b1", "b3", "c1", "c3"]
        # ... and theirs still reads the whole collection.
        every = [f"{p}{i}" for p in "bc" for i in range(4)]
        assert sorted(n.node_id for n in theirs.get_nodes(every)) == ["b1", "b3", "c1", "c3"]
        [ours_by_theirs] = theirs.get_nodes(["c1"])
        assert ours_by_theirs.get_content() == "c text 1" and ours_by_theirs.metadata["page"] == 1
