"""Distance spaces and scores: Chroma's distances turned into similarities (higher is better).

distance_to_score(0.25, "cosine")   # -> 0.75 (the cosine similarity)
similarity_function("l2")(a, b)     # the same score computed from two vectors (for MMR)

Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from llama_index_gemini_embed._errors import ConfigurationError

__all__ = ["Space", "as_space", "distance_to_score", "similarity_function"]

Space = Literal["cosine", "l2", "ip"]


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


def as_space(value: object) -> Space:
    """Validate a distance-space name."""
    if value not in ("cosine", "l2", "ip"):
        raise ConfigurationError(f"space must be 'cosine', 'l2' or 'ip', got {value!r}")
    return value
