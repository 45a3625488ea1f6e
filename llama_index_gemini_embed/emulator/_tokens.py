"""The emulator's own token counter: a stand-in for Gemini's subword tokenizer.

    >>> count_tokens("hello world")
    2
    >>> count_tokens("2026-12-01")
    10

The real tokenizer (SentencePiece, shared with Gemma) is not available offline, so this is
a documented approximation with the properties that matter to a client (docs/gemini-api.md
"Emulator: token counting"):

* a run of ASCII letters costs one token per 6 letters, rounded up (subword pieces);
* every digit is its own token (the Gemma/Gemini tokenizer splits digits);
* every punctuation or symbol character is its own token;
* every CJK, kana or hangul character is one token; other non-ASCII letter runs cost one
  token per 3 letters, rounded up; whitespace is free.

It is deliberately NOT the client's estimate (``_tokens.estimate_tokens`` counts ASCII at
4 characters a token including spaces and digits): a client that paces or bills from its
own estimate and ignores ``usageMetadata`` therefore disagrees with this "service", as it
would with the real one. The count only grows as text is appended (truncation relies on it).
"""

from __future__ import annotations

import re

__all__ = ["count_tokens"]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_ASCII_WORD = re.compile(r"[A-Za-z]+")
_SINGLES = re.compile(rf"[0-9]|[{_CJK}]|[^\w\s]")
_OTHER_WORD = re.compile(rf"[^\W\d_A-Za-z{_CJK}]+")


def count_tokens(text: str) -> int:
    """Tokens the emulated service counts for ``text`` (0 for an empty string)."""
    if not text:
        return 0
    words = sum((len(w) + 5) // 6 for w in _ASCII_WORD.findall(text))
    other = sum((len(w) + 2) // 3 for w in _OTHER_WORD.findall(text))
    singles = len(_SINGLES.findall(text))
    underscores = text.count("_")
    return max(1, words + other + singles + underscores)
