"""Usage accounting: items, requests, tokens, retries, truncations and cost.

>>> usage = Usage(price_per_million_tokens=0.15)
>>> usage.record_request(items=100, tokens=20_000, estimated=False)
>>> round(usage.snapshot().cost_usd, 4)
0.003
>>> usage.snapshot().token_source
'api'

Tokens are the API's reported counts where it sent them (``usageMetadata``), else our
estimate; ``estimated_tokens`` says how many of ``tokens`` are estimates.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ._models import cost_usd

__all__ = ["Usage", "UsageSnapshot"]


@dataclass(frozen=True)
class UsageSnapshot:
    """A consistent copy of the counters at one moment."""

    items: int = 0
    requests: int = 0
    tokens: int = 0
    retries: int = 0
    throttled: int = 0
    truncated: int = 0
    failed_items: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    estimated_tokens: int = 0
    """How many of ``tokens`` are our estimate (the API reported no count for them)."""

    @property
    def token_source(self) -> str:
        """Where ``tokens`` (and so ``cost_usd``) come from: ``api`` (counts the API
        reported), ``estimate`` (ours), ``mixed``, or ``none`` (no tokens yet)."""
        if self.tokens == 0:
            return "none"
        if self.estimated_tokens == 0:
            return "api"
        return "estimate" if self.estimated_tokens >= self.tokens else "mixed"

    def __sub__(self, other: UsageSnapshot) -> UsageSnapshot:
        return UsageSnapshot(
            **{
                name: getattr(self, name) - getattr(other, name)
                for name in self.__dataclass_fields__
            }
        )


@dataclass
class Usage:
    """Thread-safe running totals for one embedding model or reranker instance."""

    price_per_million_tokens: float = 0.0
    price_per_million_output_tokens: float = 0.0
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._counts[name] = self._counts.get(name, 0) + amount

    def record_request(
        self, items: int, tokens: int, output_tokens: int = 0, *, estimated: bool = True
    ) -> None:
        """A successful request: ``tokens`` billed input tokens, our estimate unless
        ``estimated=False`` (the API reported them)."""
        self._add(
            items=items,
            requests=1,
            tokens=tokens,
            output_tokens=output_tokens,
            estimated_tokens=tokens if estimated else 0,
        )

    def record_retry(self, throttled: bool) -> None:
        self._add(retries=1, throttled=1 if throttled else 0)

    def record_truncated(self, count: int = 1) -> None:
        self._add(truncated=count)

    def record_failed(self, items: int) -> None:
        self._add(failed_items=items)

    def snapshot(self) -> UsageSnapshot:
        with self._lock:
            counts = dict(self._counts)
        tokens = counts.get("tokens", 0)
        output = counts.get("output_tokens", 0)
        cost = cost_usd(
            tokens,
            self.price_per_million_tokens,
            output_tokens=output,
            output_price_per_million_tokens=self.price_per_million_output_tokens,
        )
        return UsageSnapshot(
            items=counts.get("items", 0),
            requests=counts.get("requests", 0),
            tokens=tokens,
            retries=counts.get("retries", 0),
            throttled=counts.get("throttled", 0),
            truncated=counts.get("truncated", 0),
            failed_items=counts.get("failed_items", 0),
            output_tokens=output,
            cost_usd=cost,
            estimated_tokens=counts.get("estimated_tokens", 0),
        )
