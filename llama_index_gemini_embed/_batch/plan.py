"""Pure planning for Gemini Batch API embeddings: job packing, keys, sizes, cost.

    items = [PlanItem("doc#0", item_digest(text, "RETRIEVAL_DOCUMENT", "Doc"), text,
                      "RETRIEVAL_DOCUMENT", "Doc", tokens=120), ...]
    for job in plan_jobs(items, dimension=768, max_items_per_job=10_000,
                         max_inline_bytes=19_000_000, result_dimension=768):
        job.mode        # "inline": one shared config, small enough; else "file" (JSONL)
    batch_cost(1_000_000, model_spec("gemini-embedding-001")).saving_usd   # 0.075

No I/O: :mod:`.jobs` submits, polls and downloads; :mod:`.state` keeps the state file.

* **Inline or file.** An inline batch carries ONE ``EmbedContentConfig`` for every item and
  must stay under ~20 MB, so a job is inline only when all its items share (task type,
  title), the serialized request fits ``max_inline_bytes`` and the expected results fit
  ``max_inline_response_bytes``; anything else becomes a JSONL file where each line
  carries its own request (per-item titles work there, at no extra cost).
* **Keys.** Every item is ``(key, digest)``: the caller's id and a hash of exactly what the
  API embeds (wire text, task type, title). A result is used only when both still match
  what the caller asks for, so a changed document never receives a stale vector.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from llama_index_gemini_embed._models import ModelSpec, cost_usd

from .state import JobMode

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_INLINE_RESPONSE_BYTES",
    "CostEstimate",
    "JobPlan",
    "PlanItem",
    "batch_cost",
    "expected_result_bytes",
    "inline_request_bytes",
    "item_digest",
    "jsonl_line",
    "jsonl_payload",
    "next_poll_delay",
    "plan_jobs",
]

#: The Files API takes input files up to 2 GB; stay well below.
MAX_FILE_BYTES = 1_000_000_000

#: Envelope of an inline ``asyncBatchEmbedContent`` body, beyond the items themselves.
_INLINE_OVERHEAD = 512

#: Largest expected *response* of an inline job: inline results come back inside the job
#: (every ``batches.get`` after success carries them), so they are kept to about the size
#: of the documented inline request cap (20 MB); bigger jobs go through a file.
MAX_INLINE_RESPONSE_BYTES = 20_000_000

#: JSON bytes per embedding value in a result (one 3072-d item measured ~38.9 KB, i.e.
#: ~12.7 bytes a value; rounded up for longer float spellings) and per result envelope.
_RESULT_BYTES_PER_VALUE = 16
_RESULT_BYTES_PER_ITEM = 128


# ----------------------------------------------------------------------------- items


@dataclass(frozen=True)
class PlanItem:
    """One text as the API receives it, under the caller's ``key``.

    ``text``/``task_type``/``title`` are the *wire* values (prefixes applied for
    gemini-embedding-2, title only with RETRIEVAL_DOCUMENT); ``tokens`` is the billed estimate.
    """

    key: str
    digest: str
    text: str
    task_type: str | None
    title: str | None
    tokens: int


def item_digest(text: str, task_type: str | None, title: str | None) -> str:
    """A short hash of what the API embeds: a stored result is used only if it matches.

    >>> item_digest("a", "RETRIEVAL_DOCUMENT", None) == item_digest("a", "RETRIEVAL_DOCUMENT", None)
    True
    >>> item_digest("a", "RETRIEVAL_DOCUMENT", None) == item_digest("a", "RETRIEVAL_DOCUMENT", "T")
    False
    """
    raw = json.dumps([text, task_type, title], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _request(item: PlanItem, dimension: int | None, *, camel: bool) -> dict[str, Any]:
    """The item's ``EmbedContentRequest`` as JSON: camelCase as the SDK sends inline
    requests, snake_case as Google's JSONL examples write file lines."""
    names = (
        ("taskType", "outputDimensionality") if camel else ("task_type", "output_dimensionality")
    )
    request: dict[str, Any] = {"content": {"parts": [{"text": item.text}]}}
    if camel:
        request["content"]["role"] = "user"
    if item.task_type is not None:
        request[names[0]] = item.task_type
    if item.title is not None:
        request["title"] = item.title
    if dimension is not None:
        request[names[1]] = dimension
    return request


def inline_request_bytes(item: PlanItem, dimension: int | None) -> int:
    """Upper bound of the item's bytes in an inline request body (the SDK escapes non-ASCII)."""
    request = _request(item, dimension, camel=True)
    return len(json.dumps({"request": request}, ensure_ascii=True)) + 2


def expected_result_bytes(items: int, dimension: int) -> int:
    """Upper estimate of the JSON bytes of ``items`` embedding results of ``dimension``.

    >>> expected_result_bytes(10_000, 768)
    124160000
    """
    return items * (_RESULT_BYTES_PER_ITEM + _RESULT_BYTES_PER_VALUE * dimension)


def jsonl_line(item: PlanItem, dimension: int | None) -> bytes:
    """One Batch API input line: ``{"key": ..., "request": {...}}`` with its own config."""
    request = _request(item, dimension, camel=False)
    line = json.dumps({"key": item.key, "request": request}, ensure_ascii=False)
    return line.encode() + b"\n"


