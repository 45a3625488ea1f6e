"""Fixtures for every test: no real API keys, a Gemini emulator, a ``chroma run`` server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llama_index_gemini_embed.emulator import Emulator

#: What could point a test at the real Gemini API or Vertex AI (or somewhere else) if it
#: leaked in from the developer's shell. Tests that need a key set it themselves.
REAL_API_VARS = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_VERTEX_BASE_URL",
)


@pytest.fixture(autouse=True)
def no_real_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without real keys/endpoints in the environment, and Chroma quiet."""
    for var in REAL_API_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")


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
