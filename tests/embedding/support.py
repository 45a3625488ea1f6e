"""Helpers shared by the embedding tests: an embedder on the emulator, and its request log."""

from __future__ import annotations

import math
from typing import Any

from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed.emulator import Emulator


def make(emu: Emulator, **kwargs: Any) -> GeminiEmbedding:
    """A GeminiEmbedding pointed at ``emu`` (its key and URL)."""
    return GeminiEmbedding(api_key=emu.api_key, base_url=emu.base_url, **kwargs)


def embed_records(emu: Emulator) -> list[Any]:
    """Every batchEmbedContents request the emulator received, answered or not."""
    return [r for r in emu.requests if r.path.endswith(":batchEmbedContents")]


def embed_bodies(emu: Emulator) -> list[dict[str, Any]]:
    """The bodies of the answered (200) batchEmbedContents requests, in arrival order."""
    return [r.body for r in embed_records(emu) if r.body is not None and r.status == 200]


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]
