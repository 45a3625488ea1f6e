"""The first hour: an endpoint that is not there fails within seconds and names itself;
retry waits are announced; one API-key rule (google-genai's) everywhere, named in errors.

Issue 11 items 11 and 15. Real SDK over loopback, injected clock/sleep (no real waiting).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llama_index_gemini_embed import (
    APIUnreachableError,
    GeminiEmbedding,
    GeminiReranker,
    InvalidAPIKeyError,
    _client,
)
from llama_index_gemini_embed._calls import RetryEvent, retry_listener
from llama_index_gemini_embed._client import failure_from_exception, find_api_key
from llama_index_gemini_embed._retry import Action, Failure, RetryPolicy, decide
from llama_index_gemini_embed.cli.app import EXIT_API, main
from llama_index_gemini_embed.emulator import Emulator
from tests.fakes import FakeTime
from tests.reliability_support import closed_port_url

# ------------------------------------------------------------------ unreachable endpoint


def test_refused_connection_fails_after_two_quick_retries_naming_the_url() -> None:
    fake = FakeTime()
    url = closed_port_url()
    embed = GeminiEmbedding(api_key="k", base_url=url, clock=fake.clock, sleep=fake.sleep)
    assert embed.max_retries == 8  # the default: timeouts and 5xx still get every retry
    with pytest.raises(APIUnreachableError) as info:
        embed.get_text_embedding("x")
    error = info.value
    assert len(fake.sleeps) == 2, fake.sleeps
    assert sum(fake.sleeps) <= 15.0
    assert error.url == url and error.reason == "connection refused"
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"Could not reach the Gemini API at {url} (connection refused)")
    assert "base_url" in message


def test_retry_waits_are_announced_through_the_sync_wrapper() -> None:
    fake = FakeTime()
    url = closed_port_url()
    embed = GeminiEmbedding(api_key="k", base_url=url, clock=fake.clock, sleep=fake.sleep)
    events: list[RetryEvent] = []
    with retry_listener(events.append), pytest.raises(APIUnreachableError):
        embed.get_text_embedding("x")  # runs on the package's background loop thread
    assert [e.kind for e in events] == ["retry", "retry"]
    assert [e.delay for e in events] == fake.sleeps
    assert [e.attempt for e in events] == [1, 2]
    assert {e.reason for e in events} == {"connection refused"}
    assert events[0].what == "embedding" and events[0].model == "gemini-embedding-001"
    assert events[0].describe().startswith("embedding: retrying in ")
    # Outside the block nothing is announced.
    with pytest.raises(APIUnreachableError):
        embed.get_text_embedding("y")
    assert len(events) == 2


async def test_quota_pacing_waits_are_announced(emulator: Emulator) -> None:
    fake = FakeTime()
    embed = GeminiEmbedding(
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        output_dimensionality=128,
        items_per_minute=2,
        embed_batch_size=2,
        max_concurrency=1,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    events: list[RetryEvent] = []
    with retry_listener(events.append):
        await embed.aget_text_embedding_batch(["a", "b", "c", "d"])
    assert events and {e.kind for e in events} == {"pace"}
    assert [e.delay for e in events] == fake.sleeps
    assert events[0].describe().startswith("embedding: waiting ")


def test_a_failing_listener_does_not_stop_the_retries(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    embed = GeminiEmbedding(
        api_key="k", base_url=closed_port_url(), clock=fake.clock, sleep=fake.sleep
    )

    def broken(event: RetryEvent) -> None:
        raise RuntimeError("display gone")

    with retry_listener(broken), pytest.raises(APIUnreachableError):
        embed.get_text_embedding("x")
    assert len(fake.sleeps) == 2
    assert "A retry listener failed" in caplog.text


def test_dns_failure_and_refusal_are_connect_failures() -> None:
    dns = failure_from_exception(socket.gaierror(-2, "Name or service not known"))
    refused = failure_from_exception(ConnectionRefusedError(111, "Connection refused"))
    request = httpx.Request("POST", "https://gemini.example.invalid:8443/v1/models/m")
    httpx_dns = failure_from_exception(
        httpx.ConnectError("[Errno -2] Name or service not known", request=request)
    )
    assert dns is not None and dns.connect and dns.message == "DNS lookup failed"
    assert refused is not None and refused.connect and refused.message == "connection refused"
    assert httpx_dns is not None and httpx_dns.connect
    assert httpx_dns.message == "DNS lookup failed"
    assert httpx_dns.target == "https://gemini.example.invalid:8443"
    timeout = failure_from_exception(httpx.ReadTimeout("slow", request=request))
    assert timeout is not None and timeout.transport and not timeout.connect


@pytest.mark.parametrize(
    ("failure", "attempt", "action"),
    [
        (Failure(transport=True, connect=True), 0, Action.RETRY),
        (Failure(transport=True, connect=True), 1, Action.RETRY),
        (Failure(transport=True, connect=True), 2, Action.FAIL),
        (Failure(transport=True), 2, Action.RETRY),  # a timeout keeps its retries
        (Failure(transport=True), 8, Action.FAIL),
    ],
)
def test_connect_failures_get_only_max_connect_retries(
    failure: Failure, attempt: int, action: Action
) -> None:
    assert decide(failure, attempt=attempt, policy=RetryPolicy(), rand=0.5).action is action


def test_max_retries_below_the_connect_cap_wins() -> None:
    policy = RetryPolicy(max_retries=1)
    failure = Failure(transport=True, connect=True)
    assert decide(failure, attempt=1, policy=policy, rand=0.5).action is Action.FAIL


# ------------------------------------------------------------------ one API-key rule


@pytest.fixture
def both_keys(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Emulator:
    """GOOGLE_API_KEY is a wrong key, GEMINI_API_KEY the emulator's right one."""
    monkeypatch.setenv("GOOGLE_API_KEY", "wrong-google-key-0123456789")
    monkeypatch.setenv("GEMINI_API_KEY", emulator.api_key)
    monkeypatch.setattr(_client, "_warned_both_keys", False)
    return emulator


