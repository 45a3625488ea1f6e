"""Fixtures of the CLI tests: an emulator accepting ``SECRET``, and no real keys around."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llama_index_gemini_embed.emulator import Emulator

SECRET = "sk-test-SECRET-4f9a1c"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=(SECRET,)) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
