"""Mutable emulator state: quotas, faults, counters, request log, batch jobs and files.

    >>> state = EmulatorState(quota=QuotaConfig(items_per_minute=100), seed=0)
    >>> state.check_quota("gemini-embedding-001", items=100, tokens=500) is None
    True

Everything here is guarded by one lock: handlers run on the server's event loop while tests
call the setters from their own thread.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "BatchBehaviour",
    "BatchJob",
    "Counters",
    "EmulatorState",
    "Fault",
    "FaultConfig",
    "FileRecord",
    "QuotaConfig",
    "QuotaViolation",
    "RequestRecord",
    "format_duration",
    "parse_duration",
]

Clock = Callable[[], float]


def format_duration(seconds: float) -> str:
    """Protobuf-JSON-style duration: ``38.0`` → ``"38s"``, ``1.5`` → ``"1.5s"`` (ms precision)."""
    ms = max(0, math.ceil(round(seconds * 1000.0, 6)))
    whole, frac = divmod(ms, 1000)
    return f"{whole}s" if frac == 0 else f"{whole}.{frac:03d}".rstrip("0") + "s"


def parse_duration(value: str | float | int) -> float:
    """``"2s"`` / ``"1.5s"`` / ``2`` → seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    return float(text[:-1] if text.endswith("s") else text)


# ---------------------------------------------------------------- config types
@dataclass(frozen=True)
class QuotaConfig:
    """Per-model quotas; ``None`` = unlimited. ``window_seconds`` compresses time.

    Items (not HTTP calls) count against ``items_per_minute``/``items_per_day``: a 100-item
    batch uses 100. The day lasts ``window_seconds * 1440`` unless reset by
    ``Emulator.reset_daily_quota()``. ``generate_requests_per_minute`` is a separate
    per-model budget for ``generateContent``.
    """

    items_per_minute: int | None = None
    tokens_per_minute: int | None = None
    items_per_day: int | None = None
    window_seconds: float = 60.0
    generate_requests_per_minute: int | None = None

    @classmethod
    def free_tier(cls, window_seconds: float = 60.0) -> QuotaConfig:
        """The documented free tier: 100 items/min, 30,000 tokens/min, 1,000 items/day."""
        return cls(100, 30_000, 1_000, window_seconds)


FaultKind = Literal["status", "slow", "timeout", "drop", "ok"]
ExhaustedReason = Literal["spend_cap", "prepay_depleted", "limit_zero", "capacity"]
EXHAUSTED_REASONS: tuple[str, ...] = ("spend_cap", "prepay_depleted", "limit_zero", "capacity")


