"""``gemini-embed ingest PATH...``: embed files and folders into a Chroma collection.

gemini-embed ingest ./docs --collection docs --dimension 768
gemini-embed ingest ./docs --dry-run            # estimate; no API call, no write
gemini-embed ingest ./docs --batch --no-wait    # Gemini Batch API, half price
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    open_store,
    print_error,
    require_key,
)

if TYPE_CHECKING:
    from llama_index_gemini_embed._ingest import IngestReport


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
    from llama_index_gemini_embed._ingest import aingest

    for raw in args.paths:
        if not Path(raw).exists():
            raise UsageError(f"No such file or directory: {raw!r}")
    for name in ("rpm", "tpm", "rpd", "concurrency", "batch_size", "chunk_size"):
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
    key = require_key(args)
    store = open_store(args, must_exist=False)
    try:
        embed = embed_model(
            args,
            store,
            key,
            requests_per_minute=args.rpm,
            tokens_per_minute=args.tpm,
            requests_per_day=args.rpd,
            max_concurrency=args.concurrency,
            embed_batch_size=args.batch_size,
            max_retries=args.max_retries,
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
        store.close()
    _print_report(report, as_json=args.json)
    return _report_exit(report, key)


def _print_report(report: IngestReport, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())


def _report_exit(report: IngestReport, key: str | None) -> int:
    from llama_index_gemini_embed._errors import redact

    if report.fatal_error is not None:
        code = code_for_type_name(report.fatal_error_type or "")
        print_error(redact(report.fatal_error, key))
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
