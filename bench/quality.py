"""Benchmark 4: retrieval quality through the full stack is lossless.

DBpedia-Entity 5k (BEIR subset, CC BY-SA 3.0; see docs/benchmarks.md for attribution).
all-MiniLM-L6-v2 int8 ONNX is served by the emulator's pluggable encoder, and the corpus goes
through the real stack: google-genai SDK -> emulator (HTTP) -> GeminiEmbedding -> aingest ->
ChromaStore (local, HNSW cosine) -> VectorStoreIndex retriever (query embedded by
GeminiEmbedding with RETRIEVAL_QUERY). nDCG@10 / Recall@100 must equal the encoder's own
(exact cosine ranking of the same vectors) within +-0.005.

Baselines: the emulator's built-in lexical hashing vectors (768-d) through the same stack,
and BM25 (k1 0.9, b 0.4) implemented in bench/ir.py.

What the stack rows exercise (and how we know):

* every stack vector is computed by the encoder during that run — the stack encoder has no
  cache (a fresh ``MiniLM`` per row, its cache file never written), and the row reports
  that every distinct text it saw was run through the model (the reference's vectors are never
  reused);
* ``minilm_stack_256`` asks for 256 dimensions of the encoder's native 384, so the emulator
  truncates (Matryoshka-style, as the API does) and GeminiEmbedding re-normalises; its
  reference is the direct vectors truncated to 256 and re-normalised, ranked exactly.

    bench/.venv-bench/bin/python bench/quality.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from benchlib import LoadMonitor, fresh_dir, summary, write_result

import ir  # isort: skip
from minilm import MODEL_ID, MiniLM  # isort: skip

TOLERANCE = 0.005


def direct_rankings(ds: ir.Dataset, enc: MiniLM) -> tuple[dict[str, list[str]], np.ndarray]:
    docs = enc.encode([ds.doc_text(i) for i in range(len(ds.doc_ids))])
    queries = enc.encode(ds.queries)
    scores = queries @ docs.T
    rankings = {
        q: [ds.doc_ids[j] for j in np.argsort(-scores[i], kind="stable")[:100]]
        for i, q in enumerate(ds.query_ids)
    }
    return rankings, docs


async def stack_rankings(
    ds: ir.Dataset,
    *,
    encoder: Any,
    dimension: int,
    title_field: bool,
    name: str,
) -> dict[str, Any]:
    """Ingest the corpus through the whole stack and retrieve every query through it."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import Document

    from llama_index_gemini_embed import GeminiEmbedding
    from llama_index_gemini_embed._ingest import aingest
    from llama_index_gemini_embed._store.store import ChromaStore
    from llama_index_gemini_embed.emulator import Emulator

    def documents() -> list[Document]:
        if title_field:
            # The title goes in node metadata -> GeminiEmbedding sends it as the API's
            # `title` field (RETRIEVAL_DOCUMENT) and the encoder sees it separately.
            return [
                Document(text=ds.texts[i], id_=d, metadata={"title": ds.titles[i]})
                for i, d in enumerate(ds.doc_ids)
            ]
        return [Document(text=ds.doc_text(i), id_=d) for i, d in enumerate(ds.doc_ids)]

    path = fresh_dir(f"quality-{name}")
    with Emulator(encoder=encoder) as emu:
        embed = GeminiEmbedding(
            api_key=emu.api_key, base_url=emu.base_url, output_dimensionality=dimension
        )
        store = ChromaStore(f"quality-{name}", path=str(path), embed_model=embed)
        try:
            t0 = time.perf_counter()
            report = await aingest(documents(), store=store, embed_model=embed, show_progress=False)
            ingest_s = time.perf_counter() - t0
            index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
            retriever = index.as_retriever(similarity_top_k=100)
            rankings: dict[str, list[str]] = {}
            t0 = time.perf_counter()
            for qid, text in zip(ds.query_ids, ds.queries, strict=True):
                hits = await retriever.aretrieve(text)
                ranked: list[str] = []
                for h in hits:  # one chunk per document here; keep the first hit of a doc
                    doc = h.node.ref_doc_id or h.node.node_id.rsplit("#", 1)[0]
                    if doc not in ranked:
                        ranked.append(doc)
                rankings[qid] = ranked
            query_s = time.perf_counter() - t0
            stored = store.collection.get(include=["embeddings"], limit=len(ds.doc_ids) + 10)
            counters = emu.counters
        finally:
            store.close()
    vectors = {
        i.rsplit("#", 1)[0]: np.asarray(e, dtype=np.float32)
        for i, e in zip(stored["ids"], stored["embeddings"], strict=True)
    }
    return {
        "rankings": rankings,
        "vectors": vectors,
        "report": {
            "documents": report.documents,
            "nodes": report.nodes,
            "embedded": report.embedded,
            "failed": report.failed,
            "requests": report.requests,
            "ingest_seconds": round(ingest_s, 2),
            "query_seconds": round(query_s, 2),
            "emulator_embed_requests": counters.embed_requests,
            "emulator_embed_items": counters.embed_items,
        },
    }


