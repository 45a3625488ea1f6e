"""One ingestion run in its own process; prints one JSON line (``RESULT {...}``) at the end.

Runs either side, so both are measured the same way (a fresh process each, the emulator in
the parent benchmark process):

* ``--impl ours``: ``aingest`` (default transformations) into ``ChromaStore``, with a
  ``GeminiEmbedding`` configured with the tier's quotas. Needs bench/.venv-bench.
* ``--impl raw-sdk`` / ``raw-chroma``: baselines for the CPU benchmark: only the SDK calls,
  or only Chroma upserts of ready vectors (100 per call, as ours writes).
* ``--impl anchor``: LlamaIndex ``IngestionPipeline.arun`` with ``SentenceSplitter`` (the same
  chunking as ours) + ``GoogleGenAIEmbedding`` into ``ChromaVectorStore``.
  Needs bench/.venv-anchors (the anchors pin google-genai < 3).

Reports wall time, CPU time of this process, peak RSS (VmHWM), chunks stored
(``collection.count()``) and the error, if any.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib
from benchlib import (
    SHAPES,
    package_metadata,
    peak_rss_mib,
    shape_documents,
    shape_splitter,
    synthetic_documents,
)


def _opt_int(value: str) -> int | None:
    return None if value.lower() in ("none", "default", "") else int(value)


START = [0.0]  # epoch seconds when the timed section began (for the parent's timeline)


def _rss_now_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, aingest

    embed = GeminiEmbedding(
        api_key=args.api_key,
        base_url=args.base_url,
        output_dimensionality=args.dim,
        items_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        items_per_day=args.rpd,
        quota_window_seconds=args.window,
        max_concurrency=args.concurrency,
    )
    if args.chroma_url:  # server mode: Chroma's write cost is in the `chroma run` process
        store = ChromaStore.from_url(
            args.chroma_url, collection_name=args.collection, embed_model=embed
        )
    else:
        store = ChromaStore("ours", path=args.chroma, embed_model=embed)
    docs: Any = shape_documents(args.shape, args.n, args.words)  # lazy: streaming is the point
    if args.pregen:  # CPU runs: input generation is not ours to pay (the anchor gets a list)
        docs = list(docs)
    out: dict[str, Any] = {}
    rss0, c0, t0 = _rss_now_mib(), _cpu(), time.perf_counter()
    START[0] = time.time()
    try:
        report = await aingest(
            docs,
            store=store,
            embed_model=embed,
            transformations=[shape_splitter(args.shape)],
            show_progress=False,
            raise_on_fatal=False,
        )
        out.update(
            embedded=report.embedded,
            failed=report.failed,
            pending=report.pending,
            requests=report.requests,
            store_writes=getattr(report, "store_writes", None),
            retries=report.retries,
            fatal_error=report.fatal_error_type
            and f"{report.fatal_error_type}: {report.fatal_error}",
        )
        if report.fatal_error:
            out["error"] = {"type": report.fatal_error_type, "message": report.fatal_error[:300]}
    except Exception as exc:  # pragma: no cover - reported, not raised
        out["error"] = {"type": type(exc).__name__, "message": str(exc)[:300]}
        out["traceback"] = traceback.format_exc()[-2000:]
    out["wall"] = time.perf_counter() - t0
    out["cpu"] = _cpu() - c0
    out["rss_before_mib"] = rss0
    out["stored"] = store.count()
    store.close()
    return out


async def run_anchor(args: argparse.Namespace) -> dict[str, Any]:
    import chromadb
    from chromadb.config import Settings
    from google.genai import types
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.embeddings.google_genai import GoogleGenAIEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    kwargs: dict[str, Any] = {}
    if args.batch is not None:
        kwargs["embed_batch_size"] = args.batch
    if args.workers is not None:
        kwargs["num_workers"] = args.workers
    if args.retries is not None:
        kwargs["retries"] = args.retries
    embed = GoogleGenAIEmbedding(
        model_name="gemini-embedding-001",  # their default is gemini-embedding-2-preview
        api_key=args.api_key,
        http_options=types.HttpOptions(base_url=args.base_url),
        embedding_config=types.EmbedContentConfig(output_dimensionality=args.dim),
        **kwargs,
    )
    client = chromadb.PersistentClient(args.chroma, settings=Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("anchor")
    pipeline = IngestionPipeline(
        transformations=[shape_splitter(args.shape), embed],
        vector_store=ChromaVectorStore(chroma_collection=collection),
    )
    docs = list(shape_documents(args.shape, args.n, args.words))  # the pipeline takes a list
    out: dict[str, Any] = {
        "effective_batch": embed.embed_batch_size,
        "effective_workers": embed.num_workers,
    }
    rss0, c0, t0 = _rss_now_mib(), _cpu(), time.perf_counter()
    START[0] = time.time()
    try:
        if args.slice:
            # User-side workaround for ChromaVectorStore.add sending more than Chroma's max
            # batch (5,461 locally) in one call: run the pipeline on slices of the input.
            out["embedded"] = 0
            for i in range(0, len(docs), args.slice):
                nodes = await pipeline.arun(
                    documents=docs[i : i + args.slice], num_workers=args.pipeline_workers
                )
                out["embedded"] += sum(1 for n in nodes if n.embedding is not None)
                del nodes
        else:
            nodes = await pipeline.arun(documents=docs, num_workers=args.pipeline_workers)
            out["embedded"] = sum(1 for n in nodes if n.embedding is not None)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        out["error"] = {"type": type(exc).__name__, "message": str(exc)[:300]}
    out["wall"] = time.perf_counter() - t0
    out["cpu"] = _cpu() - c0
    out["rss_before_mib"] = rss0
    out["stored"] = collection.count()
    return out


def shape_chunks(args: argparse.Namespace) -> list[str]:
    """The chunk texts of ``--shape`` after the shared splitter (built outside timing)."""
    return benchlib.shape_chunks(args.shape, args.n, args.words)


async def run_raw_sdk(args: argparse.Namespace) -> dict[str, Any]:
    """Baseline: just the google-genai SDK calls (100 texts/request, 8 in flight), no store."""
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key=args.api_key, http_options=types.HttpOptions(base_url=args.base_url)
    )
    config = types.EmbedContentConfig(
        task_type="RETRIEVAL_DOCUMENT", output_dimensionality=args.dim
    )
    texts = shape_chunks(args)
    sem = asyncio.Semaphore(args.concurrency)
    vectors: list[list[float]] = []

    async def one(batch: list[str]) -> None:
        async with sem:
            resp = await client.aio.models.embed_content(
                model="gemini-embedding-001", contents=batch, config=config
            )
            vectors.extend(e.values for e in resp.embeddings or [])

    rss0, c0, t0 = _rss_now_mib(), _cpu(), time.perf_counter()
    START[0] = time.time()
    await asyncio.gather(*(one(texts[i : i + 100]) for i in range(0, len(texts), 100)))
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return {"wall": wall, "cpu": cpu, "stored": 0, "embedded": len(vectors), "rss_before_mib": rss0}


async def run_raw_split(args: argparse.Namespace) -> dict[str, Any]:
    """Baseline: the shape's SentenceSplitter alone (ours and the anchor split the same way)."""
    from llama_index.core.ingestion import run_transformations

    splitter = shape_splitter(args.shape)
    docs = list(shape_documents(args.shape, args.n, args.words))
    rss0, c0, t0 = _rss_now_mib(), _cpu(), time.perf_counter()
    START[0] = time.time()
    nodes = 0
    for i in range(0, len(docs), 500):  # ours splits per window of documents
        nodes += len(run_transformations(docs[i : i + 500], [splitter], in_place=False))
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return {
        "wall": wall,
        "cpu": cpu,
        "stored": 0,
        "embedded": 0,
        "chunks": nodes,
        "rss_before_mib": rss0,
    }


