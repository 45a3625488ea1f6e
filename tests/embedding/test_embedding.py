"""GeminiEmbedding through the real google-genai SDK against the emulator over loopback."""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from google.genai import types as genai_types
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.schema import TextNode
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index_instrumentation import get_dispatcher
from pydantic import Field

from llama_index_gemini_embed import (
    ConfigurationError,
    DailyQuotaExceededError,
    EmptyTextError,
    GeminiEmbedding,
    GeminiUsageEvent,
    InvalidAPIKeyError,
    MissingAPIKeyError,
    TextTooLongError,
    TransientAPIError,
    UnknownModelError,
)
from llama_index_gemini_embed._client import vertex_embed_route
from llama_index_gemini_embed._models import vertex_limits
from llama_index_gemini_embed._tokens import estimate_tokens
from llama_index_gemini_embed.emulator import Emulator, Fault, QuotaConfig, embed_text
from tests.embedding.support import embed_bodies
from tests.fakes import FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make(emu: Emulator, fake: FakeTime | None = None, **kwargs: Any) -> GeminiEmbedding:
    if fake is not None:
        kwargs.setdefault("clock", fake.clock)
        kwargs.setdefault("sleep", fake.sleep)
    return GeminiEmbedding(api_key=emu.api_key, base_url=emu.base_url, **kwargs)


def sent_items(emu: Emulator) -> list[dict[str, Any]]:
    return [item for body in embed_bodies(emu) for item in body["requests"]]


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm(a) * norm(b))


# -- 1. task types on every path ----------------------------------------------------------


def test_query_and_document_task_types_on_every_sync_path(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=768)
    embed.get_query_embedding("where is the tower?")
    embed.get_text_embedding("the tower is in paris")
    embed.get_text_embedding_batch(["doc one", "doc two"])
    tasks = [item["taskType"] for item in sent_items(emulator)]
    assert tasks == [
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "RETRIEVAL_DOCUMENT",
        "RETRIEVAL_DOCUMENT",
    ]


async def test_query_and_document_task_types_on_every_async_path(emulator: Emulator) -> None:
    embed = make(emulator)
    await embed.aget_query_embedding("q")
    await embed.aget_text_embedding("d")
    await embed.aget_text_embedding_batch(["d1", "d2", "d3"])
    tasks = [item["taskType"] for item in sent_items(emulator)]
    assert tasks == ["RETRIEVAL_QUERY"] + ["RETRIEVAL_DOCUMENT"] * 4


@pytest.mark.parametrize(
    ("query_task", "doc_task"),
    [
        ("CODE_RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT"),
        ("QUESTION_ANSWERING", "RETRIEVAL_DOCUMENT"),
        ("SEMANTIC_SIMILARITY", "SEMANTIC_SIMILARITY"),
        ("fact_verification", "retrieval_document"),
    ],
)
def test_user_task_type_overrides_are_kept(
    emulator: Emulator, query_task: str, doc_task: str
) -> None:
    embed = make(emulator, query_task_type=query_task, document_task_type=doc_task)
    embed.get_query_embedding("q")
    embed.get_text_embedding_batch(["d"])
    tasks = [item["taskType"] for item in sent_items(emulator)]
    assert tasks == [query_task.upper(), doc_task.upper()]


def test_task_type_changes_the_vector(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=256)
    query = embed.get_query_embedding("eiffel tower paris")
    doc = embed.get_text_embedding("eiffel tower paris")
    assert query != doc
    assert cosine(query, doc) > 0.8


# -- 2. gemini-embedding-2: prefixes, one Content per text ----------------------------------


def test_gemini_embedding_2_uses_prefixes_and_one_content_per_text(emulator: Emulator) -> None:
    embed = make(emulator, model_name="gemini-embedding-2", output_dimensionality=768)
    vectors = embed.get_text_embedding_batch(["alpha text", "beta text", "gamma text"])
    query = embed.get_query_embedding("alpha?")
    assert len(vectors) == 3 and len({tuple(v) for v in vectors}) == 3
    items = sent_items(emulator)
    assert [item["content"]["parts"][0]["text"] for item in items] == [
        "title: none | text: alpha text",
        "title: none | text: beta text",
        "title: none | text: gamma text",
        "task: search result | query: alpha?",
    ]
    assert all(len(item["content"]["parts"]) == 1 for item in items)
    assert all("taskType" not in item and "title" not in item for item in items)
    assert len(query) == 768


