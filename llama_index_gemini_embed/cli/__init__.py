"""The ``gemini-embed`` command line (entry point :func:`main`)."""

from .app import main

__all__ = ["main"]
