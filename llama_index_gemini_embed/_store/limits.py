"""Pure helpers behind :class:`ChromaStore`: names, fingerprints, scores, batch sizes.

validate_collection_name("docs")          # -> "docs", or ConfigurationError saying what to do
distance_to_score(0.25, "cosine")         # -> 0.75
plan_batches([100, 100, 100], max_count=2, max_bytes=None)  # -> [(0, 2), (2, 3)]

Nothing here does I/O; every function is unit-tested as a table of cases.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit

import numpy as np

from llama_index_gemini_embed._errors import ConfigurationError, StoreError

__all__ = [
    "DEFAULT_PAYLOAD_CAP",
    "FINGERPRINT_PREFIX",
    "SCHEMA_KEY",
    "SCHEMA_VERSION",
    "DimensionMismatchError",
    "Fingerprint",
    "FingerprintValue",
    "Space",
    "as_space",
    "check_dimensions",
    "distance_to_score",
    "embedding_wire_bytes",
    "fingerprint_from_metadata",
    "fingerprint_mismatch_message",
    "fingerprint_to_metadata",
    "fingerprints_equal",
    "merge_collection_metadata",
    "normalise_fingerprint",
    "parse_server_url",
    "plan_batches",
    "similarity_function",
    "suggest_collection_name",
    "validate_collection_name",
]

Space = Literal["cosine", "l2", "ip"]
FingerprintValue = str | int | float | bool
Fingerprint = dict[str, FingerprintValue]

FINGERPRINT_PREFIX = "lige_"
SCHEMA_KEY = "lige_schema"
SCHEMA_VERSION = 1

#: Bytes per HTTP write request we aim for. ``chroma run`` refuses bodies over 40 MiB
#: ("Payload too large"); 30 MiB leaves room for JSON framing we do not count exactly.
DEFAULT_PAYLOAD_CAP = 30 * 1024 * 1024

_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")
_FP_KEY_RE = re.compile(r"[a-zA-Z0-9_]{1,64}")


class DimensionMismatchError(StoreError, ValueError):
    """An embedding's length differs from the collection's vector dimension."""


# ----------------------------------------------------------------------------- names


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def suggest_collection_name(raw: object) -> str:
    """A valid Chroma collection name close to ``raw`` (used in error messages)."""
    text = re.sub(r"[^a-zA-Z0-9._-]+", "-", str(raw))
    text = re.sub(r"\.{2,}", ".", text)
    text = text.strip("._-")[:512].strip("._-")
    if _is_ipv4(text):
        text = text.replace(".", "-")
    if len(text) < 3:
        text = f"{text}-docs" if text else "docs"
    return text


def validate_collection_name(name: object) -> str:
    """Return ``name`` if Chroma accepts it, else raise ConfigurationError saying what to do.

    Chroma's rule: 3-512 characters from ``[a-zA-Z0-9._-]``, starting and ending with a
    letter or digit, without two consecutive periods, and not an IPv4 address.
    """
    if isinstance(name, str) and _NAME_RE.fullmatch(name):
        if ".." in name:
            problem = "Chroma refuses two consecutive periods ('..') in a name"
        elif _is_ipv4(name):
            problem = "Chroma refuses names that are IPv4 addresses"
        else:
            return name
    else:
        problem = (
            "Chroma accepts 3-512 characters from [a-zA-Z0-9._-] that start and end with a "
            "letter or digit"
        )
    raise ConfigurationError(
        f"Invalid Chroma collection name {name!r}: {problem}. "
        f"Use for example collection_name={suggest_collection_name(name)!r}."
    )


def parse_server_url(url: str) -> tuple[str, int, bool]:
    """Split ``http(s)://host:port`` into ``(host, port, ssl)``; default ports 8000 / 443."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"Cannot read a Chroma server address from {url!r}: "
            "use a URL such as 'http://localhost:8000'."
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"Chroma server URL {url!r} has a path, query or fragment; "
            "give only scheme, host and port, e.g. 'http://localhost:8000'."
        )
    ssl = parts.scheme == "https"
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"Invalid port in Chroma server URL {url!r}: {exc}") from exc
    return parts.hostname, port if port is not None else (443 if ssl else 8000), ssl


