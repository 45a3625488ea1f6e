"""Issue 13 §5: requests the real service accepts. Issue 14 goal 5: the query cache.

* No request exceeds the 4,194,304-byte payload cap: requests are split by bytes as well
  as by count and tokens (the SDK serialises with ``json.dumps``: non-ASCII becomes
  ``\\uXXXX``, six bytes a character).
* Over-length texts are truncated to the model's input limit before sending (or refused
  with ``on_overlength="raise"``).
* One bad text never fails its 99 neighbours: a request the API refuses (400) is split
  until the bad item stands alone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from llama_index.core.schema import Document

from llama_index_gemini_embed import ChromaStore, GeminiAPIError, ingest
from llama_index_gemini_embed._tokens import estimate_tokens
from llama_index_gemini_embed.emulator import Emulator
from tests.embedding.support import embed_records, make

CAP = 4_194_304


def sent_texts(emu: Emulator) -> list[str]:
    return [
        item["content"]["parts"][0]["text"]
        for r in embed_records(emu)
        if r.body is not None and r.status == 200
        for item in r.body["requests"]
    ]


def test_requests_are_split_by_payload_bytes(emulator: Emulator) -> None:
    embed = make(emulator, model_name="gemini-embedding-2", output_dimensionality=128)
    # 8,000 estimated tokens each (under -2's 8,192), but 48 KB each on the wire.
    texts = [f"{i:03d}" + "é" * 8000 for i in range(100)]
    vectors = embed.get_text_embedding_batch(texts)
    assert len(vectors) == 100
    records = embed_records(emulator)
    assert {r.status for r in records} == {200}
    assert len(records) >= 2, "one request would be ~4.8 MB"
    for record in records:
        assert len(json.dumps(record.body)) <= CAP
    assert sum(len(r.body["requests"]) for r in records) == 100


def test_overlength_text_is_truncated_before_sending(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    embed = make(emulator, output_dimensionality=128)
    long_text = "lorem " * 3000  # ~4,500 estimated tokens; the limit is 2,048
    with caplog.at_level(logging.WARNING, logger="llama_index_gemini_embed"):
        vectors = embed.get_text_embedding_batch([long_text, "short"])
    assert len(vectors) == 2
    sent = sent_texts(emulator)
    assert sent[1] == "short"
    assert long_text.startswith(sent[0]) and len(sent[0]) < len(long_text)
    assert 2000 < estimate_tokens(sent[0]) <= 2048
    assert embed.usage.truncated == 1
    assert any("truncated" in r.getMessage() for r in caplog.records)


def test_overlength_truncation_keeps_the_gemini_embedding_2_prefix(emulator: Emulator) -> None:
    embed = make(emulator, model_name="gemini-embedding-2", output_dimensionality=128)
    embed.get_query_embedding("lorem " * 12000)
    (sent,) = sent_texts(emulator)
    assert sent.startswith("task: search result | query: lorem ")
    assert estimate_tokens(sent) <= 8192


def test_one_bad_text_never_fails_its_99_neighbours(tmp_path: Path) -> None:
    # The service counts digits one token each (our estimate does not): this text looks
    # like ~750 tokens to us and is 3,000 to the service, which refuses it (strict length).
    bad = "1234567890" * 300
    with Emulator(strict_length=True) as emulator:
        embed = make(emulator, output_dimensionality=128)
        store = ChromaStore("bad-one", path=str(tmp_path / "s"), embed_model=embed)
        docs = [Document(id_=f"d{i}", text=f"good document {i}") for i in range(100)]
        docs[37] = Document(id_="d37", text=bad)
        report = ingest(docs, embed_model=embed, store=store, show_progress=False)
        assert (report.embedded, report.failed) == (99, 1)
        assert [f.node_id.split("#")[0] for f in report.failures] == ["d37"]
        assert store.count() == 99

        with pytest.raises(GeminiAPIError, match=r"text #2\b"):
            embed.get_text_embedding_batch(["fine", "also fine", bad, "fine too"])


# -- issue 14 goal 5: repeated identical queries do not pay a second round trip ----------


def test_repeated_queries_hit_the_cache(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=128)
    first = embed.get_query_embedding("where is the tower?")
    again = embed.get_query_embedding("where is the tower?")
    assert again == first
    assert emulator.counters.embed_requests == 1
    assert embed.usage.requests == 1


async def test_async_queries_share_the_cache(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=128)
    first = await embed.aget_query_embedding("q")
    assert await embed.aget_query_embedding("q") == first
    assert embed.get_query_embedding("q") == first
    assert emulator.counters.embed_requests == 1


def test_cache_is_keyed_on_task_model_and_dimension_and_not_used_for_documents(
    emulator: Emulator,
) -> None:
    a = make(emulator, output_dimensionality=128)
    b = make(emulator, output_dimensionality=128, query_task_type="QUESTION_ANSWERING")
    c = make(emulator, output_dimensionality=256)
    for embed in (a, b, c):
        embed.get_query_embedding("same words")
    a.get_text_embedding("same words")
    a.get_text_embedding("same words")
    assert emulator.counters.embed_requests == 5
    assert a.get_query_embedding("same words") != a.get_text_embedding("same words")


def test_cache_is_bounded(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=128, query_cache_size=2)
    for query in ("one", "two", "three", "one"):
        embed.get_query_embedding(query)
    assert emulator.counters.embed_requests == 4, "'one' was evicted by 'three'"
    embed.get_query_embedding("three")
    assert emulator.counters.embed_requests == 4

    off = make(emulator, output_dimensionality=128, query_cache_size=0)
    off.get_query_embedding("one")
    off.get_query_embedding("one")
    assert emulator.counters.embed_requests == 6