def jsonl_payload(items: Iterable[PlanItem], dimension: int | None) -> bytes:
    """The JSONL input file for a file-mode job."""
    return b"".join(jsonl_line(item, dimension) for item in items)


# ----------------------------------------------------------------------------- packing


@dataclass(frozen=True)
class JobPlan:
    """The items of one batch job, and how they are sent.

    Inline jobs have one shared ``task_type``/``title`` (one ``EmbedContentConfig``); file
    jobs carry each item's config on its own JSONL line.
    """

    mode: JobMode
    items: tuple[PlanItem, ...]
    task_type: str | None = None
    title: str | None = None

    @property
    def tokens(self) -> int:
        return sum(item.tokens for item in self.items)


def plan_jobs(
    items: Iterable[PlanItem],
    *,
    dimension: int | None,
    max_items_per_job: int,
    max_inline_bytes: int,
    max_file_bytes: int = MAX_FILE_BYTES,
    result_dimension: int | None = None,
    max_inline_response_bytes: int = MAX_INLINE_RESPONSE_BYTES,
) -> Iterator[JobPlan]:
    """Cut ``items`` (in order) into jobs of at most ``max_items_per_job`` items.

    A job is inline when its items share one (task type, title) config, the inline body
    stays within ``max_inline_bytes`` and its expected results (items × ``result_dimension``,
    see :func:`expected_result_bytes`) within ``max_inline_response_bytes``; otherwise it
    is a JSONL file job, whose file stays within ``max_file_bytes`` (a single larger item
    still gets a job of its own) and whose results come back as a file.

    >>> a = [PlanItem(f"k{i}", "d", "text", "RETRIEVAL_DOCUMENT", None, 1) for i in range(5)]
    >>> [(j.mode, len(j.items)) for j in plan_jobs(a, dimension=None, max_items_per_job=2,
    ...                                             max_inline_bytes=10**6)]
    [('inline', 2), ('inline', 2), ('inline', 1)]
    >>> titled = [PlanItem(f"k{i}", "d", "t", "RETRIEVAL_DOCUMENT", f"T{i}", 1) for i in range(3)]
    >>> [(j.mode, len(j.items)) for j in plan_jobs(titled, dimension=None, max_items_per_job=9,
    ...                                             max_inline_bytes=10**6)]
    [('file', 3)]
    >>> [j.mode for j in plan_jobs(a, dimension=None, max_items_per_job=9, max_inline_bytes=10**6,
    ...                            result_dimension=3072, max_inline_response_bytes=100_000)]
    ['file']
    """
    if max_items_per_job < 1:
        raise ValueError("max_items_per_job must be at least 1")
    chunk: list[PlanItem] = []
    configs: set[tuple[str | None, str | None]] = set()
    inline_bytes = _INLINE_OVERHEAD
    file_bytes = 0

    def finish() -> JobPlan:
        results = expected_result_bytes(len(chunk), result_dimension or 0)
        if (
            len(configs) == 1
            and inline_bytes <= max_inline_bytes
            and results <= max_inline_response_bytes
        ):
            task_type, title = next(iter(configs))
            return JobPlan("inline", tuple(chunk), task_type, title)
        return JobPlan("file", tuple(chunk))

    for item in items:
        line_bytes = len(jsonl_line(item, dimension))
        if chunk and file_bytes + line_bytes > max_file_bytes:
            yield finish()
            chunk, configs, inline_bytes, file_bytes = [], set(), _INLINE_OVERHEAD, 0
        chunk.append(item)
        configs.add((item.task_type, item.title))
        inline_bytes += inline_request_bytes(item, dimension)
        file_bytes += line_bytes
        if len(chunk) >= max_items_per_job:
            yield finish()
            chunk, configs, inline_bytes, file_bytes = [], set(), _INLINE_OVERHEAD, 0
    if chunk:
        yield finish()


# ----------------------------------------------------------------------------- cost, polling


@dataclass(frozen=True)
class CostEstimate:
    """Estimated cost of ``tokens`` through the Batch API and through online embedding."""

    tokens: int
    batch_usd: float
    online_usd: float

    @property
    def saving_usd(self) -> float:
        return self.online_usd - self.batch_usd


def batch_cost(tokens: int, spec: ModelSpec) -> CostEstimate:
    """Batch price vs online price for ``tokens`` input tokens of ``spec``'s model.

    >>> from llama_index_gemini_embed._models import model_spec
    >>> batch_cost(2_000_000, model_spec("gemini-embedding-001"))
    CostEstimate(tokens=2000000, batch_usd=0.15, online_usd=0.3)
    """
    return CostEstimate(
        tokens=tokens,
        batch_usd=cost_usd(tokens, spec.batch_price_per_million_tokens),
        online_usd=cost_usd(tokens, spec.price_per_million_tokens),
    )


def next_poll_delay(delay: float, *, maximum: float, factor: float = 2.0) -> float:
    """Exponential polling backoff, capped: 10 → 20 → 40 → 80 → 120 → 120 …

    >>> next_poll_delay(80.0, maximum=120.0)
    120.0
    """
    return min(maximum, delay * factor)
