"""The batch state file: which jobs a corpus has in flight, so no run pays twice.

    state = load_state(path, fresh=BatchState(model, dimension, fingerprint))
    state.check_setup(model, dimension, fingerprint, path=path)  # refuses other setups
    state.jobs.append(JobRecord(display_name, "inline", keys))
    save_state(path, state)                                      # atomic

Schema (``kind``/``schema`` checked on load): the embedding setup (model, dimension,
fingerprint) and one :class:`JobRecord` per unfinished job, with its ``(key, digest,
tokens)`` list. A record is written *before* its job is created and again once it has a
name; it leaves the file only after the job's vectors were delivered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llama_index_gemini_embed._errors import BatchStateError

__all__ = [
    "SCHEMA_VERSION",
    "STATE_KIND",
    "TERMINAL_STATES",
    "BatchState",
    "BatchStateError",
    "JobMode",
    "JobRecord",
    "covered_keys",
    "load_state",
    "save_state",
    "short_state",
]

JobMode = Literal["inline", "file"]

SCHEMA_VERSION = 1
STATE_KIND = "llama-index-gemini-embed/batch-state"


#: Short job states after which a job never changes again.
TERMINAL_STATES = frozenset({"SUCCEEDED", "PARTIALLY_SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"})


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


def load_state(path: Path, *, fresh: BatchState) -> BatchState:
    """The state file's jobs (``fresh`` if there is no file); no setup check.

    Raises:
        BatchStateError: the file is not a batch state file, is damaged, or has
            another schema version.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return fresh
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BatchStateError(
            f"Batch state file {path} is not valid JSON ({exc}). Its jobs cannot "
            "be resumed: delete the file (unfinished keys are then resubmitted)."
        ) from None
    return BatchState.from_json(data, path=path)


def save_state(path: Path, state: BatchState) -> None:
    """Write atomically: a crash leaves the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(state.to_json(), ensure_ascii=False, separators=(",", ":"))
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
