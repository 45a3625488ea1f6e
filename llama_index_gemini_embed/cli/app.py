"""``gemini-embed``: ingest folders into Chroma with Gemini embeddings, query, inspect, demo.

    gemini-embed demo                                   # offline on the emulator without a key
    gemini-embed ingest ./docs --collection docs --dimension 768
    gemini-embed query "how do I export to PDF?" --collection docs --filter category=reference
    gemini-embed info --collection docs
    gemini-embed emulator --port 8765                   # a local Gemini API for tests

The key comes from ``GEMINI_API_KEY`` (or ``--api-key-env NAME``); it is never printed.
Errors are one line on stderr (``--debug`` adds the traceback); exit codes are listed in
``gemini-embed --help``.

This module assembles the parser from one module per command (each ``register(commands)``
adds its subparser and sets ``run``) and maps every error to one line and an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from . import batch, demo, doctor, emulator, info, ingest, query
from ._common import (
    ARGV_SECRETS,
    EXIT_API,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_QUOTA,
    EXIT_STORE,
    EXIT_USAGE,
    PROG,
    Parser,
    UsageError,
    api_key,
    argv_secrets,
    epilog,
    exit_code_for,
    formatter,
    key_option,
    print_error,
)
from ._terms import in_cli_terms

__all__ = [
    "EXIT_API",
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_QUOTA",
    "EXIT_STORE",
    "EXIT_USAGE",
    "build_parser",
    "exit_code_for",
    "main",
]

#: The commands in the order ``gemini-embed --help`` lists them.
COMMANDS = (ingest, batch, query, info, emulator, demo, doctor)


def build_parser() -> argparse.ArgumentParser:
    """The ``gemini-embed`` argument parser: global options, then one subparser per command."""
    parser = Parser(
        prog=PROG,
        description="Gemini embeddings + Chroma for LlamaIndex: streaming, resumable ingestion, "
        "query, inspection, and an offline Gemini API emulator.",
        epilog=epilog(),
        formatter_class=formatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gemini-embed`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    parser = build_parser()
    ARGV_SECRETS[:] = argv_secrets(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    key: str | None = None
    with contextlib.suppress(Exception):
        key = api_key(args)
    warnings_handler = CliWarnings(key=key, key_option=key_option(args))
    package_logger = logging.getLogger("llama_index_gemini_embed")
    package_logger.addHandler(warnings_handler)
    try:
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print_error("interrupted; progress so far is kept (run the command again to resume)")
        return EXIT_INTERRUPTED
    except Exception as error:
        from llama_index_gemini_embed._errors import redact

        if args.debug:
            text = "".join(traceback.format_exception(error))
            print(redact(text, key), file=sys.stderr, end="")
        message = str(error) if _is_ours(error) else f"{type(error).__name__}: {error}"
        print_error(in_cli_terms(redact(message, key), key_option=key_option(args)))
        return exit_code_for(error)
    finally:
        package_logger.removeHandler(warnings_handler)


class CliWarnings(logging.Handler):
    """The package's warnings as ``gemini-embed: warning: …`` lines, in CLI terms, each
    distinct message once per command (not once per request, file or retry)."""

    def __init__(self, *, key: str | None, key_option: str | None) -> None:
        super().__init__(level=logging.WARNING)
        self._key, self._key_option = key, key_option
        self._printed: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        from llama_index_gemini_embed._errors import redact

        text = in_cli_terms(redact(record.getMessage(), self._key), key_option=self._key_option)
        if text in self._printed:
            return
        self._printed.add(text)
        print(f"gemini-embed: warning: {text}", file=sys.stderr)


def _is_ours(error: BaseException) -> bool:
    from llama_index_gemini_embed._errors import GeminiEmbedError

    return isinstance(error, GeminiEmbedError | UsageError)


if __name__ == "__main__":
    sys.exit(main())
