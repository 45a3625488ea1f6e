"""What a Batch API run reports: per-job status lines, per-item failures, the run report.

report = await BatchEmbedder(embed, path).run(items, upsert)
print(report.summary())        # jobs, batch vs online items, cost and saving
report.add_online(items, tokens)  # one online request (media, fallbacks): priced per modality
report.ok, report.failures, report.pending_keys
for status in await embedder.status():
    print(status.line())       # `gemini-embed batch status`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llama_index_gemini_embed._embedding.engine import modality_split
from llama_index_gemini_embed._models import cost_usd, model_spec
from llama_index_gemini_embed._packing import Item
from llama_index_gemini_embed._types import ModalityUsage
from llama_index_gemini_embed._usage import Usage, UsageSnapshot

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
    online_modality_tokens: dict[str, int] = field(default_factory=dict)
    """``online_tokens`` per modality ("text", "image", "pdf", "audio", "video"): see
    :meth:`add_online`. Empty: every online token is priced as text."""
    online_modality_items: dict[str, int] = field(default_factory=dict)
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

    def add_online(self, items: Sequence[Item], tokens: int) -> None:
        """Count one answered online request: ``items`` (as ``engine.prepare_items`` makes
        them) embedded for ``tokens`` (the engine's estimate), split per modality the way
        the engine's usage splits a request (media at Google's published rates)."""
        self.online_tokens += tokens
        split, carried = modality_split(items, tokens, None)
        for kind, count in split.items():
            self.online_modality_tokens[kind] = self.online_modality_tokens.get(kind, 0) + count
        for kind, count in carried.items():
            self.online_modality_items[kind] = self.online_modality_items.get(kind, 0) + count

    def _online_usage(self) -> UsageSnapshot | None:
        """The online tokens priced like ``GeminiEmbedding.usage`` prices them."""
        if not self.online_modality_tokens:
            return None
        spec = model_spec(self.model)
        usage = Usage(
            price_per_million_tokens=self.online_price_per_million,
            modality_prices=dict(spec.modality_prices),
            assumed_modality_prices=spec.assumed_modality_prices,
        )
        usage.record_request(
            items=self.embedded_online,
            tokens=self.online_tokens,
            modalities=self.online_modality_tokens,
            modality_items=self.online_modality_items,
        )
        return usage.snapshot()

    @property
    def online_by_modality(self) -> dict[str, ModalityUsage]:
        """Items, tokens and cost of the online part per modality (empty without a split)."""
        usage = self._online_usage()
        return dict(usage.by_modality) if usage is not None else {}

    @property
    def online_assumed_prices(self) -> tuple[str, ...]:
        """Modalities in :attr:`online_by_modality` priced at an unverified price."""
        usage = self._online_usage()
        return usage.assumed_prices if usage is not None else ()

    @property
    def online_cost_usd(self) -> float:
        """Cost of what was embedded online (media, per-item errors, ``fallback_online``),
        each modality at its price."""
        usage = self._online_usage()
        if usage is None:
            return cost_usd(self.online_tokens, self.online_price_per_million)
        return usage.cost_usd

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
            "online_assumed_prices",
            "cost_usd",
            "ok",
        ):
            data[name] = getattr(self, name)
        data["online_by_modality"] = {
            kind: asdict(part) for kind, part in self.online_by_modality.items()
        }
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
            f"online {self.online_tokens:,} tokens ≈ {usd(self.online_cost_usd)}.",
            f"Polls: {self.polls} in {self.wall_seconds:.1f}s.",
        ]
        by_modality = self.online_by_modality
        if set(by_modality) - {"text"}:  # say what the media cost, as ingest's summary does
            assumed = self.online_assumed_prices
            lines.insert(
                3,
                "Online tokens and cost by modality: "
                + ", ".join(
                    f"{kind} ~{part.tokens:,} tokens {usd(part.cost_usd)}"
                    + (" (price assumed, unverified)" if kind in assumed else "")
                    for kind, part in sorted(by_modality.items())
                )
                + ".",
            )
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
