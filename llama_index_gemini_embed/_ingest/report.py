"""What an ingestion run did: :class:`IngestReport`, its failures, and the progress bar.

report = ingest("./docs", embed_model=embed, store=store)
print(report.summary())        # a few human-readable lines
report.to_dict()               # JSON-ready, failures included
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llama_index.core.schema import BaseNode

from llama_index_gemini_embed._usage import UsageSnapshot

__all__ = ["MAX_LISTED_FAILURES", "IngestReport", "NodeFailure", "Progress", "record_failures"]

#: At most this many failed chunks are listed one by one (``failed`` counts all).
MAX_LISTED_FAILURES = 10_000


@dataclass(frozen=True)
class NodeFailure:
    """A chunk that could not be embedded or stored, and why."""

    node_id: str
    doc_id: str
    error_type: str
    message: str


@dataclass
class IngestReport:
    """What one :func:`ingest` run did (or, with ``dry_run``, would do).

    Counts are chunks (nodes) unless named otherwise. ``tokens``/``requests``/``cost_usd``
    are what was sent (estimated by the local token count), or the estimate in a dry run.
    """

    documents: int = 0
    """Documents read from the input."""
    nodes: int = 0
    """Chunks produced by the transformations."""
    embedded: int = 0
    """Chunks embedded by the API in this run."""
    written: int = 0
    """Chunks written to the store (embedded + reused)."""
    reused: int = 0
    """Chunks rewritten with their stored vector (metadata changed or chunk moved): no API cost."""
    skipped: int = 0
    """Unchanged chunks: not embedded, not written."""
    empty: int = 0
    """Empty or whitespace-only chunks, skipped."""
    failed: int = 0
    """Chunks that failed (listed in ``failures``, up to 10,000)."""
    pending: int = 0
    """Chunks a fatal error left unstored: not sent yet, or answered but not yet written.

    A re-run embeds them (the latter: at most ``max_concurrency + 1`` batches plus a
    gathered write of under 100 chunks).
    """
    store_writes: int = 0
    """Store writes made (each an upsert of up to a few hundred chunks): small answered
    batches are gathered into one write."""
    deleted: int = 0
    """Chunks deleted: stale chunks of changed documents and (``sync``) removed documents."""
    deleted_documents: int = 0
    """Documents deleted by ``sync=True`` because they are no longer in the input."""
    modalities: dict[str, int] = field(default_factory=dict)
    """Chunks read per modality: "text", "image", "pdf" (page ranges), "audio", "video"."""
    media_skipped: dict[str, int] = field(default_factory=dict)
    """Media files skipped per modality because the model embeds text only."""
    usage_by_modality: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Items, tokens and estimated ``cost_usd`` per modality ("text", "image", "pdf",
    "audio", "video"): what was sent (the API's per-modality counts where it gave them),
    or in a dry run what would be; each modality at its own price."""
    assumed_prices: list[str] = field(default_factory=list)
    """Modalities in ``usage_by_modality`` whose price is an assumption (unverified)."""
    files_skipped: int = 0
    """Files not read (binary without a reader, or unreadable)."""
    tokens: int = 0
    requests: int = 0
    retries: int = 0
    cost_usd: float = 0.0
    wall_seconds: float = 0.0
    dry_run: bool = False
    to_embed: int = 0
    """Chunks that needed the API (embedded + failed + pending; in a dry run: would need)."""
    estimated_seconds: float | None = None
    """Dry run: time the per-minute quota imposes (None when no quota is configured)."""
    estimated_days: int | None = None
    """Dry run: days needed under the per-day quota (None when none is configured)."""
    fatal_error: str | None = None
    fatal_error_type: str | None = None
    failures: list[NodeFailure] = field(default_factory=list)
    mode: str = "online"
    """"online", or "batch" (Gemini Batch API at half price)."""
    saving_usd: float = 0.0
    """Batch mode: what the batch-embedded tokens saved versus online embedding."""
    batch: dict[str, Any] | None = None
    """Batch mode: the Batch API run report (jobs, states, costs)."""

    @property
    def ok(self) -> bool:
        """True when every chunk was handled: none failed, none left pending, not stopped."""
        return self.failed == 0 and self.pending == 0 and self.fatal_error is None

    @property
    def stopped(self) -> bool:
        """True when a fatal error stopped the run before the input was done."""
        return self.fatal_error is not None

    @property
    def items_per_second(self) -> float:
        """Chunks embedded per second of wall time."""
        return self.embedded / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (failures included)."""
        data = asdict(self)
        data["ok"] = self.ok
        data["items_per_second"] = round(self.items_per_second, 2)
        return data

    def __str__(self) -> str:
        """``print(report)`` shows :meth:`summary` (``repr`` keeps every field)."""
        return self.summary()

    def set_modality_usage(self, usage: UsageSnapshot) -> None:
        """Fill ``usage_by_modality``/``assumed_prices`` from a usage (delta) snapshot."""
        self.usage_by_modality = {
            kind: {"items": part.items, "tokens": part.tokens, "cost_usd": part.cost_usd}
            for kind, part in usage.by_modality.items()
        }
        self.assumed_prices = list(usage.assumed_prices)

    def _cost_line(self) -> str | None:
        """``tokens and cost by modality: text ~1,200 $0.0002, image ~516 $0.0002, …``."""
        if not set(self.usage_by_modality) - {"text"}:
            return None  # text only: the totals line says it all
        rank = {kind: i for i, kind in enumerate(_MODALITY_ORDER)}
        parts = []
        for kind in sorted(self.usage_by_modality, key=lambda k: (rank.get(k, len(rank)), k)):
            used = self.usage_by_modality[kind]
            assumed = " (price assumed, unverified)" if kind in self.assumed_prices else ""
            parts.append(f"{kind} ~{used['tokens']:,} ${used['cost_usd']:.4f}{assumed}")
        return "tokens and cost by modality: " + ", ".join(parts)

    def _media_lines(self) -> list[str]:
        lines = []
        if set(self.modalities) - {"text"}:
            lines.append("by modality: " + _counts(self.modalities))
        cost = self._cost_line()
        if cost is not None:
            lines.append(cost)
        if self.media_skipped:
            lines.append(
                f"{_counts(self.media_skipped)} files skipped: this model embeds text only; "
                "use gemini-embedding-2 (model_name= / --model) to embed images, PDFs, audio "
                "and video"
            )
        return lines

    def summary(self) -> str:
        """A few human-readable lines."""
        if self.dry_run:
            lines = [
                f"dry run: {self.documents} documents, {self.nodes} chunks; "
                f"{self.to_embed} to embed, {self.reused} to rewrite with stored vectors, "
                f"{self.skipped} unchanged, {self.empty} empty, {self.deleted} to delete",
                f"would send ~{self.tokens:,} tokens in {self.requests} requests, "
                f"estimated cost ${self.cost_usd:.4f}",
            ]
            if self.estimated_seconds is not None:
                lines.append(f"time at the configured quota: ~{_duration(self.estimated_seconds)}")
            else:
                lines.append(
                    "time: no per-minute quota configured (set items_per_minute / "
                    "tokens_per_minute, or --rpm / --tpm, to estimate it)"
                )
            if self.estimated_days is not None and self.estimated_days > 1:
                lines.append(f"per-day quota: needs {self.estimated_days} days")
            lines.extend(self._media_lines())
            if self.mode == "batch":
                lines.append(
                    f"batch mode (Gemini Batch API): saves ~${self.saving_usd:.4f} versus "
                    "online; jobs can take up to 24 h"
                )
            return "\n".join(lines)
        lines = [
            f"{self.documents} documents, {self.nodes} chunks: {self.embedded} embedded, "
            f"{self.reused} reused, {self.skipped} unchanged, {self.empty} empty, "
            f"{self.failed} failed; {self.written} written, {self.deleted} deleted"
            + (f" ({self.deleted_documents} removed documents)" if self.deleted_documents else ""),
            f"{self.requests} requests, ~{self.tokens:,} tokens, {self.retries} retries, "
            f"~${self.cost_usd:.4f}, {self.wall_seconds:.1f}s"
            + (f" ({self.items_per_second:.0f} chunks/s)" if self.embedded else ""),
        ]
        groups: dict[tuple[str, str], list[str]] = {}
        for failure in self.failures:
            groups.setdefault((failure.error_type, failure.message), []).append(failure.node_id)
        for (error_type, message), ids in list(groups.items())[:5]:
            more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
            lines.append(f"failed {', '.join(ids[:3])}{more}: {error_type}: {message}")
        if len(groups) > 5:
            lines.append(f"... and {len(groups) - 5} more kinds of failure")
        if self.failed > len(self.failures):
            lines.append(f"({self.failed - len(self.failures)} more failed chunks not listed)")
        lines.extend(self._media_lines())
        if self.files_skipped:
            lines.append(
                f"{self.files_skipped} files not read (binary without a reader, or unreadable); "
                "their stored chunks, if any, are kept"
            )
        if self.mode == "batch":
            lines.append(
                f"batch mode (Gemini Batch API): saved ~${self.saving_usd:.4f} versus online"
                + (
                    f"; {self.pending} chunks still in running jobs: run the same command "
                    "again later to collect them (nothing is paid twice)"
                    if self.pending and self.fatal_error is None
                    else ""
                )
            )
        if self.fatal_error is not None:
            lines.append(
                f"stopped: {self.fatal_error_type}: {self.fatal_error} "
                f"({self.pending} planned chunks not attempted; run again to resume)"
            )
        return "\n".join(lines)


def record_failures(report: IngestReport, nodes: Sequence[BaseNode], error: BaseException) -> None:
    """Count ``nodes`` as failed with ``error``, listing them up to the first 10,000."""
    report.failed += len(nodes)
    error_type = type(error).__name__
    message = str(error)
    room = MAX_LISTED_FAILURES - len(report.failures)
    for node in nodes[: max(0, room)]:
        report.failures.append(
            NodeFailure(node.node_id, node.ref_doc_id or node.node_id, error_type, message)
        )


_MODALITY_ORDER = ("text", "image", "pdf", "audio", "video")


def _counts(counts: dict[str, int]) -> str:
    """``{"image": 2, "text": 3}`` -> ``"3 text, 2 image"`` (in a fixed modality order)."""
    rank = {kind: i for i, kind in enumerate(_MODALITY_ORDER)}
    ordered = sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))
    return ", ".join(f"{n} {kind}" for kind, n in ordered)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """A tqdm bar over chunks; its total is extrapolated until the input is fully read."""

    def __init__(self, enabled: bool, total_docs: int | None) -> None:
        self.total_docs = total_docs
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit="chunk", desc="ingest", dynamic_ncols=True)
        self.nodes = 0

    def planned(self, nodes: int, docs_planned: int, resolved: int) -> None:
        self.nodes += nodes
        if self.bar is None:
            return
        if self.total_docs and docs_planned:
            estimate = math.ceil(self.nodes / docs_planned * max(self.total_docs, docs_planned))
            self.bar.total = max(estimate, self.bar.n + resolved)
        self.resolved(resolved)

    def finished_input(self) -> None:
        if self.bar is not None:
            self.bar.total = self.nodes
            self.bar.refresh()

    def resolved(self, count: int, postfix: str | None = None) -> None:
        if self.bar is None:
            return
        if postfix is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