def test_gemini_embedding_2_symmetric_task(emulator: Emulator) -> None:
    embed = make(
        emulator,
        model_name="gemini-embedding-2",
        query_task_type="SEMANTIC_SIMILARITY",
        document_task_type="SEMANTIC_SIMILARITY",
    )
    embed.get_text_embedding("a")
    embed.get_query_embedding("b")
    texts = [item["content"]["parts"][0]["text"] for item in sent_items(emulator)]
    assert texts == ["task: sentence similarity | query: a", "task: sentence similarity | query: b"]


# -- 3. titles from node metadata ----------------------------------------------------------


def test_titles_from_node_metadata_one_per_item(emulator: Emulator) -> None:
    embed = make(emulator)
    nodes = [
        TextNode(text="chunk a1", metadata={"title": "Doc A"}),
        TextNode(text="chunk b1", metadata={"file_name": "b.md"}),
        TextNode(text="chunk a2", metadata={"title": "Doc A", "file_name": "ignored.md"}),
        TextNode(text="chunk c1", metadata={}),
    ]
    out = embed(nodes)
    assert all(node.embedding is not None for node in out)
    assert len(embed_bodies(emulator)) == 1, "distinct titles share one request"
    sent = [(i["content"]["parts"][0]["text"], i.get("title")) for i in sent_items(emulator)]
    assert sent == [
        ("chunk a1", "Doc A"),
        ("chunk b1", "b.md"),
        ("chunk a2", "Doc A"),
        ("chunk c1", None),
    ]
    # the title is sent as the title, not also pasted into the text
    assert nodes[0].embedding == pytest.approx(
        _unit(embed_text("chunk a1", task_type="RETRIEVAL_DOCUMENT", title="Doc A")), abs=1e-6
    )


async def test_titles_reach_the_api_through_ingestion_pipeline(emulator: Emulator) -> None:
    embed = make(emulator, model_name="gemini-embedding-2", title_metadata_keys=["heading"])
    pipeline = IngestionPipeline(transformations=[embed])
    nodes = await pipeline.arun(nodes=[TextNode(text="body", metadata={"heading": "Intro"})])
    assert nodes[0].embedding is not None
    assert sent_items(emulator)[0]["content"]["parts"][0]["text"] == "title: Intro | text: body"


# -- 4. normalisation ----------------------------------------------------------------------


def _unit(vector: list[float]) -> list[float]:
    n = norm(vector)
    return [v / n for v in vector]


@pytest.mark.parametrize("dimension", [128, 768, 1536, 3072, None])
def test_vectors_are_unit_length_for_every_dimension(
    emulator: Emulator, dimension: int | None
) -> None:
    embed = make(emulator, output_dimensionality=dimension)
    vector = embed.get_text_embedding("some words here")
    assert len(vector) == (dimension or 3072)
    assert norm(vector) == pytest.approx(1.0, abs=1e-9)
    raw = embed_text("some words here", task_type="RETRIEVAL_DOCUMENT", dimension=dimension)
    if dimension and dimension < 3072:
        assert norm(raw) < 0.999, "the emulator, like the API, leaves -001 prefixes un-normalised"
    assert vector == pytest.approx(_unit(raw), abs=1e-6)


# -- 5. API limits, token budget, over-length texts ----------------------------------------


def test_requests_never_exceed_100_texts(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=128)
    texts = [f"text number {i}" for i in range(250)]
    vectors = embed.get_text_embedding_batch(texts)
    sizes = sorted(len(body["requests"]) for body in embed_bodies(emulator))
    assert sizes == [50, 100, 100]
    assert vectors[137] == pytest.approx(embed.get_text_embedding("text number 137"))


def test_embed_batch_size_is_capped_at_the_api_limit(emulator: Emulator) -> None:
    embed = make(emulator, embed_batch_size=2048, output_dimensionality=128)
    embed.get_text_embedding_batch([f"t{i}" for i in range(150)])
    assert max(len(body["requests"]) for body in embed_bodies(emulator)) == 100


def test_token_budget_per_request(emulator: Emulator, fake_time: FakeTime) -> None:
    embed = make(emulator, fake_time, tokens_per_minute=1000, output_dimensionality=128)
    texts = ["word " * 150 for _ in range(20)]  # 150 tokens each by our estimate
    embed.get_text_embedding_batch(texts)
    for body in embed_bodies(emulator):
        assert len(body["requests"]) * 150 <= 1000


