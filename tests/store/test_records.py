"""Node <-> Chroma record encoding: tables of cases, then an exact round trip via real Chroma."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import chromadb
import numpy as np
import pytest
from chromadb.api.client import Client
from chromadb.config import Settings
from llama_index.core.schema import (
    BaseNode,
    Document,
    IndexNode,
    NodeRelationship,
    ObjectType,
    RelatedNodeInfo,
    TextNode,
)

from llama_index_gemini_embed._store.records import (
    DOC_ID_KEY,
    KEYS_KEY,
    META_KEY,
    NODE_KEY,
    decode_metadata,
    decode_node,
    encode_metadata,
    encode_node,
    is_empty_value,
)

# ----------------------------------------------------------------------------- values

NATIVE_CASES: list[tuple[str, Any]] = [
    ("str", "hello"),
    ("empty-string", ""),
    ("int", 42),
    ("negative", -(2**63)),
    ("max-int", 2**63 - 1),
    ("float", 0.1 + 0.2),
    ("bool", True),
    ("str-list", ["a", "b"]),
    ("int-list", [1, 2, 3]),
    ("float-list", [0.5, 1e300]),
    ("bool-list", [True, False]),
    ("unicode", "ü\x00→"),
]

SIDE_CASES: list[tuple[str, Any]] = [
    ("none", None),
    ("dict", {"a": {"b": [1, None]}}),
    ("empty-list", []),
    ("empty-dict", {}),
    ("mixed-list", [1, "a"]),
    ("int-float-list", [1, 2.5]),
    ("bool-int-list", [True, 1]),
    ("nested-list", [[1], [2]]),
    ("none-list", [None]),
    ("huge-int", 2**64),
    ("nan", float("nan")),
    ("inf", float("-inf")),
    ("surrogate", "\ud800x"),
]


@pytest.mark.parametrize(("key", "value"), NATIVE_CASES)
def test_native_values_are_stored_as_chroma_values(key: str, value: Any) -> None:
    encoded = encode_metadata({key: value})
    assert encoded[key] == value
    assert META_KEY not in encoded


@pytest.mark.parametrize(("key", "value"), SIDE_CASES)
def test_other_values_go_to_the_json_side_key(key: str, value: Any) -> None:
    encoded = encode_metadata({key: value})
    assert key not in encoded
    assert META_KEY in encoded
    decoded = decode_metadata(encoded)
    assert list(decoded) == [key]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(decoded[key])
    else:
        assert decoded[key] == value


@pytest.mark.parametrize(
    "key", ["", "#x", "$and", "chroma:doc", "doc_id", "lige_meta", "lige_node"]
)
def test_keys_chroma_cannot_hold_go_to_the_side_key(key: str) -> None:
    encoded = encode_metadata({key: "v", "plain": 1})
    assert encoded["plain"] == 1
    assert json.loads(encoded[META_KEY]) == {key: "v"}
    assert decode_metadata(encoded) == {key: "v", "plain": 1}


def test_numpy_values_become_python_values() -> None:
    encoded = encode_metadata(
        {"i": np.int64(3), "f": np.float32(2.5), "b": np.bool_(True), "a": np.array([1, 2])}
    )
    assert encoded["i"] == 3 and type(encoded["i"]) is int
    assert encoded["f"] == 2.5 and type(encoded["f"]) is float
    assert encoded["b"] is True
    assert encoded["a"] == [1, 2]


def test_lige_keys_lists_the_non_empty_keys() -> None:
    encoded = encode_metadata({"a": 1, "b": None, "c": "", "d": [], "e": {"x": 1}, "f": "v"})
    assert encoded[KEYS_KEY] == ["a", "e", "f"]
    assert KEYS_KEY not in encode_metadata({"only": None})
    assert encode_metadata({}) == {}


def test_lige_hash_and_other_package_keys_stay_native() -> None:
    encoded = encode_metadata({"lige_hash": "abc", "lige_fp": "f00"})
    assert encoded["lige_hash"] == "abc" and encoded["lige_fp"] == "f00"


@pytest.mark.parametrize(
    "metadata",
    [
        {"lige_hash": "abc"},
        {"file_name": "a.txt", "n": 3, "lige_hash": "abc"},
        {"empty": "", "lige_hash": "abc", "author": "x"},
        {"lige_hash": "abc", "lige_fp": "f00", "a": None},
    ],
)
def test_package_keys_are_not_listed_and_still_round_trip_in_order(
    metadata: dict[str, Any],
) -> None:
    """Chroma pays per metadata entry: the package's own keys are not listed in lige_keys
    (a row with only them has no lige_keys), and decoding still gives the node's order."""
    encoded = encode_metadata(metadata)
    assert all(not k.startswith("lige_") for k in encoded.get(KEYS_KEY, []))
    user_present = [
        k for k, v in metadata.items() if not k.startswith("lige_") and v not in ("", None)
    ]
    assert encoded.get(KEYS_KEY, []) == user_present
    decoded = decode_metadata(encoded)
    assert decoded == metadata and list(decoded) == list(metadata)


