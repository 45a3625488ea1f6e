"""Pure ChromaStore helpers: names, URLs, fingerprints, scores, batch plans (no I/O)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest
from chromadb.api.types import optional_embeddings_to_base64_strings

from llama_index_gemini_embed._errors import ConfigurationError, DimensionMismatchError, StoreError
from llama_index_gemini_embed._fingerprint import (
    Fingerprint,
    fingerprint_from_metadata,
    fingerprint_mismatch_message,
    fingerprint_to_metadata,
    fingerprints_equal,
    merge_collection_metadata,
    normalise_fingerprint,
)
from llama_index_gemini_embed._store.flows import Limits, record_wire_bytes, stale_key_update
from llama_index_gemini_embed._store.limits import (
    DEFAULT_PAYLOAD_CAP,
    check_dimensions,
    embedding_wire_bytes,
    plan_batches,
)
from llama_index_gemini_embed._store.naming import (
    parse_server_url,
    suggest_collection_name,
    validate_collection_name,
)
from llama_index_gemini_embed._store.records import Record
from llama_index_gemini_embed._store.scores import distance_to_score, similarity_function

# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["abc", "a.b", "docs-2024_v1", "A1" + "x" * 509 + "Z", "0_0"])
def test_valid_collection_names(name: str) -> None:
    assert validate_collection_name(name) == name


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("ab", "ab-docs"),
        ("", "docs"),
        ("my docs!", "my-docs"),
        ("-abc-", "abc"),
        ("_abc", "abc"),
        ("x" * 513, "x" * 512),
        ("héllo wörld", "h-llo-w-rld"),
    ],
)
def test_invalid_collection_names_suggest_a_fix(name: str, suggestion: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        validate_collection_name(name)
    message = str(info.value)
    assert "3-512 characters from [a-zA-Z0-9._-]" in message
    assert f"collection_name={suggestion!r}" in message
    assert validate_collection_name(suggest_collection_name(name)) == suggestion


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8000", ("localhost", 8000, False)),
        ("https://chroma.example.com", ("chroma.example.com", 443, True)),
        ("http://127.0.0.1:9/", ("127.0.0.1", 9, False)),
        ("127.0.0.1:1234", ("127.0.0.1", 1234, False)),
        ("http://db", ("db", 8000, False)),
    ],
)
def test_parse_server_url(url: str, expected: tuple[str, int, bool]) -> None:
    assert parse_server_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://x:1", "http://", "http://h:1/api", "http://h:99999"])
def test_parse_server_url_rejects(url: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_server_url(url)


# ----------------------------------------------------------------------------- fingerprints

FP: Fingerprint = {
    "model": "gemini-embedding-001",
    "dimension": 768,
    "scheme": "task_type",
    "normalised": True,
}


def test_fingerprint_metadata_round_trip() -> None:
    metadata = fingerprint_to_metadata(FP)
    assert metadata == {
        "lige_model": "gemini-embedding-001",
        "lige_dimension": 768,
        "lige_scheme": "task_type",
        "lige_normalised": True,
        "lige_schema": 1,
    }
    assert fingerprint_from_metadata({**metadata, "other": 1}) == FP
    assert fingerprint_from_metadata({"other": 1}) is None
    assert fingerprint_from_metadata(None) is None


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"d": 768}, {"d": 768}, True),
        ({"d": 768}, {"d": 768.0}, True),
        ({"d": 1}, {"d": True}, False),
        ({"d": 768}, {"d": 3072}, False),
        ({"m": "x"}, {"m": "x", "d": 1}, False),
        ({"m": "x"}, {"m": "y"}, False),
    ],
)
def test_fingerprints_equal(a: dict[str, Any], b: dict[str, Any], equal: bool) -> None:
    assert fingerprints_equal(a, b) is equal


@pytest.mark.parametrize(
    ("fingerprint", "fragment"),
    [
        ({}, "at least one key"),
        ({"": 1}, "invalid"),
        ({"a-b": 1}, "invalid"),
        ({"m": None}, "NoneType"),
        ({"m": [1]}, "list"),
        ({"m": float("nan")}, "finite"),
    ],
)
def test_normalise_fingerprint_rejects(fingerprint: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        normalise_fingerprint(fingerprint)


def test_normalise_fingerprint_converts_numpy() -> None:
    out = normalise_fingerprint({"dimension": np.int64(768), "ok": np.bool_(True)})
    assert out == {"dimension": 768, "ok": True}
    assert type(out["dimension"]) is int and type(out["ok"]) is bool


def test_fingerprint_mismatch_message_names_both_sides_and_the_fix() -> None:
    new: Fingerprint = {**FP, "dimension": 3072}
    assert fingerprint_mismatch_message("docs", FP, new) == (
        "Chroma collection 'docs' holds vectors made with [dimension=768, "
        "model='gemini-embedding-001', normalised=True, scheme='task_type'], but this store "
        "was given [dimension=3072, model='gemini-embedding-001', normalised=True, "
        "scheme='task_type'] (differs in dimension: 768 -> 3072). Vectors from different "
        "embedding setups cannot be compared, so nothing was done. Use "
        "collection_name='docs-gemini-embedding-001-3072' for the new model, or rebuild: "
        "delete collection 'docs' (client.delete_collection('docs')) and re-ingest."
    )


def test_merge_collection_metadata_keeps_other_keys_and_drops_hnsw_space() -> None:
    merged = merge_collection_metadata({"owner": "me", "hnsw:space": "l2", "hnsw:M": 8}, FP)
    assert merged["owner"] == "me" and merged["hnsw:M"] == 8
    assert "hnsw:space" not in merged
    assert merged["lige_model"] == "gemini-embedding-001" and merged["lige_schema"] == 1


# ----------------------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("distance", "space", "score"),
    [
        (0.0, "cosine", 1.0),
        (1.0, "cosine", 0.0),
        (2.0, "cosine", -1.0),
        (0.25, "cosine", 0.75),
        (1.0, "ip", 0.0),
        (-49.0, "ip", 50.0),
        (0.0, "l2", 1.0),
        (25.0, "l2", 1 / 6),  # squared L2 of 25 = distance 5
        (-1e-9, "l2", 1.0),  # rounding noise below zero
    ],
)
def test_distance_to_score(distance: float, space: Any, score: float) -> None:
    assert distance_to_score(distance, space) == pytest.approx(score)


def test_similarity_function_matches_distance_to_score() -> None:
    a, b = [3.0, 4.0, 0.0], [6.0, 8.0, 1.0]
    cos = float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
    assert similarity_function("cosine")(a, b) == pytest.approx(cos)
    assert similarity_function("ip")(a, b) == pytest.approx(50.0)
    squared = float(np.sum((np.array(a) - np.array(b)) ** 2))
    assert similarity_function("l2")(a, b) == pytest.approx(distance_to_score(squared, "l2"))
    assert similarity_function("cosine")([0.0, 0.0], [1.0, 0.0]) == 0.0


# ----------------------------------------------------------------------------- dimensions


def test_check_dimensions() -> None:
    assert check_dimensions(["a", "b"], [4, 4], None, "docs") == 4
    assert check_dimensions(["a"], [4], 4, "docs") == 4
    assert check_dimensions([], [], None, "docs") is None
    with pytest.raises(DimensionMismatchError) as info:
        check_dimensions(["a", "b"], [4, 3], None, "docs")
    assert "Node 'b' has a 3-dimensional embedding but node 'a'" in str(info.value)
    assert "4-dimensional" in str(info.value)
    with pytest.raises(DimensionMismatchError, match="collection 'docs' uses 768-dimensional"):
        check_dimensions(["a"], [3072], 768, "docs")


# ----------------------------------------------------------------------------- batches


@pytest.mark.parametrize(
    ("sizes", "max_count", "max_bytes", "expected"),
    [
        ([], 10, None, []),
        ([1] * 5, 2, None, [(0, 2), (2, 4), (4, 5)]),
        ([1] * 4, 4, None, [(0, 4)]),
        ([10, 10, 10], 100, 20, [(0, 2), (2, 3)]),
        ([10, 10, 10], 100, 19, [(0, 1), (1, 2), (2, 3)]),
        ([5, 20, 5, 5], 100, 20, [(0, 1), (1, 2), (2, 4)]),
        ([1] * 6, 4, 3, [(0, 3), (3, 6)]),
    ],
)
def test_plan_batches(
    sizes: list[int], max_count: int, max_bytes: int | None, expected: list[tuple[int, int]]
) -> None:
    assert plan_batches(sizes, max_count, max_bytes) == expected


def test_plan_batches_refuses_a_row_bigger_than_a_request() -> None:
    with pytest.raises(StoreError, match="Record 1 needs about"):
        plan_batches([1, 50 * 2**20], 10, DEFAULT_PAYLOAD_CAP)


@pytest.mark.parametrize("dim", [3, 768, 3072])
def test_embedding_wire_bytes_matches_chromas_base64(dim: int) -> None:
    vector = np.random.default_rng(dim).random((1, dim)).astype(np.float32)
    encoded = orjson.dumps(optional_embeddings_to_base64_strings(list(vector)))
    # The encoded list is `["..."]`: the vector's share is its text, quotes and a comma.
    assert embedding_wire_bytes(dim, base64=True) == len(encoded) - 2 + 1
    assert embedding_wire_bytes(dim, base64=False) >= len(orjson.dumps(vector[0].tolist()))


def test_payload_batches_at_3072_dims_stay_under_the_server_limit() -> None:
    """3072-d batches of >= 2600 fail over HTTP (40 MiB): the plan stays well below that."""
    record = Record(id="node-00001", embedding=[0.0] * 3072, document="x" * 200, metadata=None)
    size = record_wire_bytes(record, 3072, base64=True)
    batches = plan_batches([size] * 3500, 5461, DEFAULT_PAYLOAD_CAP)
    assert len(batches) == 2
    assert max(end - start for start, end in batches) * size <= 30 * 2**20
    assert max(end - start for start, end in batches) < 2000


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        ({"a": 1}, None, {"a": 1}),
        ({"a": 1}, {"a": 0, "b": 2}, {"a": 1, "b": None}),
        (None, {"b": 2}, {"b": None}),
        (None, None, None),
        ({"a": 1}, {"a": 2}, {"a": 1}),
    ],
)
def test_stale_key_update(
    new: dict[str, Any] | None, old: dict[str, Any] | None, expected: dict[str, Any] | None
) -> None:
    assert stale_key_update(new, old) == expected


def test_distance_to_score_is_finite_for_large_l2() -> None:
    assert math.isfinite(distance_to_score(1e300, "l2"))


@pytest.mark.parametrize(
    ("limits", "dim", "embeddings", "page"),
    [
        (Limits(max_batch=5461), 3072, True, 5461),  # local: no byte limit
        (Limits(max_batch=5461, payload_cap=DEFAULT_PAYLOAD_CAP), 3072, False, 5461),
        (Limits(max_batch=5461, payload_cap=DEFAULT_PAYLOAD_CAP), 3072, True, 409),
        (Limits(max_batch=5461, payload_cap=DEFAULT_PAYLOAD_CAP), None, True, 409),
        (Limits(max_batch=5461, payload_cap=DEFAULT_PAYLOAD_CAP), 8, True, 5461),
    ],
)
def test_read_page_caps_vector_reads_over_http(
    limits: Limits, dim: int | None, embeddings: bool, page: int
) -> None:
    assert limits.read_page(dim, embeddings) == page
