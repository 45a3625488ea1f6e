"""Where the examples get Gemini from: the real API when GEMINI_API_KEY is set, otherwise a
local emulator started in this process (offline, deterministic vectors).

    from _backend import gemini_backend

    with gemini_backend() as backend:
        embed = GeminiEmbedding(output_dimensionality=768, **backend.kwargs)

The emulator is imported only when it is used, so with a key nothing but the real API is
involved. It is a test double: its vectors are lexical, not Gemini's semantics.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["Backend", "gemini_backend"]


@dataclass(frozen=True)
class Backend:
    """Connection settings for GeminiEmbedding / GeminiReranker, and what they point at."""

    api_key: str | None
    base_url: str | None
    description: str

    @property
    def emulated(self) -> bool:
        return self.base_url is not None

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments to pass on (empty for the real API: the key comes from the env)."""
        return {"api_key": self.api_key, "base_url": self.base_url} if self.emulated else {}


@contextmanager
def gemini_backend() -> Iterator[Backend]:
    """The real Gemini API if a key is set, else an in-process emulator (stopped on exit)."""
    if os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY"):
        yield Backend(None, None, "the Gemini API")
        return
    from llama_index_gemini_embed.emulator import Emulator

    with Emulator() as emu:
        print(
            f"No GEMINI_API_KEY set: using the local Gemini emulator at {emu.base_url} "
            "(offline; set GEMINI_API_KEY to use the real API)."
        )
        yield Backend(emu.api_key, emu.base_url, f"the local emulator at {emu.base_url}")
