"""Leaf types shared by the embedding engine, ingestion and the Batch API path (pure).

    TextSpec("a red bicycle", "RETRIEVAL_DOCUMENT", media=(MediaPart("image/png", data=png),))

One ``TextSpec`` is one embedded item: its text, task type, optional title and optional
media parts (gemini-embedding-2 embeds text and media of one item into ONE vector).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MediaPart", "ModalityUsage", "TextSpec"]


@dataclass(frozen=True)
class MediaPart:
    """One media part: inline ``data`` (bytes) or an uploaded file's ``file_uri``."""

    mime_type: str
    data: bytes | None = None
    file_uri: str | None = None


@dataclass(frozen=True)
class TextSpec:
    """One item to embed: text, the task type it is embedded for, optional title and media."""

    text: str
    task_type: str
    title: str | None = None
    media: tuple[MediaPart, ...] = ()


@dataclass(frozen=True)
class ModalityUsage:
    """Embedded items that carried this modality, the tokens billed for it, and their cost.

    Tokens are the API's ``usageMetadata.promptTokensDetails`` when it sends them, else our
    estimate (text: the character estimate; media: Google's published per-modality rates),
    scaled to the API's total when it reported only that. ``cost_usd`` is tokens times the
    modality's price (``GeminiEmbedding.usage.assumed_prices`` names unverified prices).
    """

    items: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
