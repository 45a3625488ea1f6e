"""The ``gemini-embed`` command line (entry point :func:`main`).

One module per command (``ingest``, ``batch``, ``query``, ``info``, ``emulator``, ``demo``),
assembled by :mod:`.app`. Nothing is imported until :func:`main` runs, so
``python -m llama_index_gemini_embed.cli.app`` works as well as ``-m
llama_index_gemini_embed.cli``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gemini-embed`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    from .app import main as run

    return run(argv)
