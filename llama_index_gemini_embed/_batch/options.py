"""``BatchOptions``: every Batch API setting in one frozen, typed object.

    from llama_index_gemini_embed import BatchOptions, ingest

    report = ingest("./docs", store=store, batch=BatchOptions(wait=False))
    report = ingest("./docs", store=store, batch=True)          # all defaults
    options = BatchOptions(max_wait=3600, fallback_online=True)
    options.replace(wait=False)                                 # a changed copy

Modelled on google-genai's ``config=`` objects (``types.CreateBatchJobConfig``…): one typed
value instead of loose keyword arguments plus an untyped dict. The old ``ingest``
parameters (``mode="batch"``, ``batch_state=``, ``batch_wait=``, ``batch_options={…}``)
still work through :meth:`BatchOptions.from_legacy`, which warns once per parameter.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llama_index_gemini_embed._deprecation import warn_once
from llama_index_gemini_embed._errors import ConfigurationError

from .plan import MAX_INLINE_RESPONSE_BYTES

if TYPE_CHECKING:
    from .report import JobStatus

__all__ = ["BatchOptions"]


def warn_deprecated(old: str, new: str) -> None:
    """A FutureWarning (shown to users) the first time ``old`` is used in this process."""
    warn_once(old, f"{old} is deprecated: use {new}", stacklevel=4)


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    """How a run uses the Gemini Batch API (half price, hours of latency).

    Attributes:
        state_path: the JSON file recording this corpus' jobs, so a re-run re-attaches
            instead of paying again. None: next to the store (``ingest``'s default).
        wait: wait for every job; False: submit, collect what has finished, return
            (run again later to collect the rest).
        max_wait: when waiting, stop polling after this many seconds (jobs are kept).
        poll_initial / poll_max: first delay between status polls and its cap (doubling).
        results_timeout: seconds a SUCCEEDED job may lack its results (they can lag behind
            its state) while it is re-polled; only then are its items embedded online.
        fallback_online: embed the items of FAILED/EXPIRED/CANCELLED jobs online at once
            (full price) instead of resubmitting them on the next run.
        max_items_per_job: items per batch job.
        max_inline_bytes: largest inline request body; larger jobs go through a file.
        max_inline_response_bytes: largest expected inline result (items × dimension);
            larger jobs go through a file.
        deliver_batch_size: most vectors per delivery to the store.
        on_event: called with a ``JobStatus`` when a job is submitted or changes state.
        sleep / clock: injectable for tests (default: the embedding model's injected ones,
            else ``asyncio.sleep`` / ``time.monotonic``).
    """

    state_path: str | os.PathLike[str] | None = None
    wait: bool = True
    max_wait: float | None = None
    poll_initial: float = 10.0
    poll_max: float = 120.0
    results_timeout: float = 1800.0
    fallback_online: bool = False
    max_items_per_job: int = 10_000
    max_inline_bytes: int = 19_000_000
    max_inline_response_bytes: int = MAX_INLINE_RESPONSE_BYTES
    deliver_batch_size: int = 1000
    on_event: Callable[[JobStatus], None] | None = None
    sleep: Callable[[float], Awaitable[None]] | None = None
    clock: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        def positive(name: str, value: float) -> None:
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"BatchOptions({name}={value!r}): use seconds > 0")

        positive("poll_initial", self.poll_initial)
        positive("poll_max", self.poll_max)
        if self.poll_max < self.poll_initial:
            raise ConfigurationError(
                f"BatchOptions(poll_max={self.poll_max!r}) is below "
                f"poll_initial={self.poll_initial!r}: the cap must be >= the first delay"
            )
        if self.max_wait is not None:
            positive("max_wait", self.max_wait)
        if not (math.isfinite(self.results_timeout) and self.results_timeout >= 0):
            raise ConfigurationError(
                f"BatchOptions(results_timeout={self.results_timeout!r}): use seconds >= 0"
            )
        for name in ("max_items_per_job", "deliver_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"BatchOptions({name}={value!r}): use an integer >= 1")
        for name in ("max_inline_bytes", "max_inline_response_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"BatchOptions({name}={value!r}): use bytes >= 0")

    def replace(self, **changes: Any) -> BatchOptions:
        """A copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_legacy(
        cls,
        *,
        batch: BatchOptions | bool | None = None,
        mode: str | None = None,
        batch_state: str | os.PathLike[str] | None = None,
        batch_wait: bool | None = None,
        batch_options: Mapping[str, Any] | None = None,
    ) -> BatchOptions | None:
        """The options an ``ingest`` call asks for, from ``batch=`` or the deprecated
        ``mode="batch"`` / ``batch_state`` / ``batch_wait`` / ``batch_options`` (each warns
        once). None: online ingestion.

        >>> BatchOptions.from_legacy(batch=True) == BatchOptions()
        True
        >>> BatchOptions.from_legacy() is None
        True

        Raises:
            ConfigurationError: an unknown ``mode`` or ``batch_options`` key, or ``batch=``
                combined with the deprecated parameters.
        """
        legacy = {
            "mode": mode is not None,
            "batch_state": batch_state is not None,
            "batch_wait": batch_wait is not None,
            "batch_options": batch_options is not None,
        }
        used = [name for name, given in legacy.items() if given]
        if batch not in (None, False) and used:
            raise ConfigurationError(
                f"Pass batch=BatchOptions(...) alone: {', '.join(used)} are its deprecated "
                "spellings and cannot be combined with it"
            )
        if isinstance(batch, BatchOptions):
            return batch
        if batch is True:
            return cls()
        if not isinstance(batch, (bool, type(None))):
            raise ConfigurationError(
                f"batch={batch!r} is invalid: pass True or BatchOptions(...) for the Batch API"
            )
        if mode is not None:
            warn_deprecated("mode=", "batch=BatchOptions(...) (or batch=True)")
            if mode not in ("online", "batch"):
                raise ConfigurationError(f"mode={mode!r} is not one of 'online', 'batch'")
        for name, new in (
            ("batch_state", "state_path"),
            ("batch_wait", "wait"),
            ("batch_options", "its fields"),
        ):
            if legacy[name]:
                warn_deprecated(f"{name}=", f"batch=BatchOptions({new}=...)")
        if mode != "batch":
            return None
        fields = {f.name for f in dataclasses.fields(cls)}
        extra = dict(batch_options or {})
        unknown = sorted(set(extra) - fields)
        if unknown:
            raise ConfigurationError(
                f"batch_options has unknown key(s) {', '.join(unknown)}; BatchOptions fields "
                f"are: {', '.join(sorted(fields))}"
            )
        if batch_state is not None:
            extra["state_path"] = batch_state
        if batch_wait is not None:
            extra["wait"] = batch_wait
        return cls(**extra)
