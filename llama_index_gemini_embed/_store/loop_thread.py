"""One event loop in a daemon thread, where a server-mode store runs all its async calls.

io = LoopThread("lige-chroma-docs")
result = await io.run(some_coroutine())   # from any event loop, in any thread
io.stop(cleanup)                          # runs ``await cleanup()`` there, then ends the thread

Why: chromadb's ``AsyncHttpClient`` keeps one ``httpx.AsyncClient`` (and its sockets) per
event loop, in a class-level dict, forever. A caller that runs ``asyncio.run(store.aquery(...))``
in a loop would open a new connection pool each time and never close it (hundreds of
sockets, then the fd limit). Running every async call on the store's own loop keeps one pool
whatever the number of caller loops, and still multiplexes concurrent calls natively.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """A lazily started event loop thread; :meth:`stop` is idempotent and thread-safe."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._pid = os.getpid()

    @property
    def started(self) -> bool:
        """Whether the thread runs (it starts on the first :meth:`run`)."""
        return self._loop is not None

    def _forget_if_forked(self) -> None:
        """In a forked child the parent's loop thread does not exist: start afresh."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._loop, self._thread, self._lock = None, None, threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        self._forget_if_forked()
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"{self._name} is stopped")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name=self._name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on this thread's loop; cancelling the caller cancels it there too."""
        try:
            loop = self._ensure()
        except BaseException:
            coro.close()
            raise
        if asyncio.get_running_loop() is loop:  # already on it (e.g. a nested call)
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def stop(self, cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run ``cleanup`` on the loop (errors ignored), stop it and join the thread."""
        self._forget_if_forked()
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread, self._stopped = None, None, True
        if loop is None or thread is None or not thread.is_alive():
            return
        on_thread = threading.current_thread() is thread
        if cleanup is not None and not on_thread:

            async def safely() -> None:
                with contextlib.suppress(Exception):
                    await cleanup()

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(safely(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if not on_thread:
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()
