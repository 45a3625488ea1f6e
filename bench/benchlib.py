"""Shared helpers for the benchmarks in bench/ (not part of the package).

Every benchmark: runs side by side in one process tree, takes medians of repetitions,
records the machine load it ran under, writes ``bench/results/<name>.json`` and prints a
final ``SUMMARY <name>: ...`` line with the ratio it measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SCRATCH_DIR = BENCH_DIR / ".scratch"
OURS_PY = BENCH_DIR / ".venv-bench" / "bin" / "python"
ANCHOR_PY = BENCH_DIR / ".venv-anchors" / "bin" / "python"
WORKER = BENCH_DIR / "ingest_worker.py"
CACHE_DIR = ROOT / ".bench-cache"
# The DBpedia-Entity 5k subset lives in the shared/ folder beside the checkout
# (../shared/data/dbpedia-entity-5k); LIGE_BENCH_DATA points elsewhere.
DATA_DIR = Path(
    os.environ.get("LIGE_BENCH_DATA", ROOT.parent / "shared" / "data" / "dbpedia-entity-5k")
)


def loadavg() -> tuple[float, float, float]:
    with open("/proc/loadavg") as fh:
        a, b, c = fh.read().split()[:3]
    return float(a), float(b), float(c)


class LoadMonitor:
    """Samples the 1-minute load average every ``every`` seconds while a benchmark runs."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(loadavg()[0])
            self._stop.wait(self.every)

    def __enter__(self) -> LoadMonitor:
        self.start_load = loadavg()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end_load = loadavg()

    def describe(self) -> dict[str, Any]:
        s = self.samples or [loadavg()[0]]
        return {
            "cpus": os.cpu_count(),
            "load1_start": self.start_load[0],
            "load1_median": round(statistics.median(s), 2),
            "load1_max": round(max(s), 2),
            "load1_end": self.end_load[0],
            "note": "2 shared cores; other engineers' test runs were active unless load ~0",
        }


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    def ver(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "google-genai": ver("google-genai"),
        "chromadb": ver("chromadb"),
        "llama-index-core": ver("llama-index-core"),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    data = {"benchmark": name, "machine": machine(), "command": " ".join(sys.argv), **data}
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def summary(name: str, text: str) -> None:
    """The final line of every benchmark (run_all greps for it)."""
    print(f"SUMMARY {name}: {text}", flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, round(p / 100.0 * len(xs) + 0.5) - 1))
    return float(xs[k])


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = time.process_time() - c0


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def fresh_dir(name: str) -> Path:
    import shutil

    path = SCRATCH_DIR / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- corpus

_WORDS: list[str] | None = None


def _vocabulary() -> list[str]:
    global _WORDS
    if _WORDS is None:
        rng = random.Random(1234)
        syll = ["ka", "lo", "mi", "ne", "ra", "to", "vi", "su", "pe", "do", "an", "el", "or"]
        words = {"".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(6000)}
        _WORDS = sorted(words)
    return _WORDS


def synthetic_chunk(i: int, words: int = 40) -> str:
    """Deterministic pseudo-text chunk ``i`` (``words`` words, ~1.3 tokens per word)."""
    vocab = _vocabulary()
    h = int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little")
    rng = random.Random(h)
    body = " ".join(rng.choice(vocab) for _ in range(words))
    return f"Chunk {i}: {body}."


def synthetic_documents(n: int, words: int = 40, start: int = 0) -> Iterator[Any]:
    """``n`` one-chunk llama-index Documents with stable ids (lazily)."""
    from llama_index.core.schema import Document

    for i in range(start, start + n):
        yield Document(text=synthetic_chunk(i, words), id_=f"doc-{i:07d}")


SHAPES = ("synthetic", "small-files", "long-docs")
LONG_DOC_WORDS = 1600  # ~4 chunks of ~512 tokens each with the long-docs splitter
LONG_DOC_CHUNK_TOKENS = 512


