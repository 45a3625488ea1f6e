from __future__ import annotations

from collections.abc import Iterator

import pytest

from llama_index_gemini_embed.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A started Gemini API emulator (function-scoped); ``emulator.base_url``, ``.api_key``."""
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A `chroma run` server for the whole session (`.url`, `.host`, `.port`).

    Uses the server at $LIGE_CHROMA_URL when `.ci/run` already started one.
    """
    import os

    from tests.chroma_server import ExternalChromaServer, start_chroma

    url = os.environ.get("LIGE_CHROMA_URL")
    if url:
        yield ExternalChromaServer(url)
        return
    with start_chroma(tmp_path_factory.mktemp("chroma-server") / "data") as server:
        yield server
