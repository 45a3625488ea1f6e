"""Rerank plumbing on a real benchmark: an oracle judge must reach the ideal order.

Data: ``/work/shared/data/dbpedia-entity-5k``, a 5,000-document subset of the BEIR
``dbpedia-entity`` task (Thakur et al., 2021, "BEIR: A Heterogeneous Benchmark for
Zero-shot Evaluation of Information Retrieval Models"), built on DBpedia-Entity v2
(Hasibi et al., SIGIR 2017), as published in the GitHub repository
``agentset-ai/embedding-leaderboard`` (``datasets/dbpedia``). Text: DBpedia abstracts,
CC BY-SA 3.0.

The corpus is embedded with ``GeminiEmbedding`` against the emulator (lexical vectors, 768
dimensions) into an in-memory ``VectorStoreIndex``; the top 30 per query are reranked by
``GeminiReranker``. With an ORACLE judge (each passage's qrels grade, found through the
``doc_id`` metadata line shown to the judge) nDCG@10 must equal the best attainable from
those 30 candidates; with a judge answering garbage it must equal the retrieval nDCG@10.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import NodeWithScore, TextNode

from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed._rerank.postprocessor import GeminiReranker
from llama_index_gemini_embed.emulator import Emulator, JudgeRequest


def _dataset_dir() -> Path:
    """The DBpedia subset: $LIGE_DBPEDIA_DIR, else ``../shared`` beside the repository."""
    override = os.environ.get("LIGE_DBPEDIA_DIR")
    if override:
        return Path(override)
    beside_repo = Path(__file__).resolve().parents[3] / "shared/data/dbpedia-entity-5k"
    return beside_repo if beside_repo.is_dir() else Path("/work/shared/data/dbpedia-entity-5k")


DATA = _dataset_dir()
CANDIDATES = 30
CUTOFF = 10


@pytest.fixture(autouse=True)
def _dataset_present() -> None:
    if not DATA.is_dir():  # a missing dataset must not pass silently
        pytest.fail(
            f"the DBpedia subset is not at {DATA}: put shared/ beside the checkout "
            "or set LIGE_DBPEDIA_DIR"
        )


PASSAGE_RE = re.compile(r'<passage id="([^"]*)">\n(.*?)\n</passage>', re.DOTALL)
QUERY_RE = re.compile(r"<query>(.*?)</query>", re.DOTALL)
DOC_ID_RE = re.compile(r"^doc_id: (.*)$", re.MULTILINE)


def dcg(gains: list[int]) -> float:
    """Discounted cumulative gain at 10, linear gain (trec_eval ``ndcg_cut_10``)."""
    return sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains[:CUTOFF]))


def ndcg(ranked: list[str], grades: dict[str, int]) -> float:
    """nDCG@10 of ``ranked`` doc ids; the ideal is over every judged-relevant doc."""
    ideal = dcg(sorted((g for g in grades.values() if g > 0), reverse=True))
    return dcg([grades.get(doc, 0) for doc in ranked]) / ideal


def best_attainable(candidates: list[str], grades: dict[str, int]) -> float:
    """nDCG@10 of the best order of ``candidates`` (the ceiling for a reranker)."""
    ideal = dcg(sorted((g for g in grades.values() if g > 0), reverse=True))
    return dcg(sorted((grades.get(doc, 0) for doc in candidates), reverse=True)) / ideal


@dataclass
class Bench:
    emu: Emulator
    queries: dict[str, str]  # query id -> text, only queries with a relevant doc
    qrels: dict[str, dict[str, int]]
    retrieved: dict[str, list[NodeWithScore]]  # query id -> top 30, retrieval order
    seconds_embed: float
    seconds_retrieve: float


def _load() -> tuple[list[dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    corpus = [json.loads(line) for line in (DATA / "corpus.jsonl").open(encoding="utf-8")]
    qrels: dict[str, dict[str, int]] = {}
    with (DATA / "qrels" / "test.tsv").open(encoding="utf-8") as lines:
        next(lines)
        for line in lines:
            qid, doc, grade = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[doc] = int(grade)
    queries = {}
    for line in (DATA / "queries.jsonl").open(encoding="utf-8"):
        query = json.loads(line)
        if any(g > 0 for g in qrels.get(query["_id"], {}).values()):
            queries[query["_id"]] = query["text"]
    return corpus, queries, qrels


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    corpus, queries, qrels = _load()
    assert len(corpus) == 5000 and len(queries) == 40
    with Emulator() as emu:
        embed = GeminiEmbedding(
            api_key=emu.api_key,
            base_url=emu.base_url,
            output_dimensionality=768,
            max_concurrency=32,
        )
        nodes = [
            TextNode(
                id_=doc["_id"],
                text=f"{doc['title']}. {doc['text']}",
                metadata={"doc_id": doc["_id"]},
                excluded_embed_metadata_keys=["doc_id"],
                excluded_llm_metadata_keys=["doc_id"],
            )
            for doc in corpus
        ]
        started = time.perf_counter()
        index = VectorStoreIndex(nodes, embed_model=embed)
        seconds_embed = time.perf_counter() - started
        retriever = index.as_retriever(similarity_top_k=CANDIDATES)
        started = time.perf_counter()
        retrieved = {qid: retriever.retrieve(text) for qid, text in queries.items()}
        seconds_retrieve = time.perf_counter() - started
        assert all(len(found) == CANDIDATES for found in retrieved.values())
        yield Bench(emu, queries, qrels, retrieved, seconds_embed, seconds_retrieve)


def _rerank_all(bench: Bench) -> tuple[dict[str, list[str]], float, GeminiReranker]:
    reranker = GeminiReranker(
        api_key=bench.emu.api_key,
        base_url=bench.emu.base_url,
        top_n=CUTOFF,
        batch_size=10,
        title_metadata_keys=[],
        metadata_keys=["doc_id"],
    )
    started = time.perf_counter()
    ranked = {
        qid: [
            n.node.node_id
            for n in reranker.postprocess_nodes(bench.retrieved[qid], query_str=bench.queries[qid])
        ]
        for qid in bench.queries
    }
    return ranked, time.perf_counter() - started, reranker


def _oracle(bench: Bench) -> Any:
    by_text = {text.strip(): qid for qid, text in bench.queries.items()}

    def judge(request: JudgeRequest) -> dict[str, Any]:
        (query,) = QUERY_RE.findall(request.prompt_text)
        grades = bench.qrels[by_text[html.unescape(query)]]
        scores = []
        for pid, body in PASSAGE_RE.findall(request.prompt_text):
            (doc,) = DOC_ID_RE.findall(html.unescape(body))
            scores.append({"id": pid, "score": 5.0 * grades.get(doc, 0)})
        return {"scores": scores}

    return judge


def test_oracle_judge_reaches_the_best_attainable_ndcg(bench: Bench) -> None:
    bench.emu.set_judge(_oracle(bench))
    ranked, seconds, reranker = _rerank_all(bench)

    before, after, ceiling = [], [], []
    for qid in bench.queries:
        grades = bench.qrels[qid]
        candidates = [n.node.node_id for n in bench.retrieved[qid]]
        before.append(ndcg(candidates, grades))
        after.append(ndcg(ranked[qid], grades))
        ceiling.append(best_attainable(candidates, grades))
        assert after[-1] == pytest.approx(ceiling[-1], abs=1e-9), qid
        assert sorted(ranked[qid]) == sorted(set(ranked[qid]))  # no duplicates
        assert set(ranked[qid]) <= set(candidates)  # nothing invented
    assert reranker.usage.failed_items == 0
    assert reranker.usage.requests == 3 * len(bench.queries)
    assert statistics.mean(ceiling) > statistics.mean(before)  # the check has teeth
    print(
        f"\nembed 5k: {bench.seconds_embed:.1f}s, retrieve 40: {bench.seconds_retrieve:.1f}s, "
        f"rerank 40x30: {seconds:.1f}s; nDCG@10 retrieval {statistics.mean(before):.4f}, "
        f"oracle rerank {statistics.mean(after):.4f} (ceiling {statistics.mean(ceiling):.4f})"
    )


def test_garbage_judge_keeps_the_retrieval_ndcg(bench: Bench) -> None:
    bench.emu.set_judge(lambda request: "I cannot comply with this request.")
    ranked, _, reranker = _rerank_all(bench)

    for qid in bench.queries:
        candidates = [n.node.node_id for n in bench.retrieved[qid]]
        assert ranked[qid] == candidates[:CUTOFF]
        before = ndcg(candidates, bench.qrels[qid])
        assert ndcg(ranked[qid], bench.qrels[qid]) == pytest.approx(before, abs=1e-9)
    assert reranker.usage.failed_items == CANDIDATES * len(bench.queries)
    assert reranker.usage.requests == 2 * 3 * len(bench.queries)  # each batch re-asked once


def test_default_lexical_judge_figures(bench: Bench) -> None:
    """Informational: the emulator's word-overlap judge as a (weak) reranker."""
    bench.emu.set_judge(None)
    ranked, _, reranker = _rerank_all(bench)
    before = [
        ndcg([n.node.node_id for n in bench.retrieved[qid]], bench.qrels[qid])
        for qid in bench.queries
    ]
    after = [ndcg(ranked[qid], bench.qrels[qid]) for qid in bench.queries]
    assert reranker.usage.failed_items == 0
    print(
        f"\nnDCG@10 retrieval {statistics.mean(before):.4f}, "
        f"lexical-judge rerank {statistics.mean(after):.4f}"
    )