def test_overlength_text_is_counted_and_warned_once(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    embed = make(emulator, output_dimensionality=128)
    long_text = "lorem " * 3000
    with caplog.at_level(logging.WARNING, logger="llama_index_gemini_embed"):
        vectors = embed.get_text_embedding_batch([long_text, long_text, "short"])
    assert len(vectors) == 3, "never silently dropped"
    assert embed.usage.truncated == 2
    warnings = [r for r in caplog.records if "input limit" in r.getMessage()]
    assert len(warnings) == 1


def test_overlength_text_can_raise_before_any_request(emulator: Emulator) -> None:
    embed = make(emulator, on_overlength="raise")
    with pytest.raises(TextTooLongError, match="over gemini-embedding-001's input limit of 2048"):
        embed.get_text_embedding_batch(["fine", "lorem " * 3000])
    assert emulator.counters.embed_requests == 0


# -- 6. bounded concurrency, backs off on 429 and recovers ---------------------------------


async def test_concurrency_is_bounded(emulator: Emulator) -> None:
    emulator_latency = Emulator(api_keys=(emulator.api_key,), latency=0.05)
    with emulator_latency as emu:
        embed = make(emu, max_concurrency=3, embed_batch_size=10, output_dimensionality=128)
        await embed.aget_text_embedding_batch([f"t{i}" for i in range(200)])
        assert emu.counters.embed_requests == 20
        assert emu.counters.max_in_flight <= 3
        assert emu.counters.max_in_flight >= 2


async def test_concurrency_halves_on_429_and_recovers(
    emulator: Emulator, fake_time: FakeTime
) -> None:
    embed = make(
        emulator, fake_time, max_concurrency=8, embed_batch_size=1, output_dimensionality=128
    )
    emulator.script_faults([Fault.status(429, retry_delay="1s")])
    await embed.aget_text_embedding_batch(["first"])
    assert embed.engine.concurrency.current == 4
    await embed.aget_text_embedding_batch([f"t{i}" for i in range(60)])
    assert embed.engine.concurrency.current == 8


# -- 7. retries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        [Fault.status(500)],
        [Fault.status(503), Fault.status(503)],
        [Fault.status(429, retry_delay="2s")],
        [Fault.drop()],
    ],
)
def test_transient_failures_are_retried(
    emulator: Emulator, fake_time: FakeTime, faults: list[Fault]
) -> None:
    embed = make(emulator, fake_time, output_dimensionality=128)
    emulator.script_faults(faults)
    vector = embed.get_text_embedding("retry me")
    assert len(vector) == 128
    assert embed.usage.retries == len(faults)
    assert emulator.counters.embed_items == 1


def test_retry_info_delay_is_honoured(emulator: Emulator, fake_time: FakeTime) -> None:
    embed = make(emulator, fake_time)
    emulator.script_faults([Fault.status(429, retry_delay="7s")])
    embed.get_text_embedding("x")
    assert len(fake_time.sleeps) == 1 and 7.0 <= fake_time.sleeps[0] <= 8.0


def test_timeouts_are_applied_and_retried(emulator: Emulator, fake_time: FakeTime) -> None:
    embed = make(emulator, fake_time, timeout=0.3, output_dimensionality=128)
    emulator.script_faults([Fault.slow(5.0)])
    vector = embed.get_text_embedding("slow")
    assert len(vector) == 128
    assert embed.usage.retries == 1


def test_retries_give_up_with_a_clear_error(emulator: Emulator, fake_time: FakeTime) -> None:
    embed = make(emulator, fake_time, max_retries=2)
    emulator.script_faults([Fault.status(503)] * 3)
    with pytest.raises(TransientAPIError, match=r"failed after retries \(503 UNAVAILABLE\)"):
        embed.get_text_embedding("x")
    assert emulator.counters.embed_requests == 3


def test_daily_quota_raises_at_once(emulator: Emulator, fake_time: FakeTime) -> None:
    embed = make(emulator, fake_time)
    emulator.script_faults([Fault.status(429, daily=True)])
    with pytest.raises(
        DailyQuotaExceededError, match=r"per-day quota .* resets at midnight Pacific"
    ):
        embed.get_text_embedding("x")
    assert emulator.counters.embed_requests == 1
    assert fake_time.sleeps == []


def test_sdk_retries_are_off(emulator: Emulator) -> None:
    embed = make(emulator)
    options = embed.client._api_client._http_options
    assert options.retry_options is not None and options.retry_options.attempts == 1
    assert options.timeout == 60_000


# -- 8. client-side limiter: a correctly configured run sees no 429 -------------------------


