"""Clients of the emulator for its tests: the real SDK pointed at ``emu.base_url``."""

from __future__ import annotations

from typing import Any

from google import genai
from google.auth.credentials import Credentials
from google.genai import types

from llama_index_gemini_embed.emulator import Emulator


def client_for(
    emu: Emulator,
    *,
    api_version: str | None = None,
    key: str | None = None,
    timeout_ms: int | None = None,
    retry: types.HttpRetryOptions | None = None,
) -> genai.Client:
    """A Developer API client of ``emu`` (its first key unless ``key``)."""
    return genai.Client(
        api_key=key or emu.api_key,
        http_options=types.HttpOptions(
            base_url=emu.base_url, api_version=api_version, timeout=timeout_ms, retry_options=retry
        ),
    )


class FakeCredentials(Credentials):
    """A bearer token that is always valid (the emulator accepts any)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.token = "test-token"

    def refresh(self, request: Any) -> None:
        self.token = "test-token"

    @property
    def valid(self) -> bool:
        return True


def vertex_client(
    emu: Emulator, *, express: bool = True, location: str = "us-central1"
) -> genai.Client:
    """A Vertex AI client of ``emu``: express mode (API key) or project + location + token."""
    if express:
        return genai.Client(
            vertexai=True,
            api_key=emu.api_key,
            http_options=types.HttpOptions(base_url=emu.base_url),
        )
    return genai.Client(
        vertexai=True,
        project="proj",
        location=location,
        credentials=FakeCredentials(),
        http_options=types.HttpOptions(base_url=emu.base_url),
    )
