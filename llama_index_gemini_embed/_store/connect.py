"""How a ChromaStore reaches Chroma: clients, the sync/async flow drivers, error mapping.

client = open_local("./chroma")                 # PersistentClient, or a StoreError saying why
result = drive(flow, collection)                # run a sans-I/O flow (see flows) on a Collection
with translate_chroma_errors("querying", "docs", host, port): ...   # our errors, chained

Split from ``store`` so that module holds only the LlamaIndex-facing class.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import chromadb
import httpx
from chromadb.api import BaseAPI, ClientAPI
from chromadb.api.models.AsyncCollection import AsyncCollection
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings
from chromadb.errors import InvalidArgumentError

from llama_index_gemini_embed._errors import (
    ConfigurationError,
    DimensionMismatchError,
    StoreError,
    StoreUnavailableError,
)

from .flows import Call, Flow
from .lock import PathLease
from .loop_thread import LoopThread

__all__ = [
    "AsyncServer",
    "adrive",
    "check_local_path",
    "chroma_settings",
    "drive",
    "open_local",
    "release",
    "translate_chroma_errors",
]

T = TypeVar("T")
_CHROMA_DB_FILE = "chroma.sqlite3"  # what PersistentClient writes first in a new directory
_DIMENSION_RE = re.compile(r"expecting embedding with dimension of (\d+), got (\d+)")


def chroma_settings() -> Settings:
    # _env_file=None: never let a stray ./.env (e.g. ALLOW_RESET=TRUE) change Chroma.
    return Settings(anonymized_telemetry=False, _env_file=None)


class AsyncServer:
    """Server mode's async side: one AsyncHttpClient collection on the store's own loop thread."""

    def __init__(self, name: str) -> None:
        self.io = LoopThread(f"lige-chroma-{name}")
        self.collection: AsyncCollection | None = None
        self.lock: asyncio.Lock | None = None  # created on the loop thread, used only there
        self.pid = os.getpid()

    def forget_if_forked(self) -> None:
        """In a forked child the parent's connections are not ours to use: reconnect."""
        if self.pid != os.getpid():
            self.pid, self.collection, self.lock = os.getpid(), None, None

    async def aclose(self) -> None:
        """On the loop thread: close the httpx pool chromadb keeps for this loop."""
        collection, self.collection = self.collection, None
        api = getattr(collection, "_client", None)
        # chromadb's AsyncFastAPI caches one httpx.AsyncClient per loop in a class-level
        # dict keyed by the loop's hash; nothing else ever closes it.
        pools = getattr(type(api), "_clients", None)
        if isinstance(pools, dict):
            pool = pools.pop(hash(asyncio.get_running_loop()), None)
            if isinstance(pool, httpx.AsyncClient):
                await pool.aclose()

    def stop(self) -> None:
        """Close the pool and end the loop thread (idempotent)."""
        self.io.stop(self.aclose)


