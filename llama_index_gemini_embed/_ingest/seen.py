"""The document ids one ingest run has read: exact, in bounded memory.

    with SeenIds(memory_limit_ids=1_000_000) as seen:   # 8 MiB in memory at most
        seen.add(["a.md", "b.md"])      # -> None: no id was there before
        seen.add(["c.md", "a.md"])      # -> "a.md": the first repeated id
        "b.md" in seen                  # -> True
        seen.contains(["a.md", "z.md"]) # -> array([ True, False])
    # the spill directory (if any) is gone here

:class:`SeenIds` refuses a document id repeated in one run and tells ``delete_missing``
which stored documents the run did not read. Forgetting an id would delete a live
document, so nothing is ever dropped: past the memory budget the ids spill to disk.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_MEMORY_LIMIT_IDS", "SeenIds"]

DEFAULT_MEMORY_LIMIT_IDS = 1_000_000
"""Ids held in memory before spilling: 8 bytes each, 8 MiB."""

_RECENT_IDS = 16_384
"""New hashes wait in a small sorted array and are merged into the big one in bulk: one
O(n) copy per 16k ids instead of one per window (adding 1M ids in windows of 500 took
7.1-7.4 µs per id with a merge per window, 1.8-2.6 µs with this)."""

_QUERY_IDS = 500
"""Hashes looked up in one SQL statement (well under SQLite's 999-parameter floor)."""

_SPILL_ROWS = 8_192
"""Rows handed to SQLite per executemany while spilling (bounds the transient Python ints)."""

_CACHE_KIB = 2_048
"""SQLite's page cache (``PRAGMA cache_size``): the memory the spilled part may hold."""

_U64 = npt.NDArray[np.uint64]


class SeenIds:
    """The document ids a run has read: 8 bytes each in memory, spilled to disk beyond a budget.

        seen = SeenIds(memory_limit_ids=100)
        try:
            seen.add(["a.md", "b.md"])      # -> None; a repeated id -> the first one
            "a.md" in seen                  # -> True
        finally:
            seen.close()                    # removes the spill directory

    Each id is kept as a 64-bit hash (blake2b). Up to ``memory_limit_ids`` hashes live in
    sorted numpy arrays (8 MiB for the default million; a ``set`` of the ids costs ~10 MiB
    per 100,000 documents). Beyond that the in-memory hashes move to an SQLite table (an
    INTEGER PRIMARY KEY of the hash as a signed int64) in a private temporary directory
    (``tempfile``'s, mode 0700), and memory starts filling again: ``nbytes`` (the arrays)
    never exceeds ``8 * memory_limit_ids``; SQLite's page cache adds at most 2 MiB.
    :meth:`close` (or leaving the ``with`` block; at interpreter exit as a last resort)
    removes the directory. SQLite rather than sorted run files memory-mapped: its reads go
    through its own bounded cache, so the spilled part never counts in the process's RSS,
    and one B-tree needs no merging of runs. On a tmpfs ``/tmp`` the spilled part is in RAM,
    outside the process: set ``TMPDIR`` to move it.

    Exact: nothing is forgotten or approximated beyond the hash. Two distinct ids share a
    hash with probability ~n²/2⁶⁵ (3e-8 for a million documents): then the later one is
    reported as repeated, or a removed document is kept (never a live one deleted).
    Thread-safe: the run adds from a worker thread and asks from the event loop.
    """

    def __init__(self, *, memory_limit_ids: int = DEFAULT_MEMORY_LIMIT_IDS) -> None:
        if isinstance(memory_limit_ids, bool) or not isinstance(memory_limit_ids, int):
            raise TypeError(
                f"memory_limit_ids must be an int, got {type(memory_limit_ids).__name__}"
            )
        if memory_limit_ids < 1:
            raise ValueError(
                f"memory_limit_ids must be at least 1 (ids held in memory), got {memory_limit_ids}"
            )
        self.memory_limit_ids = memory_limit_ids
        self._main: _U64 = np.empty(0, dtype=np.uint64)
        self._recent: _U64 = np.empty(0, dtype=np.uint64)
        self._spilled = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- the set -------------------------------------------------------------------------

    def add(self, doc_ids: Sequence[str]) -> str | None:
        """Add ``doc_ids`` (in order); return the first one already seen, else None.

        Repeats count inside ``doc_ids`` too; when one is found nothing is added.
        """
        hashes = _hashes(doc_ids)
        with self._lock:
            self._check_open()
            repeated = np.ones(len(hashes), dtype=bool)
            repeated[np.unique(hashes, return_index=True)[1]] = False  # later copies
            repeated |= self._known(hashes)
            if repeated.any():
                return doc_ids[int(np.argmax(repeated))]
            self._insert(hashes)
            return None

    def contains(self, doc_ids: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Which of ``doc_ids`` were seen, as a boolean array (one lookup for them all)."""
        hashes = _hashes(doc_ids)
        with self._lock:
            self._check_open()
            return self._known(hashes)

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        value = _hash(doc_id)
        with self._lock:
            self._check_open()
            for part in (self._main, self._recent):
                index = int(np.searchsorted(part, np.uint64(value)))
                if index < len(part) and int(part[index]) == value:
                    return True
            if self._db is None:
                return False
            signed = value - (1 << 64) if value >= 1 << 63 else value
            query = "SELECT 1 FROM seen WHERE h = ?"
            return self._db.execute(query, (signed,)).fetchone() is not None

    def __len__(self) -> int:
        return len(self._main) + len(self._recent) + self._spilled

    @property
    def nbytes(self) -> int:
        """Memory held by the in-memory hashes: at most ``8 * memory_limit_ids``."""
        return int(self._main.nbytes + self._recent.nbytes)

    @property
    def spilled(self) -> int:
        """How many ids are on disk (0 while everything fits in memory)."""
        return self._spilled

    @property
    def spill_dir(self) -> Path | None:
        """The private directory holding the spilled ids (None before the first spill)."""
        return Path(self._dir.name) if self._dir is not None else None

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Free the memory and remove the spill directory; the set cannot be used after."""
        with self._lock:
            self._closed = True
            self._main = self._recent = np.empty(0, dtype=np.uint64)
            self._spilled = 0
            db, self._db = self._db, None
            folder, self._dir = self._dir, None
            if db is not None:
                db.close()
            if folder is not None:
                folder.cleanup()

    def __enter__(self) -> SeenIds:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self)} ids, {self._spilled} on disk"
        return f"SeenIds({state}, memory_limit_ids={self.memory_limit_ids})"

    # -- internals (called with the lock held) -------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this SeenIds is closed (its ingest run has ended)")

    def _known(self, hashes: _U64) -> npt.NDArray[np.bool_]:
        known = np.zeros(len(hashes), dtype=bool)
        for part in (self._main, self._recent):
            if len(part):
                index = np.minimum(np.searchsorted(part, hashes), len(part) - 1)
                known |= part[index] == hashes
        if self._db is not None and len(hashes):
            signed = hashes.view(np.int64)
            found: list[int] = []
            for start in range(0, len(signed), _QUERY_IDS):
                values = signed[start : start + _QUERY_IDS].tolist()
                marks = ",".join("?" * len(values))
                rows = self._db.execute(f"SELECT h FROM seen WHERE h IN ({marks})", values)
                found.extend(row[0] for row in rows)
            if found:
                hits = set(found)
                known |= np.fromiter(
                    (value in hits for value in signed.tolist()), dtype=bool, count=len(signed)
                )
        return known

    def _insert(self, hashes: _U64) -> None:
        if len(self) - self._spilled + len(hashes) > self.memory_limit_ids:
            self._spill(np.concatenate([self._main, self._recent]))
            self._main = self._recent = np.empty(0, dtype=np.uint64)
            if len(hashes) > self.memory_limit_ids:
                self._spill(hashes)
                return
        hashes = np.sort(hashes)
        self._recent = np.insert(self._recent, np.searchsorted(self._recent, hashes), hashes)
        if len(self._recent) >= _RECENT_IDS:
            recent, self._recent = self._recent, np.empty(0, dtype=np.uint64)
            self._main = np.insert(self._main, np.searchsorted(self._main, recent), recent)

    def _spill(self, hashes: _U64) -> None:
        if not len(hashes):
            return
        try:
            self._write(hashes)
        except (OSError, sqlite3.Error) as exc:
            where = self._dir.name if self._dir is not None else tempfile.gettempdir()
            raise OSError(
                f"Cannot spill the document ids this run has read to {where} ({exc}): free "
                "space there, set TMPDIR to another directory, or raise memory_limit_ids"
            ) from exc
        self._spilled += len(hashes)

    def _write(self, hashes: _U64) -> None:
        db = self._db or self._open_db()
        signed = np.sort(hashes.view(np.int64))  # ascending keys: B-tree appends stay local
        db.execute("BEGIN")  # one transaction
        try:
            for start in range(0, len(signed), _SPILL_ROWS):
                rows = zip(signed[start : start + _SPILL_ROWS].tolist(), strict=False)
                db.executemany("INSERT INTO seen (h) VALUES (?)", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _open_db(self) -> sqlite3.Connection:
        folder = tempfile.TemporaryDirectory(
            prefix="gemini-embed-seen-ids-", ignore_cleanup_errors=True
        )
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(
                Path(folder.name) / "seen.sqlite3", check_same_thread=False, isolation_level=None
            )
            # A scratch file removed at the end of the run: no journal, no fsync.
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            db.execute("CREATE TABLE seen (h INTEGER PRIMARY KEY)")
        except BaseException:
            if db is not None:
                db.close()
            folder.cleanup()
            raise
        self._dir, self._db = folder, db
        return db


def _hash(doc_id: str) -> int:
    digest = hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


def _hashes(doc_ids: Sequence[str]) -> _U64:
    values: Iterator[int] = (_hash(doc_id) for doc_id in doc_ids)
    return np.fromiter(values, dtype=np.uint64, count=len(doc_ids))
