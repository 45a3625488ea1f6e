"""Adaptive concurrency: additive increase, multiplicative decrease on 429 (pure state).

>>> limit = AdaptiveLimit(maximum=8)
>>> limit.on_throttle(now=0.0); limit.current
4
>>> for _ in range(40): limit.on_success()
>>> limit.current
8
"""

from __future__ import annotations

import threading

__all__ = ["AdaptiveLimit"]


class AdaptiveLimit:
    """How many requests may be in flight; halves on throttling, regrows on success."""

    def __init__(self, maximum: int, *, cooldown_seconds: float = 1.0) -> None:
        if maximum < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.maximum = maximum
        self._value = float(maximum)
        self._cooldown = cooldown_seconds
        self._last_cut = float("-inf")
        self._lock = threading.Lock()

    @property
    def current(self) -> int:
        return max(1, int(self._value))

    def on_success(self) -> None:
        with self._lock:
            # About +1 per "round" of current-limit successes.
            self._value = min(float(self.maximum), self._value + 1.0 / max(self._value, 1.0))

    def on_throttle(self, now: float) -> None:
        """Halve the limit, at most once per cooldown (one burst of 429s is one signal)."""
        with self._lock:
            if now - self._last_cut < self._cooldown:
                return
            self._last_cut = now
            self._value = max(1.0, self._value / 2.0)
