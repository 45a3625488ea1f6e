"""Client-side quota accounting (`_quota`): windows, in-flight requests, per-day budget."""

from __future__ import annotations

import pytest

from llama_index_gemini_embed._errors import DailyQuotaExceededError
from llama_index_gemini_embed._quota import QuotaLimiter


def test_quota_items_per_minute_waits_for_window():
    q = QuotaLimiter(items_per_minute=100, window_seconds=60)
    wait, first = q.reserve(60, 10, now=0.0)
    assert wait == 0.0
    q.complete(first, now=0.5)  # answered at 0.5: leaves the window at 60.5
    wait, second = q.reserve(40, 10, now=10.0)
    assert wait == 0.0
    q.complete(second, now=10.0)
    wait, _ = q.reserve(1, 1, now=20.0)
    assert wait == pytest.approx(40.5)
    assert q.reserve(1, 1, now=20.0 + wait)[0] == 0.0


def test_quota_in_flight_requests_never_expire():
    q = QuotaLimiter(items_per_minute=10, window_seconds=1.0)
    _, ticket = q.reserve(10, 1, now=0.0)
    # still in flight long after the window: the server may stamp it only now
    wait, _ = q.reserve(1, 1, now=100.0)
    assert wait == pytest.approx(1.0)
    q.complete(ticket, now=100.0)
    assert q.reserve(1, 1, now=100.5)[0] == pytest.approx(0.5)
    assert q.reserve(1, 1, now=101.0)[0] == 0.0


def test_quota_tokens_per_minute():
    q = QuotaLimiter(tokens_per_minute=1000, window_seconds=10)
    _, ticket = q.reserve(1, 600, now=0.0)
    q.complete(ticket, now=0.0)
    assert q.reserve(1, 500, now=1.0)[0] == pytest.approx(9.0)
    assert q.reserve(1, 400, now=1.0)[0] == 0.0


def test_quota_per_day_raises_typed_error_and_grants_nothing():
    q = QuotaLimiter(items_per_day=150)
    assert q.reserve(100, 1, now=0.0)[0] == 0.0
    with pytest.raises(DailyQuotaExceededError, match="items_per_day=150"):
        q.reserve(100, 1, now=1000.0)
    assert q.usage(now=1000.0)[2] == 100


def test_quota_rejects_single_request_over_budget():
    q = QuotaLimiter(items_per_minute=10)
    with pytest.raises(ValueError, match="exceeds 10 items/min"):
        q.reserve(11, 1, now=0.0)


def test_quota_disabled_grants_everything():
    q = QuotaLimiter()
    assert not q.enabled
    assert all(q.reserve(100, 10**6, now=float(i))[0] == 0.0 for i in range(100))


@pytest.mark.parametrize("bad", [0, -1])
def test_quota_rejects_nonpositive_limits(bad):
    with pytest.raises(ValueError, match="at least 1"):
        QuotaLimiter(items_per_minute=bad)
