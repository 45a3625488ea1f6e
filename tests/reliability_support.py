"""Shared helpers of the ``test_reliability_*`` files: stores, snapshots, CLI runs, fake sleep.

snap = snapshot(store)          # {id: Row(document, metadata, vector)} of every record
assert snapshot(store) == snap  # "nothing lost": same ids, texts, metadata, vectors
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core import Document

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding
from llama_index_gemini_embed.emulator import Emulator

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

#: A distinctive key the emulators of these tests accept; it must never show up anywhere.
SECRET = "sk-SECRET-reliability-7f3a9c1e5b"
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI")
WORDS = (
    *("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"),
    *("lambda", "omicron", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "rho"),
)


@dataclass(frozen=True)
class Row:
    """One stored record: its text, its metadata (sorted items) and its vector (float32)."""

    document: str
    metadata: tuple[tuple[str, Any], ...]
    vector: tuple[float, ...]


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def snapshot(store: ChromaStore) -> dict[str, Row]:
    """Every record of the store's collection, exactly as Chroma holds it."""
    rows = store.collection.get(include=["documents", "metadatas", "embeddings"])
    documents = rows["documents"] or []
    metadatas = rows["metadatas"] or []
    embeddings = rows["embeddings"]
    assert embeddings is not None
    out: dict[str, Row] = {}
    for i, node_id in enumerate(rows["ids"]):
        assert node_id not in out, f"duplicate id {node_id}"
        metadata = tuple(sorted((k, _frozen(v)) for k, v in (metadatas[i] or {}).items()))
        # Chroma keeps float32; a server sends them as short decimals: compare as float32.
        vector = tuple(np.asarray(embeddings[i], dtype=np.float32).tolist())
        out[node_id] = Row(documents[i] or "", metadata, vector)
    return out


def snapshot_path(path: Path | str, collection: str) -> dict[str, Row]:
    """:func:`snapshot` of a local store directory (opened, read, closed)."""
    with ChromaStore(collection, path=str(path)) as store:
        return snapshot(store)


def stored_count(path: Path, *, recover: bool = False) -> int:
    """Rows of a local store, read without its lock (another process may own it); -1 if busy.

    ``recover=True`` (only once no process uses the store): open it read-write, which rolls
    back a hot journal left by a writer killed mid-transaction, as Chroma does on reopen;
    a read-only connection cannot, and stays busy.
    """
    db = path / "chroma.sqlite3"
    if not db.exists():
        return 0
    uri = f"file:{db}" if recover else f"file:{db}?mode=ro"
    try:
        with sqlite3.connect(uri, uri=True, timeout=1) as con:
            row = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()
    except sqlite3.Error:
        return -1
    return int(row[0])


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_embed(emu: Emulator, **kwargs: Any) -> GeminiEmbedding:
    """A small, fast GeminiEmbedding on ``emu`` (128 dimensions, no retries by default)."""
    settings: dict[str, Any] = {"output_dimensionality": 128, "max_retries": 0}
    settings.update(kwargs)
    return GeminiEmbedding(api_key=emu.api_key, base_url=emu.base_url, **settings)


def documents(count: int, *, prefix: str = "doc", sentences: int = 2) -> list[Document]:
    """``count`` short documents with stable ids and a little metadata."""
    return [
        Document(
            id_=f"{prefix}{i:04d}",
            text=" ".join(
                f"Sentence {j} of {prefix} {i} is about {WORDS[(i + j) % len(WORDS)]}."
                for j in range(sentences)
            ),
            metadata={"group": f"g{i % 3}", "n": i},
        )
        for i in range(count)
    ]


def write_files(root: Path, count: int, *, sentences: int = 12, start: int = 0) -> Path:
    """``count`` Markdown files ``note000.md``... with front matter and a title."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        body = " ".join(
            f"Sentence {j} of note {i} mentions {WORDS[(i + j) % len(WORDS)]}."
            for j in range(sentences)
        )
        (root / f"note{i:03d}.md").write_text(f"---\ngroup: g{i % 3}\n---\n# Note {i}\n\n{body}\n")
    return root


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no real keys, no telemetry, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["ANONYMIZED_TELEMETRY"] = "False"
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    """``python -m llama_index_gemini_embed.cli ARGS`` with this interpreter."""
    return [sys.executable, "-m", "llama_index_gemini_embed.cli", *args]


def run_cli(
    args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 180, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess and capture its output as text."""
    return subprocess.run(
        cli_command(*args),
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def one_line_error(stderr: str) -> str:
    """The CLI's error line (asserting there is exactly one and nothing else on stderr)."""
    assert stderr.startswith("gemini-embed: error: "), stderr
    assert stderr.count("\n") == 1, stderr
    return stderr.removeprefix("gemini-embed: error: ").rstrip("\n")


def iter_exception_texts(error: BaseException) -> Iterator[str]:
    """str/repr/notes/traceback of ``error`` and of every ``__cause__``/``__context__``."""
    import traceback

    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield from getattr(current, "__notes__", [])
        yield "".join(traceback.format_exception(current))
        yield repr(getattr(current, "args", ()))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
