"""``gemini-embed batch status|cancel``: the Batch API jobs of ``gemini-embed ingest --batch``.

gemini-embed batch status --collection docs
gemini-embed batch cancel [batches/NAME ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import (
    EXIT_OK,
    Commands,
    UsageError,
    add_command,
    add_model_options,
    add_store_options,
    epilog,
    formatter,
    require_key,
)


def register(commands: Commands) -> None:
    """Add ``batch`` with its actions ``status`` and ``cancel``."""
    batch = add_command(
        commands,
        "batch",
        run=run,
        help="show or cancel Gemini Batch API jobs of `ingest --batch`",
        description="Show or cancel the Batch API jobs recorded by `gemini-embed ingest --batch`.",
    )
    actions = batch.add_subparsers(dest="batch_command", metavar="ACTION")
    actions.required = True
    for action, text in (
        ("status", "list the recorded jobs with their current state"),
        ("cancel", "cancel jobs (all recorded ones, or the NAMEs given)"),
    ):
        sub = actions.add_parser(
            action, help=text, description=text, epilog=epilog(), formatter_class=formatter
        )
        add_store_options(sub)
        add_model_options(sub, quota=False)
        sub.add_argument(
            "--state", metavar="FILE", help="job state file (default: beside the store)"
        )
        if action == "cancel":
            sub.add_argument("names", nargs="*", metavar="NAME", help="job names (batches/...)")


def state_path(args: argparse.Namespace) -> Path:
    """The state file `ingest --batch` uses for these store options (no store opened)."""
    if args.state:
        return Path(args.state)
    base = Path.cwd() if args.server else Path(args.path or "./chroma")
    return base / f".gemini-batch-{args.collection}.json"


def run(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed._batch.jobs import BatchEmbedder
    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._models import DEFAULT_MODEL
    from llama_index_gemini_embed._sync import run_sync

    path = state_path(args)
    if not path.exists():
        raise UsageError(
            f"No batch jobs recorded at {str(path)!r}: `gemini-embed ingest --batch` records "
            "them there (or pass --state FILE)"
        )
    key = require_key(args)
    settings: dict[str, Any] = {"model_name": args.model or DEFAULT_MODEL}
    if key is not None:
        settings["api_key"] = key
    if args.base_url:
        settings["base_url"] = args.base_url
    embedder = BatchEmbedder(GeminiEmbedding(**settings), path)
    if args.batch_command == "status":
        statuses = run_sync(embedder.status())
    else:
        statuses = run_sync(embedder.cancel(args.names or None))
    for status in statuses:
        print(status.line())
    if not statuses:
        print("no batch jobs recorded")
    return EXIT_OK
