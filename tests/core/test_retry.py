"""Retry decisions (`_retry`): what is retried, for how long, and what is not."""

from __future__ import annotations

import pytest

from llama_index_gemini_embed._retry import (
    Action,
    Failure,
    RetryPolicy,
    backoff,
    decide,
    is_daily_quota,
    parse_retry_delay,
)


def _quota_body(quota_id: str, delay: str | None = "38s") -> dict[str, object]:
    details: list[dict[str, object]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": quota_id, "quotaValue": "100"}],
        }
    ]
    if delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    return {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": details}}


MINUTE = "EmbedContentRequestsPerMinutePerUserPerProjectPerModel-FreeTier"
DAY = "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier"


POLICY = RetryPolicy(max_retries=3, initial_delay=1.0, max_delay=8.0)


@pytest.mark.parametrize(
    ("failure", "attempt", "action", "rate_limited"),
    [
        (Failure(code=500), 0, Action.RETRY, False),
        (Failure(code=502), 0, Action.RETRY, False),
        (Failure(code=503), 2, Action.RETRY, False),
        (Failure(code=504), 0, Action.RETRY, False),
        (Failure(code=408), 0, Action.RETRY, False),
        (Failure(transport=True), 0, Action.RETRY, False),
        (Failure(code=429, details=_quota_body(MINUTE)), 0, Action.RETRY, True),
        (Failure(code=429, details=_quota_body(DAY)), 0, Action.FAIL_QUOTA, True),
        (Failure(code=503), 3, Action.FAIL, False),
        (Failure(code=429, details=_quota_body(MINUTE)), 3, Action.FAIL, True),
        (Failure(code=400), 0, Action.FAIL, False),
        (Failure(code=403), 0, Action.FAIL, False),
        (Failure(code=404), 0, Action.FAIL, False),
        (Failure(code=429, details=_quota_body(MINUTE, "3600s")), 0, Action.FAIL, True),
    ],
)
def test_decide_table(failure, attempt, action, rate_limited):
    decision = decide(failure, attempt=attempt, policy=POLICY, rand=0.5)
    assert decision.action is action
    assert decision.rate_limited is rate_limited


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.0, 0.5),
        (0, 1.0, 1.0),
        (1, 0.0, 1.0),
        (2, 0.5, 3.0),
        (10, 0.0, 4.0),
        (10, 1.0, 8.0),
        (5000, 1.0, 8.0),
    ],
)
def test_backoff_is_capped_exponential_with_jitter(attempt, rand, expected):
    assert backoff(attempt, POLICY, rand) == pytest.approx(expected)


def test_retry_info_delay_is_honoured_with_small_jitter():
    failure = Failure(code=429, details=_quota_body(MINUTE, "38s"))
    low = decide(failure, attempt=0, policy=POLICY, rand=0.0)
    high = decide(failure, attempt=0, policy=POLICY, rand=0.999)
    assert low.delay == pytest.approx(38.0)
    assert 38.0 < high.delay <= 39.0


@pytest.mark.parametrize(
    ("details", "message", "expected"),
    [
        (_quota_body(MINUTE, "38s"), "", 38.0),
        (_quota_body(MINUTE, "1.5s"), "", 1.5),
        (_quota_body(MINUTE, None), "Please retry in 38.9s.", 38.9),
        (_quota_body(MINUTE, None), "", None),
        (
            {
                "error": {
                    "details": [
                        {
                            "@type": "x.google.rpc.RetryInfo",
                            "retryDelay": {"seconds": 2, "nanos": 500000000},
                        }
                    ]
                }
            },
            "",
            2.5,
        ),
        (None, "", None),
        ({"error": {"details": "junk"}}, "", None),
    ],
)
def test_parse_retry_delay(details, message, expected):
    assert parse_retry_delay(details, message) == expected


def test_is_daily_quota_only_for_per_day_ids():
    assert is_daily_quota(_quota_body(DAY))
    assert not is_daily_quota(_quota_body(MINUTE))
    assert not is_daily_quota(None)
