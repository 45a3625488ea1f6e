"""Adaptive concurrency (`_concurrency`): halve on throttling, regrow on success."""

from __future__ import annotations

from llama_index_gemini_embed._concurrency import AdaptiveLimit


def test_adaptive_limit_halves_once_per_burst_and_recovers():
    limit = AdaptiveLimit(16, cooldown_seconds=1.0)
    limit.on_throttle(now=0.0)
    limit.on_throttle(now=0.5)  # same burst: ignored
    assert limit.current == 8
    limit.on_throttle(now=2.0)
    assert limit.current == 4
    for _ in range(200):
        limit.on_success()
    assert limit.current == 16


def test_adaptive_limit_never_below_one():
    limit = AdaptiveLimit(2, cooldown_seconds=0.0)
    for t in range(10):
        limit.on_throttle(now=float(t))
    assert limit.current == 1
