"""Table-driven tests of the pure modules: packing, retry decisions, quotas, tasks, tokens."""

from __future__ import annotations

import pytest

from llama_index_gemini_embed._concurrency import AdaptiveLimit
from llama_index_gemini_embed._errors import ConfigurationError, DailyQuotaExceededError
from llama_index_gemini_embed._packing import Item, pack_batches
from llama_index_gemini_embed._quota import QuotaLimiter
from llama_index_gemini_embed._retry import (
    Action,
    Failure,
    RetryPolicy,
    backoff,
    decide,
    is_daily_quota,
    parse_retry_delay,
)
from llama_index_gemini_embed._tasks import normalise_task_type, wire_text
from llama_index_gemini_embed._tokens import estimate_tokens
from llama_index_gemini_embed._usage import Usage


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


# -- batching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "tokens", "max_items", "max_tokens", "sizes"),
    [
        (250, 10, 100, None, [100, 100, 50]),
        (100, 10, 100, None, [100]),
        (1, 10, 100, None, [1]),
        (0, 10, 100, None, []),
        (10, 300, 100, 1000, [3, 3, 3, 1]),
        (3, 5000, 100, 1000, [1, 1, 1]),  # each alone over budget: sent alone
        (7, 1, 2, None, [2, 2, 2, 1]),
    ],
)
def test_pack_batches_sizes(n, tokens, max_items, max_tokens, sizes):
    items = [Item(i, f"t{i}", "RETRIEVAL_DOCUMENT", None, tokens) for i in range(n)]
    batches = list(pack_batches(items, max_items=max_items, max_tokens=max_tokens))
    assert [len(b.items) for b in batches] == sizes
    assert sorted(i.index for b in batches for i in b.items) == list(range(n))


def test_pack_batches_groups_by_task_and_title_and_keeps_order():
    items = [
        Item(0, "a", "RETRIEVAL_DOCUMENT", "T1"),
        Item(1, "b", "RETRIEVAL_DOCUMENT", "T2"),
        Item(2, "c", "RETRIEVAL_DOCUMENT", "T1"),
        Item(3, "d", "RETRIEVAL_QUERY", None),
    ]
    batches = list(pack_batches(items, max_items=100, max_tokens=None))
    keyed = {(b.task_type, b.title): [i.index for i in b.items] for b in batches}
    assert keyed == {
        ("RETRIEVAL_DOCUMENT", "T1"): [0, 2],
        ("RETRIEVAL_DOCUMENT", "T2"): [1],
        ("RETRIEVAL_QUERY", None): [3],
    }


def test_pack_batches_bounds_pending_items_with_many_titles():
    items = (Item(i, "x", "RETRIEVAL_DOCUMENT", f"title{i}") for i in range(10_000))
    seen = 0
    for batch in pack_batches(items, max_items=100, max_tokens=None, max_pending=50):
        seen += len(batch.items)
    assert seen == 10_000


def test_pack_batches_rejects_zero_items():
    with pytest.raises(ValueError, match="max_items"):
        list(pack_batches([], max_items=0, max_tokens=None))


# -- retry decisions ---------------------------------------------------------------------

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


# -- quota accounting ----------------------------------------------------------------------


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
    with pytest.raises(DailyQuotaExceededError, match="requests_per_day=150"):
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


# -- adaptive concurrency -----------------------------------------------------------------


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


# -- tasks and tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "title", "expected"),
    [
        ("RETRIEVAL_QUERY", None, "task: search result | query: hi"),
        ("QUESTION_ANSWERING", None, "task: question answering | query: hi"),
        ("FACT_VERIFICATION", None, "task: fact checking | query: hi"),
        ("CODE_RETRIEVAL_QUERY", None, "task: code retrieval | query: hi"),
        ("CLASSIFICATION", None, "task: classification | query: hi"),
        ("CLUSTERING", None, "task: clustering | query: hi"),
        ("SEMANTIC_SIMILARITY", None, "task: sentence similarity | query: hi"),
        ("RETRIEVAL_DOCUMENT", "Doc", "title: Doc | text: hi"),
        ("RETRIEVAL_DOCUMENT", None, "title: none | text: hi"),
        ("TASK_TYPE_UNSPECIFIED", None, "hi"),
    ],
)
def test_gemini_embedding_2_prefixes(task, title, expected):
    assert wire_text("hi", task, title, prefixes=True) == expected
    assert wire_text("hi", task, title, prefixes=False) == "hi"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("retrieval_query", "RETRIEVAL_QUERY"), ("Semantic-Similarity", "SEMANTIC_SIMILARITY")],
)
def test_normalise_task_type(value, expected):
    assert normalise_task_type(value, "query_task_type") == expected


def test_unknown_task_type_message_lists_valid_names():
    with pytest.raises(
        ConfigurationError,
        match=r"Unknown task type 'RETRIEVAL' for query_task_type: use one of RETRIEVAL_QUERY",
    ):
        normalise_task_type("RETRIEVAL", "query_task_type")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 1), ("hello world", 3), ("a " * 100, 100), ("日本語のテキスト", 8), ("x" * 4000, 1000)],
)
def test_estimate_tokens(text, expected):
    assert estimate_tokens(text) == expected


def test_usage_cost_and_delta():
    usage = Usage(price_per_million_tokens=0.15)
    before = usage.snapshot()
    usage.record_request(items=100, tokens=1_000_000)
    usage.record_retry(throttled=True)
    delta = usage.snapshot() - before
    assert (delta.items, delta.requests, delta.retries, delta.throttled) == (100, 1, 1, 1)
    assert delta.cost_usd == pytest.approx(0.15)
