"""Run our async core from sync code, also inside a running event loop (Jupyter).

    result = run_sync(engine.embed(specs))

Coroutines run on one long-lived background loop thread per process, so the SDK's
per-loop HTTP session is reused across sync calls and a caller's running loop is never
blocked re-entrantly. Recreated after fork.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="llama-index-gemini-embed-sync", daemon=True
            )
            thread.start()
            _loop, _pid = loop, os.getpid()
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the background loop and return its result."""
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError(
            "run_sync() was called from the package's own background loop; await the async "
            "method instead"
        )
    return asyncio.run_coroutine_threadsafe(coro, loop).result()
