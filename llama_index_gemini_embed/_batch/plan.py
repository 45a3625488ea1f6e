"""Pure planning for Gemini Batch API embeddings: job packing, keys, state schema, cost.

    items = [PlanItem("doc#0", item_digest(text, "RETRIEVAL_DOCUMENT", "Doc"), text,
                      "RETRIEVAL_DOCUMENT", "Doc", tokens=120), ...]
    for job in plan_jobs(items, dimension=768, max_items_per_job=10_000,
                         max_inline_bytes=19_000_000):
        job.mode        # "inline": one shared config, small enough; else "file" (JSONL)
    state = BatchState.from_json(json.loads(raw), path=path)   # validated schema
    state.check_setup(model, dimension, fingerprint, path=path)  # refuses other setups
    batch_cost(1_000_000, model_spec("gemini-embedding-001")).saving_usd   # 0.075

No I/O: :mod:`._batch_jobs` submits, polls, downloads and writes the state file.

* **Inline or file.** An inline batch carries ONE ``EmbedContentConfig`` for every item and
  must stay under ~20 MB, so a job is inline only when all its items share (task type,
  title) and the serialized request fits ``max_inline_bytes``; anything else becomes a
  JSONL file where each line carries its own request (per-item titles work there).
* **Keys.** Every item is ``(key, digest)``: the caller's id and a hash of exactly what the
  API embeds (wire text, task type, title). A result is used only when both still match
  what the caller asks for, so a changed document never receives a stale vector.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llama_index_gemini_embed._errors import ConfigurationError
from llama_index_gemini_embed._models import ModelSpec

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_INLINE_RESPONSE_BYTES",
    "SCHEMA_VERSION",
    "STATE_KIND",
    "TERMINAL_STATES",
    "BatchState",
    "BatchStateError",
    "CostEstimate",
    "JobPlan",
    "JobRecord",
    "PlanItem",
    "batch_cost",
    "covered_keys",
    "expected_result_bytes",
    "inline_request_bytes",
    "item_digest",
    "jsonl_line",
    "jsonl_payload",
    "next_poll_delay",
    "plan_jobs",
    "short_state",
]

SCHEMA_VERSION = 1
STATE_KIND = "llama-index-gemini-embed/batch-state"

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

#: Short job states after which a job never changes again.
TERMINAL_STATES = frozenset({"SUCCEEDED", "PARTIALLY_SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"})

JobMode = Literal["inline", "file"]


class BatchStateError(ConfigurationError):
    """The batch state file is unreadable, from another version, or from another setup."""


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


def inline_request_bytes(item: PlanItem, dimension: int | None) -> int:
    """Upper bound of the item's bytes in an inline request body (the SDK escapes non-ASCII)."""
    request: dict[str, Any] = {"content": {"parts": [{"text": item.text}], "role": "user"}}
    if item.task_type is not None:
        request["taskType"] = item.task_type
    if item.title is not None:
        request["title"] = item.title
    if dimension is not None:
        request["outputDimensionality"] = dimension
    return len(json.dumps({"request": request}, ensure_ascii=True)) + 2


def expected_result_bytes(items: int, dimension: int) -> int:
    """Upper estimate of the JSON bytes of ``items`` embedding results of ``dimension``.

    >>> expected_result_bytes(10_000, 768)
    124160000
    """
    return items * (_RESULT_BYTES_PER_ITEM + _RESULT_BYTES_PER_VALUE * dimension)


def jsonl_line(item: PlanItem, dimension: int | None) -> bytes:
    """One Batch API input line: ``{"key": ..., "request": {...}}`` with its own config."""
    request: dict[str, Any] = {"content": {"parts": [{"text": item.text}]}}
    if item.task_type is not None:
        request["task_type"] = item.task_type
    if item.title is not None:
        request["title"] = item.title
    if dimension is not None:
        request["output_dimensionality"] = dimension
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


# ----------------------------------------------------------------------------- state


def short_state(state: object) -> str:
    """``JobState.JOB_STATE_RUNNING`` / ``"BATCH_STATE_RUNNING"`` → ``"RUNNING"``.

    >>> short_state("BATCH_STATE_SUCCEEDED"), short_state(None)
    ('SUCCEEDED', 'UNSPECIFIED')
    """
    if state is None:
        return "UNSPECIFIED"
    raw = str(getattr(state, "value", state))
    for prefix in ("JOB_STATE_", "BATCH_STATE_"):
        raw = raw.removeprefix(prefix)
    return raw


