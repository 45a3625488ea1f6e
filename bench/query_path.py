"""Benchmark 3: the query path.

(a) Retrieval latency at N x 768 (default 100,000): ``ChromaStore.query`` vs raw
    ``collection.query`` on the same collection, and the anchor
    ``llama-index-vector-stores-chroma`` ``ChromaVectorStore.query`` vs raw on its own
    collection (same vectors, same texts, written by each store's own ``add``). The four
    methods are interleaved query by query in random order, so load spikes hit all alike.
(b) End-to-end query with rerank: GeminiEmbedding (query vector from the emulator) ->
    ChromaStore.aquery(top 30) -> GeminiReranker(top 5) on the emulator's judge, with zero
    emulator latency (our overhead) and with a realistic 150 ms + 0-50 ms per API call.
(c) output_dimensionality 768 / 1536 / 3072: disk size, build time and query latency of a
    collection of --dims-n vectors (default 20,000) per dimension.

Vectors are the emulator's deterministic lexical vectors of synthetic chunks (what
GeminiEmbedding would store: the 3072-d unit vector's prefix, re-normalised), so the HNSW
graph sees realistic structure. Built collections are cached under .bench-cache/query/.

    bench/.venv-bench/bin/python bench/query_path.py [--n 100000] [--dims-n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import (
    CACHE_DIR,
    RESULTS_DIR,
    LoadMonitor,
    percentile,
    summary,
    synthetic_chunk,
    write_result,
)

MODEL = "gemini-embedding-001"
QCACHE = CACHE_DIR / "query"
INCLUDE = ["metadatas", "documents", "distances"]


# ----------------------------------------------------------------------------- data


def lexical_vectors(n: int, dim: int) -> np.ndarray:
    """Unit float32 vectors GeminiEmbedding would store for synthetic chunks 0..n-1 at ``dim``."""
    path = QCACHE / f"vectors-{n}-{dim}.npy"
    if path.exists():
        return np.load(path)
    from llama_index_gemini_embed.emulator._vectors import EmbedItem, item_vector

    out = np.empty((n, dim), dtype=np.float32)
    for i in range(n):
        item = EmbedItem(parts=(synthetic_chunk(i),), task_type="RETRIEVAL_DOCUMENT")
        v = item_vector(item, MODEL)[:dim]
        out[i] = v / np.linalg.norm(v)
    QCACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def query_vector(text: str, dim: int) -> list[float]:
    from llama_index_gemini_embed.emulator._vectors import EmbedItem, item_vector

    v = item_vector(EmbedItem(parts=(text,), task_type="RETRIEVAL_QUERY"), MODEL)[:dim]
    return [float(x) for x in v / np.linalg.norm(v)]


def query_text(i: int) -> str:
    """A query made of 15 words of chunk ``i`` (so lexical retrieval usually finds it)."""
    words = synthetic_chunk(i).split()
    return " ".join(words[2:17])


def nodes_for(start: int, vectors: np.ndarray) -> list[Any]:
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    out = []
    for j, vec in enumerate(vectors):
        i = start + j
        doc = f"doc-{i:07d}"
        out.append(
            TextNode(
                id_=f"{doc}#0",
                text=synthetic_chunk(i),
                metadata={"source": doc, "n": i},
                embedding=vec.tolist(),
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
            )
        )
    return out


def dir_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def build(kind: str, n: int, dim: int, vectors: np.ndarray, batch: int = 5000) -> dict[str, Any]:
    """Build (or reuse) a collection written by ``kind`` ("lige" or "anchor") store code."""
    path = QCACHE / f"{kind}-{n}-{dim}"
    marker = path / "BUILT"
    if marker.exists():
        seconds = float(marker.read_text())
        return {"path": path, "build_seconds": seconds, "cached": True}
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    name = f"bench-{kind}"
    t0 = time.perf_counter()
    if kind == "lige":
        from llama_index_gemini_embed import ChromaStore

        store = ChromaStore(name, path=str(path))
        try:
            for s in range(0, n, batch):
                store.add(nodes_for(s, vectors[s : s + batch]))
        finally:
            store.close()
    else:
        import chromadb
        from chromadb.config import Settings
        from llama_index.vector_stores.chroma import ChromaVectorStore

        client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
        anchor = ChromaVectorStore(chroma_collection=client.get_or_create_collection(name))
        for s in range(0, n, batch):
            anchor.add(nodes_for(s, vectors[s : s + batch]))
        del anchor, client
    seconds = time.perf_counter() - t0
    gc.collect()
    marker.write_text(f"{seconds:.3f}")
    return {"path": path, "build_seconds": seconds, "cached": False}


# ----------------------------------------------------------------------------- (a)


def interleaved(
    methods: dict[str, Any], queries: list[list[float]], rounds: int, warmup: int
) -> dict[str, list[float]]:
    rng = random.Random(7)
    names = list(methods)
    for q in queries[:warmup]:
        for name in names:
            methods[name](q)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        q = queries[r % len(queries)]
        rng.shuffle(names)
        for name in names:
            t0 = time.perf_counter()
            methods[name](q)
            times[name].append(time.perf_counter() - t0)
    return times


def stats(ts: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(ts, 50) * 1e3, 3),
        "p90_ms": round(percentile(ts, 90) * 1e3, 3),
        "p99_ms": round(percentile(ts, 99) * 1e3, 3),
        "mean_ms": round(sum(ts) / len(ts) * 1e3, 3),
        "n": len(ts),
    }


def retrieval_latency(n: int, dim: int, rounds: int) -> dict[str, Any]:
    import chromadb
    from chromadb.config import Settings
    from llama_index.core.vector_stores.types import VectorStoreQuery
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from llama_index_gemini_embed import ChromaStore

    vectors = lexical_vectors(n, dim)
    builds = {kind: build(kind, n, dim, vectors) for kind in ("lige", "anchor")}
    del vectors
    gc.collect()
    store = ChromaStore("bench-lige", path=str(builds["lige"]["path"]))
    ours_raw = store.collection
    client = chromadb.PersistentClient(
        str(builds["anchor"]["path"]), settings=Settings(anonymized_telemetry=False)
    )
    anchor_raw = client.get_collection("bench-anchor")
    anchor = ChromaVectorStore(chroma_collection=anchor_raw)
    rng = random.Random(11)
    queries = [query_vector(query_text(rng.randrange(n)), dim) for _ in range(200)]
    out: dict[str, Any] = {
        "n": n,
        "dim": dim,
        "build_seconds": {k: round(v["build_seconds"], 1) for k, v in builds.items()},
        "build_ms_per_vector": {
            k: round(v["build_seconds"] / n * 1e3, 3) for k, v in builds.items()
        },
        "disk_bytes": {k: dir_bytes(v["path"]) for k, v in builds.items()},
        "by_top_k": {},
    }
    try:
        for k in (10, 100):
            methods = {
                "raw (ours' collection)": lambda q, k=k: ours_raw.query(
                    query_embeddings=[q], n_results=k, include=INCLUDE
                ),
                "ChromaStore.query": lambda q, k=k: store.query(
                    VectorStoreQuery(query_embedding=q, similarity_top_k=k)
                ),
                "raw (anchor's collection)": lambda q, k=k: anchor_raw.query(
                    query_embeddings=[q], n_results=k, include=INCLUDE
                ),
                "ChromaVectorStore.query": lambda q, k=k: anchor.query(
                    VectorStoreQuery(query_embedding=q, similarity_top_k=k)
                ),
            }
            times = interleaved(methods, queries, rounds=rounds, warmup=30)
            res = {name: stats(ts) for name, ts in times.items()}
            ours, raw = res["ChromaStore.query"], res["raw (ours' collection)"]
            anc, araw = res["ChromaVectorStore.query"], res["raw (anchor's collection)"]
            res["ratios"] = {
                "ours/raw p50": round(ours["p50_ms"] / raw["p50_ms"], 3),
                "ours/raw p99": round(ours["p99_ms"] / raw["p99_ms"], 3),
                "anchor/raw p50": round(anc["p50_ms"] / araw["p50_ms"], 3),
                "anchor/raw p99": round(anc["p99_ms"] / araw["p99_ms"], 3),
                "ours/anchor p50": round(ours["p50_ms"] / anc["p50_ms"], 3),
            }
            out["by_top_k"][str(k)] = res
            print(
                f"top_k={k}: "
                + ", ".join(
                    f"{m} p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms"
                    for m, r in res.items()
                    if m != "ratios"
                )
            )
            print(f"  ratios {res['ratios']}")
    finally:
        store.close()
    return out


# ----------------------------------------------------------------------------- (b)


async def end_to_end(n: int, dim: int, queries: int) -> dict[str, Any]:
    from llama_index.core.schema import QueryBundle
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, GeminiReranker
    from llama_index_gemini_embed.emulator import Emulator

    path = QCACHE / f"lige-{n}-{dim}"
    store = ChromaStore("bench-lige", path=str(path))
    out: dict[str, Any] = {"n": n, "dim": dim, "candidates": 30, "top_n": 5}
    rng = random.Random(5)
    targets = [rng.randrange(n) for _ in range(queries)]
    try:
        for label, latency, jitter in (
            ("zero latency", 0.0, 0.0),
            ("150 ms + 0-50 ms per call", 0.15, 0.05),
        ):
            with Emulator(latency=latency, jitter=jitter) as emu:
                embed = GeminiEmbedding(
                    api_key=emu.api_key, base_url=emu.base_url, output_dimensionality=dim
                )
                reranker = GeminiReranker(api_key=emu.api_key, base_url=emu.base_url, top_n=5)
                stages: dict[str, list[float]] = {
                    "embed query": [],
                    "retrieve (top 30)": [],
                    "rerank (30 -> 5)": [],
                    "total": [],
                }
                found_top1 = 0
                found_ret = 0
                for j, i in enumerate([*targets[:3], *targets]):  # 3 warm-up queries
                    text = query_text(i)
                    t0 = time.perf_counter()
                    qv = await embed.aget_query_embedding(text)
                    t1 = time.perf_counter()
                    res = await store.aquery(
                        VectorStoreQuery(query_embedding=qv, similarity_top_k=30)
                    )
                    t2 = time.perf_counter()
                    from llama_index.core.schema import NodeWithScore

                    cands = [
                        NodeWithScore(node=nd, score=s)
                        for nd, s in zip(res.nodes or [], res.similarities or [], strict=True)
                    ]
                    top = await reranker.apostprocess_nodes(cands, query_bundle=QueryBundle(text))
                    t3 = time.perf_counter()
                    if j < 3:
                        continue
                    want = f"doc-{i:07d}#0"
                    found_ret += want in (res.ids or [])
                    found_top1 += bool(top) and top[0].node.node_id == want
                    for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                        stages[name].append(dt)
                out[label] = {
                    **{name: stats(ts) for name, ts in stages.items()},
                    "target_in_top30": found_ret,
                    "target_ranked_first_after_rerank": found_top1,
                    "queries": len(targets),
                    "generate_requests": emu.counters.generate_requests,
                }
                s = out[label]
                print(
                    f"e2e [{label}]: "
                    + ", ".join(
                        f"{k} p50 {v['p50_ms']:.1f} ms" for k, v in s.items() if isinstance(v, dict)
                    )
                )
    finally:
        store.close()
    return out


# ----------------------------------------------------------------------------- (c)


def dimensions(n: int, rounds: int) -> dict[str, Any]:
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from llama_index_gemini_embed import ChromaStore

    full = lexical_vectors(n, 3072)
    out: dict[str, Any] = {"n": n, "by_dim": {}}
    rng = random.Random(13)
    texts = [query_text(rng.randrange(n)) for _ in range(200)]
    for dim in (768, 1536, 3072):
        vecs = full[:, :dim] / np.linalg.norm(full[:, :dim], axis=1, keepdims=True)
        b = build("lige", n, dim, vecs.astype(np.float32))
        store = ChromaStore("bench-lige", path=str(b["path"]))
        try:
            queries = [query_vector(t, dim) for t in texts]
            times = interleaved(
                {
                    "ChromaStore.query": lambda q, store=store: store.query(
                        VectorStoreQuery(query_embedding=q, similarity_top_k=10)
                    )
                },
                queries,
                rounds=rounds,
                warmup=30,
            )["ChromaStore.query"]
        finally:
            store.close()
        out["by_dim"][str(dim)] = {
            "disk_mib": round(dir_bytes(b["path"]) / 2**20, 1),
            "raw_vector_mib": round(n * dim * 4 / 2**20, 1),
            "build_seconds": round(b["build_seconds"], 1),
            "build_ms_per_vector": round(b["build_seconds"] / n * 1e3, 3),
            **stats(times),
        }
        print(f"dim {dim}: {out['by_dim'][str(dim)]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--rounds", type=int, default=600, help="interleaved queries per method")
    ap.add_argument("--dims-n", type=int, default=20_000)
    ap.add_argument("--e2e-queries", type=int, default=40)
    ap.add_argument("--skip", nargs="*", default=[], choices=["latency", "e2e", "dims"])
    args = ap.parse_args()
    result: dict[str, Any] = {}
    with LoadMonitor() as load:
        if "latency" not in args.skip:
            result["retrieval"] = retrieval_latency(args.n, args.dim, args.rounds)
        if "e2e" not in args.skip:
            result["end_to_end"] = asyncio.run(end_to_end(args.n, args.dim, args.e2e_queries))
        if "dims" not in args.skip:
            result["dimensions"] = dimensions(args.dims_n, max(200, args.rounds // 2))
    result["load"] = load.describe()
    previous = RESULTS_DIR / "query_path.json"
    if args.skip and previous.exists():  # keep the parts not re-run, marked with their date
        old = json.loads(previous.read_text())
        for part, key in (("latency", "retrieval"), ("e2e", "end_to_end"), ("dims", "dimensions")):
            if part in args.skip and key in old:
                when = old.get("machine", {}).get("when")
                result[key] = {
                    **old[key],
                    "from_previous_run": old[key].get("from_previous_run", when),
                }
    path = write_result("query_path", result)
    print(f"results: {path}")
    parts = []
    if "retrieval" in result:
        r = result["retrieval"]["by_top_k"]["10"]["ratios"]
        parts.append(
            f"top-10 at {args.n:,}x{args.dim}: ChromaStore.query/raw p50 "
            f"{r['ours/raw p50']:.2f}x p99 {r['ours/raw p99']:.2f}x (target <= 1.2x); "
            f"anchor/raw p50 {r['anchor/raw p50']:.2f}x"
        )
    if "dimensions" in result:
        d = result["dimensions"]["by_dim"]
        parts.append(
            f"disk 3072/768 = {d['3072']['disk_mib'] / d['768']['disk_mib']:.2f}x, "
            f"p50 3072/768 = {d['3072']['p50_ms'] / d['768']['p50_ms']:.2f}x"
        )
    summary("query_path", "; ".join(parts))


if __name__ == "__main__":
    main()
