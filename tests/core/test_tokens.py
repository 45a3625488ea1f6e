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