def test_key_precedence_is_google_genai_s(
    both_keys: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        key = find_api_key(None)
        again = find_api_key(None)
    assert key is not None and key.source == "GOOGLE_API_KEY"
    assert key.value == "wrong-google-key-0123456789" and again == key
    assert caplog.text.count("Both GOOGLE_API_KEY and GEMINI_API_KEY are set") == 1
    assert "wrong-google-key" not in repr(key)
    explicit = find_api_key("explicit-key-123456")
    assert explicit is not None and explicit.source == "api_key="


def test_sdk_agrees_on_the_precedence(both_keys: Emulator) -> None:
    from google.genai import _api_client

    assert _api_client.get_env_api_key() == "wrong-google-key-0123456789"


def test_embedding_error_names_the_variable_used(both_keys: Emulator) -> None:
    embed = GeminiEmbedding(base_url=both_keys.base_url, output_dimensionality=128)
    with pytest.raises(InvalidAPIKeyError) as info:
        embed.get_text_embedding("x")
    assert info.value.key_source == "GOOGLE_API_KEY"
    assert "API key from GOOGLE_API_KEY" in str(info.value)
    assert "wrong-google-key" not in str(info.value)


def test_reranker_error_names_the_variable_used(both_keys: Emulator) -> None:
    reranker = GeminiReranker(base_url=both_keys.base_url, top_n=1)
    nodes = [NodeWithScore(node=TextNode(text="alpha"), score=1.0)]
    with pytest.raises(InvalidAPIKeyError) as info:
        reranker.postprocess_nodes(nodes, QueryBundle("alpha"))
    assert info.value.key_source == "GOOGLE_API_KEY"


def test_only_gemini_api_key_set_is_named(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", "wrong-gemini-key-0123456789")
    embed = GeminiEmbedding(base_url=emulator.base_url, output_dimensionality=128)
    with pytest.raises(InvalidAPIKeyError, match="API key from GEMINI_API_KEY"):
        embed.get_text_embedding("x")


def test_explicit_key_is_named_as_the_parameter(emulator: Emulator) -> None:
    embed = GeminiEmbedding(
        api_key="wrong-explicit-key-0123456789",
        base_url=emulator.base_url,
        output_dimensionality=128,
    )
    with pytest.raises(InvalidAPIKeyError, match="API key from api_key="):
        embed.get_text_embedding("x")


def test_cli_key_order_is_the_library_s() -> None:
    from llama_index_gemini_embed.cli import _common

    assert _common.KEY_ENV_VARS == _client.KEY_ENV_VARS


def test_cli_uses_the_same_key_rule(
    both_keys: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nsome text to embed\n")
    code = main(
        [
            "ingest",
            str(docs),
            "--path",
            str(tmp_path / "chroma"),
            "--collection",
            "keys",
            "--base-url",
            both_keys.base_url,
            "--dimension",
            "128",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_API, err
    assert "GOOGLE_API_KEY" in err and "wrong-google-key" not in err


# ------------------------------------------------------------------ Vertex default location


def test_vertex_default_location_serves_the_embedding_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llama_index_gemini_embed._client import ClientSettings, build_client

    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    settings = ClientSettings(vertexai=True, project="proj", base_url=closed_port_url())
    assert build_client(settings)._api_client.location == "us-central1"
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    assert build_client(settings)._api_client.location == "europe-west4"
    explicit = ClientSettings(vertexai=True, project="proj", location="asia-northeast1")
    assert build_client(explicit)._api_client.location == "asia-northeast1"