def test_configured_quota_avoids_every_429(fake_time: FakeTime) -> None:
    # Virtual time: one request at a time, so the fake clock never jumps mid-request.
    quota = QuotaConfig(items_per_minute=50, tokens_per_minute=2000, window_seconds=60.0)
    with Emulator(quota=quota, clock=fake_time.clock) as emu:
        embed = make(
            emu,
            fake_time,
            items_per_minute=50,
            tokens_per_minute=2000,
            max_concurrency=1,
            output_dimensionality=128,
        )
        vectors = embed.get_text_embedding_batch([f"item {i} " * 3 for i in range(400)])
        assert len(vectors) == 400
        assert emu.counters.status.get(429, 0) == 0
        assert emu.counters.embed_items == 400
        assert sum(fake_time.sleeps) > 60 * 6, "pacing really waited (on the fake clock)"


async def test_configured_quota_avoids_429_with_concurrency_in_compressed_time() -> None:
    # Real (compressed) time: a 0.4 s "minute", four requests in flight.
    quota = QuotaConfig(items_per_minute=40, window_seconds=0.4)
    with Emulator(quota=quota) as emu:
        embed = make(
            emu,
            items_per_minute=40,
            quota_window_seconds=0.4,
            max_concurrency=4,
            embed_batch_size=10,
            output_dimensionality=128,
        )
        vectors = await embed.aget_text_embedding_batch([f"t{i}" for i in range(160)])
        assert len(vectors) == 160
        assert emu.counters.status.get(429, 0) == 0
        assert emu.counters.embed_items == 160


def test_client_per_day_budget_stops_before_the_api(
    emulator: Emulator, fake_time: FakeTime
) -> None:
    embed = make(emulator, fake_time, items_per_day=150, embed_batch_size=100)
    with pytest.raises(DailyQuotaExceededError, match="items_per_day=150"):
        embed.get_text_embedding_batch([f"t{i}" for i in range(300)])
    assert emulator.counters.embed_items <= 150


# -- 9. usage accounting and instrumentation -----------------------------------------------


class _Collect(BaseEventHandler):
    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def collected() -> Iterator[list[GeminiUsageEvent]]:
    handler = _Collect()
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        yield handler.events  # type: ignore[misc]
    finally:
        root.event_handlers.remove(handler)


def test_usage_accounting_and_events(emulator: Emulator, collected: list[Any]) -> None:
    embed = make(emulator, output_dimensionality=128)
    embed.get_text_embedding_batch(["one two three four"] * 120)
    usage = embed.usage
    assert (usage.items, usage.requests, usage.retries) == (120, 2, 0)
    # The API's reported counts (usageMetadata), not our estimate; SDK 2.x drops them.
    if "usage_metadata" in genai_types.EmbedContentResponse.model_fields:
        assert usage.tokens == emulator.counters.tokens and usage.token_source == "api"
    else:
        assert usage.tokens == 120 * estimate_tokens("one two three four")
        assert usage.token_source == "estimate"
    assert usage.cost_usd == pytest.approx(usage.tokens * 0.15 / 1e6)
    events = [e for e in collected if isinstance(e, GeminiUsageEvent)]
    assert (
        len(events) == 1
        and events[0].items == 120
        and events[0].model_name == "gemini-embedding-001"
    )


# -- 10. serialisation, pickling, running loops --------------------------------------------


def test_class_name_is_unique_and_key_never_serialised(emulator: Emulator) -> None:
    embed = make(emulator)
    assert GeminiEmbedding.class_name() == "LigeGeminiEmbedding"
    for text in (
        repr(embed),
        str(embed),
        embed.to_json(),
        str(embed.to_dict()),
        str(embed.to_payload()),
    ):
        assert emulator.api_key not in text
    restored = GeminiEmbedding.from_dict({**embed.to_dict(), "api_key": emulator.api_key})
    assert restored.output_dimensionality == embed.output_dimensionality


def test_pickled_instance_still_authenticates(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=128)
    embed.get_text_embedding("warm up the client and engine")
    clone = pickle.loads(pickle.dumps(embed))
    assert clone.get_text_embedding("hello") == pytest.approx(embed.get_text_embedding("hello"))


async def test_sync_calls_work_inside_a_running_loop(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=128)
    assert len(embed.get_query_embedding("inside a loop, like Jupyter")) == 128


# -- 11. clear errors ----------------------------------------------------------------------