# ----------------------------------------------------------------------------- fingerprints


def normalise_fingerprint(fingerprint: Mapping[str, object]) -> Fingerprint:
    """Validate a fingerprint mapping and return a plain dict of str/int/float/bool values."""
    out: Fingerprint = {}
    for key, value in fingerprint.items():
        if not isinstance(key, str) or not _FP_KEY_RE.fullmatch(key):
            raise ConfigurationError(
                f"Fingerprint key {key!r} is invalid: use 1-64 letters, digits or underscores."
            )
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, str | int | float | bool):
            raise ConfigurationError(
                f"Fingerprint value for {key!r} is a {type(value).__name__}; "
                "use a str, int, float or bool."
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigurationError(f"Fingerprint value for {key!r} must be finite.")
        out[key] = value
    if not out:
        raise ConfigurationError("A fingerprint needs at least one key (e.g. 'model').")
    return out


def fingerprint_to_metadata(fingerprint: Mapping[str, FingerprintValue]) -> Fingerprint:
    """Collection-metadata form: ``{"lige_model": ..., ..., "lige_schema": 1}``."""
    out: Fingerprint = {f"{FINGERPRINT_PREFIX}{k}": v for k, v in fingerprint.items()}
    out[SCHEMA_KEY] = SCHEMA_VERSION
    return out


def fingerprint_from_metadata(metadata: Mapping[str, object] | None) -> Fingerprint | None:
    """The fingerprint recorded in collection metadata, or None if there is none."""
    if not metadata:
        return None
    out: Fingerprint = {}
    for key, value in metadata.items():
        if (
            key.startswith(FINGERPRINT_PREFIX)
            and key != SCHEMA_KEY
            and isinstance(value, str | int | float | bool)
        ):
            out[key[len(FINGERPRINT_PREFIX) :]] = value
    return out or None


def _canonical(value: FingerprintValue) -> tuple[str, object]:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    return ("s", value)


def fingerprints_equal(
    a: Mapping[str, FingerprintValue], b: Mapping[str, FingerprintValue]
) -> bool:
    """Same keys and values; ``True`` never equals ``1``, ``768`` equals ``768.0``."""
    return a.keys() == b.keys() and all(_canonical(a[k]) == _canonical(b[k]) for k in a)


def _describe(fingerprint: Mapping[str, FingerprintValue]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(fingerprint.items()))


def fingerprint_mismatch_message(
    collection: str,
    recorded: Mapping[str, FingerprintValue],
    expected: Mapping[str, FingerprintValue],
) -> str:
    """The FingerprintMismatchError text: both sides, the differences, and what to do."""
    diffs = []
    for key in sorted(set(recorded) | set(expected)):
        old, new = recorded.get(key, "<missing>"), expected.get(key, "<missing>")
        if key not in recorded or key not in expected or _canonical(old) != _canonical(new):
            diffs.append(f"{key}: {old!r} -> {new!r}")
    hint = "-".join(str(expected[k]) for k in ("model", "dimension") if k in expected)
    suggestion = suggest_collection_name(f"{collection}-{hint}" if hint else f"{collection}-v2")
    return (
        f"Chroma collection {collection!r} holds vectors made with [{_describe(recorded)}], "
        f"but this store was given [{_describe(expected)}] (differs in {'; '.join(diffs)}). "
        "Vectors from different embedding setups cannot be compared, so nothing was done. "
        f"Use collection_name={suggestion!r} for the new model, or rebuild: delete collection "
        f"{collection!r} (client.delete_collection({collection!r})) and re-ingest."
    )


def merge_collection_metadata(
    existing: Mapping[str, object] | None, fingerprint: Mapping[str, FingerprintValue]
) -> dict[str, object]:
    """Existing collection metadata plus the fingerprint (``modify`` replaces the whole dict).

    ``hnsw:space`` is dropped: Chroma refuses any ``modify`` that mentions it, and the real
    space lives in the collection configuration anyway.
    """
    merged = {k: v for k, v in (existing or {}).items() if k != "hnsw:space"}
    merged.update(fingerprint_to_metadata(fingerprint))
    return merged


# ----------------------------------------------------------------------------- scores


def distance_to_score(distance: float, space: Space) -> float:
    """Turn a Chroma distance into a similarity (higher is better).

    * ``cosine``: Chroma returns ``1 - cos``; the score is the cosine similarity in [-1, 1].
    * ``ip``: Chroma returns ``1 - dot``; the score is the dot product.
    * ``l2``: Chroma returns the *squared* L2 distance; the score is ``1 / (1 + L2)`` in (0, 1].
    """
    if space == "l2":
        return 1.0 / (1.0 + math.sqrt(max(distance, 0.0)))
    return 1.0 - distance


def similarity_function(space: Space) -> Callable[[Sequence[float], Sequence[float]], float]:
    """The similarity matching :func:`distance_to_score` computed from two vectors (for MMR)."""

    def cosine(a: Sequence[float], b: Sequence[float]) -> float:
        va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        return float(va @ vb) / norm if norm else 0.0

    def dot(a: Sequence[float], b: Sequence[float]) -> float:
        return float(np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64))

    def l2(a: Sequence[float], b: Sequence[float]) -> float:
        diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        return 1.0 / (1.0 + float(np.linalg.norm(diff)))

    return {"cosine": cosine, "ip": dot, "l2": l2}[space]


