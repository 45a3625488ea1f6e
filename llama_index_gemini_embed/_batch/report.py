"""What a Batch API run reports: per-job status lines, per-item failures, the run report.

report = await BatchEmbedder(embed, path).run(items, upsert)
print(report.summary())        # jobs, batch vs online items, cost and saving
report.ok, report.failures, report.pending_keys
for status in await embedder.status():
    print(status.line())       # `gemini-embed batch status`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llama_index_gemini_embed._models import cost_usd

__all__ = ["BatchRunReport", "ItemFailure", "JobOutcome", "JobStatus", "sample", "usd"]


@dataclass(frozen=True)
class JobStatus:
    """One job of the state file, as ``status()``/``cancel()`` and progress events see it."""

    name: str | None
    display_name: str
    state: str
    mode: str
    items: int
    tokens: int
    created: str | None = None
    updated: str | None = None
    error: str | None = None

    def line(self) -> str:
        """One human-readable line, e.g. for ``gemini-embed batch status``."""
        text = (
            f"{self.name or '(not created)'}  {self.state:<11} {self.mode:<6} "
            f"items={self.items:,} tokens={self.tokens:,}"
        )
        if self.created:
            text += f" created={self.created}"
        if self.updated:
            text += f" updated={self.updated}"
        if self.error:
            text += f" error={self.error}"
        return text


@dataclass(frozen=True)
class ItemFailure:
    """A requested key that was not delivered in this run, and why."""

    key: str
    error: str
    message: str


@dataclass
class JobOutcome:
    """What one finished job gave this run."""

    name: str
    state: str
    mode: str
    items: int
    delivered: int = 0
    stale: int = 0
    """Results ignored: the key is no longer requested, its text changed, or it arrived twice."""
    item_errors: int = 0
    message: str = ""


@dataclass
class BatchRunReport:
    """The outcome of :meth:`BatchEmbedder.run`.

    Every requested key ends in exactly one of: delivered (``embedded_batch`` +
    ``embedded_online``), ``failures``, or ``pending_keys`` (its job is still running:
    run again later to collect it).
    """

    model: str = ""
    requested: int = 0
    jobs_submitted: int = 0
    jobs_reattached: int = 0
    jobs_succeeded: int = 0
    jobs_failed: int = 0
    jobs_expired: int = 0
    jobs_cancelled: int = 0
    jobs_pending: int = 0
    jobs_results_missing: int = 0
    """Jobs that reported SUCCEEDED but whose results never appeared within
    ``results_timeout``: their items were embedded online (full price)."""
    embedded_batch: int = 0
    embedded_online: int = 0
    item_errors: int = 0
    """Per-item errors inside succeeded jobs (each retried online)."""
    stale_results: int = 0
    batch_tokens: int = 0
    """Estimated tokens of every successful batch result consumed (what the Batch API bills)."""
    online_tokens: int = 0
    batch_price_per_million: float = 0.0
    online_price_per_million: float = 0.0
    polls: int = 0
    wall_seconds: float = 0.0
    failures: list[ItemFailure] = field(default_factory=list)
    pending_keys: list[str] = field(default_factory=list)
    jobs: list[JobOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Job-level problems, one actionable line each."""

    @property
    def delivered(self) -> int:
        return self.embedded_batch + self.embedded_online

    @property
    def batch_cost_usd(self) -> float:
        return cost_usd(self.batch_tokens, self.batch_price_per_million)

    @property
    def online_equivalent_usd(self) -> float:
        """What the batch-embedded tokens would have cost through online embedding."""
        return cost_usd(self.batch_tokens, self.online_price_per_million)

    @property
    def saving_usd(self) -> float:
        return self.online_equivalent_usd - self.batch_cost_usd

    @property
    def online_cost_usd(self) -> float:
        """Cost of the online fallback (per-item errors, ``fallback_online``)."""
        return cost_usd(self.online_tokens, self.online_price_per_million)

    @property
    def cost_usd(self) -> float:
        return self.batch_cost_usd + self.online_cost_usd

    @property
    def ok(self) -> bool:
        """True when every requested key was delivered."""
        return not self.failures and not self.pending_keys

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in (
            "delivered",
            "batch_cost_usd",
            "online_equivalent_usd",
            "saving_usd",
            "online_cost_usd",
            "cost_usd",
            "ok",
        ):
            data[name] = getattr(self, name)
        return data

    def summary(self) -> str:
        lines = [
            f"Batch jobs ({self.model}): {self.jobs_submitted} submitted, "
            f"{self.jobs_reattached} re-attached; {self.jobs_succeeded} succeeded, "
            f"{self.jobs_failed} failed, {self.jobs_expired} expired, "
            f"{self.jobs_cancelled} cancelled, {self.jobs_pending} still running.",
            f"Items: {self.delivered:,} of {self.requested:,} embedded "
            f"({self.embedded_batch:,} by batch, {self.embedded_online:,} online), "
            f"{len(self.failures):,} failed, {len(self.pending_keys):,} pending.",
            f"Cost: {self.batch_tokens:,} batch tokens ≈ {usd(self.batch_cost_usd)} "
            f"(online: {usd(self.online_equivalent_usd)}, saved {usd(self.saving_usd)}); "
            f"online fallback {self.online_tokens:,} tokens ≈ {usd(self.online_cost_usd)}.",
            f"Polls: {self.polls} in {self.wall_seconds:.1f}s.",
        ]
        lines.extend(self.errors)
        if self.pending_keys:
            lines.append("Run again later (same state file) to collect the pending jobs.")
        return "\n".join(lines)


def usd(amount: float) -> str:
    """Dollars, with enough digits to show small test-sized amounts."""
    return f"${amount:.4f}" if amount >= 0.01 or amount == 0 else f"${amount:.6f}"


def sample(keys: Sequence[str], limit: int = 3) -> str:
    if not keys:
        return ""
    more = ", …" if len(keys) > limit else ""
    return f" ({', '.join(keys[:limit])}{more})"
