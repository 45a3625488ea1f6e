"""The ``gemini-embed`` command line: entry point :func:`main`, parser and exit codes."""

from .app import (
    EXIT_API,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_QUOTA,
    EXIT_STORE,
    EXIT_USAGE,
    build_parser,
    exit_code_for,
    main,
)

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
