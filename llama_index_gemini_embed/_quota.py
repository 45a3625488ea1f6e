"""Client-side quota accounting (pure: the caller passes ``now`` and does the waiting).

    >>> q = QuotaLimiter(items_per_minute=100)
    >>> wait, ticket = q.reserve(items=100, tokens=500, now=0.0)
    >>> wait
    0.0
    >>> q.complete(ticket, now=0.2)                    # the response came back
    >>> q.reserve(items=1, tokens=5, now=1.0)[0] > 0   # must wait for the window to free up
    True

Gemini charges per-minute and per-day quotas per embedded ITEM, not per HTTP call, and a
per-minute token budget. This keeps all three over a sliding window, so a correctly
configured run sees no 429 at all.

The server stamps a request when it arrives, which is after we reserve it and before its
response is back. So a reservation stays in the window while in flight and, once
complete, is re-stamped with its completion time: our window then never frees budget
before the server's does, whatever the latency, without a guessed safety margin.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import ConfigurationError, DailyQuotaExceededError

__all__ = [
    "CountLimits",
    "QuotaLimiter",
    "QuotaSettings",
    "check_quota_limits",
    "shared_limiter",
]


@dataclass(frozen=True)
class CountLimits:
    """A component's per-minute and per-day count limits, under the names it takes them.

    The embedder counts embedded items (``items_per_minute``/``items_per_day``), the
    reranker requests (``requests_per_minute``/``requests_per_day``).
    """

    per_minute: int | None = None
    per_day: int | None = None
    names: tuple[str, str] = ("items_per_minute", "items_per_day")


def check_quota_limits(
    *, counts: CountLimits, tokens_per_minute: int | None, window_seconds: float = 60.0
) -> None:
    """The one check of quota settings, each named as the caller takes it.

        >>> check_quota_limits(counts=CountLimits(100, 1_000), tokens_per_minute=None)
        >>> # CountLimits(0, None) -> ConfigurationError("items_per_minute=0 is invalid:
        >>> #   use at least 1, or None for no limit")

    Raises:
        ConfigurationError: a limit below 1 (or not an integer), or a window <= 0.
    """
    per_minute_name, per_day_name = counts.names
    for name, value in (
        (per_minute_name, counts.per_minute),
        ("tokens_per_minute", tokens_per_minute),
        (per_day_name, counts.per_day),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(
                f"{name}={value!r} is invalid: use at least 1, or None for no limit"
            )
    if not window_seconds > 0:
        raise ConfigurationError(f"quota_window_seconds={window_seconds!r} is invalid: use > 0")


@dataclass(frozen=True)
class QuotaSettings:
    items_per_minute: int | None = None
    tokens_per_minute: int | None = None
    items_per_day: int | None = None
    window_seconds: float = 60.0
    day_seconds: float = 86_400.0


@dataclass
class _Entry:
    stamp: float
    items: int
    tokens: int
    in_flight: bool = True


class QuotaLimiter:
    """Sliding-window budget of items/min, tokens/min and items/day. Thread-safe."""

    def __init__(
        self,
        items_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        items_per_day: int | None = None,
        *,
        window_seconds: float = 60.0,
        day_seconds: float = 86_400.0,
    ) -> None:
        check_quota_limits(
            counts=CountLimits(items_per_minute, items_per_day),
            tokens_per_minute=tokens_per_minute,
            window_seconds=window_seconds,
        )
        self.settings = QuotaSettings(
            items_per_minute, tokens_per_minute, items_per_day, window_seconds, day_seconds
        )
        # The sliding minute: one entry per granted request, keyed by its ticket, so
        # complete() can find it again. Entries leave only once answered AND older than
        # the window (see _expire).
        self._minute: dict[int, _Entry] = {}
        # The day is append-only (stamp, items) in grant order, so the oldest are at the
        # front and expire by popping; _day_items is their running sum.
        self._day: list[tuple[float, int]] = []
        self._day_items = 0
        self._ids = itertools.count(1)
        # reserve()/complete() run on event-loop threads and sync callers alike.
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        s = self.settings
        limits = (s.items_per_minute, s.tokens_per_minute, s.items_per_day)
        return any(v is not None for v in limits)

    def _expire(self, now: float) -> None:
        # A request counts against the minute until `window` seconds after its answer.
        # In-flight requests never expire: the server may stamp them as late as their
        # answer, which has not come yet.
        horizon = now - self.settings.window_seconds
        expired = [
            key
            for key, entry in self._minute.items()
            if not entry.in_flight and entry.stamp <= horizon
        ]
        for key in expired:
            del self._minute[key]
        # The day budget frees items a full day after they were granted (our stamp is
        # earlier than the server's, so this is conservative by the request latency).
        day_horizon = now - self.settings.day_seconds
        while self._day and self._day[0][0] <= day_horizon:
            self._day_items -= self._day.pop(0)[1]

    def _used(self) -> tuple[int, int]:
        entries = self._minute.values()
        return sum(e.items for e in entries), sum(e.tokens for e in entries)

    def reserve(self, items: int, tokens: int, now: float) -> tuple[float, int]:
        """Reserve budget for one request.

        Returns ``(0.0, ticket)`` when granted (pass the ticket to :meth:`complete` when the
        response is back), else ``(seconds to wait before trying again, 0)``.

        Raises:
            DailyQuotaExceededError: the request would exceed ``items_per_day``.
            ValueError: the request alone is larger than a per-minute budget.
        """
        s = self.settings
        # A request bigger than a whole minute's budget could never be granted: waiting
        # would loop forever, so refuse it (the packer keeps requests within the budget).
        if s.items_per_minute is not None and items > s.items_per_minute:
            raise ValueError(f"a request of {items} items exceeds {s.items_per_minute} items/min")
        if s.tokens_per_minute is not None and tokens > s.tokens_per_minute:
            raise ValueError(
                f"a request of {tokens} tokens exceeds {s.tokens_per_minute} tokens/min"
            )
        with self._lock:
            self._expire(now)
            # The day budget is not waited for (hours away): it fails the run at once.
            if s.items_per_day is not None and self._day_items + items > s.items_per_day:
                raise DailyQuotaExceededError(
                    f"The configured daily budget of items_per_day={s.items_per_day} "
                    f"is spent ({self._day_items} used). Gemini's per-day quota resets at "
                    "midnight Pacific time: run again after the reset (ingestion resumes "
                    "where it stopped), or raise items_per_day if your tier allows more.",
                    code=429,
                    status="RESOURCE_EXHAUSTED",
                )
            # Per-minute budgets: if this request does not fit now, compute how long until
            # enough of the oldest usage leaves the window; the longer of the two waits wins.
            # Nothing is reserved on a wait: the caller sleeps and asks again, so requests
            # that fit meanwhile (smaller ones) are not blocked behind it.
            used_items, used_tokens = self._used()
            wait = 0.0
            if s.items_per_minute is not None and used_items + items > s.items_per_minute:
                excess = used_items + items - s.items_per_minute
                wait = max(wait, self._wait_until_free(now, lambda e: e.items, excess))
            if s.tokens_per_minute is not None and used_tokens + tokens > s.tokens_per_minute:
                excess = used_tokens + tokens - s.tokens_per_minute
                wait = max(wait, self._wait_until_free(now, lambda e: e.tokens, excess))
            if wait > 0:
                return wait, 0
            # Granted: book it now (stamp = grant time, in flight) so concurrent callers
            # see it at once; complete() re-stamps it with the answer time.
            ticket = next(self._ids)
            self._minute[ticket] = _Entry(now, items, tokens)
            if s.items_per_day is not None:
                self._day.append((now, items))
                self._day_items += items
            return 0.0, ticket

    def complete(self, ticket: int, now: float, *, tokens: int | None = None) -> None:
        """Mark a granted request as answered at ``now``: its window starts then.

        ``tokens``: the count the API reported, which replaces our reservation (the
        server's token quota counts what it counted, not what we guessed).
        """
        with self._lock:
            entry = self._minute.get(ticket)
            if entry is not None:
                entry.stamp = max(entry.stamp, now)
                entry.in_flight = False
                if tokens is not None:
                    entry.tokens = tokens

    def _wait_until_free(self, now: float, amount: Callable[[_Entry], int], excess: int) -> float:
        # Walk the usage oldest-first, adding up what each entry frees when it leaves the
        # window, until `excess` is freed: that entry's departure time is the wait.
        # Requests still in flight will be stamped no earlier than now, so they count as
        # answered now (the earliest they could leave). If even all of it is not enough
        # (only possible with in-flight usage), wait one window and re-check.
        window = self.settings.window_seconds
        stamps = sorted((now if e.in_flight else e.stamp, amount(e)) for e in self._minute.values())
        freed = 0
        for stamp, value in stamps:
            freed += value
            if freed >= excess:
                return max(stamp + window - now, 1e-3)  # never 0: 0 means "granted"
        return window

    def usage(self, now: float) -> tuple[int, int, int]:
        """(items this window, tokens this window, items today) as of ``now``."""
        with self._lock:
            self._expire(now)
            items, tokens = self._used()
            return items, tokens, self._day_items


_shared: dict[tuple[object, ...], QuotaLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(
    *,
    api_key: str | None,
    scope: tuple[object, ...],
    items_per_minute: int | None,
    tokens_per_minute: int | None,
    items_per_day: int | None,
    window_seconds: float = 60.0,
) -> QuotaLimiter:
    """The limiter for these quotas, shared by every instance using the same key and scope.

    Gemini quotas belong to a project and model, not to an object: two embedding models
    (or a model pickled into worker processes' parents) with one key draw on one budget.
    With no quota configured, each caller gets its own no-op limiter.
    """
    limits = (items_per_minute, tokens_per_minute, items_per_day)

    def build() -> QuotaLimiter:
        return QuotaLimiter(*limits, window_seconds=window_seconds)

    if all(limit is None for limit in limits):
        return build()
    key_id = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    registry_key = (key_id, *scope, *limits, window_seconds)
    with _shared_lock:
        limiter = _shared.get(registry_key)
        if limiter is None:
            limiter = _shared[registry_key] = build()
        return limiter
