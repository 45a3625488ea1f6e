from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from google import genai

from llama_index_gemini_embed.emulator import Emulator
from tests.emulator.support import client_for


@pytest.fixture
def client(emulator: Emulator) -> Iterator[genai.Client]:
    """A Developer API client of the ``emulator`` fixture (batch warnings silenced)."""
    c = client_for(emulator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK marks batches as experimental
        yield c
    c.close()
