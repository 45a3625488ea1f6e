"""429s that waiting cannot fix stop a run at once and say which; capacity 429s are retried.

Issue 13 §5. Bodies are the real ones reported by users (cited in docs/gemini-api.md
§Quota 429s), served by the emulator's injected-fault hook with the real SDK on loopback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from llama_index.core import Document

from llama_index_gemini_embed import (
    ChromaStore,
    DailyQuotaExceededError,
    GeminiEmbedding,
    QuotaBlockedError,
    QuotaExhaustedError,
    ingest,
)
from llama_index_gemini_embed._retry import (
    Action,
    Failure,
    QuotaKind,
    RetryPolicy,
    classify_429,
    decide,
)
from llama_index_gemini_embed.emulator import Emulator, Fault
from tests.fakes import FakeTime

PREPAY = (
    "Your prepayment credits are depleted. Please go to AI Studio at https://ai.studio/projects "
    "to manage your project and billing."
)
SPEND_CAP = (
    "Your billing account has exceeded its monthly spending cap. Please go to AI Studio at "
    "https://aistudio.google.com to manage your billing."
)
LIMIT_ZERO = (
    "You exceeded your current quota, please check your plan and billing details. \n"
    "* Quota exceeded for metric: generativelanguage.googleapis.com/"
    "embed_content_free_tier_requests, limit: 0, model: gemini-embedding-001\n"
    "Please retry in 11.767792953s."
)
CAPACITY = "No capacity available for model gemini-embedding-001 on the server"


def _body(message: str, *details: dict[str, Any]) -> dict[str, Any]:
    return {
        "error": {
            "code": 429,
            "message": message,
            "status": "RESOURCE_EXHAUSTED",
            "details": list(details),
        }
    }


def _violation(quota_id: str, value: str = "100") -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaId": quota_id, "quotaValue": value}],
    }


CAPACITY_INFO = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "MODEL_CAPACITY_EXHAUSTED",
    "domain": "cloudcode-pa.googleapis.com",
}
MINUTE_ID = "EmbedContentRequestsPerMinutePerUserPerProjectPerModel-FreeTier"
DAY_ID = "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (_body("You exceeded your current quota.", _violation(MINUTE_ID)), QuotaKind.RATE),
        (_body("You exceeded your current quota.", _violation(DAY_ID)), QuotaKind.PER_DAY),
        (_body(PREPAY), QuotaKind.PREPAY),
        (_body(SPEND_CAP), QuotaKind.SPEND_CAP),
        # "limit: 0" lists per-minute and per-day ids together: not a per-day quota.
        (_body(LIMIT_ZERO, _violation(MINUTE_ID), _violation(DAY_ID)), QuotaKind.NOT_IN_TIER),
        (_body("quota", _violation(DAY_ID, value="0")), QuotaKind.NOT_IN_TIER),
        (_body(LIMIT_ZERO), QuotaKind.NOT_IN_TIER),  # the OpenAI-compatible route: no details
        (_body(LIMIT_ZERO, _violation(MINUTE_ID)), QuotaKind.RATE),  # one window: ambiguous
        (_body(CAPACITY, CAPACITY_INFO), QuotaKind.CAPACITY),
        (_body("Resource has been exhausted (e.g. check quota)."), QuotaKind.RATE),
    ],
)
def test_classify_429(body: dict[str, Any], kind: QuotaKind) -> None:
    assert classify_429(body) is kind
    failure = Failure(code=429, details=body, message=body["error"]["message"])
    decision = decide(failure, attempt=0, policy=RetryPolicy(), rand=0.5)
    assert decision.quota is kind
    expected = Action.RETRY if kind.waiting_helps else Action.FAIL_QUOTA
    assert decision.action is expected


def _embed(emu: Emulator, fake: FakeTime, **kwargs: Any) -> GeminiEmbedding:
    return GeminiEmbedding(
        api_key=emu.api_key,
        base_url=emu.base_url,
        output_dimensionality=128,
        clock=fake.clock,
        sleep=fake.sleep,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("message", "daily", "kind", "says"),
    [
        (PREPAY, False, "prepay", "prepaid credits are depleted"),
        (SPEND_CAP, False, "spend-cap", "spending cap is reached"),
    ],
)
def test_unfixable_429_stops_at_once_saying_which(
    emulator: Emulator, message: str, daily: bool, kind: str, says: str
) -> None:
    fake = FakeTime()
    emulator.script_faults([Fault.status(429, message=message, daily=daily)])
    with pytest.raises(QuotaBlockedError) as info:
        _embed(emulator, fake).get_text_embedding("hello")
    error = info.value
    assert fake.sleeps == [], "no retry: waiting cannot fix this 429"
    assert error.kind == kind and error.code == 429
    assert not isinstance(error, DailyQuotaExceededError)
    assert says in str(error) and "\n" not in str(error)
    assert "Waiting will not help" in str(error)


@pytest.mark.parametrize(
    ("reason", "kind"),
    [("limit_zero", "limit-0"), ("spend_cap", "spend-cap"), ("prepay_depleted", "prepay")],
)
def test_emulator_s_non_quota_429s_stop_at_once(
    emulator: Emulator, reason: Literal["limit_zero", "spend_cap", "prepay_depleted"], kind: str
) -> None:
    fake = FakeTime()
    emulator.script_faults([Fault.exhausted(reason)])
    with pytest.raises(QuotaBlockedError) as info:
        _embed(emulator, fake).get_text_embedding("hello")
    assert info.value.kind == kind and fake.sleeps == []
    assert not isinstance(info.value, DailyQuotaExceededError)


def test_emulator_s_capacity_429_is_retried(emulator: Emulator) -> None:
    fake = FakeTime()
    emulator.script_faults([Fault.exhausted("capacity")])
    assert len(_embed(emulator, fake).get_text_embedding("hello")) == 128
    assert len(fake.sleeps) == 1 and fake.sleeps[0] >= 30.0  # its RetryInfo


def test_per_day_429_is_still_a_daily_quota_error(emulator: Emulator) -> None:
    fake = FakeTime()
    emulator.script_faults([Fault.status(429, daily=True)])
    with pytest.raises(DailyQuotaExceededError) as info:
        _embed(emulator, fake).get_text_embedding("hello")
    assert info.value.kind == "per-day" and fake.sleeps == []
    assert "midnight Pacific" in str(info.value)


def test_capacity_429_is_retried(emulator: Emulator) -> None:
    fake = FakeTime()
    emulator.script_faults([Fault.status(429, message=CAPACITY, retry_delay="3s")] * 2)
    vector = _embed(emulator, fake).get_text_embedding("hello")
    assert len(vector) == 128
    assert len(fake.sleeps) == 2 and all(s >= 3.0 for s in fake.sleeps)


def test_capacity_429_after_every_retry_says_it_is_google_s_side(emulator: Emulator) -> None:
    fake = FakeTime()
    emulator.script_faults([Fault.status(429, message=CAPACITY, retry_delay="1s")] * 3)
    with pytest.raises(QuotaExhaustedError) as info:
        _embed(emulator, fake, max_retries=2).get_text_embedding("hello")
    assert not isinstance(info.value, QuotaBlockedError)
    assert "MODEL_CAPACITY_EXHAUSTED" in str(info.value) and "not your quota" in str(info.value)


def test_ingest_stops_at_the_first_unfixable_429(emulator: Emulator, tmp_path: Path) -> None:
    fake = FakeTime()
    embed = _embed(emulator, fake, embed_batch_size=5, max_concurrency=1)
    docs = [Document(id_=f"d{i}", text=f"document number {i} about things") for i in range(50)]
    store = ChromaStore("blocked", path=str(tmp_path / "chroma"))
    emulator.script_faults([Fault.ok(), Fault.status(429, message=PREPAY)])
    with pytest.raises(QuotaBlockedError) as info:
        ingest(docs, store=store, embed_model=embed, show_progress=False)
    report = info.value.report
    assert report is not None and report.fatal_error_type == "QuotaBlockedError"
    assert report.pending > 0, "the run stopped instead of trying every remaining request"
    assert fake.sleeps == []
    assert emulator.counters.faults["429"] == 1
    store.close()