async def run_raw_chroma(args: argparse.Namespace) -> dict[str, Any]:
    """Baseline: Chroma's own write cost: collection.upsert of ready vectors and metadata
    (each chunk's user metadata, plus ours with ``--our-records``), ``--write-batch``
    (default 100) per call."""
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    client = chromadb.PersistentClient(args.chroma, settings=Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("raw", metadata={"hnsw:space": "cosine"})
    rng = np.random.default_rng(0)

    def batches() -> Iterator[tuple[list[str], Any, list[str], list[dict[str, Any]]]]:
        """(ids, vectors, texts, metadatas) per write; lazy, so RSS is Chroma's own (unless
        --pregen, which also keeps building them out of the timed section)."""
        chunks: Iterator[tuple[str, dict[str, Any]]] = (
            ((d.text, {}) for d in synthetic_documents(args.n, args.words))
            if args.shape == "synthetic"
            else iter(benchlib.shape_chunk_records(args.shape, args.n, args.words))
        )
        i = 0
        while records := list(itertools.islice(chunks, args.write_batch)):
            size = len(records)
            texts = [text for text, _ in records]
            vecs = rng.standard_normal((size, args.dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            ids = [f"doc-{j:07d}#0" for j in range(i, i + size)]
            # Every client stores the chunk's own metadata (a small file's file_name): the
            # floor writes it too, so it is the least any client must write for this shape.
            metadatas = [
                {**user, **package_metadata(key, key[:-2])}
                if args.our_records
                else {**user, "doc_id": key[:-2]}
                for key, (_, user) in zip(ids, records, strict=True)
            ]
            yield ids, vecs, texts, metadatas
            i += size

    source: Iterable[tuple[list[str], Any, list[str], list[dict[str, Any]]]] = batches()
    if args.pregen:
        source = list(source)
    rss0, c0, t0 = _rss_now_mib(), _cpu(), time.perf_counter()
    START[0] = time.time()
    for ids, vecs, texts, metadatas in source:
        collection.upsert(ids=ids, embeddings=vecs, documents=texts, metadatas=metadatas)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return {"wall": wall, "cpu": cpu, "stored": collection.count(), "rss_before_mib": rss0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--impl", choices=["ours", "anchor", "raw-sdk", "raw-chroma", "raw-split"], required=True
    )
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--chroma", required=True, help="local store directory")
    ap.add_argument("--chroma-url", default=None, help="ours only: a `chroma run` server instead")
    ap.add_argument("--collection", default="ours", help="collection name in server mode")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--words", type=int, default=40)
    ap.add_argument("--shape", choices=SHAPES, default="synthetic", help="corpus shape")
    ap.add_argument("--dim", type=int, default=768)
    # ours
    ap.add_argument("--rpm", type=_opt_int, default=None, help="items per quota window")
    ap.add_argument("--tpm", type=_opt_int, default=None, help="tokens per quota window")
    ap.add_argument("--rpd", type=_opt_int, default=None, help="items per day")
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--concurrency", type=int, default=8)
    # anchor
    ap.add_argument("--batch", type=_opt_int, default=None, help="embed_batch_size (None: default)")
    ap.add_argument("--workers", type=_opt_int, default=None, help="embedding num_workers")
    ap.add_argument("--pipeline-workers", type=_opt_int, default=None, help="arun(num_workers=)")
    ap.add_argument("--retries", type=_opt_int, default=None, help="GoogleGenAIEmbedding retries")
    ap.add_argument(
        "--our-records",
        action="store_true",
        help="raw-chroma: metadata shaped like ChromaStore's records (4 keys) instead of 1 key",
    )
    ap.add_argument(
        "--write-batch", type=int, default=100, help="raw-chroma: records per upsert call"
    )
    ap.add_argument(
        "--pregen",
        action="store_true",
        help="ours/raw-chroma: build the whole input before the timed section (CPU runs)",
    )
    ap.add_argument(
        "--slice", type=_opt_int, default=None, help="anchor: arun() per this many docs"
    )
    args = ap.parse_args()
    runner = {
        "ours": run_ours,
        "anchor": run_anchor,
        "raw-sdk": run_raw_sdk,
        "raw-chroma": run_raw_chroma,
        "raw-split": run_raw_split,
    }[args.impl]
    out = asyncio.run(runner(args))
    out["peak_rss_mib"] = peak_rss_mib()
    out["t_start_epoch"] = START[0]
    out["n"] = args.n
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
