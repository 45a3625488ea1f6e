"""Usage accounting (`_usage`): counters, deltas and cost."""

from __future__ import annotations

import pytest

from llama_index_gemini_embed._usage import Usage


def test_usage_cost_and_delta():
    usage = Usage(price_per_million_tokens=0.15)
    before = usage.snapshot()
    usage.record_request(items=100, tokens=1_000_000)
    usage.record_retry(throttled=True)
    delta = usage.snapshot() - before
    assert (delta.items, delta.requests, delta.retries, delta.throttled) == (100, 1, 1, 1)
    assert delta.cost_usd == pytest.approx(0.15)
