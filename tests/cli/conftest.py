"""Fixtures of the CLI tests: an emulator accepting ``SECRET`` (the root conftest keeps real
keys out of the environment)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llama_index_gemini_embed.emulator import Emulator

SECRET = "sk-test-SECRET-4f9a1c"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=(SECRET,)) as emulator:
        yield emulator
