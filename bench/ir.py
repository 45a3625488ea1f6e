"""The DBpedia-Entity 5k retrieval set, trec_eval-style metrics and a BM25 baseline."""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchlib import DATA_DIR


@dataclass
class Dataset:
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    query_ids: list[str]  # only queries with at least one judged-relevant document
    queries: list[str]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade (all judged rows)

    def doc_text(self, i: int) -> str:
        """What is embedded for document ``i``: ``title + ". " + text``."""
        return f"{self.titles[i]}. {self.texts[i]}"


def load(data_dir: Path = DATA_DIR) -> Dataset:
    doc_ids, titles, texts = [], [], []
    with open(data_dir / "corpus.jsonl") as fh:
        for line in fh:
            d = json.loads(line)
            doc_ids.append(d["_id"])
            titles.append(d.get("title") or "")
            texts.append(d["text"])
    qrels: dict[str, dict[str, int]] = {}
    with open(data_dir / "qrels" / "test.tsv") as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    qids, qtexts = [], []
    with open(data_dir / "queries.jsonl") as fh:
        for line in fh:
            q = json.loads(line)
            if any(g > 0 for g in qrels.get(q["_id"], {}).values()):
                qids.append(q["_id"])
                qtexts.append(q["text"])
    return Dataset(doc_ids, titles, texts, qids, qtexts, qrels)


def ndcg_at(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """trec_eval ``ndcg_cut.k``: linear gain = grade, discount log2(rank + 1)."""
    dcg = sum(
        judged.get(d, 0) / math.log2(i + 2)
        for i, d in enumerate(ranked[:k])
        if judged.get(d, 0) > 0
    )
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def evaluate(ds: Dataset, rankings: Mapping[str, Sequence[str]]) -> dict[str, float]:
    n = [ndcg_at(rankings[q], ds.qrels[q], 10) for q in ds.query_ids]
    r = [recall_at(rankings[q], ds.qrels[q], 100) for q in ds.query_ids]
    return {
        "ndcg@10": sum(n) / len(n),
        "recall@100": sum(r) / len(r),
        "queries": len(n),
        "per_query_ndcg@10": dict(zip(ds.query_ids, n, strict=True)),
    }


# ----------------------------------------------------------------------------- BM25

_TOKEN = re.compile(r"[a-z0-9]+")
# Lucene's default English stopword set (what Anserini/Pyserini's analyzer drops).
_STOP = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    }
)


def analyse(text: str) -> list[str]:
    """Lower-case, alphanumeric tokens, Lucene stopwords removed, Porter-stemmed (nltk)."""
    stem = _stem_fn()
    return [stem(t) for t in _TOKEN.findall(text.lower()) if t not in _STOP]


@functools.cache
def _stem_fn() -> Callable[[str], str]:
    from nltk.stem.porter import PorterStemmer

    return functools.lru_cache(maxsize=None)(PorterStemmer().stem)


class BM25:
    """Okapi BM25 with Lucene's idf: log(1 + (N - df + 0.5) / (df + 0.5))."""

    def __init__(self, docs: Sequence[str], k1: float = 0.9, b: float = 0.4) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(analyse(d)) for d in docs]
        self.lens = [sum(tf.values()) for tf in self.tfs]
        self.avgdl = sum(self.lens) / len(self.lens)
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, tf in enumerate(self.tfs):
            for t, f in tf.items():
                self.postings.setdefault(t, []).append((i, f))

    def search(self, query: str, k: int = 100) -> list[int]:
        scores: dict[int, float] = {}
        for t in analyse(query):
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i, f in self.postings[t]:
                norm = self.k1 * (1 - self.b + self.b * self.lens[i] / self.avgdl)
                scores[i] = scores.get(i, 0.0) + idf * f * (self.k1 + 1) / (f + norm)
        return [i for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
