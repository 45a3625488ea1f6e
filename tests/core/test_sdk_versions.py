"""Every google-genai version we allow works (issue 13 §2).

These tests are the point of the SDK matrix: `scripts/check --sdk 2.33.0` (the floor),
`--sdk 3.3.0` (a 3.0-3.3 release) and the newest each run them (.ci/run). Each asserts the
behaviour of the SDK that is installed, decided from the SDK itself.
"""

from __future__ import annotations

import asyncio
import re
import socket
import tomllib
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import types

from llama_index_gemini_embed import APIUnreachableError, GeminiEmbedding, UnexpectedAnswerError
from llama_index_gemini_embed._calls import RetryingCaller
from llama_index_gemini_embed._client import SDK_VERSION, vertex_embed_route
from llama_index_gemini_embed._quota import QuotaLimiter
from llama_index_gemini_embed._retry import RetryPolicy
from llama_index_gemini_embed._usage import Usage
from llama_index_gemini_embed.emulator import Emulator
from tests.fakes import FakeTime

ROOT = Path(__file__).resolve().parents[2]


def sdk_floor() -> tuple[int, ...]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = next(d for d in project["dependencies"] if d.startswith("google-genai"))
    match = re.search(r">=\s*([\d.]+)", spec)
    assert match, spec
    return tuple(int(part) for part in match.group(1).split("."))


def test_installed_sdk_is_within_the_declared_range() -> None:
    installed = tuple(int(p) for p in SDK_VERSION.split(".")[:2])
    assert sdk_floor() <= installed < (4,)


def test_floor_is_where_retry_options_switch_off_the_hidden_aiohttp_retry() -> None:
    # google-genai 2.33.0 added this guard; 2.20-2.32 always slept 1-10 s and retried once.
    assert sdk_floor() >= (2, 33)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_no_hidden_sdk_sleep_on_a_refused_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any real wait would come from the SDK's own reconnect: every wait of ours is injected."""
    real_sleep = asyncio.sleep
    hidden: list[float] = []

    async def recording_sleep(delay: float, result: Any = None) -> Any:
        if delay > 0:
            hidden.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    fake = FakeTime()
    embed = GeminiEmbedding(
        api_key="k", base_url=_closed_port_url(), clock=fake.clock, sleep=fake.sleep
    )
    with pytest.raises(APIUnreachableError):
        embed.get_text_embedding("x")
    assert hidden == [], f"the SDK slept on its own: {hidden}"
    assert len(fake.sleeps) == 2


def _vertex(emu: Emulator, model: str) -> GeminiEmbedding:
    return GeminiEmbedding(
        model_name=model,
        api_key=emu.api_key,
        base_url=emu.base_url,
        vertexai=True,
        output_dimensionality=128,
    )


def test_vertex_gemini_embedding_2_with_several_texts(emulator: Emulator) -> None:
    texts = ["first text", "second text", "third text"]
    vectors = _vertex(emulator, "gemini-embedding-2").get_text_embedding_batch(texts)
    assert len(vectors) == 3 and all(len(v) == 128 for v in vectors)
    paths = [r.path for r in emulator.requests if r.path.startswith("/v1beta1/")]
    route = vertex_embed_route("gemini-embedding-2")
    if route == "embedContent":  # SDK < 3.4: one content per call
        assert len(paths) == 3 and all(p.endswith(":embedContent") for p in paths)
    else:
        assert route == "batchEmbedContents"
        assert paths and all(p.endswith(":batchEmbedContents") for p in paths)
        assert len(paths) == 1


def test_vertex_gemini_embedding_001_with_several_texts(emulator: Emulator) -> None:
    vectors = _vertex(emulator, "gemini-embedding-001").get_text_embedding_batch(["a", "b"])
    assert len(vectors) == 2
    paths = [r.path for r in emulator.requests if r.path.startswith("/v1beta1/")]
    assert len(paths) == 1 and paths[0].endswith(":" + vertex_embed_route("gemini-embedding-001"))


def test_route_follows_the_sdk_s_own_capabilities() -> None:
    has_batch = hasattr(getattr(types, "EmbeddingApiType", None), "BATCH_EMBED_CONTENTS")
    expected_2 = "batchEmbedContents" if has_batch else "embedContent"
    expected_001 = "batchEmbedContents" if has_batch else "predict"
    assert vertex_embed_route("gemini-embedding-2") == expected_2
    assert vertex_embed_route("models/gemini-embedding-2") == expected_2
    assert vertex_embed_route("gemini-embedding-001") == expected_001


async def test_an_sdk_exception_we_do_not_know_is_one_clear_error(emulator: Emulator) -> None:
    fake = FakeTime()
    caller = RetryingCaller(
        model="gemini-embedding-001",
        policy=RetryPolicy(),
        limiter=QuotaLimiter(),
        usage=Usage(),
        clock=fake.clock,
        sleep=fake.sleep,
    )
    client = genai.Client(
        api_key=emulator.api_key, http_options=types.HttpOptions(base_url=emulator.base_url)
    )
    # The SDK refuses auto_truncate on the Developer API with a plain ValueError.
    config = types.EmbedContentConfig(auto_truncate=True)
    with pytest.raises(UnexpectedAnswerError) as info:
        await caller.call(
            lambda: client.aio.models.embed_content(
                model="gemini-embedding-001", contents="x", config=config
            ),
            items=1,
            tokens=1,
        )
    message = str(info.value)
    assert "\n" not in message
    assert f"google-genai SDK ({SDK_VERSION})" in message and "ValueError" in message
    assert "auto_truncate" in message
    assert isinstance(info.value.__cause__, ValueError)
    assert fake.sleeps == [], "not retried"
    assert emulator.counters.embed_requests == 0
