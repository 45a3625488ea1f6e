"""``gemini-embed ingest PATH...``: embed files and folders into a Chroma collection.

gemini-embed ingest ./docs --collection docs --dimension 768
gemini-embed ingest ./docs --dry-run            # estimate; no API call, no write
gemini-embed ingest ./docs --batch --no-wait    # Gemini Batch API, half price
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import (
    EXIT_OK,
    EXIT_PARTIAL,
    PROG,
    Commands,
    UsageError,
    add_command,
    add_model_options,
    add_store_options,
    code_for_type_name,
    embed_model,
    key_option,
    open_store,
    print_error,
    require_key,
)
from ._terms import in_cli_terms

if TYPE_CHECKING:
    from llama_index_gemini_embed._calls import RetryEvent
    from llama_index_gemini_embed._ingest import IngestReport
    from llama_index_gemini_embed._store.store import ChromaStore


def register(commands: Commands) -> None:
    """Add ``ingest`` and its options."""
    ingest = add_command(
        commands,
        "ingest",
        run=run,
        help="embed files/folders into a Chroma collection (incremental, resumable)",
        description="Embed files and folders into a Chroma collection. Unchanged chunks are "
        "skipped, changed documents re-embedded, and an interrupted run resumes where it "
        "stopped when run again.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to ingest")
    add_store_options(ingest)
    add_model_options(ingest, quota=True)
    options = ingest.add_argument_group("ingestion")
    options.add_argument(
        "--dry-run",
        action="store_true",
        help="estimate chunks, tokens, requests, cost and time; no API call, no write",
    )
    options.add_argument(
        "--sync", action="store_true", help="also delete stored documents absent from PATHs"
    )
    options.add_argument(
        "--ext",
        action="append",
        metavar="SUFFIX",
        help="only files with this suffix, e.g. --ext .md --ext .txt (repeatable)",
    )
    options.add_argument("--chunk-size", type=int, metavar="N", help="tokens per chunk")
    options.add_argument(
        "--chunk-overlap", type=int, default=100, metavar="N", help="overlap in tokens"
    )
    options.add_argument(
        "--media-upload-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="wait at most this long for an uploaded video to leave PROCESSING (default 600)",
    )
    options.add_argument(
        "--memory-limit-ids",
        type=int,
        metavar="N",
        help="document ids of this run kept in memory, 8 bytes each (default 1000000 = 8 MiB); "
        "beyond it they spill to a temporary directory (TMPDIR), removed at the end",
    )
    options.add_argument("--quiet", action="store_true", help="no progress bar")
    options.add_argument("--json", action="store_true", help="print the report as JSON")
    batch_options = ingest.add_argument_group("batch mode (Gemini Batch API, half price)")
    batch_options.add_argument(
        "--batch",
        action="store_true",
        help="embed through the Gemini Batch API at 50%% of the price (up to 24 h turnaround; "
        "re-running re-attaches to submitted jobs)",
    )
    batch_options.add_argument(
        "--batch-state", metavar="FILE", help="job state file (default: beside the store)"
    )
    batch_options.add_argument(
        "--no-wait",
        action="store_true",
        help="submit, store what has finished, and exit; run again later to collect the rest",
    )
    batch_options.add_argument(
        "--poll-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="first wait between job polls, doubling up to 120 s (default: %(default)s)",
    )
    batch_options.add_argument(
        "--fallback-online",
        action="store_true",
        help="embed items of failed/expired jobs online (full price) instead of resubmitting",
    )


def run(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed._batch.options import BatchOptions
    from llama_index_gemini_embed._calls import retry_listener
    from llama_index_gemini_embed._ingest import aingest
    from llama_index_gemini_embed._ingest.seen import DEFAULT_MEMORY_LIMIT_IDS

    for raw in args.paths:
        if not Path(raw).exists():
            raise UsageError(f"No such file or directory: {raw!r}")
    for name in (
        "rpm",
        "tpm",
        "rpd",
        "concurrency",
        "batch_size",
        "chunk_size",
        "memory_limit_ids",
    ):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name in ("chunk_overlap", "max_retries"):
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 0, got {value}")
    if (args.no_wait or args.batch_state or args.fallback_online) and not args.batch:
        raise UsageError("--no-wait, --batch-state and --fallback-online go with --batch")
    if not args.poll_seconds > 0:
        raise UsageError(f"--poll-seconds must be > 0, got {args.poll_seconds}")
    if not args.media_upload_timeout > 0:
        raise UsageError(f"--media-upload-timeout must be > 0, got {args.media_upload_timeout}")
    key = require_key(args)
    created = None if args.server else _first_missing(Path(args.path or "./chroma"))
    new_collection = bool(args.server) and not _server_collection_exists(args)
    store = open_store(args, must_exist=False)
    report: IngestReport | None = None
    try:
        embed = embed_model(
            args,
            store,
            key,
            items_per_minute=args.rpm,
            tokens_per_minute=args.tpm,
            items_per_day=args.rpd,
            max_concurrency=args.concurrency,
            embed_batch_size=args.batch_size,
            max_retries=args.max_retries,
            media_upload_timeout=args.media_upload_timeout,
        )
        transformations = None
        if args.chunk_size is not None:
            from llama_index.core.node_parser import SentenceSplitter

            transformations = [
                SentenceSplitter(
                    chunk_size=args.chunk_size,
                    chunk_overlap=min(args.chunk_overlap, args.chunk_size // 2),
                )
            ]
        with retry_listener(None if args.quiet else _announce_long_wait):
            report = asyncio.run(
                aingest(
                    list(args.paths),
                    store=store,
                    embed_model=embed,
                    transformations=transformations,
                    delete_missing=args.sync,
                    dry_run=args.dry_run,
                    raise_on_fatal=False,
                    show_progress=not args.quiet and sys.stderr.isatty(),
                    extensions=args.ext,
                    memory_limit_ids=args.memory_limit_ids or DEFAULT_MEMORY_LIMIT_IDS,
                    batch=BatchOptions(
                        state_path=args.batch_state,
                        wait=not args.no_wait,
                        poll_initial=args.poll_seconds,
                        poll_max=max(120.0, args.poll_seconds),
                        fallback_online=args.fallback_online,
                        on_event=lambda status: print(status.line(), file=sys.stderr),
                    )
                    if args.batch
                    else None,
                )
            )
    finally:
        # Batch mode keeps its job state file beside the store, even before any write.
        keep = bool(args.batch and not args.dry_run)
        keep = keep or (report is not None and report.written + report.deleted > 0)
        if (created is not None or new_collection) and not keep:
            keep = not _is_empty(store)
        if new_collection and not keep:
            # Server mode: a refused, failed or dry run leaves no empty collection behind.
            with contextlib.suppress(Exception):
                store.client.delete_collection(args.collection)
        store.close()
        if created is not None and not keep:
            # A refused, failed or dry run leaves no ./chroma behind (nor its parents).
            shutil.rmtree(created, ignore_errors=True)
    if report.documents == 0 and report.fatal_error is None:
        raise UsageError(_nothing_to_ingest(args, report))
    _print_report(report, args)
    return _report_exit(report, args, key)


#: A retry or quota wait at least this long is announced on stderr (unless --quiet).
NOTICE_AFTER_SECONDS = 2.0


def _announce_long_wait(event: RetryEvent) -> None:
    """``gemini-embed: embedding: retrying in 12s (rate limited, attempt 2)`` on stderr,
    above the progress bar when one is shown (issue 11 item 11: no silent minutes)."""
    if event.delay < NOTICE_AFTER_SECONDS:
        return
    line = f"{PROG}: {event.describe()}"
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with llama-index-core
        print(line, file=sys.stderr, flush=True)
    else:
        tqdm.write(line, file=sys.stderr)


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of ``path`` that does not exist yet (None: it exists)."""
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def _server_collection_exists(args: argparse.Namespace) -> bool:
    """Whether ``--collection`` is already on the ``--server`` (asked without creating it)."""
    from llama_index_gemini_embed._errors import StoreError, StoreUnavailableError
    from llama_index_gemini_embed._store.store import ChromaStore

    try:
        ChromaStore.from_url(args.server, collection_name=args.collection, read_only=True).close()
    except StoreUnavailableError:
        return True  # unreachable: open_store reports it; nothing of ours to clean up
    except StoreError:
        return False
    return True


