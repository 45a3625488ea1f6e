"""``gemini-embed``: ingest folders into Chroma with Gemini embeddings, query, inspect, demo.

    gemini-embed demo                                   # offline on the emulator without a key
    gemini-embed ingest ./docs --collection docs --dimension 768
    gemini-embed query "how do I export to PDF?" --collection docs --filter category=reference
    gemini-embed info --collection docs
    gemini-embed emulator --port 8765                   # a local Gemini API for tests

The key comes from ``GEMINI_API_KEY`` (or ``--api-key-env NAME``); it is never printed.
Errors are one line on stderr (``--debug`` adds the traceback); exit codes are listed in
``gemini-embed --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from llama_index.core.schema import NodeWithScore

    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._ingest.run import IngestReport
    from llama_index_gemini_embed._store.store import ChromaStore

__all__ = ["EXIT_CODES", "build_parser", "exit_code_for", "main"]

PROG = "gemini-embed"

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_QUOTA = 4
EXIT_STORE = 5
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_PARTIAL: "partial failure: some chunks failed (listed; re-run to retry them)",
    EXIT_USAGE: "usage or configuration error (bad option, missing path or API key)",
    EXIT_API: "Gemini API error (invalid key, unknown model, request refused)",
    EXIT_QUOTA: "quota exhausted (e.g. the per-day quota): progress is kept, resume later",
    EXIT_STORE: "store error: locked, unreachable, empty, or fingerprint mismatch",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): progress is kept, re-run to resume",
}

DEMO_QUESTIONS: tuple[str, ...] = (
    "How do I encrypt my notebooks?",
    "What does the Team plan cost per month?",
    "How can I export a note to PDF?",
    "Why does sync fail with error K-409?",
)

# One key rule everywhere, google-genai's: GOOGLE_API_KEY wins when both are set. Same
# as _client.KEY_ENV_VARS (not imported: that would load the SDK before argument parsing).
_KEY_ENV_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")


class UsageError(Exception):
    """A command-line mistake found after parsing (exit code 2)."""


#: Values that may be keys, kept out of argparse's messages (set by :func:`main`).
_ARGV_SECRETS: list[str] = []


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``gemini-embed: error: ...`` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        from llama_index_gemini_embed._errors import redact

        command = self.prog if self.prog != PROG else PROG
        message = _mask_unrecognized(redact(message, *_ARGV_SECRETS))
        _error(f"{message} (see `{command} --help`)")
        raise SystemExit(EXIT_USAGE)


def _mask_unrecognized(message: str) -> str:
    """Keep the names of unrecognized options, never their values (a mistyped --api-key)."""
    prefix = "unrecognized arguments: "
    if not message.startswith(prefix):
        return message
    words, previous = [], ""
    for word in message.removeprefix(prefix).split(" "):
        if word.startswith("-") and "=" in word:
            words.append(word.partition("=")[0] + "=***")
        elif not word.startswith("-") and previous.startswith("-") and "=" not in previous:
            words.append("***")
        else:
            words.append(word)
        previous = word
    return prefix + " ".join(words)


def _argv_secrets(argv: Sequence[str]) -> list[str]:
    """What may be a key in ``argv``: the value of any option naming a key, whether it is
    ``--api-key``, misplaced before the command, or mistyped (``--api-kye``), since argparse
    echoes such values in its errors; and the keys in the environment."""
    found = [os.environ.get(var, "") for var in _KEY_ENV_VARS]
    for i, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if not name.startswith("-") or "key" not in name.lower() or name == "--api-key-env":
            continue
        if equals:
            found.append(value)
        elif i + 1 < len(argv):
            found.append(argv[i + 1])
    return sorted({secret for secret in found if secret.strip()}, key=len, reverse=True)


# ----------------------------------------------------------------------------- parser


def _epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    return (
        "exit codes:\n"
        f"{codes}\n\n"
        "The API key is read from GEMINI_API_KEY (or GOOGLE_API_KEY, or --api-key-env NAME)\n"
        "and never printed. Without a key, `gemini-embed demo` runs on a local emulator."
    )


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks on errors",
    )


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    _add_debug(parser)
    group = parser.add_argument_group("store")
    group.add_argument(
        "--collection", default="docs", help="Chroma collection name (default: %(default)s)"
    )
    where = group.add_mutually_exclusive_group()
    where.add_argument("--path", default=None, help="local Chroma directory (default: ./chroma)")
    where.add_argument(
        "--server", metavar="URL", help="a `chroma run` server, e.g. http://localhost:8000"
    )


def _add_model_options(parser: argparse.ArgumentParser, *, quota: bool) -> None:
    group = parser.add_argument_group("embedding model")
    group.add_argument(
        "--model",
        help="Gemini embedding model (default: the collection's, else gemini-embedding-001)",
    )
    group.add_argument(
        "--dimension",
        type=int,
        help="output dimensionality 128-3072 (default: the collection's, else the model's)",
    )
    group.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="read the API key from this environment variable (default: GEMINI_API_KEY, "
        "then GOOGLE_API_KEY)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key itself (discouraged: visible in `ps`; prefer the environment)",
    )
    group.add_argument("--base-url", metavar="URL", help="API base URL, e.g. a local emulator")
    if quota:
        group.add_argument("--rpm", type=int, metavar="N", help="quota: embedded items per minute")
        group.add_argument("--tpm", type=int, metavar="N", help="quota: tokens per minute")
        group.add_argument("--rpd", type=int, metavar="N", help="quota: embedded items per day")
        group.add_argument(
            "--concurrency", type=int, default=8, metavar="N", help="requests in flight"
        )
        group.add_argument(
            "--batch-size", type=int, default=100, metavar="N", help="texts per request"
        )
        group.add_argument(
            "--max-retries", type=int, default=8, metavar="N", help="retries per request"
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``gemini-embed`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Gemini embeddings + Chroma for LlamaIndex: streaming, resumable ingestion, "
        "query, inspection, and an offline Gemini API emulator.",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    ingest = commands.add_parser(
        "ingest",
        help="embed files/folders into a Chroma collection (incremental, resumable)",
        description="Embed files and folders into a Chroma collection. Unchanged chunks are "
        "skipped, changed documents re-embedded, and an interrupted run resumes where it "
        "stopped when run again.",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to ingest")
    _add_store_options(ingest)
    _add_model_options(ingest, quota=True)
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

    batch = commands.add_parser(
        "batch",
        help="show or cancel Gemini Batch API jobs of `ingest --batch`",
        description="Show or cancel the Batch API jobs recorded by `gemini-embed ingest --batch`.",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    batch_commands = batch.add_subparsers(dest="batch_command", metavar="ACTION")
    batch_commands.required = True
    for action, text in (
        ("status", "list the recorded jobs with their current state"),
        ("cancel", "cancel jobs (all recorded ones, or the NAMEs given)"),
    ):
        sub = batch_commands.add_parser(
            action, help=text, description=text, epilog=_epilog(), formatter_class=_formatter
        )
        _add_store_options(sub)
        _add_model_options(sub, quota=False)
        sub.add_argument(
            "--state", metavar="FILE", help="job state file (default: beside the store)"
        )
        if action == "cancel":
            sub.add_argument("names", nargs="*", metavar="NAME", help="job names (batches/...)")

    query = commands.add_parser(
        "query",
        help="retrieve the passages closest to a question",
        description="Embed a question and print the closest chunks with scores and sources.",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    query.add_argument("text", help="the question or search text")
    _add_store_options(query)
    _add_model_options(query, quota=False)
    query.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="results (default: %(default)s)"
    )
    query.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata filter, repeatable (AND); KEY:=JSON for a typed value, e.g. year:=2024",
    )
    query.add_argument(
        "--rerank", action="store_true", help="rerank the candidates with a Gemini judge"
    )
    query.add_argument("--json", action="store_true", help="print results as JSON")

    info = commands.add_parser(
        "info",
        help="show a collection's embedding fingerprint and counts",
        description="Show a collection's embedding fingerprint, distance space and counts.",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    _add_store_options(info)
    info.add_argument("--json", action="store_true", help="print as JSON")

    emulator = commands.add_parser(
        "emulator",
        help="serve the offline Gemini API emulator in the foreground",
        description="Serve the offline Gemini API emulator until Ctrl-C. Point clients at it "
        "with --base-url (or GOOGLE_GEMINI_BASE_URL).",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    _add_debug(emulator)
    emulator.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    emulator.add_argument(
        "--port", type=int, default=8765, help="0 picks a free port (default: %(default)s)"
    )
    emulator.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted key (repeatable; default: the emulator's built-in key)",
    )
    emulator.add_argument("--items-per-minute", type=int, metavar="N", help="quota")
    emulator.add_argument("--tokens-per-minute", type=int, metavar="N", help="quota")
    emulator.add_argument("--items-per-day", type=int, metavar="N", help="quota")
    emulator.add_argument(
        "--window-seconds", type=float, default=60.0, help="length of a quota 'minute'"
    )
    emulator.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    emulator.add_argument("--jitter", type=float, default=0.0, help="extra random seconds")
    emulator.add_argument("--seed", type=int, default=0, help="seed for faults and jitter")

    demo = commands.add_parser(
        "demo",
        help="ingest the bundled sample corpus and answer a few questions end to end",
        description="Ingest the bundled sample corpus (docs of a fictional app) and answer "
        "built-in questions: retrieve, rerank, print the top passages. Uses Gemini when "
        "GEMINI_API_KEY is set, otherwise a local emulator started in-process.",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    _add_debug(demo)
    demo.add_argument("--path", help="keep the store in this directory (default: a temp dir)")
    demo.add_argument("--top-k", type=int, default=2, metavar="K", help="passages per question")
    demo.add_argument("--no-rerank", action="store_true", help="skip the reranking step")
    return parser


# ----------------------------------------------------------------------------- helpers


def _api_key(args: argparse.Namespace) -> str | None:
    """The key from --api-key, --api-key-env or the default variables (None: not set)."""
    if getattr(args, "api_key", None) and getattr(args, "api_key_env", None):
        raise UsageError("--api-key and --api-key-env both name a key: pass only one of them")
    if getattr(args, "api_key", None):
        return str(args.api_key)
    name = getattr(args, "api_key_env", None)
    if name:
        value = os.environ.get(name)
        if not value:
            raise UsageError(f"--api-key-env {name}: the environment variable is not set")
        return value
    for var in _KEY_ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value
    return None


def _require_key(args: argparse.Namespace) -> str | None:
    """The API key, checked before anything else is opened (None: Vertex AI from env)."""
    from llama_index_gemini_embed._errors import MissingAPIKeyError

    key = _api_key(args)
    vertex = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("1", "true")
    if key is None and not vertex:
        raise MissingAPIKeyError(
            "No Gemini API key: set GEMINI_API_KEY (or name another variable with "
            "--api-key-env); try `gemini-embed demo`, which runs offline without one"
        )
    return key


def _open_store(args: argparse.Namespace, *, must_exist: bool) -> ChromaStore:
    from llama_index_gemini_embed._errors import StoreError
    from llama_index_gemini_embed._store.store import ChromaStore

    if args.server:
        store = ChromaStore.from_url(
            args.server, collection_name=args.collection, create=not must_exist
        )
        where = args.server
    else:
        path = args.path or "./chroma"
        if must_exist and not Path(path).is_dir():
            raise StoreError(
                f"No Chroma store at {path!r}: run `gemini-embed ingest PATH --path {path}` "
                "first, or pass --path/--server"
            )
        store = ChromaStore(args.collection, path=path, create=not must_exist)
        where = path
    if must_exist and store.fingerprint is None and store.count() == 0:
        store.close()  # an existing but empty collection: leave it as it is
        raise StoreError(
            f"Collection {args.collection!r} at {where} is empty: "
            "ingest something first (gemini-embed ingest PATH --collection NAME)"
        )
    return store


def _embed_model(
    args: argparse.Namespace, store: ChromaStore, key: str | None, **extra: Any
) -> GeminiEmbedding:
    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._models import DEFAULT_MODEL

    recorded = store.fingerprint or {}
    model = args.model or recorded.get("model") or DEFAULT_MODEL
    dimension = args.dimension
    if (
        dimension is None
        and recorded.get("dimension") is not None
        and model == recorded.get("model")
    ):
        dimension = int(recorded["dimension"])
    settings: dict[str, Any] = {"model_name": str(model), "output_dimensionality": dimension}
    if key is not None:
        settings["api_key"] = key
    if args.base_url:
        settings["base_url"] = args.base_url
    settings.update({k: v for k, v in extra.items() if v is not None})
    return GeminiEmbedding(**settings)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _snippet(text: str, width: int = 240) -> str:
    flat = _one_line(text)
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def _parse_filters(items: Sequence[str]) -> Any:
    from llama_index.core.vector_stores.types import ExactMatchFilter, MetadataFilters

    filters = []
    for item in items:
        if ":=" in item:
            key, raw = item.split(":=", 1)
            try:
                value: Any = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"--filter {item!r}: the value after := must be JSON ({exc})"
                ) from None
        elif "=" in item:
            key, value = item.split("=", 1)
        else:
            raise UsageError(f"--filter {item!r}: use KEY=VALUE (or KEY:=JSON)")
        if not key.strip():
            raise UsageError(f"--filter {item!r}: the key is empty")
        filters.append(ExactMatchFilter(key=key.strip(), value=value))
    return MetadataFilters(filters=list(filters)) if filters else None


# ----------------------------------------------------------------------------- commands


def _cmd_ingest(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed._ingest.run import aingest

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
    key = _require_key(args)
    store = _open_store(args, must_exist=False)
    try:
        embed = _embed_model(
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
                sync=args.sync,
                dry_run=args.dry_run,
                raise_on_fatal=False,
                show_progress=not args.quiet and sys.stderr.isatty(),
                extensions=args.ext,
                mode="batch" if args.batch else "online",
                batch_state=args.batch_state,
                batch_wait=not args.no_wait,
                batch_options={
                    "poll_initial": args.poll_seconds,
                    "poll_max": max(120.0, args.poll_seconds),
                    "fallback_online": args.fallback_online,
                    "on_event": lambda status: print(status.line(), file=sys.stderr),
                },
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
        code = _code_for_type_name(report.fatal_error_type or "")
        _error(redact(report.fatal_error, key))
        return code
    if report.failed:
        _error(
            f"{report.failed} chunks failed (see above); run the same command again to retry them"
        )
        return EXIT_PARTIAL
    if report.pending:
        _error(
            f"{report.pending} chunks are still being embedded by batch jobs; run the same "
            "command again later to collect them"
        )
        return EXIT_PARTIAL
    return EXIT_OK


def _code_for_type_name(name: str) -> int:
    from llama_index_gemini_embed import _errors

    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return _code_for_class(cls)
    return EXIT_API


def _cmd_query(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {args.top_k}")
    filters = _parse_filters(args.filter)
    key = _require_key(args)
    store = _open_store(args, must_exist=True)
    try:
        embed = _embed_model(args, store, key)
        store.check_fingerprint(embed.fingerprint)
        results, reranked = _retrieve(
            store,
            embed,
            args.text,
            args.top_k,
            filters,
            rerank=args.rerank,
            key=key,
            base_url=args.base_url,
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps([_result_dict(r, reranked) for r in results], indent=2))
        return EXIT_OK
    if not results:
        print("no results" + (" (check --filter)" if filters else ""))
        return EXIT_OK
    for rank, result in enumerate(results, 1):
        print(_format_result(rank, result, reranked))
    return EXIT_OK


@dataclass
class _Result:
    node: NodeWithScore
    similarity: float | None


def _retrieve(
    store: ChromaStore,
    embed: GeminiEmbedding,
    text: str,
    top_k: int,
    filters: Any,
    *,
    rerank: bool,
    key: str | None,
    base_url: str | None,
) -> tuple[list[_Result], bool]:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.retrievers import VectorIndexRetriever

    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    candidates = max(top_k * 4, 20) if rerank else top_k
    # Not index.as_retriever(): it restricts the query to the ids in the index struct,
    # which is empty for an index opened from a store (all nodes live in the store).
    retriever = VectorIndexRetriever(index, similarity_top_k=candidates, filters=filters)
    nodes = retriever.retrieve(text)
    similarity = {n.node.node_id: n.score for n in nodes}
    if not rerank or not nodes:
        return [_Result(n, n.score) for n in nodes[:top_k]], False
    reranker = _make_reranker(top_k, key, base_url)
    ranked = reranker.postprocess_nodes(nodes, query_str=text)
    return [_Result(n, similarity.get(n.node.node_id)) for n in ranked[:top_k]], True


def _make_reranker(top_n: int, key: str | None, base_url: str | None) -> Any:
    try:
        from llama_index_gemini_embed._rerank.postprocessor import GeminiReranker
    except ImportError as exc:
        raise UsageError(
            f"--rerank is not available in this installation ({exc}); run without --rerank"
        ) from exc
    settings: dict[str, Any] = {"top_n": top_n}
    if key is not None:
        settings["api_key"] = key
    if base_url:
        settings["base_url"] = base_url
    return GeminiReranker(**settings)


def _source_of(result: _Result) -> tuple[str, str | None]:
    node = result.node.node
    metadata = node.metadata
    source = str(metadata.get("source") or node.ref_doc_id or node.node_id)
    title = metadata.get("title")
    return source, str(title) if title else None


def _format_result(rank: int, result: _Result, reranked: bool) -> str:
    from llama_index.core.schema import MetadataMode

    source, title = _source_of(result)
    score = result.node.score if result.node.score is not None else float("nan")
    if reranked:
        sim = result.similarity
        score_text = f"rerank {score:.2f}" + (f" (similarity {sim:.3f})" if sim is not None else "")
    else:
        score_text = f"score {score:.3f}"
    header = f"{rank}. [{score_text}] {source}" + (f" — {title}" if title else "")
    body = _snippet(result.node.node.get_content(metadata_mode=MetadataMode.NONE))
    return header + "\n" + textwrap.indent(textwrap.fill(body, width=96), "   ")


def _result_dict(result: _Result, reranked: bool) -> dict[str, Any]:
    from llama_index.core.schema import MetadataMode

    source, title = _source_of(result)
    node = result.node.node
    return {
        "id": node.node_id,
        "score": result.node.score,
        "similarity": result.similarity,
        "reranked": reranked,
        "source": source,
        "title": title,
        "text": node.get_content(metadata_mode=MetadataMode.NONE),
        "metadata": {k: v for k, v in node.metadata.items() if not k.startswith("lige_")},
    }


def _cmd_info(args: argparse.Namespace) -> int:
    store = _open_store(args, must_exist=True)
    try:
        index = store.get_index()
        data = {
            "collection": args.collection,
            "location": args.server or args.path or "./chroma",
            "fingerprint": store.fingerprint,
            "space": store.distance_space,
            "chunks": store.count(),
            "documents": len([doc for doc in index if doc]),
        }
    finally:
        store.close()
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    fingerprint = data["fingerprint"] or {}
    print(f"collection:  {data['collection']} ({data['location']})")
    print(f"model:       {fingerprint.get('model', '?')}")
    print(f"dimension:   {fingerprint.get('dimension', '?')}")
    for name, value in sorted(fingerprint.items()):
        if name not in ("model", "dimension"):
            print(f"{name + ':':<13}{value}")
    print(f"space:       {data['space']}")
    print(f"documents:   {data['documents']}")
    print(f"chunks:      {data['chunks']}")
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed.emulator import (
        DEFAULT_API_KEY,
        Emulator,
        QuotaConfig,
        serve_forever,
    )

    quota = QuotaConfig(
        items_per_minute=args.items_per_minute,
        tokens_per_minute=args.tokens_per_minute,
        items_per_day=args.items_per_day,
        window_seconds=args.window_seconds,
    )

    def ready(emu: Emulator) -> None:
        print(emu.base_url, flush=True)
        print(
            f"{PROG}: Gemini API emulator listening on {emu.base_url} (Ctrl-C to stop); "
            f"use --base-url {emu.base_url}",
            file=sys.stderr,
            flush=True,
        )

    serve_forever(
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_keys or (DEFAULT_API_KEY,)),
        quota=quota,
        latency=args.latency,
        jitter=args.jitter,
        seed=args.seed,
        on_ready=ready,
    )
    return EXIT_OK


@contextlib.contextmanager
def _demo_backend() -> Iterator[tuple[str, str | None, str]]:
    """(api key, base url or None, description): Gemini if a key is set, else an emulator."""
    for var in _KEY_ENV_VARS:
        key = os.environ.get(var)
        if key:
            yield key, None, f"Gemini API (key from {var})"
            return
    from llama_index_gemini_embed.emulator import Emulator

    with Emulator() as emu:
        yield emu.api_key, emu.base_url, f"local Gemini emulator at {emu.base_url}"


def _cmd_demo(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._ingest.run import ingest, sample_corpus_dir
    from llama_index_gemini_embed._store.store import ChromaStore

    if args.top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {args.top_k}")
    with contextlib.ExitStack() as stack:
        key, base_url, backend = stack.enter_context(_demo_backend())
        if base_url is not None:
            print(
                "No GEMINI_API_KEY set: running on the local emulator (offline; deterministic "
                "lexical vectors, not real Gemini quality). Set GEMINI_API_KEY to use Gemini."
            )
        print(f"backend: {backend}")
        path = args.path or stack.enter_context(tempfile.TemporaryDirectory(prefix="gemini-demo-"))
        embed = GeminiEmbedding(api_key=key, base_url=base_url, output_dimensionality=768)
        store = ChromaStore("kestrel-demo", path=path, embed_model=embed)
        stack.callback(store.close)
        corpus = sample_corpus_dir()
        print(f"ingesting the sample corpus ({corpus}) into {path} ...")
        report = ingest(corpus, store=store, embed_model=embed, show_progress=False)
        print(report.summary())
        rerank = not args.no_rerank
        for question in DEMO_QUESTIONS:
            print()
            print(f"Q: {question}")
            try:
                results, reranked = _retrieve(
                    store,
                    embed,
                    question,
                    args.top_k,
                    None,
                    rerank=rerank,
                    key=key,
                    base_url=base_url,
                )
            except UsageError:
                rerank = False
                print("   (reranker unavailable: showing retrieval order)")
                results, reranked = _retrieve(
                    store,
                    embed,
                    question,
                    args.top_k,
                    None,
                    rerank=False,
                    key=key,
                    base_url=base_url,
                )
            for rank, result in enumerate(results, 1):
                print(textwrap.indent(_format_result(rank, result, reranked), "   "))
        usage = embed.usage
        print()
        print(
            f"done: {usage.requests} embedding requests, ~{usage.tokens:,} tokens, "
            f"~${usage.cost_usd:.4f}"
        )
    return EXIT_OK


# ----------------------------------------------------------------------------- main


def exit_code_for(error: BaseException) -> int:
    """The documented exit code for an exception (see :data:`EXIT_CODES`)."""
    return _code_for_class(type(error))


def _code_for_class(cls: type[BaseException]) -> int:
    from llama_index_gemini_embed._errors import (
        ConfigurationError,
        GeminiAPIError,
        InputError,
        QuotaExhaustedError,
        StoreError,
    )

    if issubclass(cls, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if issubclass(cls, UsageError | ConfigurationError | InputError):
        return EXIT_USAGE
    if issubclass(cls, QuotaExhaustedError):
        return EXIT_QUOTA
    if issubclass(cls, GeminiAPIError):
        return EXIT_API
    if issubclass(cls, StoreError):
        return EXIT_STORE
    if issubclass(cls, ValueError):  # a setting refused by LlamaIndex/pydantic validation
        return EXIT_USAGE
    # Anything else escaping a command: an SDK/transport failure or a Chroma one.
    return EXIT_API if cls.__module__.startswith(("google.", "httpx", "aiohttp")) else EXIT_STORE


def _error(message: str) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr, flush=True)


def _batch_state_path(args: argparse.Namespace) -> Path:
    """The state file `ingest --batch` uses for these store options (no store opened)."""
    if args.state:
        return Path(args.state)
    base = Path.cwd() if args.server else Path(args.path or "./chroma")
    return base / f".gemini-batch-{args.collection}.json"


def _cmd_batch(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed._batch.jobs import BatchEmbedder
    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._models import DEFAULT_MODEL
    from llama_index_gemini_embed._sync import run_sync

    path = _batch_state_path(args)
    if not path.exists():
        raise UsageError(
            f"No batch jobs recorded at {str(path)!r}: `gemini-embed ingest --batch` records "
            "them there (or pass --state FILE)"
        )
    key = _require_key(args)
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


_COMMANDS = {
    "batch": _cmd_batch,
    "ingest": _cmd_ingest,
    "query": _cmd_query,
    "info": _cmd_info,
    "emulator": _cmd_emulator,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gemini-embed`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    parser = build_parser()
    _ARGV_SECRETS[:] = _argv_secrets(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    key: str | None = None
    with contextlib.suppress(Exception):
        key = _api_key(args)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _error("interrupted; progress so far is kept (run the command again to resume)")
        return EXIT_INTERRUPTED
    except Exception as error:
        from llama_index_gemini_embed._errors import redact

        if args.debug:
            text = "".join(traceback.format_exception(error))
            print(redact(text, key), file=sys.stderr, end="")
        message = str(error) if _is_ours(error) else f"{type(error).__name__}: {error}"
        _error(redact(message, key))
        return exit_code_for(error)


def _is_ours(error: BaseException) -> bool:
    from llama_index_gemini_embed._errors import GeminiEmbedError

    return isinstance(error, GeminiEmbedError | UsageError)


if __name__ == "__main__":
    sys.exit(main())