@pytest.mark.parametrize(("value", "empty"), [(None, True), ("", True), ([], True), (0, False)])
def test_is_empty_value(value: Any, empty: bool) -> None:
    assert is_empty_value(value) is empty


@pytest.mark.parametrize("value", [object(), b"bytes", 1j])
def test_unserialisable_values_are_refused_with_the_key(value: Any) -> None:
    with pytest.raises(ValueError, match=r"Cannot store metadata \['bad'\]"):
        encode_metadata({"bad": value})


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="keys must be strings"):
        encode_metadata({1: "x"})  # type: ignore[dict-item]


# ----------------------------------------------------------------------------- nodes

META = {"title": "T", "page": 3, "tags": ["x", "y"], "extra": None}


def _source(**kwargs: Any) -> dict[NodeRelationship, Any]:
    return {NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-1", **kwargs)}


def test_plain_node_record_is_minimal() -> None:
    record = encode_node(TextNode(id_="n1", text="hello", embedding=[1.0, 0.0]))
    assert record.id == "n1" and record.document == "hello"
    assert list(record.embedding) == [1.0, 0.0]
    assert record.metadata is None


def test_ref_doc_id_is_stored_once() -> None:
    node = TextNode(id_="n1", text="t", embedding=[1.0], metadata=META, relationships=_source())
    metadata = encode_node(node).metadata
    assert metadata is not None
    assert metadata[DOC_ID_KEY] == "doc-1"
    assert NODE_KEY not in metadata  # a bare SOURCE id needs nothing beyond doc_id
    # Once for us, once under ChromaVectorStore's key: never inside lige_node.
    assert [k for k, v in metadata.items() if "doc-1" in json.dumps(v)] == [
        DOC_ID_KEY,
        "document_id",
    ]


def test_source_relationship_with_same_metadata_is_a_flag() -> None:
    node = TextNode(
        id_="n1",
        text="t",
        embedding=[1.0],
        metadata=META,
        relationships=_source(node_type=ObjectType.DOCUMENT, hash="h1", metadata=dict(META)),
    )
    metadata = encode_node(node).metadata
    assert metadata is not None
    assert json.loads(metadata[NODE_KEY]) == {"r": {"1": {"t": "4", "h": "h1", "m": 1}}}


NODES: list[BaseNode] = [
    TextNode(id_="plain", text="hello", embedding=[0.5, 0.25]),
    TextNode(id_="empty-text", text="", embedding=[0.5, 0.25], metadata={"k": ""}),
    TextNode(
        id_="full",
        text="chunk text",
        embedding=[0.5, 0.25],
        metadata={**META, "nested": {"a": [1, {"b": None}]}, "": "empty key"},
        excluded_embed_metadata_keys=["page"],
        excluded_llm_metadata_keys=["tags", "extra"],
        start_char_idx=10,
        end_char_idx=20,
        metadata_separator=" | ",
        metadata_template="{key}={value}",
        text_template="{metadata_str}\n\n{content}",
        relationships={
            NodeRelationship.SOURCE: RelatedNodeInfo(
                node_id="doc-1", node_type=ObjectType.DOCUMENT, hash="dh", metadata=dict(META)
            ),
            NodeRelationship.PREVIOUS: RelatedNodeInfo(
                node_id="prev", node_type=ObjectType.TEXT, hash="ph", metadata={"other": 1}
            ),
            NodeRelationship.NEXT: RelatedNodeInfo(node_id="next"),
            NodeRelationship.PARENT: RelatedNodeInfo(node_id="parent", node_type="1"),
            NodeRelationship.CHILD: [
                RelatedNodeInfo(node_id="c1"),
                RelatedNodeInfo(node_id="c2", hash="x"),
            ],
        },
    ),
    TextNode(
        id_="source-with-hash-only",
        text="t",
        embedding=[0.5, 0.25],
        relationships=_source(hash="only-hash"),
    ),
    IndexNode(id_="index-node", text="points elsewhere", index_id="other-index", embedding=[1.0]),
    Document(id_="document", text="a whole document", metadata={"a": 1}, embedding=[1.0]),
]


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.node_id)
def test_encode_decode_round_trip(node: BaseNode) -> None:
    record = encode_node(node)
    decoded = decode_node(record.id, record.document, record.metadata, record.embedding)
    assert type(decoded) is type(node)
    assert decoded == node
    without_embedding = decode_node(record.id, record.document, record.metadata)
    assert without_embedding.embedding is None
    assert without_embedding.model_copy(update={"embedding": node.embedding}) == node


