"""Retry decisions for Gemini API failures (pure: no I/O, no clock).

    >>> policy = RetryPolicy(max_retries=3)
    >>> decide(Failure(code=503), attempt=0, policy=policy, rand=0.5).action
    <Action.RETRY: 'retry'>

The one place that decides whether a failure is retried and for how long we wait:
408/429/5xx, timeouts and dropped connections are retried with capped exponential
backoff and jitter; a 429 carrying Gemini's ``RetryInfo.retryDelay`` waits at least that
long. A 429 that waiting minutes cannot fix is never retried (:func:`classify_429`: a
per-day quota, a quota of 0 for this tier, a spending cap, depleted prepaid credits),
while a capacity 429 (``MODEL_CAPACITY_EXHAUSTED``: Google's side) is. A request
that never connected (connection refused, DNS failure) is retried only
``max_connect_retries`` times with short waits: an endpoint that is not there rarely
appears within minutes, so the caller hears about it within seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "RETRYABLE_STATUS",
    "Action",
    "Decision",
    "Failure",
    "QuotaKind",
    "RetryPolicy",
    "classify_429",
    "decide",
    "is_daily_quota",
    "parse_retry_delay",
]

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Action(Enum):
    RETRY = "retry"
    FAIL = "fail"
    FAIL_QUOTA = "fail_quota"
    """A 429 that waiting cannot fix: stop the whole run at once."""


class QuotaKind(Enum):
    """What a 429 means, and so whether waiting helps (see :func:`classify_429`)."""

    RATE = "rate"
    """A per-minute quota: wait (``RetryInfo``) and retry."""
    CAPACITY = "capacity"
    """Google has no capacity for the model right now (not your quota): retry."""
    PER_DAY = "per-day"
    """A per-day quota: nothing succeeds before midnight Pacific."""
    NOT_IN_TIER = "limit-0"
    """The quota is 0 ("limit: 0"): the model is not available on the project's tier."""
    SPEND_CAP = "spend-cap"
    """The billing account's (monthly) spending cap is reached."""
    PREPAY = "prepay"
    """The project's prepaid credits are depleted."""

    @property
    def waiting_helps(self) -> bool:
        return self in (QuotaKind.RATE, QuotaKind.CAPACITY)


@dataclass(frozen=True)
class Failure:
    """What went wrong with one request, reduced to the facts the decision needs."""

    code: int | None = None
    status: str | None = None
    details: Mapping[str, Any] | None = None
    message: str = ""
    transport: bool = False
    """A timeout or connection error: no HTTP status was received."""
    connect: bool = False
    """No connection was ever made (refused, DNS failure): the endpoint is not there."""
    target: str = ""
    """Where we tried to connect (``scheme://host:port``), when the error says."""


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings; ``max_retries`` counts retries after the first attempt."""

    max_retries: int = 8
    initial_delay: float = 1.0
    max_delay: float = 60.0
    exp_base: float = 2.0
    max_server_delay: float = 15 * 60.0
    """A server-requested wait longer than this is not honoured: we give up instead."""
    max_connect_retries: int = 2
    """Retries when no connection could be made at all (also capped by ``max_retries``)."""


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0
    rate_limited: bool = False
    """True for 429s: the caller should lower its concurrency."""
    reason: str = ""
    quota: QuotaKind | None = None
    """For 429s: what kind (see :func:`classify_429`)."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


def _error_body(details: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not details:
        return {}
    inner = details.get("error", details)
    return inner if isinstance(inner, Mapping) else {}


def _detail_entries(details: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    entries = _error_body(details).get("details", [])
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, Mapping)]


def parse_retry_delay(details: Mapping[str, Any] | None, message: str = "") -> float | None:
    """Seconds from ``RetryInfo.retryDelay`` ("38s", "1.5s"), else "Please retry in 38.9s"."""
    for entry in _detail_entries(details):
        if str(entry.get("@type", "")).endswith("google.rpc.RetryInfo"):
            raw = entry.get("retryDelay")
            if isinstance(raw, str):
                match = _DURATION.match(raw)
                if match:
                    return float(match.group(1))
            elif isinstance(raw, Mapping):  # proto form {"seconds": 38, "nanos": ...}
                seconds = float(raw.get("seconds", 0)) + float(raw.get("nanos", 0)) / 1e9
                return seconds
    text = message or str(_error_body(details).get("message", ""))
    match = _RETRY_IN.search(text)
    return float(match.group(1)) if match else None


