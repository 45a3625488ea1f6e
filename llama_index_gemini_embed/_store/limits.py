"""Request limits behind :class:`ChromaStore`: vector dimensions and write batch sizes.

check_dimensions(["a", "b"], [768, 768], expected=None, collection="docs")  # -> 768
plan_batches([100, 100, 100], max_count=2, max_bytes=None)  # -> [(0, 2), (2, 3)]

Nothing here does I/O; every function is unit-tested as a table of cases. Names live in
``naming``, scores in ``scores``, fingerprints in the core ``_fingerprint``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llama_index_gemini_embed._errors import DimensionMismatchError, StoreError

__all__ = [
    "DEFAULT_PAYLOAD_CAP",
    "DimensionMismatchError",
    "check_dimensions",
    "embedding_wire_bytes",
    "plan_batches",
]

#: Bytes per HTTP write request we aim for. ``chroma run`` refuses bodies over 40 MiB
#: ("Payload too large"); 30 MiB leaves room for JSON framing we do not count exactly.
DEFAULT_PAYLOAD_CAP = 30 * 1024 * 1024


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
