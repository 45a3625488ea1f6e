"""Deprecated names: honoured, with one FutureWarning per name and process.

    warn_once("ingest(sync=...)", "ingest(sync=...) is deprecated: use delete_missing=...")

A FutureWarning, not a DeprecationWarning: Python shows it to whoever runs the code (not
only under ``-W`` or in ``__main__``), and a renamed setting should reach the person who can
change the call.
"""

from __future__ import annotations

import threading
import warnings

__all__ = ["warn_once"]

_lock = threading.Lock()
_warned: set[str] = set()


def warn_once(key: str, message: str, *, stacklevel: int = 3) -> None:
    """Warn with ``message`` the first time ``key`` is seen in this process."""
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, FutureWarning, stacklevel=stacklevel + 1)
