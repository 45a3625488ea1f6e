"""Repro: why local ChromaStore writes are not moved to a separate writer process.

Writing from a child process would take Chroma's GIL-holding upserts off our event loop
(see gil_store.py), but chromadb 1.5's PersistentClient caches the vector index per
process: after another process writes, this process's queries keep using the old index,
even through a brand-new client, while count() and get() already see the new records.

    bench/.venv-bench/bin/python bench/repro/stale_view.py

Prints how many of the child's 20 vectors this process can find (expected 20; chromadb
1.5.9 gives 0).
"""

import os
import subprocess
import sys
import tempfile

os.environ["ANONYMIZED_TELEMETRY"] = "False"

import chromadb
import numpy as np
from chromadb.config import Settings

SETTINGS = Settings(anonymized_telemetry=False)


def child(path: str) -> None:
    collection = chromadb.PersistentClient(path, SETTINGS).get_collection("stale")
    vectors = np.random.default_rng(1).standard_normal((1050, 768)).astype(np.float32)
    collection.upsert(ids=[f"child-{i}" for i in range(1050)], embeddings=vectors)
    np.save(os.path.join(path, "child.npy"), vectors)


def found(collection: chromadb.Collection, vectors: np.ndarray) -> int:
    hits = collection.query(query_embeddings=vectors, n_results=1)["ids"]
    return sum(1 for i, ids in enumerate(hits) if ids and ids[0] == f"child-{i}")


def main() -> None:
    path = tempfile.mkdtemp()
    client = chromadb.PersistentClient(path, SETTINGS)
    collection = client.create_collection(
        "stale", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    mine = np.random.default_rng(0).standard_normal((500, 768)).astype(np.float32)
    collection.upsert(ids=[f"parent-{i}" for i in range(500)], embeddings=mine)
    collection.query(query_embeddings=mine[:1], n_results=1)  # this process loads the index
    subprocess.run([sys.executable, __file__, path], check=True)
    theirs = np.load(os.path.join(path, "child.npy"))[:20]
    fresh = chromadb.PersistentClient(path, SETTINGS).get_collection("stale")
    print(
        f"after a child process wrote 1,050 vectors: count() = {collection.count()} "
        f"(expected 1550); child vectors found by query: {found(collection, theirs)}/20, "
        f"through a new client: {found(fresh, theirs)}/20 (expected 20/20)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1])
    else:
        main()
