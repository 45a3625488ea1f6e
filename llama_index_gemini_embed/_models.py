"""What we know about each Gemini embedding model and backend: limits, dimensions, prices.

Pure data and lookups; no I/O. Sources: docs/gemini-api.md §1 (Models), which cites
Google's pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BACKEND_LIMITS",
    "DEFAULT_MODEL",
    "KNOWN_MODELS",
    "BackendLimits",
    "ModelSpec",
    "cost_usd",
    "model_spec",
    "vertex_limits",
]

Backend = Literal["gemini", "vertex"]

DEFAULT_MODEL = "gemini-embedding-001"


@dataclass(frozen=True)
class ModelSpec:
    """Facts about one embedding model."""

    name: str
    max_input_tokens: int
    default_dimension: int
    min_dimension: int
    max_dimension: int
    normalised_below_default: bool
    """gemini-embedding-001 returns an un-normalised prefix below 3072; -2 normalises."""
    uses_task_prefixes: bool
    """gemini-embedding-2 ignores ``taskType``: intent goes into the text as a prefix."""
    price_per_million_tokens: float
    batch_price_per_million_tokens: float
    accepts_media: bool = False
    """Embeds images, PDFs, audio and video too (gemini-embedding-2); else text only."""
    modality_prices: tuple[tuple[str, float], ...] = ()
    """USD per million input tokens per modality (online; the Batch API halves them).
    A modality not listed costs ``price_per_million_tokens``. docs/gemini-api.md
    "Prices per modality" cites each."""
    assumed_modality_prices: frozenset[str] = frozenset()
    """Modalities whose price above is an assumption (no published figure found)."""


_GE001 = ModelSpec(
    name="gemini-embedding-001",
    max_input_tokens=2048,
    default_dimension=3072,
    min_dimension=128,
    max_dimension=3072,
    normalised_below_default=False,
    uses_task_prefixes=False,
    price_per_million_tokens=0.15,
    batch_price_per_million_tokens=0.075,
)
_GE2 = ModelSpec(
    name="gemini-embedding-2",
    max_input_tokens=8192,
    default_dimension=3072,
    min_dimension=128,
    max_dimension=3072,
    normalised_below_default=True,
    uses_task_prefixes=True,
    price_per_million_tokens=0.20,
    batch_price_per_million_tokens=0.10,
    accepts_media=True,
    # Google's pricing page as quoted by third parties (March 2026); PDF: no figure found,
    # assumed billed like images (a page is 258 tokens, as an image).
    modality_prices=(
        ("text", 0.20),
        ("image", 0.45),
        ("pdf", 0.45),
        ("audio", 6.50),
        ("video", 12.00),
    ),
    assumed_modality_prices=frozenset({"pdf"}),
)

KNOWN_MODELS: dict[str, ModelSpec] = {
    "gemini-embedding-001": _GE001,
    "gemini-embedding-2": _GE2,
    "gemini-embedding-2-preview": ModelSpec(
        **{**_GE2.__dict__, "name": "gemini-embedding-2-preview"}
    ),
}


def cost_usd(
    tokens: int,
    price_per_million_tokens: float,
    *,
    output_tokens: int = 0,
    output_price_per_million_tokens: float = 0.0,
) -> float:
    """USD for ``tokens`` (and ``output_tokens``) at per-million-token prices: the one cost
    formula of the package (usage, reports, batch savings and dry runs all use it).

        >>> cost_usd(2_000_000, 0.15)
        0.3
    """
    return (
        tokens * price_per_million_tokens + output_tokens * output_price_per_million_tokens
    ) / 1_000_000


def _bare(model: str) -> str:
    return model.split("/", 1)[1] if model.startswith("models/") else model


def model_spec(model: str) -> ModelSpec:
    """Spec for ``model`` (``models/`` prefix allowed).

    Unknown names that look like a gemini-embedding-2 variant get the -2 spec; any other
    unknown name gets the -001 spec, so a new model still gets safe limits. Whether the
    model exists is the API's call (a 404 becomes :class:`UnknownModelError`).
    """
    bare = _bare(model)
    if bare in KNOWN_MODELS:
        return KNOWN_MODELS[bare]
    base = _GE2 if "gemini-embedding-2" in bare else _GE001
    return ModelSpec(**{**base.__dict__, "name": bare})


@dataclass(frozen=True)
class BackendLimits:
    """Per-request limits of one backend's embedding endpoint."""

    max_items_per_request: int
    max_tokens_per_request: int | None


BACKEND_LIMITS: dict[str, BackendLimits] = {
    # batchEmbedContents: at most 100 requests per call; no documented token cap.
    "gemini": BackendLimits(max_items_per_request=100, max_tokens_per_request=None),
    # Vertex :predict: 250 instances and 20,000 tokens per request.
    "vertex": BackendLimits(max_items_per_request=250, max_tokens_per_request=20_000),
    # Vertex :batchEmbedContents (SDK >= 3.4): keep the Developer API's item cap and the
    # Vertex token budget, the stricter of what each documents.
    "vertex_batch": BackendLimits(max_items_per_request=100, max_tokens_per_request=20_000),
}


def vertex_limits(route: str) -> BackendLimits:
    """Per-request limits on Vertex for the endpoint the SDK uses (``_client.vertex_embed_route``).

    >>> vertex_limits("embedContent").max_items_per_request
    1
    """
    if route == "batchEmbedContents":
        return BACKEND_LIMITS["vertex_batch"]
    if route == "embedContent":
        # One content per call (the SDK raises for more); no token cap beyond the model's.
        return BackendLimits(max_items_per_request=1, max_tokens_per_request=None)
    return BACKEND_LIMITS["vertex"]  # :predict