def shape_documents(shape: str, n: int, words: int = 40) -> Iterator[Any]:
    """The corpus shapes users have, as ``n`` llama-index Documents (lazily).

    * ``synthetic``: one ``words``-word chunk per document, no title (the original benchmark);
    * ``small-files``: one short chunk per document with a distinct ``file_name`` — a folder
      of small files, where each file's name is sent as its title (ours) or dropped (anchor);
    * ``long-docs``: ``LONG_DOC_WORDS``-word documents with a ``file_name``, split into
      ~``LONG_DOC_CHUNK_TOKENS``-token chunks by the worker (token-quota-bound, like real docs).
    """
    from llama_index.core.schema import Document

    if shape == "synthetic":
        yield from synthetic_documents(n, words)
        return
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    per_doc = words if shape == "small-files" else LONG_DOC_WORDS
    for i in range(n):
        if shape == "small-files":
            text = synthetic_chunk(i, per_doc)
        else:  # sentences of ~20 words, so the splitter has boundaries to respect
            text = " ".join(synthetic_chunk(i * 1000 + j, 20) for j in range(per_doc // 20))
        yield Document(
            text=text,
            id_=f"{shape}-{i:07d}",
            metadata={"file_name": f"notes/{shape}-{i:07d}.txt"},
        )


def shape_splitter(shape: str) -> Any:
    """The same splitter for ours and the anchor: 1,024 tokens (LlamaIndex's default), or
    ``LONG_DOC_CHUNK_TOKENS`` for long documents."""
    from llama_index.core.node_parser import SentenceSplitter

    if shape == "long-docs":
        return SentenceSplitter(chunk_size=LONG_DOC_CHUNK_TOKENS, chunk_overlap=50)
    return SentenceSplitter(chunk_size=1024, chunk_overlap=100)


def shape_chunks(shape: str, n: int, words: int = 40) -> list[str]:
    """The chunk texts of a shape after :func:`shape_splitter` (what the API is sent)."""
    return [text for text, _ in shape_chunk_records(shape, n, words)]


def package_metadata(chunk_id: str, doc_id: str) -> dict[str, Any]:
    """The package keys ChromaStore stores for one chunk (same keys and sizes): 4 since
    issue 14 (no per-row ``lige_fp``). Callers add the chunk's user metadata. Not written:
    the ``lige_keys`` list ours adds for chunks with user metadata (it answers ``IS_EMPTY``
    and negated filters, a feature the anchor lacks), so a floor built on it stays the
    least a client must write for the shape."""
    digest = hashlib.sha256(chunk_id.encode()).hexdigest()
    node = {"xe": ["lige_hash"], "xl": ["lige_hash"], "s": 0, "e": 317}
    node["r"] = {"1": {"t": "4", "h": digest}}
    return {
        "lige_node": json.dumps(node, separators=(",", ":")),
        "document_id": doc_id,
        "doc_id": doc_id,
        "lige_hash": f"{digest[:32]}.{digest[32:48]}",
    }


def shape_chunk_records(shape: str, n: int, words: int = 40) -> list[tuple[str, dict[str, Any]]]:
    """``(text, user metadata)`` of every chunk of a shape after :func:`shape_splitter`: what
    any client must store for it (a small file's chunk keeps its ``file_name``)."""
    if shape == "synthetic":
        return [(synthetic_chunk(i, words), {}) for i in range(n)]
    from llama_index.core.ingestion import run_transformations

    docs = list(shape_documents(shape, n, words))
    nodes = run_transformations(docs, [shape_splitter(shape)], in_place=False)
    return [(node.get_content(), dict(node.metadata)) for node in nodes]


@contextmanager
def chroma_server(path: Path, log_name: str = "chroma-server") -> Iterator[str]:
    """A ``chroma run`` server on 127.0.0.1 (a free port) for the duration; yields its URL."""
    import signal
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    exe = Path(sys.executable).with_name("chroma")
    logs = SCRATCH_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{log_name}.log", "w") as log:
        proc = subprocess.Popen(
            [str(exe), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def run_ingest_worker(
    emu: Any,
    impl: str,
    chroma: Path,
    n: int,
    extra: Sequence[str],
    log_name: str,
    timeout: float,
    *,
    package_root: Path | None = None,
) -> dict[str, Any]:
    """Run ``ingest_worker.py --impl IMPL`` once against ``emu``; its ``RESULT`` dict.

    The anchor runs in .venv-anchors, everything else in .venv-bench; stderr goes to
    ``.scratch/logs/LOG_NAME.stderr``. A worker that prints no result gives an ``error``.
    ``package_root``: import llama_index_gemini_embed from that checkout instead (e.g. a
    ``git worktree`` of an older commit, for before/after figures in one run).
    """
    import subprocess

    logs = SCRATCH_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    py = ANCHOR_PY if impl == "anchor" else OURS_PY
    cmd = [str(py), str(WORKER), "--impl", impl, "--base-url", emu.base_url]
    cmd += ["--api-key", emu.api_key, "--chroma", str(chroma), "--n", str(n), *extra]
    env = dict(os.environ)
    if package_root is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(package_root), env.get("PYTHONPATH")) if p
        )
    with open(logs / f"{log_name}.stderr", "w") as err:
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout, env=env
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return {"error": {"type": "crash", "message": f"exit {proc.returncode}"}}
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result
