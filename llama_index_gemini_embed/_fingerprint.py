"""Embedding fingerprints: what makes two sets of vectors comparable, recorded per collection.

fp = normalise_fingerprint({"model": "gemini-embedding-001", "dimension": 768})
fingerprint_to_metadata(fp)      # {"lige_model": ..., "lige_dimension": 768, "lige_schema": 1}
fingerprints_equal(fp, {"model": "gemini-embedding-001", "dimension": 768.0})  # True

One fingerprint per collection, in its metadata (never per row). ``ChromaStore`` records
and checks it; ``ingest()`` compares the embed model's with the store's before paying for
anything. Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np

from llama_index_gemini_embed._errors import ConfigurationError
from llama_index_gemini_embed._store.naming import suggest_collection_name

__all__ = [
    "FINGERPRINT_PREFIX",
    "SCHEMA_KEY",
    "SCHEMA_VERSION",
    "Fingerprint",
    "FingerprintValue",
    "fingerprint_from_metadata",
    "fingerprint_mismatch_message",
    "fingerprint_to_metadata",
    "fingerprints_equal",
    "merge_collection_metadata",
    "normalise_fingerprint",
]

FingerprintValue = str | int | float | bool
Fingerprint = dict[str, FingerprintValue]

FINGERPRINT_PREFIX = "lige_"
SCHEMA_KEY = "lige_schema"
SCHEMA_VERSION = 1

_FP_KEY_RE = re.compile(r"[a-zA-Z0-9_]{1,64}")


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