def test_missing_key_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
    with pytest.raises(
        MissingAPIKeyError, match=r"No Gemini API key: pass api_key=\.\.\. or set GEMINI_API_KEY"
    ):
        GeminiEmbedding()


def test_key_from_environment(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", emulator.api_key)
    embed = GeminiEmbedding(base_url=emulator.base_url, output_dimensionality=128)
    assert len(embed.get_text_embedding("x")) == 128


def test_invalid_key_message(emulator: Emulator) -> None:
    embed = GeminiEmbedding(api_key="wrong-key-value", base_url=emulator.base_url)
    with pytest.raises(InvalidAPIKeyError, match="rejected the API key") as info:
        embed.get_text_embedding("x")
    assert "wrong-key-value" not in str(info.value)
    assert emulator.counters.embed_requests <= 1


def test_unknown_model_message(emulator: Emulator) -> None:
    embed = make(emulator, model_name="gemini-embedding-999")
    with pytest.raises(
        UnknownModelError, match=r"'gemini-embedding-999' is not available .*404 NOT_FOUND"
    ):
        embed.get_query_embedding("x")


@pytest.mark.parametrize("dimension", [0, 64, 127, 3073, 10_000])
def test_dimension_out_of_range_message(emulator: Emulator, dimension: int) -> None:
    with pytest.raises(
        ConfigurationError, match=rf"output_dimensionality={dimension} is out of range .* 128-3072"
    ):
        make(emulator, output_dimensionality=dimension)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_message_and_nothing_sent(emulator: Emulator, text: str) -> None:
    embed = make(emulator)
    with pytest.raises(EmptyTextError, match="empty or whitespace-only"):
        embed.get_text_embedding_batch(["ok", text])
    assert emulator.counters.embed_requests == 0


def test_wrong_task_type_message(emulator: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="Unknown task type 'SEARCH' for query_task_type"):
        make(emulator, query_task_type="SEARCH")


# -- 12. embeddings_cache ------------------------------------------------------------------


def test_embeddings_cache_is_refused_with_a_reason(emulator: Emulator) -> None:
    with pytest.raises(
        ConfigurationError, match=r"embeddings_cache is not supported: .* keys it on the text alone"
    ):
        make(emulator, embeddings_cache=SimpleKVStore())


# -- API versions and Vertex routing -------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
def test_every_api_version(emulator: Emulator, version: str) -> None:
    embed = make(emulator, api_version=version, output_dimensionality=128)
    embed.get_text_embedding("x")
    assert any(r.path.startswith(f"/{version}/") for r in emulator.requests)


def test_vertex_express_mode_respects_vertex_limits(emulator: Emulator) -> None:
    embed = make(emulator, vertexai=True, output_dimensionality=128)
    texts = [f"text {i} " + "word " * 150 for i in range(300)]  # ~160 tokens each
    vectors = embed.get_text_embedding_batch(texts)
    assert len(vectors) == 300
    bodies = [
        r.body for r in emulator.requests if r.path.startswith("/v1beta1/") and r.body is not None
    ]
    assert bodies, "requests went to the Vertex routes"
    for body in bodies:
        # :batchEmbedContents (SDK >= 3.4): requests[].content; :predict: instances[].content
        # is the text itself (snake-case, up to 250 instances).
        items = body.get("requests") or body.get("instances") or []
        limit = vertex_limits(vertex_embed_route("gemini-embedding-001"))
        assert 1 <= len(items) <= limit.max_items_per_request
        texts = [
            i["content"] if isinstance(i["content"], str) else i["content"]["parts"][0]["text"]
            for i in items
        ]
        assert sum(estimate_tokens(text) for text in texts) <= 20_000
    assert all(norm(v) == pytest.approx(1.0) for v in vectors[:5])


def test_user_http_options_are_applied_under_ours(emulator: Emulator) -> None:
    from google.genai import types

    embed = make(
        emulator,
        http_options=types.HttpOptions(
            headers={"x-custom": "1"},
            timeout=999,
            retry_options=types.HttpRetryOptions(attempts=9),
        ),
        timeout=20.0,
        output_dimensionality=128,
    )
    embed.get_text_embedding("x")
    options = embed.client._api_client._http_options
    assert options.headers is not None and options.headers.get("x-custom") == "1"
    assert options.timeout == 20_000, "our timeout wins"
    assert options.retry_options is not None and options.retry_options.attempts == 1
    assert emulator.api_key not in embed.to_json()
    # a dict works too (pydantic coerces it)
    assert make(emulator, http_options={"headers": {"a": "b"}}).http_options is not None