@dataclass(frozen=True)
class Fault:
    """One scripted fault: ``emu.script_faults([Fault.status(429, retry_delay="2s")])``."""

    kind: FaultKind
    code: int = 0
    retry_delay_seconds: float | None = None
    daily: bool = False
    seconds: float | None = None
    message: str | None = None
    reason: str | None = None
    """For 429s that waiting cannot fix (or capacity): see :meth:`exhausted`."""

    @classmethod
    def exhausted(cls, reason: ExhaustedReason, *, retry_delay: str | float | None = None) -> Fault:
        """A 429 that is not a per-minute quota (docs/gemini-api.md §6, "non-quota 429s").

        ``spend_cap``: the project's spend cap is reached; ``prepay_depleted``: prepaid
        credits are used up; ``limit_zero``: the model is not on this tier (every quota
        id, per-minute and per-day together, with ``limit: 0``); ``capacity``:
        ``MODEL_CAPACITY_EXHAUSTED`` (retryable, with RetryInfo).
        """
        if reason not in EXHAUSTED_REASONS:
            raise ValueError(f"reason must be one of {', '.join(EXHAUSTED_REASONS)}")
        delay = None if retry_delay is None else parse_duration(retry_delay)
        return cls("status", code=429, retry_delay_seconds=delay, reason=reason)

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_delay: str | float | None = None,
        daily: bool = False,
        message: str | None = None,
    ) -> Fault:
        """Answer with this HTTP error (429s carry QuotaFailure + RetryInfo)."""
        delay = None if retry_delay is None else parse_duration(retry_delay)
        return cls("status", code=code, retry_delay_seconds=delay, daily=daily, message=message)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` and then answer normally."""
        return cls("slow", seconds=seconds)

    @classmethod
    def timeout(cls, seconds: float | None = None) -> Fault:
        """Hold the request (default: the configured ``timeout_seconds``), then answer 504."""
        return cls("timeout", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Close the TCP connection without any response."""
        return cls("drop")

    @classmethod
    def ok(cls) -> Fault:
        """No fault for this request (also skips the random faults)."""
        return cls("ok")


@dataclass(frozen=True)
class FaultConfig:
    """Random fault rates (see ``Emulator.set_faults``)."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_timeout: float = 0.0
    rate_drop: float = 0.0
    retry_delay_seconds: float = 1.0
    timeout_seconds: float = 30.0

    @property
    def active(self) -> bool:
        return (
            self.rate_429 + self.rate_500 + self.rate_503 + self.rate_timeout + self.rate_drop
        ) > 0.0


@dataclass(frozen=True)
class BatchBehaviour:
    """How new batch jobs progress: ``emu.set_batch_behaviour(polls_until_done=3)``.

    The job is PENDING at creation; the k-th GET sees the final state when
    ``k >= polls_until_done``, else RUNNING when ``k >= polls_until_running``.
    """

    polls_until_running: int = 1
    polls_until_done: int = 2
    final_state: Literal["SUCCEEDED", "FAILED", "EXPIRED"] = "SUCCEEDED"
    item_error_rate: float = 0.0
    item_error_keys: frozenset[str] = frozenset()
    seed: int | None = None
    results_lag_polls: int = 0
    """The job says SUCCEEDED but carries no ``output`` for this many more GETs."""
    answer_mode: Literal["submitted", "inline", "file", "auto"] = "submitted"
    """Where results go: as submitted, always inline, always a responses file, or ``auto``
    (inline up to ``inline_answer_max_items`` items, else a file)."""
    inline_answer_max_items: int = 1000
    item_error_form: Literal["error", "status"] = "error"
    """Per-item errors in a results file as ``{"error": …}`` or ``{"status": …}`` lines."""


# ---------------------------------------------------------------- observations
@dataclass(frozen=True)
class Counters:
    """A snapshot of what the emulator has seen (``emu.counters``).

    ``in_flight``/``max_in_flight``: embedding and generate requests being handled at once
    (now / at most since the last reset), to check a client's concurrency bound.
    """

    requests: int = 0
    embed_requests: int = 0
    embed_items: int = 0
    tokens: int = 0
    truncated_items: int = 0
    generate_requests: int = 0
    count_tokens_requests: int = 0
    batch_jobs_created: int = 0
    batch_items: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    status: dict[int, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    quota: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestRecord:
    """One logged HTTP request. The API key is never recorded (path has no query string).

    ``status`` is 0 when the connection was dropped without a response.
    """

    method: str
    path: str
    status: int
    body: Any = None
    model: str | None = None
    items: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class QuotaViolation:
    """Why a request was refused with 429."""

    kind: Literal["minute_items", "minute_tokens", "day", "generate_minute"]
    limit: int
    retry_delay: float
    model: str


# ---------------------------------------------------------------- batch jobs / files
@dataclass
class FileRecord:
    """A file of the Files API (uploaded input or generated batch output)."""

    id: str
    display_name: str | None
    mime_type: str
    data: bytearray
    expected_size: int | None
    create_time: str
    complete: bool = False
    processing_left: int = 0
    """GETs that still show PROCESSING after the upload finished (media: see
    ``Emulator.set_upload_behaviour``); the file cannot be used until then."""

    @property
    def active(self) -> bool:
        return self.complete and self.processing_left <= 0

    @property
    def name(self) -> str:
        return f"files/{self.id}"


@dataclass
class BatchJob:
    """One ``asyncBatchEmbedContent`` job. ``inputs`` are ``(key, request-or-error)`` pairs."""

    id: str
    model: str
    display_name: str | None
    inputs: list[tuple[str | None, dict[str, Any] | str]]
    file_input: str | None
    behaviour: BatchBehaviour
    create_time: str
    update_time: str
    state: str = "BATCH_STATE_PENDING"
    polls: int = 0
    end_time: str | None = None
    output: dict[str, Any] | None = None
    stats: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    held_output: dict[str, Any] | None = None
    """Results computed at SUCCEEDED but not shown yet (``results_lag_polls``)."""

    @property
    def name(self) -> str:
        return f"batches/{self.id}"

    @property
    def done(self) -> bool:
        return self.state in {
            "BATCH_STATE_SUCCEEDED",
            "BATCH_STATE_FAILED",
            "BATCH_STATE_CANCELLED",
            "BATCH_STATE_EXPIRED",
        }


def rfc3339_now() -> str:
    """Current UTC time as RFC 3339 with microseconds."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


# ---------------------------------------------------------------- the state object
@dataclass
class _Usage:
    minute: deque[tuple[float, int, int]] = field(default_factory=deque)
    minute_items: int = 0
    minute_tokens: int = 0
    day_start: float | None = None
    day_items: int = 0
    generate: deque[float] = field(default_factory=deque)


class EmulatorState:
    """Thread-safe state shared by the server's handlers and the ``Emulator`` facade."""

    def __init__(
        self,
        *,
        quota: QuotaConfig | None = None,
        seed: int = 0,
        clock: Clock = time.monotonic,
        request_log_limit: int = 2000,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.seed = seed
        self.quota = quota or QuotaConfig()
        self._usage: dict[str, _Usage] = {}
        self.fault_config = FaultConfig()
        self._fault_rng = random.Random(seed)
        self._script: deque[Fault] = deque()
        self.jitter_rng = random.Random(seed)
        self._counts: dict[str, int] = {}
        self._status: dict[int, int] = {}
        self._faults: dict[str, int] = {}
        self._quota_hits: dict[str, int] = {}
        self._log: deque[RequestRecord] = deque(maxlen=request_log_limit)
        self.batch_behaviour = BatchBehaviour()
        self.refused_upload_mime_types: frozenset[str] = frozenset()
        self.processing_polls = 0
        self.processing_mime_prefixes: tuple[str, ...] = ("video/",)
        self.batches: dict[str, BatchJob] = {}
        self.files: dict[str, FileRecord] = {}
        self.uploads: dict[str, str] = {}  # upload id -> file id
        self.generated_files: set[str] = set()
        self._ids = 0
        self._in_flight = 0
        self._max_in_flight = 0

    # ------------------------------------------------------------ ids
    def next_id(self, prefix: str) -> str:
        """A short unique id such as ``emb-000003-5f2a``."""
        with self.lock:
            self._ids += 1
            n = self._ids
        return f"{prefix}{n:06d}{random.Random(self.seed * 1_000_003 + n).getrandbits(24):06x}"

    # ------------------------------------------------------------ counters / log
    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def enter(self) -> None:
        """An embedding/generate request started."""
        with self.lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave(self) -> None:
        """An embedding/generate request finished."""
        with self.lock:
            self._in_flight -= 1

    def count_fault(self, kind: str) -> None:
        with self.lock:
            self._faults[kind] = self._faults.get(kind, 0) + 1

    def record(self, rec: RequestRecord) -> None:
        with self.lock:
            self._counts["requests"] = self._counts.get("requests", 0) + 1
            if rec.status:
                self._status[rec.status] = self._status.get(rec.status, 0) + 1
            self._log.append(rec)

    def snapshot(self) -> Counters:
        with self.lock:
            c = self._counts
            return Counters(
                requests=c.get("requests", 0),
                embed_requests=c.get("embed_requests", 0),
                embed_items=c.get("embed_items", 0),
                tokens=c.get("tokens", 0),
                truncated_items=c.get("truncated_items", 0),
                generate_requests=c.get("generate_requests", 0),
                count_tokens_requests=c.get("count_tokens_requests", 0),
                batch_jobs_created=c.get("batch_jobs_created", 0),
                batch_items=c.get("batch_items", 0),
                in_flight=self._in_flight,
                max_in_flight=self._max_in_flight,
                status=dict(self._status),
                faults=dict(self._faults),
                quota=dict(self._quota_hits),
            )

    def request_log(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._log)

    def reset_counters(self) -> None:
        with self.lock:
            self._counts.clear()
            self._status.clear()
            self._faults.clear()
            self._quota_hits.clear()
            self._log.clear()
            self._max_in_flight = self._in_flight

    # ------------------------------------------------------------ quotas
    def set_quota(self, quota: QuotaConfig) -> None:
        with self.lock:
            self.quota = quota

    def reset_daily_quota(self) -> None:
        with self.lock:
            for usage in self._usage.values():
                usage.day_start = None
                usage.day_items = 0

    def reset_quota_usage(self) -> None:
        with self.lock:
            self._usage.clear()

    def _expire(self, usage: _Usage, now: float, window: float) -> None:
        while usage.minute and usage.minute[0][0] <= now - window:
            _, items, tokens = usage.minute.popleft()
            usage.minute_items -= items
            usage.minute_tokens -= tokens

    @staticmethod
    def _delay_until_free(
        entries: Iterable[tuple[float, int]],
        used: int,
        need: int,
        limit: int,
        now: float,
        window: float,
    ) -> float:
        """Seconds until ``used + need <= limit`` as old entries leave the window."""
        excess = used + need - limit
        last = now - window
        for ts, amount in entries:
            last = ts
            excess -= amount
            if excess <= 0:
                break
        return max(0.0, last + window - now) if excess <= 0 else window

    def check_quota(self, model: str, *, items: int, tokens: int) -> QuotaViolation | None:
        """Admit ``items``/``tokens`` for ``model`` now, or say which quota refuses them."""
        with self.lock:
            q = self.quota
            if (
                q.items_per_minute is None
                and q.tokens_per_minute is None
                and q.items_per_day is None
            ):
                return None
            now = self.clock()
            window = q.window_seconds
            usage = self._usage.setdefault(model, _Usage())
            self._expire(usage, now, window)
            day_len = window * 1440.0
            if usage.day_start is None or now - usage.day_start >= day_len:
                usage.day_start = now
                usage.day_items = 0
            violation: QuotaViolation | None = None
            if q.items_per_day is not None and usage.day_items + items > q.items_per_day:
                delay = usage.day_start + day_len - now
                violation = QuotaViolation("day", q.items_per_day, delay, model)
            elif q.items_per_minute is not None and usage.minute_items + items > q.items_per_minute:
                delay = self._delay_until_free(
                    ((ts, n) for ts, n, _ in usage.minute),
                    usage.minute_items,
                    items,
                    q.items_per_minute,
                    now,
                    window,
                )
                violation = QuotaViolation("minute_items", q.items_per_minute, delay, model)
            elif (
                q.tokens_per_minute is not None
                and usage.minute_tokens + tokens > q.tokens_per_minute
            ):
                delay = self._delay_until_free(
                    ((ts, t) for ts, _, t in usage.minute),
                    usage.minute_tokens,
                    tokens,
                    q.tokens_per_minute,
                    now,
                    window,
                )
                violation = QuotaViolation("minute_tokens", q.tokens_per_minute, delay, model)
            if violation is not None:
                self._quota_hits[violation.kind] = self._quota_hits.get(violation.kind, 0) + 1
                return violation
            usage.minute.append((now, items, tokens))
            usage.minute_items += items
            usage.minute_tokens += tokens
            usage.day_items += items
            return None

    def check_generate_quota(self, model: str) -> QuotaViolation | None:
        """Admit one generateContent request for ``model`` or refuse it."""
        with self.lock:
            limit = self.quota.generate_requests_per_minute
            if limit is None:
                return None
            now = self.clock()
            window = self.quota.window_seconds
            usage = self._usage.setdefault(model, _Usage())
            while usage.generate and usage.generate[0] <= now - window:
                usage.generate.popleft()
            if len(usage.generate) + 1 > limit:
                delay = self._delay_until_free(
                    ((ts, 1) for ts in usage.generate), len(usage.generate), 1, limit, now, window
                )
                self._quota_hits["generate_minute"] = self._quota_hits.get("generate_minute", 0) + 1
                return QuotaViolation("generate_minute", limit, delay, model)
            usage.generate.append(now)
            return None

    # ------------------------------------------------------------ faults
    def set_faults(self, config: FaultConfig, seed: int | None) -> None:
        with self.lock:
            self.fault_config = config
            self._fault_rng = random.Random(self.seed if seed is None else seed)

    def script_faults(self, faults: Iterable[Fault]) -> None:
        with self.lock:
            self._script.extend(faults)

    def clear_script(self) -> None:
        with self.lock:
            self._script.clear()

    def next_fault(self) -> Fault | None:
        """The fault for the next embedding/generate request (scripted first, then random)."""
        with self.lock:
            if self._script:
                fault = self._script.popleft()
                return None if fault.kind == "ok" else fault
            cfg = self.fault_config
            if not cfg.active:
                return None
            u = self._fault_rng.random()
            for rate, fault in (
                (cfg.rate_429, Fault.status(429, retry_delay=cfg.retry_delay_seconds)),
                (cfg.rate_500, Fault.status(500)),
                (cfg.rate_503, Fault.status(503)),
                (cfg.rate_timeout, Fault.timeout(cfg.timeout_seconds)),
                (cfg.rate_drop, Fault.drop()),
            ):
                if u < rate:
                    return fault
                u -= rate
            return None

    def jitter(self, latency: float, jitter: float) -> float:
        with self.lock:
            return latency + (self.jitter_rng.uniform(0.0, jitter) if jitter > 0 else 0.0)

    # ------------------------------------------------------------ batches
    def set_batch_behaviour(self, behaviour: BatchBehaviour) -> None:
        with self.lock:
            self.batch_behaviour = behaviour

    def new_behaviour(self) -> BatchBehaviour:
        with self.lock:
            b = self.batch_behaviour
            return b if b.seed is not None else replace(b, seed=self.seed)
