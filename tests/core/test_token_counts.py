"""Usage, cost and token pacing use the API's reported counts (usageMetadata), our estimate
only before the first answer; usage says which (issue 13 §5).

The emulator counts tokens its own way (digits and punctuation one each, like Gemini's
tokenizer), so for numeric text our estimate is ~3x low: a client that ignored the reported
counts would bill too little and pace too fast into 429s.
"""

from __future__ import annotations

import math

from google.genai import types

from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed._tokens import TokenCalibration, estimate_tokens
from llama_index_gemini_embed._usage import Usage, UsageSnapshot
from llama_index_gemini_embed.emulator import Emulator, QuotaConfig
from tests.fakes import FakeTime

# SDK 2.x drops usageMetadata from embedding answers (no EmbedContentResponse.usage_metadata
# field): there the estimate is all the client can know, and usage must say so.
SDK_REPORTS_USAGE = "usage_metadata" in types.EmbedContentResponse.model_fields

NUMERIC = [f"2026-12-{i % 28 + 1:02d} 12345678{i % 10}" for i in range(30)]


def test_calibration_scales_estimates_by_what_was_reported() -> None:
    cal = TokenCalibration()
    assert not cal.observed and cal.scale(30) == 30
    cal.observe(estimated=30, reported=100)
    cal.observe(estimated=30, reported=80)
    assert cal.observed and cal.scale(30) == 90
    cal.observe(estimated=0, reported=5)  # nothing to learn from
    assert cal.scale(60) == 180


def test_usage_says_where_its_tokens_come_from() -> None:
    usage = Usage(price_per_million_tokens=1.0)
    assert usage.snapshot().token_source == "none"
    usage.record_request(items=1, tokens=10, estimated=False)
    assert usage.snapshot().token_source == "api"
    usage.record_request(items=1, tokens=5)
    snap = usage.snapshot()
    assert snap.token_source == "mixed" and snap.estimated_tokens == 5 and snap.tokens == 15
    assert (snap - UsageSnapshot(tokens=10)).token_source == "estimate"


def test_usage_and_cost_are_the_reported_counts(emulator: Emulator) -> None:
    embed = GeminiEmbedding(
        api_key=emulator.api_key, base_url=emulator.base_url, output_dimensionality=128
    )
    embed.get_text_embedding_batch(NUMERIC)
    usage = embed.usage
    served = emulator.counters.tokens
    estimated = sum(estimate_tokens(text) for text in NUMERIC)
    assert served > 2 * estimated, "the test needs texts the estimate gets wrong"
    if SDK_REPORTS_USAGE:
        assert usage.tokens == served
        assert usage.token_source == "api" and usage.estimated_tokens == 0
    else:
        assert usage.tokens == estimated
        assert usage.token_source == "estimate" and usage.estimated_tokens == estimated
    assert math.isclose(usage.cost_usd, usage.tokens * 0.15 / 1e6)


def test_token_pacing_uses_reported_counts_after_the_first_answer() -> None:
    """On SDK 2.x (no reported counts) pacing by the estimate gets 429s, retried."""
    fake = FakeTime()
    per_request = 5
    # Room for 3 requests a minute by the service's count, 10 by our estimate.
    tokens_per_minute = 0
    with Emulator(clock=fake.clock) as probe:
        probe_embed = GeminiEmbedding(
            api_key=probe.api_key, base_url=probe.base_url, output_dimensionality=128
        )
        probe_embed.get_text_embedding_batch(NUMERIC[:per_request])
        tokens_per_minute = 3 * probe.counters.tokens + 2
    quota = QuotaConfig(tokens_per_minute=tokens_per_minute)
    with Emulator(clock=fake.clock, quota=quota) as emu:
        embed = GeminiEmbedding(
            api_key=emu.api_key,
            base_url=emu.base_url,
            output_dimensionality=128,
            embed_batch_size=per_request,
            max_concurrency=1,
            tokens_per_minute=tokens_per_minute,
            clock=fake.clock,
            sleep=fake.sleep,
        )
        embed.get_text_embedding_batch(NUMERIC)
        refused = emu.counters.status.get(429, 0)
    assert embed.usage.requests == len(NUMERIC) // per_request
    if not SDK_REPORTS_USAGE:
        assert refused > 0 and embed.usage.retries == refused
        return
    assert refused == 0, "paced by the estimate: the service refused requests"
    assert embed.usage.retries == 0
    # 6 requests at 3 a minute: two full windows waited, not 10 minutes of 429 backoff.
    assert 60.0 <= sum(fake.sleeps) <= 2 * 60.0 + 1