def release(
    lease: PathLease | None, owned_client: BaseAPI | None, aserver: AsyncServer | None = None
) -> None:
    """Finaliser: close a client we created, stop the async loop thread, give the lock back."""
    if aserver is not None:
        with contextlib.suppress(Exception):  # closing must never raise
            aserver.stop()
    close = getattr(owned_client, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # closing must never raise
            close()
    if lease is not None:
        lease.release()


def check_local_path(path: str, *, must_exist: bool, collection: str) -> None:
    """Refuse, before anything is created, a path that is a file or (``must_exist``) no store."""
    real = os.path.expanduser(path)
    if os.path.exists(real) and not os.path.isdir(real):
        raise ConfigurationError(
            f"path={path!r} is a file, not a directory: pass the directory of a local "
            "Chroma store (or a new one to create)."
        )
    # The nearest existing ancestor must be a directory too, or creating it would fail
    # with a bare NotADirectoryError.
    ancestor = os.path.dirname(os.path.abspath(real))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ConfigurationError(
            f"path={path!r} is inside {ancestor!r}, which is a file: pass a directory "
            "for the local Chroma store."
        )
    if must_exist and not os.path.isfile(os.path.join(real, _CHROMA_DB_FILE)):
        raise StoreError(
            f"Collection {collection!r} does not exist at {path} (no Chroma store there yet): "
            "ingest something first (gemini-embed ingest PATH --path DIR), or check --path."
        )


def open_local(path: str) -> ClientAPI:
    """``PersistentClient(path)``; a directory Chroma cannot open is a StoreError saying so."""
    try:
        return chromadb.PersistentClient(path, chroma_settings())
    except Exception as exc:
        # chromadb caches the half-started system per path: drop it, or every later open
        # in this process fails with an unrelated AttributeError.
        with contextlib.suppress(Exception):
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient._identifier_to_system.pop(path, None)
        raise StoreError(
            f"Cannot open the local Chroma store at {path} ({type(exc).__name__}: {exc}). "
            f"Its files are damaged or were not written by chromadb {chromadb.__version__}: "
            "restore the directory from a backup, or move it away and ingest again into a "
            "new one (--path)."
        ) from exc


def _send(collection: Collection, call: Call) -> Any:
    """One collection call; sent again once if a pooled connection turns out closed.

    A server closes the connection after some answers (e.g. 413 Payload too large) or a
    restart; the next request on that kept-alive connection fails with "Server
    disconnected without sending a response" before reaching it. Every call a flow makes
    is idempotent (reads, upserts of the same rows, deletes by id), so one resend is safe.
    """
    method = getattr(collection, call.method)
    try:
        return method(**call.kwargs)
    except httpx.RemoteProtocolError:
        return method(**call.kwargs)


async def _asend(collection: AsyncCollection, call: Call) -> Any:
    """Async :func:`_send`."""
    method = getattr(collection, call.method)
    try:
        return await method(**call.kwargs)
    except httpx.RemoteProtocolError:
        return await method(**call.kwargs)


def may_inherit_list_metadata(directory: str | None) -> bool:
    """Can a record written now into the local store at ``directory`` inherit list metadata?

    chroma-core/chroma#7594 (open; chromadb 1.5): ``delete_collection`` leaves the deleted
    records' list-valued metadata in ``embedding_metadata_array``, keyed by the internal
    ``embeddings.id``; that column is ``INTEGER PRIMARY KEY`` without AUTOINCREMENT, so a new
    record gets ``MAX(id) + 1`` and inherits whatever is stored under it. A new record can
    inherit only if some list metadata sits above the highest live id. One read-only query
    of Chroma's sqlite file answers that; anything unexpected (no file: an in-memory or
    server store, another schema, a locked file) answers True, and the caller reads the
    written rows back instead.
    """
    if directory is None:
        return True
    database = os.path.join(directory, "chroma.sqlite3")
    if not os.path.isfile(database):
        return True
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1.0)
        try:
            row = connection.execute(
                "SELECT (SELECT MAX(id) FROM embedding_metadata_array),"
                " (SELECT MAX(id) FROM embeddings)"
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return True
    top_listed, top_live = row
    if top_listed is None:
        return False
    return not isinstance(top_live, int) or top_listed > top_live


def drive(flow: Flow[T], collection: Collection, *, directory: str | None = None) -> T:
    """Run ``flow`` against ``collection``; ``directory``: the local store's files, if any
    (answers the flow's ``inherits`` question, see :func:`may_inherit_list_metadata`)."""
    try:
        call: Call = next(flow)
        while True:
            if call.method == "inherits":
                call = flow.send(may_inherit_list_metadata(directory))
            else:
                call = flow.send(_send(collection, call))
    except StopIteration as stop:
        return cast(T, stop.value)


async def adrive(flow: Flow[T], collection: AsyncCollection) -> T:
    """Async :func:`drive` for a server collection (which cannot tell what a new record
    inherits: it answers ``inherits`` with True)."""
    try:
        call: Call = next(flow)
        while True:
            if call.method == "inherits":
                call = flow.send(True)
            else:
                call = flow.send(await _asend(collection, call))
    except StopIteration as stop:
        return cast(T, stop.value)


@contextmanager
def translate_chroma_errors(
    what: str, collection: str, host: str | None, port: int | None
) -> Iterator[None]:
    """Map chromadb/httpx failures to this package's errors, chained (``what``: "querying")."""
    try:
        yield
    except StoreError:
        raise
    except httpx.TransportError as exc:
        raise StoreUnavailableError(_unavailable(what, exc, host, port)) from exc
    except InvalidArgumentError as exc:
        match = _DIMENSION_RE.search(str(exc))
        if match:
            raise DimensionMismatchError(
                f"Collection {collection!r} holds {match[1]}-dimensional vectors "
                f"but got {match[2]} while {what}. Use the collection's embedding model "
                "and output_dimensionality, or another collection_name."
            ) from exc
        raise
    except Exception as exc:
        text = str(exc)
        if "Could not connect to a Chroma server" in text:
            raise StoreUnavailableError(_unavailable(what, exc, host, port)) from exc
        if "Payload too large" in text:
            raise StoreError(
                f"The Chroma server refused a request as too large while {what} ({text}). "
                "ChromaStore keeps writes under payload_cap_bytes (30 MiB by default, for "
                "the server's 40 MiB limit); lower payload_cap_bytes if your server "
                "allows less."
            ) from exc
        raise


def _unavailable(what: str, exc: BaseException, host: str | None, port: int | None) -> str:
    return (
        f"Cannot reach the Chroma server at {host}:{port} while {what}: {exc}. "
        f"Start it with `chroma run --path DIR --host {host} --port {port}`, "
        "or fix host=/port=."
    )