@dataclass
class JobRecord:
    """One submitted (or being submitted) job in the state file.

    ``keys`` are ``(key, digest, tokens)`` in request order: inline results map back by
    position, file results by key. ``name`` is None while the create call is in flight
    (state ``SUBMITTING``); a later run then finds the job by ``display_name``.
    ``absent_polls`` counts polls that saw the job SUCCEEDED without its results.
    """

    display_name: str
    mode: JobMode
    keys: list[tuple[str, str, int]]
    name: str | None = None
    state: str = "SUBMITTING"
    input_file: str | None = None
    created: str | None = None
    updated: str | None = None
    absent_polls: int = 0

    @property
    def tokens(self) -> int:
        return sum(tokens for _, _, tokens in self.keys)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "mode": self.mode,
            "state": self.state,
            "input_file": self.input_file,
            "created": self.created,
            "updated": self.updated,
            "absent_polls": self.absent_polls,
            "keys": [list(entry) for entry in self.keys],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobRecord:
        mode = data["mode"]
        if mode not in ("inline", "file"):
            raise ValueError(f"unknown job mode {mode!r}")
        keys = [(str(k), str(d), int(t)) for k, d, t in data["keys"]]
        return cls(
            display_name=str(data["display_name"]),
            mode=mode,
            keys=keys,
            name=None if data.get("name") is None else str(data["name"]),
            state=str(data.get("state") or "SUBMITTING"),
            input_file=data.get("input_file"),
            created=data.get("created"),
            updated=data.get("updated"),
            absent_polls=int(data.get("absent_polls") or 0),
        )


Fingerprint = dict[str, str | int | bool]


@dataclass
class BatchState:
    """The whole state file: the embedding setup it belongs to, and the unfinished jobs."""

    model: str
    dimension: int
    fingerprint: Fingerprint
    jobs: list[JobRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": STATE_KIND,
            "schema": SCHEMA_VERSION,
            "model": self.model,
            "dimension": self.dimension,
            "fingerprint": dict(self.fingerprint),
            "jobs": [job.to_json() for job in self.jobs],
        }

    @classmethod
    def from_json(cls, data: object, *, path: Path | str) -> BatchState:
        """Validate and load; raises :class:`BatchStateError` naming ``path`` and the fix."""
        if not isinstance(data, dict) or data.get("kind") != STATE_KIND:
            raise BatchStateError(
                f"{path} is not a gemini-embed batch state file. Pass another state path, or "
                "delete the file if it is yours to discard."
            )
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise BatchStateError(
                f"Batch state file {path} has schema version {schema!r}; this version of "
                f"llama-index-gemini-embed reads version {SCHEMA_VERSION}. Finish its jobs with "
                "the version that wrote it, or cancel them (`gemini-embed batch cancel`) and "
                "delete the file."
            )
        try:
            fingerprint = {str(k): v for k, v in dict(data["fingerprint"]).items()}
            return cls(
                model=str(data["model"]),
                dimension=int(data["dimension"]),
                fingerprint=fingerprint,
                jobs=[JobRecord.from_json(job) for job in data["jobs"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BatchStateError(
                f"Batch state file {path} is damaged ({type(exc).__name__}: {exc}). Its jobs "
                "cannot be resumed: delete the file (unfinished jobs are then resubmitted)."
            ) from None

    def check_setup(
        self, model: str, dimension: int, fingerprint: Mapping[str, object], *, path: Path | str
    ) -> None:
        """Refuse to resume jobs made with another model, dimension or task scheme.

        A state file without unfinished jobs holds nothing to lose and never refuses.
        """
        if not self.jobs:
            return
        mine = {"model": self.model, "dimension": self.dimension, **self.fingerprint}
        theirs = {"model": model, "dimension": dimension, **dict(fingerprint)}
        if mine == theirs:
            return
        diff = ", ".join(
            f"{key}: file={mine.get(key)!r} vs now={theirs.get(key)!r}"
            for key in sorted(set(mine) | set(theirs))
            if mine.get(key) != theirs.get(key)
        )
        raise BatchStateError(
            f"Batch state file {path} holds {len(self.jobs)} unfinished job(s) made with another "
            f"embedding setup ({diff}); their vectors cannot be mixed with this one's. Finish "
            "them with the original setup, cancel them (`gemini-embed batch cancel --state "
            f"{path}`), or use another state file for this setup."
        )


def covered_keys(jobs: Iterable[JobRecord], requested: Mapping[str, str]) -> set[str]:
    """Keys of ``requested`` (key → digest) that a live job will already answer.

    >>> job = JobRecord("d", "inline", [("a", "x", 1), ("b", "old", 1)], name="batches/1")
    >>> sorted(covered_keys([job], {"a": "x", "b": "new", "c": "y"}))
    ['a']
    """
    covered: set[str] = set()
    for job in jobs:
        for key, digest, _ in job.keys:
            if requested.get(key) == digest:
                covered.add(key)
    return covered


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
        batch_usd=tokens * spec.batch_price_per_million_tokens / 1_000_000,
        online_usd=tokens * spec.price_per_million_tokens / 1_000_000,
    )


def next_poll_delay(delay: float, *, maximum: float, factor: float = 2.0) -> float:
    """Exponential polling backoff, capped: 10 → 20 → 40 → 80 → 120 → 120 …

    >>> next_poll_delay(80.0, maximum=120.0)
    120.0
    """
    return min(maximum, delay * factor)