def test_node_without_embedding_is_refused() -> None:
    with pytest.raises(ValueError, match="Node 'n' has no embedding: embed nodes before adding"):
        encode_node(TextNode(id_="n", text="x"))


# ----------------------------------------------------------------------------- real Chroma


@pytest.fixture
def collection(tmp_path: Path) -> Iterator[Any]:
    client = chromadb.PersistentClient(
        str(tmp_path / "chroma"), Settings(anonymized_telemetry=False, _env_file=None)
    )
    yield client.get_or_create_collection("metadata-test", embedding_function=None)
    cast(Client, client).close()  # ClientAPI's type omits close()


def test_round_trip_through_chroma(collection: Any) -> None:
    """Every value and key case above survives a real upsert/get unchanged."""
    weird = {**dict(NATIVE_CASES), **dict(SIDE_CASES)}
    weird.update(
        {"": 1, "#x": 2, "$and": 3, "chroma:doc": 4, "doc_id": "user's own", "lige_hash": "h"}
    )
    nodes: list[BaseNode] = [
        *NODES,
        TextNode(id_="weird", text="w", embedding=[1.0, 0.0], metadata=weird),
    ]
    records = [encode_node(node) for node in nodes]
    collection.upsert(
        ids=[r.id for r in records],
        embeddings=[
            [float(x) for x in list(r.embedding) + [0.0] * (2 - len(r.embedding))] for r in records
        ],
        documents=[r.document for r in records],
        metadatas=[r.metadata for r in records],
    )
    got = collection.get(ids=[n.node_id for n in nodes], include=["documents", "metadatas"])
    by_id = {
        node_id: decode_node(node_id, doc, meta)
        for node_id, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
    }
    for node in nodes:
        back = by_id[node.node_id]
        if node.node_id == "weird":
            nan_keys = [k for k, v in weird.items() if isinstance(v, float) and math.isnan(v)]
            assert all(math.isnan(back.metadata[k]) for k in nan_keys)
            assert {k: v for k, v in back.metadata.items() if k not in nan_keys} == {
                k: v for k, v in weird.items() if k not in nan_keys
            }
            assert all(type(back.metadata[k]) is type(v) for k, v in weird.items())
            continue
        assert back.model_copy(update={"embedding": node.embedding}) == node
