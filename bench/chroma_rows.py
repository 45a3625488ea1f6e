"""Chroma's own CPU per row for the record shapes in play: what each metadata layout costs.

    bench/.venv-bench/bin/python bench/chroma_rows.py                  # 5,000 rows, 5 reps
    bench/.venv-bench/bin/python bench/chroma_rows.py --rows 1000 --reps 1   # a smoke run

Every layout writes the same 768-d vectors, 40-word documents and ids, ``--batch`` rows per
``upsert`` into a fresh local collection, in interleaved repetitions; the figure is process
CPU per row, median over repetitions. Layouts (a small file's chunk, ``file_name`` as its
only user key):

* ``ours``: what ChromaStore stores for it: ``file_name``, the list-valued ``lige_keys``
  (answers ``IS_EMPTY`` and negated filters), ``lige_node``, ``lige_hash``, ``doc_id``,
  ``document_id``;
* ``ours_without_list``: the same without ``lige_keys``;
* ``ours_synthetic``: a chunk with no user metadata (no ``file_name``, no list);
* ``anchor``: what LlamaIndex's ``ChromaVectorStore`` stores: ``file_name``,
  ``_node_content`` (the node as JSON), ``_node_type``, ``document_id``, ``doc_id``,
  ``ref_doc_id``.

Writes bench/results/chroma_rows.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchlib import LoadMonitor, median, package_metadata, summary, write_result

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
DIM = 768


def ours(key: str) -> dict[str, Any]:
    return {
        "file_name": f"notes/{key}.txt",
        "lige_keys": ["file_name"],
        **package_metadata(key, key),
    }


def ours_without_list(key: str) -> dict[str, Any]:
    return {"file_name": f"notes/{key}.txt", **package_metadata(key, key)}


def ours_synthetic(key: str) -> dict[str, Any]:
    return package_metadata(key, key)


def anchor(key: str) -> dict[str, Any]:
    digest = hashlib.sha256(key.encode()).hexdigest()
    meta = {"file_name": f"notes/{key}.txt"}
    content = {
        "id_": key,
        "embedding": None,
        "metadata": meta,
        "excluded_embed_metadata_keys": [],
        "excluded_llm_metadata_keys": [],
        "relationships": {
            "1": {
                "node_id": key,
                "node_type": "4",
                "metadata": meta,
                "hash": digest,
                "class_name": "RelatedNodeInfo",
            }
        },
        "metadata_template": "{key}: {value}",
        "metadata_separator": "\n",
        "text": "",
        "mimetype": "text/plain",
        "start_char_idx": 0,
        "end_char_idx": 317,
        "metadata_seperator": "\n",
        "text_template": "{metadata_str}\n\n{content}",
        "class_name": "TextNode",
    }
    return {
        **meta,
        "_node_content": json.dumps(content),
        "_node_type": "TextNode",
        "document_id": key,
        "doc_id": key,
        "ref_doc_id": key,
    }


LAYOUTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "ours": ours,
    "ours_without_list": ours_without_list,
    "ours_synthetic": ours_synthetic,
    "anchor": anchor,
}


def main() -> None:
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=500, help="rows per upsert")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = [" ".join(f"word{(i * 7 + j) % 997}" for j in range(40)) for i in range(args.rows)]
    ids = [f"small-files-{i:07d}" for i in range(args.rows)]
    metadatas = {name: [make(k) for k in ids] for name, make in LAYOUTS.items()}

    def one(layout: str) -> float:
        with tempfile.TemporaryDirectory() as path:
            client = chromadb.PersistentClient(path, settings=Settings(anonymized_telemetry=False))
            collection = client.create_collection("rows", metadata={"hnsw:space": "cosine"})
            start = time.process_time()
            for s in range(0, args.rows, args.batch):
                part = slice(s, s + args.batch)
                collection.upsert(
                    ids=ids[part],
                    embeddings=vectors[part],
                    documents=docs[part],
                    metadatas=metadatas[layout][part],
                )
            cpu = time.process_time() - start
            client.close()
        return cpu / args.rows * 1e3

    runs: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    with LoadMonitor() as load:
        for _ in range(args.reps):
            for name in LAYOUTS:  # interleaved: the machine's drift hits every layout alike
                runs[name].append(one(name))
    med = {name: median(values) for name, values in runs.items()}
    write_result(
        "chroma_rows",
        {
            "rows": args.rows,
            "batch": args.batch,
            "reps": args.reps,
            "runs": runs,
            "median_ms_per_row": med,
            "load": load.describe(),
        },
    )
    print("| layout | Chroma CPU per row (ms, median) | runs |")
    print("|---|---|---|")
    for name, value in med.items():
        print(f"| {name} | {value:.3f} | {', '.join(f'{v:.2f}' for v in runs[name])} |")
    summary(
        "chroma_rows",
        f"the lige_keys list costs {med['ours'] - med['ours_without_list']:+.3f} ms per row; "
        f"ours / anchor {med['ours'] / med['anchor']:.2f}x",
    )


if __name__ == "__main__":
    main()