def make_encoder(enc: MiniLM, seen: list[str]) -> Any:
    def encode(req: Any) -> np.ndarray:
        texts = [
            f"{title}. {text}" if title else text
            for text, title in zip(req.texts, req.titles or [None] * len(req.texts), strict=True)
        ]
        seen.extend(texts)
        return enc.encode(texts)

    return encode


async def main() -> None:
    ds = ir.load()
    enc = MiniLM()
    results: dict[str, Any] = {"dataset": "dbpedia-entity-5k", "encoder": MODEL_ID, "rows": {}}
    rows = results["rows"]
    with LoadMonitor() as load:
        direct, direct_vecs = direct_rankings(ds, enc)
        enc.save()
        m = ir.evaluate(ds, direct)
        rows["minilm_direct"] = {"label": "MiniLM int8, computed directly (exact cosine)", **m}
        direct_by_id = dict(zip(ds.doc_ids, direct_vecs, strict=True))

        # The reference at 256 dimensions: the direct vectors truncated and re-normalised.
        q384 = enc.encode(ds.queries)
        d256 = direct_vecs[:, :256] / np.linalg.norm(direct_vecs[:, :256], axis=1, keepdims=True)
        q256 = q384[:, :256] / np.linalg.norm(q384[:, :256], axis=1, keepdims=True)
        s256 = q256 @ d256.T
        direct256 = {
            q: [ds.doc_ids[j] for j in np.argsort(-s256[i], kind="stable")[:100]]
            for i, q in enumerate(ds.query_ids)
        }
        rows["minilm_direct_256"] = {
            "label": "MiniLM int8, truncated to 256-d and re-normalised, computed directly",
            **ir.evaluate(ds, direct256),
        }
        refs = {
            384: (direct, direct_by_id),
            256: (direct256, dict(zip(ds.doc_ids, d256, strict=True))),
        }
        enc.save()

        for name, title_field, dim in (
            ("minilm_stack", False, 384),
            ("minilm_stack_title", True, 384),
            ("minilm_stack_256", False, 256),
        ):
            seen: list[str] = []
            fresh = MiniLM(cache_path=fresh_dir(f"quality-nocache-{name}") / "none.npz")
            out = await stack_rankings(
                ds,
                encoder=make_encoder(fresh, seen),
                dimension=dim,
                title_field=title_field,
                name=name,
            )
            ref_rank, ref_vecs = refs[dim]
            m = ir.evaluate(ds, out["rankings"])
            diffs = [float(np.max(np.abs(out["vectors"][d] - ref_vecs[d]))) for d in ds.doc_ids]
            top10_same = sum(out["rankings"][q][:10] == ref_rank[q][:10] for q in ds.query_ids)
            rows[name] = {
                "label": (
                    f"MiniLM ({dim}-d) via emulator -> SDK -> GeminiEmbedding -> aingest -> "
                    "ChromaStore -> retriever"
                    + (" (title sent as the API title field)" if title_field else "")
                ),
                **m,
                **out["report"],
                "dimension": dim,
                "encoder_cache_misses": fresh.encoded,
                "texts_seen_by_encoder": len(seen),
                "computed_in_this_run": fresh.encoded == len(set(seen)) > 0,
                "max_abs_vector_diff_vs_direct": max(diffs),
                "queries_with_identical_top10": top10_same,
            }

        out = await stack_rankings(
            ds, encoder=None, dimension=768, title_field=False, name="lexical"
        )
        rows["emulator_lexical_stack"] = {
            "label": "emulator's built-in lexical hashing vectors (768-d), same stack",
            **ir.evaluate(ds, out["rankings"]),
            **out["report"],
        }

        docs = [ds.doc_text(i) for i in range(len(ds.doc_ids))]
        bm = ir.BM25(docs, k1=0.9, b=0.4)
        rows["bm25"] = {
            "label": "BM25 k1 0.9 b 0.4 (Lucene-like analyser: stopwords + Porter stemming)",
            **ir.evaluate(
                ds,
                {
                    q: [ds.doc_ids[i] for i in bm.search(t)]
                    for q, t in zip(ds.query_ids, ds.queries, strict=True)
                },
            ),
        }
        orig = ir.analyse
        try:
            ir.analyse = lambda t: [w for w in ir._TOKEN.findall(t.lower()) if w not in ir._STOP]
            plain = ir.BM25(docs, k1=0.9, b=0.4)
            ranked = {
                q: [ds.doc_ids[i] for i in plain.search(t)]
                for q, t in zip(ds.query_ids, ds.queries, strict=True)
            }
        finally:
            ir.analyse = orig
        rows["bm25_nostem"] = {
            "label": "BM25 k1 0.9 b 0.4 (stopwords, no stemming)",
            **ir.evaluate(ds, ranked),
        }
    results["load"] = load.describe()
    for row in rows.values():
        row.pop("per_query_ndcg@10", None)
    d = rows["minilm_direct"]["ndcg@10"]
    s = rows["minilm_stack"]["ndcg@10"]
    st = rows["minilm_stack_title"]["ndcg@10"]
    d256 = rows["minilm_direct_256"]["ndcg@10"]
    s256 = rows["minilm_stack_256"]["ndcg@10"]
    delta = max(abs(s - d), abs(st - d), abs(s256 - d256))
    fresh_ok = all(
        rows[k]["computed_in_this_run"]
        for k in ("minilm_stack", "minilm_stack_title", "minilm_stack_256")
    )
    results["verdict"] = {
        "target": f"|nDCG@10(stack) - nDCG@10(direct)| <= {TOLERANCE} at 384-d and at 256-d",
        "delta_ndcg@10": delta,
        "stack_vectors_computed_in_this_run": fresh_ok,
        "met": delta <= TOLERANCE and fresh_ok,
    }
    path = write_result("quality", results)
    print(f"{'retriever':<28} {'nDCG@10':>8} {'R@100':>7}")
    for key, row in rows.items():
        print(f"{key:<28} {row['ndcg@10']:8.4f} {row['recall@100']:7.4f}")
    print(f"results: {path}")
    summary(
        "quality",
        f"nDCG@10 stack/direct = {s:.4f}/{d:.4f} (ratio {s / d:.4f}); at 256-d "
        f"{s256:.4f}/{d256:.4f}; |delta| {delta:.4f} "
        f"{'<=' if delta <= TOLERANCE else '>'} {TOLERANCE}); "
        f"lexical {rows['emulator_lexical_stack']['ndcg@10']:.4f}, "
        f"BM25 {rows['bm25']['ndcg@10']:.4f}",
    )


if __name__ == "__main__":
    asyncio.run(main())