# ----------------------------------------------------------------------------- dimensions


def check_dimensions(
    ids: Sequence[str], dims: Sequence[int], expected: int | None, collection: str
) -> int | None:
    """Check every vector length against ``expected`` (or the first one); return the dimension.

    Raises DimensionMismatchError naming the node and both numbers.
    """
    if not dims:
        return expected
    if expected is None:
        expected, source = dims[0], f"node {ids[0]!r} (the first in this call)"
    else:
        source = f"collection {collection!r}"
    for node_id, dim in zip(ids, dims, strict=True):
        if dim != expected:
            raise DimensionMismatchError(
                f"Node {node_id!r} has a {dim}-dimensional embedding but {source} uses "
                f"{expected}-dimensional vectors; nothing was written. Embed every node with "
                "the same model and output_dimensionality as the collection, or use another "
                "collection_name for the other model."
            )
    return expected


# ----------------------------------------------------------------------------- batches


def embedding_wire_bytes(dim: int, base64: bool) -> int:
    """Bytes one vector takes in an HTTP write: base64 float32, or JSON floats (~25 each)."""
    if base64:
        return 4 * math.ceil(dim * 4 / 3) + 3  # base64 text, quotes and comma
    return dim * 25 + 2


def plan_batches(
    row_bytes: Sequence[int], max_count: int, max_bytes: int | None
) -> list[tuple[int, int]]:
    """Split rows into ``[start, end)`` ranges of at most ``max_count`` rows and ``max_bytes``.

    ``max_bytes`` None means no byte limit (local clients). A single row larger than
    ``max_bytes`` raises StoreError: no batching can send it.
    """
    if max_count < 1:
        raise ValueError(f"max_count must be at least 1, got {max_count}")
    batches: list[tuple[int, int]] = []
    start, size = 0, 0
    for i, nbytes in enumerate(row_bytes):
        if max_bytes is not None and nbytes > max_bytes:
            raise StoreError(
                f"Record {i} needs about {nbytes / 2**20:.1f} MiB in one HTTP request, more "
                f"than the {max_bytes / 2**20:.0f} MiB this store sends per request (chroma "
                "run refuses bodies over 40 MiB). Split the text into smaller nodes, or run "
                "the server from a YAML config with a larger max_payload_size_bytes and pass "
                "payload_cap_bytes= accordingly."
            )
        full = i - start >= max_count or (max_bytes is not None and size + nbytes > max_bytes)
        if full:
            batches.append((start, i))
            start, size = i, 0
        size += nbytes
    if start < len(row_bytes):
        batches.append((start, len(row_bytes)))
    return batches


def as_space(value: object) -> Space:
    """Validate a distance-space name."""
    if value not in ("cosine", "l2", "ip"):
        raise ConfigurationError(f"space must be 'cosine', 'l2' or 'ip', got {value!r}")
    return value