def is_daily_quota(details: Mapping[str, Any] | None) -> bool:
    """True when a 429's ``QuotaFailure`` names a per-day quota."""
    for entry in _detail_entries(details):
        if str(entry.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            for violation in entry.get("violations", []) or []:
                if isinstance(violation, Mapping) and "PerDay" in str(violation.get("quotaId", "")):
                    return True
    return False


def _reasons(details: Mapping[str, Any] | None) -> list[str]:
    return [
        str(entry.get("reason", ""))
        for entry in _detail_entries(details)
        if str(entry.get("@type", "")).endswith("google.rpc.ErrorInfo")
    ]


def _violations(details: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for entry in _detail_entries(details):
        if str(entry.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            found += [v for v in entry.get("violations", []) or [] if isinstance(v, Mapping)]
    return found


_LIMIT_ZERO = re.compile(r"\blimit:\s*0\b", re.IGNORECASE)


def classify_429(details: Mapping[str, Any] | None, message: str = "") -> QuotaKind:
    """What a 429 means. The checks run from the most specific evidence to the least:

        >>> classify_429(None, "Your prepayment credits are depleted.")
        <QuotaKind.PREPAY: 'prepay'>

    1. ``ErrorInfo.reason == MODEL_CAPACITY_EXHAUSTED`` (or "No capacity available for
       model"): Google's capacity, not the caller's quota, so retrying is right.
    2. Billing states: "prepayment credits are depleted", "exceeded its monthly spending
       cap" (the reported texts; no reason code is documented, so an ``ErrorInfo`` reason
       naming PREPAY or SPEND is read too).
    3. A quota of 0: a violation with ``quotaValue`` 0, or "limit: 0" in the message of
       a 429 that lists per-minute *and* per-day ids together (the reported shape) or
       none at all. The model is not on this tier. This comes before the per-day check,
       since such 429s name per-day ids too. "limit: 0" beside a single per-minute id
       is read as a rate limit: a wrong guess there costs only the retries.
    4. A ``QuotaFailure`` violation whose ``quotaId`` contains ``PerDay``.
    5. Anything else is a per-minute rate limit.
    """
    text = (message or str(_error_body(details).get("message", ""))).lower()
    reasons = " ".join(_reasons(details)).upper()
    if "MODEL_CAPACITY_EXHAUSTED" in reasons or "no capacity available" in text:
        return QuotaKind.CAPACITY
    if "PREPAY" in reasons or "prepayment credit" in text or "prepaid credit" in text:
        return QuotaKind.PREPAY
    if "SPEND" in reasons or any(w in text for w in ("spending cap", "spend cap", "spend limit")):
        return QuotaKind.SPEND_CAP
    violations = _violations(details)
    ids = [str(v.get("quotaId", "")) for v in violations]
    zero_value = any(str(v.get("quotaValue")) == "0" for v in violations)
    both_windows = any("PerDay" in i for i in ids) and any("PerMinute" in i for i in ids)
    if zero_value or (_LIMIT_ZERO.search(text) and (both_windows or not violations)):
        return QuotaKind.NOT_IN_TIER
    if any("PerDay" in i for i in ids):
        return QuotaKind.PER_DAY
    return QuotaKind.RATE


def backoff(attempt: int, policy: RetryPolicy, rand: float) -> float:
    """Capped exponential backoff with "equal jitter": half fixed, half random."""
    exponent = min(attempt, 64)
    ceiling = min(policy.max_delay, policy.initial_delay * math.pow(policy.exp_base, exponent))
    return ceiling / 2 + rand * ceiling / 2


def decide(failure: Failure, *, attempt: int, policy: RetryPolicy, rand: float) -> Decision:
    """Decide what to do after ``failure`` on attempt number ``attempt`` (0 = first).

    ``rand`` is a uniform number in [0, 1) supplied by the caller, so this stays pure.
    """
    quota = classify_429(failure.details, failure.message) if failure.code == 429 else None
    if quota is not None and not quota.waiting_helps:
        return Decision(Action.FAIL_QUOTA, rate_limited=True, reason=quota.value, quota=quota)
    retryable = failure.transport or failure.code in RETRYABLE_STATUS
    if not retryable:
        return Decision(Action.FAIL, reason=f"status {failure.code} is not retryable")
    if failure.connect and attempt >= min(policy.max_connect_retries, policy.max_retries):
        return Decision(Action.FAIL, reason="unreachable")
    if attempt >= policy.max_retries:
        return Decision(
            Action.FAIL,
            rate_limited=failure.code == 429,
            reason="retries exhausted",
            quota=quota,
        )
    delay = backoff(attempt, policy, rand)
    if failure.code == 429:
        server_delay = parse_retry_delay(failure.details, failure.message)
        if server_delay is not None and math.isfinite(server_delay):
            if server_delay > policy.max_server_delay:
                return Decision(
                    Action.FAIL,
                    rate_limited=True,
                    reason=f"server asked to wait {server_delay:.0f}s, over the cap",
                    quota=quota,
                )
            # Wait what the server asked, plus a little jitter so callers do not stampede.
            delay = server_delay + rand * min(1.0, 0.1 * server_delay + 0.05)
        reason = "no capacity at Google" if quota is QuotaKind.CAPACITY else "rate limited"
        return Decision(Action.RETRY, delay=delay, rate_limited=True, reason=reason, quota=quota)
    if failure.connect:
        return Decision(Action.RETRY, delay=delay, reason=failure.message or "cannot connect")
    if failure.transport:
        return Decision(Action.RETRY, delay=delay, reason=failure.message or "connection lost")
    return Decision(
        Action.RETRY, delay=delay, reason=f"{failure.code} {failure.status or ''}".strip()
    )