def _is_empty(store: ChromaStore) -> bool:
    try:
        return store.count() == 0
    except Exception:  # an unusable store: nothing of the user's is in it either
        return True


def _nothing_to_ingest(args: argparse.Namespace, report: IngestReport) -> str:
    where = " ".join(args.paths)
    if report.files_skipped:
        found = f"{report.files_skipped} files, none readable as text (binary or unreadable)"
    elif args.ext:
        found = f"no file with suffix {', '.join(args.ext)} (check --ext)"
    else:
        found = "no files"
    return f"Nothing to ingest in {where}: {found}; nothing was written"


def _print_report(report: IngestReport, args: argparse.Namespace) -> None:
    """The report on stdout; a fatal error is left out here: it is printed once, on stderr."""
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    if report.fatal_error is not None and report.written + report.deleted == 0:
        return  # nothing happened: the one error line says it all
    text = report.summary()
    if report.fatal_error is not None:
        fatal = f"{report.fatal_error_type}: {report.fatal_error}"
        lines = [line for line in text.splitlines() if not line.endswith(f": {fatal}")]
        text = "\n".join(lines).replace(fatal, str(report.fatal_error_type))
    print(in_cli_terms(text, key_option=key_option(args)))


def _report_exit(report: IngestReport, args: argparse.Namespace, key: str | None) -> int:
    from llama_index_gemini_embed._errors import redact

    if report.fatal_error is not None:
        code = code_for_type_name(report.fatal_error_type or "")
        print_error(in_cli_terms(redact(report.fatal_error, key), key_option=key_option(args)))
        return code
    if report.failed:
        print_error(
            f"{report.failed} chunks failed (see above); run the same command again to retry them"
        )
        return EXIT_PARTIAL
    if report.pending:
        # The normal outcome of --batch --no-wait: jobs submitted and recorded (exit 0).
        print(
            f"{PROG}: {report.pending} chunks are still being embedded by batch jobs; run "
            "the same command again later to collect them (`gemini-embed batch status` "
            "shows the jobs)",
            file=sys.stderr,
        )
    return EXIT_OK
