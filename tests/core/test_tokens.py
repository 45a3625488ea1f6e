"""The local token estimate (`_tokens.estimate_tokens`)."""

from __future__ import annotations

import pytest

from llama_index_gemini_embed._tokens import estimate_tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 1), ("hello world", 3), ("a " * 100, 100), ("日本語のテキスト", 8), ("x" * 4000, 1000)],
)
def test_estimate_tokens(text, expected):
    assert estimate_tokens(text) == expected


def _estimate_by_definition(text: str) -> int:
    """The documented rule, character by character: ASCII at 4 per token, others 1 each."""
    if not text:
        return 1
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    by_chars = -(-ascii_chars // 4) + (len(text) - ascii_chars)
    return max(1, by_chars, len(text.split()))


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii words",
        "mixed ascii and 日本語 and émigré",
        "\ud800 lone surrogate \udfff",
        "\x7f\x80 boundary",
        "emoji 🚲🚲 at night",
        " \t\n ",
        "a" * 3 + "é",
        "Ω" * 50,
    ],
)
def test_fast_estimate_equals_the_character_rule(text):
    assert estimate_tokens(text) == _estimate_by_definition(text)
