"""Client-side quota accounting (pure: the caller passes ``now`` and does the waiting).

    >>> q = QuotaLimiter(items_per_minute=100)
    >>> q.reserve(items=100, tokens=500, now=0.0)
    0.0
    >>> q.reserve(items=1, tokens=5, now=1.0) > 0   # must wait for the window to free up
    True

Gemini charges per-minute and per-day quotas per embedded ITEM, not per HTTP call, and a
per-minute token budget. This keeps all three over a sliding window (with a small
safety margin, because the server stamps a request later than we do), so a correctly
configured run sees no 429 at all.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import DailyQuotaExceededError

__all__ = ["QuotaLimiter", "QuotaSettings"]

_Amount = Callable[[tuple[float, int, int]], int]


def _items_of(entry: tuple[float, int, int]) -> int:
    return entry[1]


def _tokens_of(entry: tuple[float, int, int]) -> int:
    return entry[2]


@dataclass(frozen=True)
class QuotaSettings:
    items_per_minute: int | None = None
    tokens_per_minute: int | None = None
    items_per_day: int | None = None
    window_seconds: float = 60.0
    day_seconds: float = 86_400.0
    safety_seconds: float = 0.5


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
        safety_seconds: float = 0.5,
    ) -> None:
        for name, value in (
            ("requests_per_minute", items_per_minute),
            ("tokens_per_minute", tokens_per_minute),
            ("requests_per_day", items_per_day),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no limit), got {value}")
        self.settings = QuotaSettings(
            items_per_minute,
            tokens_per_minute,
            items_per_day,
            window_seconds,
            day_seconds,
            safety_seconds,
        )
        self._minute: deque[tuple[float, int, int]] = deque()
        self._day: deque[tuple[float, int]] = deque()
        self._minute_items = 0
        self._minute_tokens = 0
        self._day_items = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        s = self.settings
        return any(
            v is not None for v in (s.items_per_minute, s.tokens_per_minute, s.items_per_day)
        )

    def _expire(self, now: float) -> None:
        horizon = now - (self.settings.window_seconds + self.settings.safety_seconds)
        while self._minute and self._minute[0][0] <= horizon:
            _, items, tokens = self._minute.popleft()
            self._minute_items -= items
            self._minute_tokens -= tokens
        day_horizon = now - self.settings.day_seconds
        while self._day and self._day[0][0] <= day_horizon:
            self._day_items -= self._day.popleft()[1]

    def reserve(self, items: int, tokens: int, now: float) -> float:
        """Reserve budget for one request: 0.0 if granted, else seconds to wait and retry.

        Raises:
            DailyQuotaExceededError: the request would exceed ``items_per_day``.
            ValueError: the request alone is larger than a per-minute budget.
        """
        s = self.settings
        if s.items_per_minute is not None and items > s.items_per_minute:
            raise ValueError(f"a request of {items} items exceeds {s.items_per_minute} items/min")
        if s.tokens_per_minute is not None and tokens > s.tokens_per_minute:
            raise ValueError(
                f"a request of {tokens} tokens exceeds {s.tokens_per_minute} tokens/min"
            )
        with self._lock:
            self._expire(now)
            if s.items_per_day is not None and self._day_items + items > s.items_per_day:
                raise DailyQuotaExceededError(
                    f"The configured daily budget of requests_per_day={s.items_per_day} items "
                    f"is spent ({self._day_items} used). Gemini's per-day quota resets at "
                    "midnight Pacific time: run again after the reset (ingestion resumes "
                    "where it stopped), or raise requests_per_day if your tier allows more.",
                    code=429,
                    status="RESOURCE_EXHAUSTED",
                )
            wait = 0.0
            span = s.window_seconds + s.safety_seconds
            if s.items_per_minute is not None and self._minute_items + items > s.items_per_minute:
                wait = max(
                    wait,
                    self._wait_until_free(
                        now,
                        span,
                        lambda entry: entry[1],
                        self._minute_items + items - s.items_per_minute,
                    ),
                )
            if (
                s.tokens_per_minute is not None
                and self._minute_tokens + tokens > s.tokens_per_minute
            ):
                wait = max(
                    wait,
                    self._wait_until_free(
                        now,
                        span,
                        lambda entry: entry[2],
                        self._minute_tokens + tokens - s.tokens_per_minute,
                    ),
                )
            if wait > 0:
                return wait
            self._minute.append((now, items, tokens))
            self._minute_items += items
            self._minute_tokens += tokens
            if s.items_per_day is not None:
                self._day.append((now, items))
                self._day_items += items
            return 0.0

    def _wait_until_free(
        self,
        now: float,
        span: float,
        amount: _Amount,
        excess: int,
    ) -> float:
        freed = 0
        for entry in self._minute:
            freed += amount(entry)
            if freed >= excess:
                return max(entry[0] + span - now, 1e-3)
        return span

    def usage(self, now: float) -> tuple[int, int, int]:
        """(items this window, tokens this window, items today) as of ``now``."""
        with self._lock:
            self._expire(now)
            return self._minute_items, self._minute_tokens, self._day_items
