from __future__ import annotations

from collections.abc import Iterator

import pytest

from llama_index_gemini_embed.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A started Gemini API emulator (function-scoped); ``emulator.base_url``, ``.api_key``."""
    with Emulator() as emu:
        yield emu
