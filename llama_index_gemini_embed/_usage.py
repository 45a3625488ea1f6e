"""Usage accounting: items, requests, tokens, retries, truncations and cost.

>>> usage = Usage(price_per_million_tokens=0.15)
>>> usage.record_request(items=100, tokens=20_000, estimated=False)
>>> round(usage.snapshot().cost_usd, 4)
0.003
>>> usage.snapshot().token_source
'api'

Tokens are the API's reported counts where it sent them (``usageMetadata``), else our
estimate; ``estimated_tokens`` says how many of ``tokens`` are estimates.

gemini-embedding-2 prices each modality differently: requests that say which of their
tokens are text, image, PDF, audio or video are costed at that modality's price, and
``by_modality`` gives items, tokens and cost per modality (``assumed_prices`` names the
modalities whose price is not verified):

>>> usage = Usage(price_per_million_tokens=0.20, modality_prices={"image": 0.45})
>>> usage.record_request(items=2, tokens=1_000_000, modalities={"text": 500_000, "image": 500_000})
>>> snap = usage.snapshot()
>>> round(snap.cost_usd, 3), round(snap.by_modality["image"].cost_usd, 3)
(0.325, 0.225)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._models import ModelSpec, cost_usd
from ._types import ModalityUsage

__all__ = ["Usage", "UsageSnapshot", "estimate_usage", "usage_for"]


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
    by_modality: dict[str, ModalityUsage] = field(default_factory=dict)
    """Items, tokens and cost per modality ("text", "image", "pdf", "audio", "video"), for
    requests that said which tokens were which (the embedding engine's); empty otherwise."""
    assumed_prices: tuple[str, ...] = ()
    """Modalities in ``by_modality`` costed at a price that is not verified (an assumption,
    see docs/gemini-api.md "Prices per modality"): their cost is an estimate."""

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
        counters = set(self.__dataclass_fields__) - {"by_modality", "assumed_prices"}
        by_modality = {}
        for kind, now in self.by_modality.items():
            old = other.by_modality.get(kind, ModalityUsage())
            if now != old:
                by_modality[kind] = ModalityUsage(
                    now.items - old.items, now.tokens - old.tokens, now.cost_usd - old.cost_usd
                )
        return UsageSnapshot(
            **{name: getattr(self, name) - getattr(other, name) for name in counters},
            by_modality=by_modality,
            assumed_prices=tuple(kind for kind in self.assumed_prices if kind in by_modality),
        )


@dataclass
class Usage:
    """Thread-safe running totals for one embedding model or reranker instance."""

    price_per_million_tokens: float = 0.0
    price_per_million_output_tokens: float = 0.0
    modality_prices: Mapping[str, float] = field(default_factory=dict)
    """USD per million tokens per modality; a modality not listed costs the base price."""
    assumed_modality_prices: frozenset[str] = frozenset()
    """Modalities whose price in ``modality_prices`` is an assumption (not verified)."""
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._counts[name] = self._counts.get(name, 0) + amount

    def record_request(
        self,
        items: int,
        tokens: int,
        output_tokens: int = 0,
        *,
        estimated: bool = True,
        modalities: Mapping[str, int] | None = None,
        modality_items: Mapping[str, int] | None = None,
    ) -> None:
        """A successful request: ``tokens`` billed input tokens, our estimate unless
        ``estimated=False`` (the API reported them); ``modalities`` splits them per
        modality (summing to ``tokens``), ``modality_items`` counts the items that carried
        each modality."""
        per_kind: dict[str, int] = {}
        for kind, count in (modalities or {}).items():
            per_kind[f"tokens:{kind}"] = count
        for kind, count in (modality_items or {}).items():
            per_kind[f"items:{kind}"] = count
        self._add(
            items=items,
            requests=1,
            tokens=tokens,
            output_tokens=output_tokens,
            estimated_tokens=tokens if estimated else 0,
            **per_kind,
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
        by_modality: dict[str, ModalityUsage] = {}
        for name in counts:
            if name.startswith(("items:", "tokens:")):
                kind = name.split(":", 1)[1]
                if kind not in by_modality:
                    kind_tokens = counts.get(f"tokens:{kind}", 0)
                    price = self.modality_prices.get(kind, self.price_per_million_tokens)
                    by_modality[kind] = ModalityUsage(
                        counts.get(f"items:{kind}", 0),
                        kind_tokens,
                        cost_usd(kind_tokens, price),
                    )
        split = sum(part.tokens for part in by_modality.values())
        cost = sum(part.cost_usd for part in by_modality.values()) + cost_usd(
            max(0, tokens - split),  # tokens of requests that gave no split: base price
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
            by_modality=by_modality,
            assumed_prices=tuple(
                sorted(kind for kind in by_modality if kind in self.assumed_modality_prices)
            ),
        )


def usage_for(spec: ModelSpec) -> Usage:
    """Fresh counters priced for ``spec`` (its text price and its per-modality prices)."""
    return Usage(
        price_per_million_tokens=spec.price_per_million_tokens,
        modality_prices=dict(spec.modality_prices),
        assumed_modality_prices=spec.assumed_modality_prices,
    )


def estimate_usage(
    spec: ModelSpec, *, items: int, tokens: int, media_tokens: Mapping[str, int]
) -> UsageSnapshot:
    """What ``tokens`` estimated tokens cost, ``media_tokens`` of them media (per modality)
    and the rest text: a dry run's figures, priced like a real run's.

        >>> from llama_index_gemini_embed._models import model_spec
        >>> snap = estimate_usage(model_spec("gemini-embedding-2"), items=2, tokens=1258,
        ...                       media_tokens={"image": 258})
        >>> snap.by_modality["text"].tokens, round(snap.cost_usd, 6)
        (1000, 0.000316)
    """
    usage = usage_for(spec)
    split = {kind: count for kind, count in media_tokens.items() if count}
    text = max(0, tokens - sum(split.values()))
    if text:
        split["text"] = text
    usage.record_request(items=items, tokens=tokens, modalities=split)
    return usage.snapshot()
