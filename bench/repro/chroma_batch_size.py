"""Chroma's CPU per row by upsert size, with records shaped like ChromaStore's (issue 14).

5,000 unit vectors at 768-d, 40-word documents, the 4 metadata entries an ingested
synthetic chunk has (document_id, lige_node, lige_hash, doc_id); upserted 100,
250, 1,000 or 5,000 per call into a fresh PersistentClient; CPU of this process (all
threads) per row, median of 3 interleaved repetitions.

    bench/.venv-bench/bin/python bench/repro/chroma_batch_size.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["ANONYMIZED_TELEMETRY"] = "False"

import chromadb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ingest_worker import _our_metadata as record_metadata  # the same record shape

N, DIM, REPS = 5000, 768, 3
BATCHES = (100, 250, 1000, 5000)


def main() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = [" ".join(f"word{(i * 7 + j) % 997}" for j in range(40)) for i in range(N)]
    ids = [f"doc-{i:07d}#0" for i in range(N)]
    metadatas = [record_metadata(k) for k in ids]
    cpu: dict[int, list[float]] = {b: [] for b in BATCHES}
    for _ in range(REPS):
        for batch in BATCHES:
            client = chromadb.PersistentClient(tempfile.mkdtemp())
            collection = client.create_collection("rows", metadata={"hnsw:space": "cosine"})
            started = time.process_time()
            for s in range(0, N, batch):
                collection.upsert(
                    ids=ids[s : s + batch],
                    embeddings=vectors[s : s + batch],
                    documents=docs[s : s + batch],
                    metadatas=metadatas[s : s + batch],  # type: ignore[arg-type]
                )
            cpu[batch].append((time.process_time() - started) / N * 1e3)
    for batch, values in cpu.items():
        print(
            f"{batch:>5} rows per upsert: {statistics.median(values):.3f} ms/row CPU "
            f"(median of {REPS})"
        )


if __name__ == "__main__":
    main()
