"""One writer process per local Chroma directory: shared in-process, refused across processes."""

from __future__ import annotations

import fcntl
import gc
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, cast

import chromadb
import pytest
from chromadb.config import Settings

from llama_index_gemini_embed._store.lock import lock_file_path, read_lock_holder
from llama_index_gemini_embed._store.store import ChromaStore

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def lock_held(path: str) -> bool:
    """Is the directory's flock held? (A second open file description conflicts with it.)"""
    fd = os.open(lock_file_path(path), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops a lock we just took
    return False


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "chroma")


def test_stores_in_one_process_share_the_lock_and_the_client(path: str) -> None:
    first = ChromaStore("first", path=path)
    second = ChromaStore("second", path=path)
    assert first.client is second.client
    assert lock_held(path) and read_lock_holder(path) == os.getpid()
    first.close()
    assert second.count() == 0  # still open
    assert lock_held(path)
    second.close()
    assert not lock_held(path)


def test_garbage_collection_releases_the_lock(path: str) -> None:
    store = ChromaStore("docs", path=path)
    assert lock_held(path)
    del store
    gc.collect()
    assert not lock_held(path)


def test_a_supplied_persistent_client_is_locked_but_not_closed(path: str) -> None:
    client = chromadb.PersistentClient(path, Settings(anonymized_telemetry=False, _env_file=None))
    with ChromaStore("docs", client=client) as store:
        assert store.client is client
        assert lock_held(path)
    assert not lock_held(path)
    assert client.get_collection("docs").count() == 0  # the caller's client still works


CHILD = r"""
import sys
from llama_index_gemini_embed._errors import StoreLockedError
from llama_index_gemini_embed._store.store import ChromaStore

for line in sys.stdin:  # one attempt per line the parent sends
    try:
        with ChromaStore("docs", path=sys.argv[1]) as store:
            print("OPENED", store.count(), flush=True)
    except StoreLockedError as exc:
        print("LOCKED", str(exc), flush=True)
"""


def read_line(stream: IO[str], timeout: float = 60.0) -> str:
    """One line from a child's stdout, waiting at most ``timeout`` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                return stream.readline().strip()
    raise TimeoutError("the child process did not answer")


def test_a_second_process_is_refused_until_the_first_closes(path: str) -> None:
    store = ChromaStore("docs", path=path)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    stdin, stdout = cast(IO[str], child.stdin), cast(IO[str], child.stdout)
    try:
        stdin.write("try\n")
        stdin.flush()
        answer = read_line(stdout)
        real = os.path.realpath(path)
        assert answer == (
            f"LOCKED The local Chroma store at {real} is in use by process {os.getpid()} "
            f"(lock file {real}/.lige.lock). Chroma's local store supports one process at a "
            "time: several writers corrupt it. Close the other process, or serve the "
            f"directory with `chroma run --path {real} --port 8000` and open it from every "
            "process with ChromaStore(..., host='localhost', port=8000)."
        )
        store.close()
        stdin.write("try\n")
        stdin.flush()
        assert read_line(stdout) == "OPENED 0"
    finally:
        store.close()
        stdin.close()
        child.wait(timeout=60)
    assert child.returncode == 0
