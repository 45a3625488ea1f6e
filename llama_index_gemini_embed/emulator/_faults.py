"""Quota and fault answers: the 429s and injected errors the emulator sends, as Google shapes them.

    raise quota_error(violation)        # a real per-minute/per-day 429 with RetryInfo
    raise exhausted_error("limit_zero", model="gemini-embedding-001", generate=False,
                          retry_delay=None)   # a 429 that waiting cannot fix

Which quota a request breaks is decided in ``_state.EmulatorState``; when a scripted or random
fault fires is decided there too. This module only builds the error bodies (sources in
docs/gemini-api.md §6 and §6b).
"""

from __future__ import annotations

from typing import Any

from ._facts import QUOTA_IDS
from ._protocol import ApiError, bare_model
from ._state import QuotaViolation, format_duration

__all__ = ["RATE_LIMIT_DOCS", "exhausted_error", "fault_error", "quota_error"]

DEFAULT_MESSAGES: dict[int, str] = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    502: "Bad gateway.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

RATE_LIMIT_DOCS = "https://ai.google.dev/gemini-api/docs/rate-limits"


def _rate_limit_error(
    kind: str, limit: int | None, model: str, retry_delay: float | None, message: str | None
) -> ApiError:
    metric, quota_id = QUOTA_IDS[kind]
    bare = bare_model(model)
    violation: dict[str, Any] = {
        "quotaMetric": metric,
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": bare},
    }
    if limit is not None:
        violation["quotaValue"] = str(limit)
    if message is None:
        message = (
            "You exceeded your current quota, please check your plan and billing details. "
            f"For more information on this error, head to: {RATE_LIMIT_DOCS}.\n"
            f"* Quota exceeded for metric: {metric}, limit: {limit if limit is not None else 0}, "
            f"model: {bare}"
        )
        if retry_delay is not None:
            message += f"\nPlease retry in {format_duration(retry_delay)}."
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {"description": "Learn more about Gemini API quotas", "url": RATE_LIMIT_DOCS}
            ],
        },
    ]
    if retry_delay is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format_duration(retry_delay),
            }
        )
    return ApiError(429, message, details=details)


def quota_error(v: QuotaViolation) -> ApiError:
    """The real 429 body for a quota refusal, with RetryInfo = time until it would fit."""
    return _rate_limit_error(v.kind, v.limit, v.model, v.retry_delay, None)


INJECTED_LIMITS: dict[str, int] = {
    # An injected quota 429 names a real, non-zero limit ("limit: 0" means "not on your
    # tier"): the free-tier values (docs/gemini-api.md §6); generate values are typical.
    "minute_items": 100,
    "minute_tokens": 30_000,
    "day": 1_000,
    "generate_minute": 15,
    "generate_day": 1_000,
}

SPEND_CAP_MESSAGE = (
    "Your billing account has exceeded its monthly spending cap. Please review the spend "
    "cap of your project in AI Studio."
)
PREPAY_MESSAGE = (
    "Your prepayment credits are depleted. Please go to AI Studio at "
    "https://ai.studio/projects to manage your project and billing."
)
CAPACITY_MESSAGE = "No capacity available for model {model} on the server"


def _error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "generativelanguage.googleapis.com",
    }


def exhausted_error(
    reason: str, *, model: str, generate: bool, retry_delay: float | None
) -> ApiError:
    """429s that are not a per-minute quota (bodies partly UNVERIFIED, see docs/gemini-api.md).

    ``capacity``: gemini-cli#26633 (``MODEL_CAPACITY_EXHAUSTED``); ``limit_zero``: real
    bodies in continue#10062 / gemini-cli#8437 list every metric with ``limit: 0`` and
    per-minute and per-day quota ids together; prepay: the text of real answers
    (discuss.ai.google.dev/t/170539, no details); spend cap: the first sentence of a real
    answer (help.apiyi.com "ai-studio-monthly-spending-cap-429"), the rest ours.
    """
    bare = bare_model(model)
    if reason == "capacity":
        details = [_error_info("MODEL_CAPACITY_EXHAUSTED")]
        delay = 30.0 if retry_delay is None else retry_delay
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format_duration(delay),
            }
        )
        return ApiError(429, CAPACITY_MESSAGE.format(model=bare), details=details)
    if reason == "spend_cap":
        return ApiError(429, SPEND_CAP_MESSAGE)  # no details: only the text tells (see docs)
    if reason == "prepay_depleted":
        return ApiError(429, PREPAY_MESSAGE)
    kinds = (
        ("generate_minute", "generate_day")
        if generate
        else ("minute_items", "minute_tokens", "day")
    )
    violations = []
    lines = []
    for kind in kinds:
        metric, quota_id = QUOTA_IDS[kind]
        violations.append(
            {
                "quotaMetric": metric,
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": bare},
                "quotaValue": "0",
            }
        )
        lines.append(f"* Quota exceeded for metric: {metric}, limit: 0, model: {bare}")
    delay = 20.0 if retry_delay is None else retry_delay
    message = (
        "You exceeded your current quota, please check your plan and billing details. "
        f"For more information on this error, head to: {RATE_LIMIT_DOCS}.\n"
        + "\n".join(lines)
        + f"\nPlease retry in {format_duration(delay)}."
    )
    return ApiError(
        429,
        message,
        details=[
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": violations},
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {"description": "Learn more about Gemini API quotas", "url": RATE_LIMIT_DOCS}
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format_duration(delay),
            },
        ],
    )


def fault_error(
    code: int,
    *,
    model: str,
    generate: bool,
    retry_delay: float | None,
    daily: bool,
    message: str | None,
    reason: str | None = None,
) -> ApiError:
    """An injected error: 429s look like real quota errors (per-minute unless ``daily``),
    or one of the non-quota 429s when ``reason`` is set (see :func:`exhausted_error`)."""
    if code == 429 and reason is not None:
        return exhausted_error(reason, model=model, generate=generate, retry_delay=retry_delay)
    if code == 429:
        if daily:
            kind = "generate_day" if generate else "day"
        else:
            kind = "generate_minute" if generate else "minute_items"
            retry_delay = 1.0 if retry_delay is None else retry_delay
        return _rate_limit_error(kind, INJECTED_LIMITS[kind], model, retry_delay, message)
    return ApiError(code, message or DEFAULT_MESSAGES.get(code, "Injected fault."))
