"""Start and stop a real ``chroma run`` server for tests.

with start_chroma(tmp_path / "chroma") as server:
    store = ChromaStore.from_url(server.url, collection_name="docs")

``chroma run`` exits with status 0 when its port is busy, and a heartbeat poll could then
be answered by whatever already listens there, so the port is checked first and the
process must still be alive when the heartbeat answers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["ChromaServer", "ExternalChromaServer", "free_port", "start_chroma"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ChromaServer:
    """A running ``chroma run`` process; :meth:`stop` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, process: subprocess.Popen[bytes], path: Path, port: int, log: Path):
        self.process = process
        self.path = path
        self.host = "127.0.0.1"
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server by PID, wait, SIGKILL if it does not exit in ``timeout``."""
        if self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ChromaServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ExternalChromaServer:
    """A server someone else started (e.g. ``.ci/run`` via ``$LIGE_CHROMA_URL``); never stopped."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 8000

    def stop(self, timeout: float = 10.0) -> None:
        """Nothing to do: the server belongs to whoever started it."""

    def __enter__(self) -> ExternalChromaServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_chroma(path: str | Path, port: int = 0, timeout: float = 20.0) -> ChromaServer:
    """Start ``<venv>/bin/chroma run --path PATH --host 127.0.0.1 --port PORT``; wait for it.

    Raises:
        RuntimeError: The port is busy, or the server exited before answering.
        TimeoutError: No heartbeat within ``timeout`` seconds (the server is stopped).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if _port_in_use(port):
        raise RuntimeError(f"port {port} is already in use; pick another for chroma run")
    exe = Path(sys.executable).parent / "chroma"
    log = path.parent / f"chroma-{port}.log"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(exe), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = ChromaServer(process, path, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"chroma run exited early with status {process.returncode}; "
                f"log:\n{log.read_text(errors='replace')[-2000:]}"
            )
        if _heartbeat(server.url) and process.poll() is None:
            return server
        time.sleep(0.05)  # polling interval, bounded by the deadline above
    server.stop()
    raise TimeoutError(f"chroma run on port {port} did not answer within {timeout} s")
