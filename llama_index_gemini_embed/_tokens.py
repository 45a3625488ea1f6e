"""Local token estimate: cheap, deterministic, and deliberately on the high side.

    >>> estimate_tokens("hello world")
    3

Gemini's tokenizer averages about 4 characters per token for English and 1-2 for CJK.
We count ASCII characters at 4 per token and every other character as one token, and
never report fewer tokens than words, so budgets computed from this estimate are safe.
The emulator counts tokens with the same function, so a client limiter configured from
it and the emulator's quota agree exactly.
"""

from __future__ import annotations

import math

__all__ = ["estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """Estimate how many tokens Gemini will count for ``text`` (at least 1)."""
    if not text:
        return 1
    ascii_chars = 0
    other_chars = 0
    for ch in text:
        if ord(ch) < 128:
            ascii_chars += 1
        else:
            other_chars += 1
    by_chars = math.ceil(ascii_chars / 4) + other_chars
    by_words = len(text.split())
    return max(1, by_chars, by_words)
