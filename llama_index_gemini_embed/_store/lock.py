"""One writer process per local Chroma directory: an flock on ``<path>/.lige.lock``.

lease = acquire_lease("./chroma")          # StoreLockedError if another process holds it
client = lease.client(make_persistent_client)   # shared by every lease on that path
with lease.lock_for("docs"):                # serialises operations on one collection
    ...
lease.release()                             # the last release closes the client, unlocks

Chroma's PersistentClient is not safe with several writing processes on one directory
(concurrent writers corrupt the HNSW index), so the first process to
open a path takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` and keeps it until every store on
that path in the process is closed (or the process exits). Stores in the same process
share the lock, the client and the per-collection operation locks through a refcounted
registry. In a forked child the inherited lock is dropped, not released, so the parent
keeps it. Readers (``ChromaStore(..., read_only=True)``) take no lock at all: they never
shut a writer out, and see what the writer has persisted when they open.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llama_index_gemini_embed._errors import StoreLockedError

__all__ = [
    "LOCK_FILE_NAME",
    "PathLease",
    "acquire_lease",
    "join_held_lease",
    "lock_file_path",
    "read_lock_holder",
]

LOCK_FILE_NAME = ".lige.lock"


@dataclass
class _Entry:
    path: str
    fd: int
    refcount: int = 0
    client: Any = None
    locks: dict[str, threading.RLock] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}
_REGISTRY_LOCK = threading.Lock()


def lock_file_path(path: str) -> str:
    """Where the lock of the Chroma directory ``path`` lives."""
    return os.path.join(os.path.realpath(os.path.expanduser(path)), LOCK_FILE_NAME)


def read_lock_holder(path: str) -> int | None:
    """The PID recorded in the lock file of ``path``, if any."""
    try:
        with open(lock_file_path(path), encoding="ascii") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _locked_message(path: str, pid: int | None) -> str:
    holder = f"process {pid}" if pid is not None else "another process"
    return (
        f"The local Chroma store at {path} is in use by {holder} (lock file "
        f"{lock_file_path(path)}). Chroma's local store supports one process at a time: "
        "several writers corrupt it. Close the other process, or serve the directory with "
        f"`chroma run --path {path} --port 8000` and open it from every process with "
        "ChromaStore(..., host='localhost', port=8000)."
    )


def _open_locked(path: str) -> int:
    os.makedirs(path, exist_ok=True)
    fd = os.open(lock_file_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(_locked_message(path, read_lock_holder(path))) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return fd


class PathLease:
    """One store's share of a locked directory; :meth:`release` is idempotent."""

    def __init__(self, entry: _Entry) -> None:
        self._entry: _Entry | None = entry

    @property
    def path(self) -> str:
        """The real path of the locked directory."""
        if self._entry is None:
            raise RuntimeError("lease already released")
        return self._entry.path

    def client(self, factory: Callable[[], Any]) -> Any:
        """The client shared by every store on this path, created by ``factory`` once."""
        with _REGISTRY_LOCK:
            if self._entry is None:
                raise RuntimeError("lease already released")
            if self._entry.client is None:
                self._entry.client = factory()
            return self._entry.client

    def lock_for(self, collection: str) -> threading.RLock:
        """The lock serialising operations on ``collection`` in this process."""
        with _REGISTRY_LOCK:
            if self._entry is None:
                raise RuntimeError("lease already released")
            return self._entry.locks.setdefault(collection, threading.RLock())

    def release(self) -> None:
        """Give the share back; the last one closes the client and unlocks the directory."""
        with _REGISTRY_LOCK:
            entry, self._entry = self._entry, None
            if entry is None:
                return
            entry.refcount -= 1
            if entry.refcount > 0:
                return
            if _REGISTRY.get(entry.path) is entry:
                del _REGISTRY[entry.path]
            # Still under the registry lock: a concurrent acquire of the same path must not
            # try to flock while this descriptor holds the lock.
            client, entry.client = entry.client, None
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
            if entry.fd >= 0:
                with contextlib.suppress(OSError):
                    fcntl.flock(entry.fd, fcntl.LOCK_UN)
                with contextlib.suppress(OSError):
                    os.close(entry.fd)
                entry.fd = -1


def acquire_lease(path: str) -> PathLease:
    """Lock ``path`` for this process (or join the lock it already holds).

    Raises:
        StoreLockedError: Another process holds the directory; the message names its PID
            and how to share the data instead (``chroma run``).
    """
    real = os.path.realpath(os.path.expanduser(path))
    with _REGISTRY_LOCK:
        entry = _REGISTRY.get(real)
        if entry is None:
            entry = _Entry(path=real, fd=_open_locked(real))
            _REGISTRY[real] = entry
        entry.refcount += 1
        return PathLease(entry)


def join_held_lease(path: str) -> PathLease | None:
    """A share of the lock this process already holds on ``path``, else None (no lock taken).

    Read-only stores use it: they share the writer's client when this process is the
    writer, and otherwise open the directory without locking it.
    """
    real = os.path.realpath(os.path.expanduser(path))
    with _REGISTRY_LOCK:
        entry = _REGISTRY.get(real)
        if entry is None:
            return None
        entry.refcount += 1
        return PathLease(entry)


def _before_fork() -> None:
    _REGISTRY_LOCK.acquire()


def _after_fork_in_parent() -> None:
    _REGISTRY_LOCK.release()


def _after_fork_in_child() -> None:
    """Drop inherited locks without unlocking them: the parent still owns them."""
    global _REGISTRY_LOCK
    for entry in _REGISTRY.values():
        with contextlib.suppress(OSError):
            os.close(entry.fd)
        entry.fd = -1
        entry.client = None
    _REGISTRY.clear()
    _REGISTRY_LOCK = threading.Lock()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
