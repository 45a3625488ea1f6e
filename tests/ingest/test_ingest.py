"""ingest()/aingest(): the real SDK against the emulator, a real Chroma store in tmp dirs."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.retrievers import VectorIndexRetriever
from llama_index.core.vector_stores.types import ExactMatchFilter, MetadataFilters

from llama_index_gemini_embed import (
    ConfigurationError,
    DailyQuotaExceededError,
    FingerprintMismatchError,
    GeminiEmbedding,
    InvalidAPIKeyError,
    StoreError,
)
from llama_index_gemini_embed._ingest import (
    IngestReport,
    aingest,
    ingest,
    load_documents,
    sample_corpus_dir,
)
from llama_index_gemini_embed._ingest.writer import write_lag
from llama_index_gemini_embed._store.store import ChromaStore
from llama_index_gemini_embed.emulator import Emulator, Fault, QuotaConfig

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

WORDS = [
    *("alpha", "beta", "gamma", "delta", "epsilon", "zeta"),
    *("eta", "theta", "iota", "kappa", "lambda", "omicron"),
]


def make_embed(emu: Emulator, **kwargs: Any) -> GeminiEmbedding:
    settings: dict[str, Any] = {"output_dimensionality": 128, "max_retries": 0}
    settings.update(kwargs)
    return GeminiEmbedding(api_key=emu.api_key, base_url=emu.base_url, **settings)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChromaStore]:
    with ChromaStore("ingest-test", path=str(tmp_path / "chroma")) as opened:
        yield opened


def write_corpus(root: Path, docs: int, sentences: int = 12, *, title: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(docs):
        body = " ".join(
            f"Sentence {j} of note {i} mentions {WORDS[(i + j) % len(WORDS)]}."
            for j in range(sentences)
        )
        heading = f"# Note {i}\n\n" if title else ""
        (root / f"note{i:03d}.md").write_text(f"---\ngroup: g{i % 3}\n---\n{heading}{body}\n")
    return root


def small_chunks() -> list[Any]:
    return [SentenceSplitter(chunk_size=96, chunk_overlap=0)]


def documents(count: int, sentences: int = 20, prefix: str = "doc") -> Iterator[Document]:
    for i in range(count):
        text = " ".join(
            f"Sentence {j} of {prefix} {i} is about {WORDS[(i + j) % len(WORDS)]}."
            for j in range(sentences)
        )
        yield Document(id_=f"{prefix}{i}", text=text)


def stored_rows(store: ChromaStore) -> dict[str, str]:
    rows = store.collection.get(include=["documents"])
    return dict(zip(rows["ids"], rows["documents"] or [], strict=True))


# ----------------------------------------------------------------------------- basics


def test_folder_ingest_titles_metadata_and_report(emulator: Emulator, store: ChromaStore) -> None:
    embed = make_embed(emulator)
    report = ingest(sample_corpus_dir(), embed_model=embed, store=store, show_progress=False)
    assert report.ok and not report.dry_run
    assert report.documents == 10
    assert report.nodes == report.embedded == report.written == store.count() == 10
    assert report.requests == emulator.counters.embed_requests
    assert report.tokens == emulator.counters.tokens > 0
    assert report.cost_usd == pytest.approx(report.tokens * 0.15 / 1e6)
    assert report.wall_seconds > 0 and report.items_per_second > 0
    assert "10 embedded" in report.summary()

    # Titles (from front matter / the first heading) reach the API as the request title.
    titles = {
        request["title"]
        for record in emulator.requests
        if isinstance(record.body, dict)
        for request in record.body.get("requests", [])
        if "title" in request
    }
    assert "Plans and pricing" in titles and "Security and encryption" in titles

    node = store.get_nodes(node_ids=["05-pricing.md#0"])[0]
    assert node.ref_doc_id == "05-pricing.md"
    assert node.metadata["title"] == "Plans and pricing"
    assert node.metadata["category"] == "billing"  # front matter
    assert node.metadata["source"] == "05-pricing.md"
    assert node.metadata["lige_hash"]
    assert "lige_fp" not in node.metadata  # the fingerprint lives on the collection
    assert "lige_hash" in node.excluded_embed_metadata_keys
    assert not node.get_content().startswith("---")  # front matter stripped from the text


def test_unchanged_rerun_makes_zero_api_calls(emulator: Emulator, store: ChromaStore) -> None:
    embed = make_embed(emulator)
    first = ingest(sample_corpus_dir(), embed_model=embed, store=store, show_progress=False)
    calls = emulator.counters.embed_requests
    again = ingest(
        sample_corpus_dir(), embed_model=make_embed(emulator), store=store, show_progress=False
    )
    assert emulator.counters.embed_requests == calls
    assert again.skipped == first.nodes and again.embedded == again.written == 0
    assert again.requests == 0 and again.ok


def test_stores_with_the_old_per_row_fingerprint_stay_incremental(
    emulator: Emulator, store: ChromaStore
) -> None:
    """0.1.0 wrote ``lige_fp`` on every row; 0.2 does not (issue 14: one key less per row).

    A store written the old way must not be re-embedded or rewritten by the new version.
    """
    first = ingest(
        sample_corpus_dir(), embed_model=make_embed(emulator), store=store, show_progress=False
    )
    rows = store.collection.get(include=["metadatas"])
    assert rows["metadatas"] and all("lige_fp" not in m for m in rows["metadatas"])
    old_format: list[Any] = []
    for metadata in rows["metadatas"]:  # what 0.1.0 wrote: the key, listed in lige_keys
        keys = [*cast(list[str], metadata["lige_keys"]), "lige_fp"]
        old_format.append({**metadata, "lige_fp": "05640512183a8eb4", "lige_keys": keys})
    store.collection.update(ids=rows["ids"], metadatas=old_format)
    calls = emulator.counters.embed_requests

    again = ingest(
        sample_corpus_dir(), embed_model=make_embed(emulator), store=store, show_progress=False
    )
    assert emulator.counters.embed_requests == calls
    assert again.skipped == first.nodes and again.written == 0 and again.ok
    node = store.get_nodes(node_ids=["05-pricing.md#0"])[0]
    assert node.metadata["lige_fp"] == "05640512183a8eb4"  # old rows read back unchanged


def test_changed_document_reembedded_and_stale_chunks_deleted(
    emulator: Emulator, store: ChromaStore, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=4, sentences=30)
    embed = make_embed(emulator)
    first = ingest(
        corpus, embed_model=embed, store=store, transformations=small_chunks(), show_progress=False
    )
    before = stored_rows(store)
    chunks_of_0 = sorted(i for i in before if i.startswith("note000.md#"))
    assert len(chunks_of_0) > 3

    # note000 shrinks to one short changed chunk; note001 changes only its last sentence.
    (corpus / "note000.md").write_text("# Note 0\n\nNow a single short sentence about kappa.\n")
    text1 = (corpus / "note001.md").read_text()
    (corpus / "note001.md").write_text(text1.replace("Sentence 29", "Final sentence 29"))
    items_before = emulator.counters.embed_items
    report = ingest(
        corpus, embed_model=embed, store=store, transformations=small_chunks(), show_progress=False
    )
    after = stored_rows(store)

    assert [i for i in after if i.startswith("note000.md#")] == ["note000.md#0"]
    assert "single short sentence" in after["note000.md#0"]
    assert report.deleted == len(chunks_of_0) - 1
    assert report.embedded == emulator.counters.embed_items - items_before
    # Only changed chunks were paid for: note000's one chunk + note001's last chunk(s).
    assert 2 <= report.embedded <= 3
    # note001's other chunks kept their text but their file_size metadata changed: they are
    # rewritten with their stored vectors (no API call); note002/003 are skipped outright.
    chunks_of_1 = len([i for i in before if i.startswith("note001.md#")])
    assert report.reused == chunks_of_1 - (report.embedded - 1)
    assert report.skipped == first.nodes - len(chunks_of_0) - chunks_of_1
    for node_id, text in before.items():  # untouched documents are byte-identical
        if node_id.startswith(("note002", "note003")):
            assert after[node_id] == text


def test_metadata_only_change_rewrites_with_stored_vectors(
    emulator: Emulator, store: ChromaStore, tmp_path: Path
) -> None:
    docs = [
        Document(id_=f"d{i}", text=f"Text {i} about {WORDS[i]}.", metadata={"v": 1})
        for i in range(5)
    ]
    embed = make_embed(emulator)
    ingest(docs, embed_model=embed, store=store, show_progress=False)
    before = store.get_nodes(node_ids=["d0#0"], include_embeddings=True)[0]
    calls = emulator.counters.embed_requests
    for doc in docs:
        doc.metadata["v"] = 2
        doc.excluded_embed_metadata_keys = ["v"]  # the embedded text stays the same
    # With "v" excluded from the embedded text the content hash is unchanged...
    report = ingest(docs, embed_model=embed, store=store, show_progress=False)
    # ...but the first run embedded "v: 1" in the text, so this one must embed again.
    assert report.embedded == 5
    calls = emulator.counters.embed_requests
    for doc in docs:
        doc.metadata["v"] = 3  # now metadata-only: not part of the embedded text
    report = ingest(docs, embed_model=embed, store=store, show_progress=False)
    assert emulator.counters.embed_requests == calls
    assert report.reused == report.written == 5 and report.embedded == 0
    after = store.get_nodes(node_ids=["d0#0"], include_embeddings=True)[0]
    assert after.metadata["v"] == 3
    assert before.embedding is not None and after.embedding is not None
    assert len(after.embedding) == 128


def test_delete_missing_deletes_documents_no_longer_in_the_input(
    emulator: Emulator, store: ChromaStore, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=5)
    embed = make_embed(emulator)
    ingest(corpus, embed_model=embed, store=store, show_progress=False)
    (corpus / "note003.md").unlink()
    (corpus / "note004.md").unlink()
    kept = ingest(corpus, embed_model=embed, store=store, show_progress=False)
    assert kept.deleted == 0 and set(store.get_index()) >= {"note003.md", "note004.md"}
    dry = ingest(
        corpus,
        embed_model=embed,
        store=store,
        show_progress=False,
        delete_missing=True,
        dry_run=True,
    )
    assert dry.deleted_documents == 2 and "note003.md" in store.get_index()
    report = ingest(
        corpus, embed_model=embed, store=store, show_progress=False, delete_missing=True
    )
    assert report.deleted_documents == 2 and report.deleted == 2
    assert set(store.get_index()) == {f"note00{i}.md" for i in range(3)}
    with pytest.raises(ConfigurationError, match="empty input"):
        ingest([], embed_model=embed, store=store, show_progress=False, delete_missing=True)
    assert store.count() == 3


# ----------------------------------------------------------------------------- streaming


async def test_batches_are_written_while_the_run_is_still_going(
    emulator: Emulator, store: ChromaStore
) -> None:
    emulator.set_latency(0.05)
    embed = make_embed(emulator, embed_batch_size=10, max_concurrency=1)
    # 15 answers of 10: more than one gathered write (100 chunks or 0.2 s) holds
    task = asyncio.create_task(
        aingest(
            list(documents(150, sentences=2)), embed_model=embed, store=store, show_progress=False
        )
    )
    seen = 0
    deadline = time.monotonic() + 30
    while not task.done() and time.monotonic() < deadline:
        seen = await store.acount()
        if seen:
            break
        await asyncio.sleep(0.01)
    report = await task
    assert 0 < seen < 150, "a batch must be in the store before the run ends"
    assert report.written == 150


def test_input_is_read_lazily_in_windows(emulator: Emulator, store: ChromaStore) -> None:
    embed = make_embed(emulator)
    counts_seen: list[int] = []

    def lazy() -> Iterator[Document]:
        for i, doc in enumerate(documents(1200, sentences=2)):
            if i % 200 == 0:
                counts_seen.append(store.count())
            yield doc

    report = ingest(lazy(), embed_model=embed, store=store, show_progress=False, window_docs=100)
    assert report.written == 1200
    # The generator was still being read when chunks were already stored.
    assert any(0 < count < 1200 for count in counts_seen), counts_seen


@pytest.mark.parametrize(
    ("concurrency", "batch", "dimension", "lag"),
    [
        (8, 100, 768, 7),  # 600k floats / 76.8k per batch
        (8, 100, 128, 8),  # capped by max_concurrency
        (8, 100, None, 1),  # None = 3,072: one 307k-float batch fits, two do not
        (2, 10, 128, 2),
        (1, 100, 768, 1),
        (8, 250, 3072, 1),  # never below one batch
    ],
)
def test_answered_batches_waiting_for_the_store_are_bounded(
    concurrency: int, batch: int, dimension: int | None, lag: int
) -> None:
    embed = GeminiEmbedding(
        api_key="k" * 39,
        max_concurrency=concurrency,
        embed_batch_size=batch,
        output_dimensionality=dimension,
    )
    assert write_lag(embed) == lag


def test_six_thousand_nodes_in_one_run(emulator: Emulator, store: ChromaStore) -> None:
    embed = make_embed(emulator)
    started = time.monotonic()
    report = ingest(
        documents(700, sentences=60),
        embed_model=embed,
        store=store,
        transformations=small_chunks(),
        show_progress=False,
    )
    elapsed = time.monotonic() - started
    assert report.nodes >= 6000, report.nodes
    assert report.ok and report.written == report.nodes == store.count()
    assert emulator.counters.embed_items == report.nodes
    assert report.requests == emulator.counters.embed_requests <= report.nodes // 100 + 500
    print(f"{report.nodes} nodes in {elapsed:.1f}s = {report.nodes / elapsed:.0f} nodes/s")


# ----------------------------------------------------------------------------- failures


def test_fingerprint_mismatch_is_refused_before_any_api_call(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = str(tmp_path / "chroma")
    with ChromaStore("fp-test", path=path, embed_model=make_embed(emulator)) as first:
        assert first.fingerprint is not None
    other = make_embed(emulator, output_dimensionality=256)
    with ChromaStore("fp-test", path=path) as store:
        with pytest.raises(FingerprintMismatchError):
            ingest(sample_corpus_dir(), embed_model=other, store=store, show_progress=False)
        with pytest.raises(FingerprintMismatchError):
            ingest(
                sample_corpus_dir(),
                embed_model=other,
                store=store,
                show_progress=False,
                dry_run=True,
            )
    assert emulator.counters.embed_requests == 0


def test_one_failing_batch_is_reported_and_the_rest_written(
    emulator: Emulator, store: ChromaStore
) -> None:
    # A refused request is split until the bad item stands alone (2 x 10 - 1 = 19 requests
    # for a batch of 10): refuse all of them so every item of the first batch fails.
    emulator.script_faults([Fault.status(400, message="scripted bad request")] * 19)
    embed = make_embed(emulator, embed_batch_size=10, max_concurrency=1)
    docs = list(documents(50, sentences=2))
    report = ingest(docs, embed_model=embed, store=store, show_progress=False)
    assert not report.ok and report.fatal_error is None
    assert report.failed == 10 and len(report.failures) == 10
    failed_ids = {f.node_id for f in report.failures}
    assert failed_ids == {f"doc{i}#0" for i in range(10)}
    assert all("scripted bad request" in f.message for f in report.failures)
    assert report.failures[0].error_type and report.failures[0].doc_id == "doc0"
    assert report.written == store.count() == 40
    assert "failed doc0#0" in report.summary()
    # a re-run embeds exactly the failed chunks
    again = ingest(docs, embed_model=embed, store=store, show_progress=False)
    assert again.embedded == 10 and again.skipped == 40 and again.ok
    assert store.count() == 50


def test_persistent_server_errors_fail_only_their_batches(
    emulator: Emulator, store: ChromaStore
) -> None:
    emulator.script_faults([Fault.ok(), Fault.status(500), Fault.ok(), Fault.status(503)])
    embed = make_embed(emulator, embed_batch_size=5, max_concurrency=1)
    report = ingest(
        list(documents(20, sentences=2)), embed_model=embed, store=store, show_progress=False
    )
    assert report.failed == 10 and report.written == 10 == store.count()
    assert {f.node_id for f in report.failures} == {
        f"doc{i}#0" for i in (*range(5, 10), *range(15, 20))
    }


def test_daily_quota_mid_run_stops_cleanly_and_resumes_after_reset(
    emulator: Emulator, store: ChromaStore
) -> None:
    emulator.set_quota(QuotaConfig(items_per_day=45))
    embed = make_embed(emulator, embed_batch_size=10, max_concurrency=1)
    docs = list(documents(100, sentences=2))
    with pytest.raises(DailyQuotaExceededError) as caught:
        ingest(docs, embed_model=embed, store=store, show_progress=False)
    report = caught.value.report
    assert isinstance(report, IngestReport)
    assert report.fatal_error_type == "DailyQuotaExceededError"
    assert report.fatal_error and "quota" in report.fatal_error.lower()
    assert report.written == store.count() == 40  # everything embedded before the stop
    assert report.pending > 0 and "resume" in " ".join(caught.value.__notes__)

    # raise_on_fatal=False returns the report instead
    quiet = ingest(docs, embed_model=embed, store=store, show_progress=False, raise_on_fatal=False)
    assert quiet.stopped and quiet.written == 0 and quiet.skipped == 40

    emulator.reset_daily_quota()
    emulator.set_quota(QuotaConfig())
    done = ingest(docs, embed_model=embed, store=store, show_progress=False)
    assert done.ok and done.embedded == 60 and done.skipped == 40
    assert store.count() == 100


def test_bad_key_is_fatal_and_nothing_is_written(emulator: Emulator, store: ChromaStore) -> None:
    embed = GeminiEmbedding(
        api_key="wrong-key", base_url=emulator.base_url, output_dimensionality=128, max_retries=0
    )
    report = ingest(
        sample_corpus_dir(),
        embed_model=embed,
        store=store,
        show_progress=False,
        raise_on_fatal=False,
    )
    assert report.fatal_error_type == "InvalidAPIKeyError" and report.written == 0
    assert "wrong-key" not in report.summary()
    assert store.fingerprint is None  # nothing written: the collection is not bound yet
    with pytest.raises(InvalidAPIKeyError):
        ingest(sample_corpus_dir(), embed_model=embed, store=store, show_progress=False)


def test_closed_store_is_a_store_error_before_any_call(emulator: Emulator, tmp_path: Path) -> None:
    store = ChromaStore("closed-test", path=str(tmp_path / "c"))
    store.close()
    with pytest.raises(StoreError):
        ingest(
            sample_corpus_dir(), embed_model=make_embed(emulator), store=store, show_progress=False
        )
    assert emulator.counters.embed_requests == 0


def test_empty_and_overlong_chunks(emulator: Emulator, store: ChromaStore) -> None:
    docs = [
        Document(id_="blank", text="   \n\t "),
        Document(id_="fine", text="A normal sentence."),
        Document(id_="huge", text="word " * 3000),
    ]
    embed = make_embed(emulator, on_overlength="raise")
    report = ingest(docs, embed_model=embed, store=store, show_progress=False, transformations=[])
    assert docs[0].id_ == "blank" and "lige_hash" not in docs[1].metadata  # inputs untouched
    assert report.empty == 1
    assert report.failed == 1 and report.failures[0].node_id == "huge#0"
    assert report.failures[0].error_type == "TextTooLongError"
    assert report.written == 1 and emulator.counters.embed_items == 1


def test_input_errors(emulator: Emulator, store: ChromaStore, tmp_path: Path) -> None:
    embed = make_embed(emulator)
    with pytest.raises(ConfigurationError, match="No such file"):
        ingest(tmp_path / "missing", embed_model=embed, store=store, show_progress=False)
    with pytest.raises(ConfigurationError, match="embed_model"):
        ingest(
            sample_corpus_dir(),
            embed_model=embed,
            store=store,
            show_progress=False,
            transformations=[SentenceSplitter(), embed],
        )
    twice = [Document(id_="same", text="one"), Document(id_="same", text="two")]
    with pytest.raises(ConfigurationError, match="appears twice"):
        ingest(twice, embed_model=embed, store=store, show_progress=False)
    with pytest.raises(ConfigurationError, match="No embedding model"):
        ingest(sample_corpus_dir(), store=store, show_progress=False)


def test_random_document_ids_warn(
    emulator: Emulator, store: ChromaStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="llama_index_gemini_embed"):
        ingest(
            [Document(text="no id given")],
            embed_model=make_embed(emulator),
            store=store,
            show_progress=False,
        )
    assert "random id" in caplog.text


# ----------------------------------------------------------------------------- estimates


def test_dry_run_makes_no_call_and_estimates_the_real_run(
    emulator: Emulator, store: ChromaStore, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=60, sentences=20)
    embed = make_embed(emulator, items_per_minute=100, tokens_per_minute=1_000_000)
    dry = ingest(
        corpus,
        embed_model=embed,
        store=store,
        show_progress=False,
        dry_run=True,
        transformations=small_chunks(),
    )
    assert emulator.counters.embed_requests == 0 and store.count() == 0
    assert dry.dry_run and dry.written == 0 and dry.to_embed == dry.nodes > 100
    assert dry.estimated_seconds == pytest.approx(60.0 * (-(-dry.to_embed // 100) - 1))
    assert "dry run" in dry.summary()

    real = ingest(
        corpus,
        embed_model=make_embed(emulator),
        store=store,
        show_progress=False,
        transformations=small_chunks(),
    )
    assert real.embedded == dry.to_embed
    # The real run reports the API's counts; the dry run can only estimate them.
    assert real.tokens == emulator.counters.tokens and dry.tokens > 0
    assert real.requests == dry.requests == emulator.counters.embed_requests
    assert real.cost_usd == pytest.approx(real.tokens * 0.15 / 1e6)
    assert dry.cost_usd == pytest.approx(dry.tokens * 0.15 / 1e6)

    again = ingest(
        corpus,
        embed_model=embed,
        store=store,
        show_progress=False,
        dry_run=True,
        transformations=small_chunks(),
    )
    assert again.to_embed == 0 and again.requests == 0 and again.skipped == real.nodes


def test_progress_bar(
    emulator: Emulator, store: ChromaStore, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest(sample_corpus_dir(), embed_model=make_embed(emulator), store=store, show_progress=True)
    err = capsys.readouterr().err
    assert "chunk" in err and "tokens=" in err and "$" in err


def test_load_documents_is_lazy_and_skips_hidden_and_binary(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\ntext a")
    (root / "sub" / "b.txt").write_text("text b")
    (root / ".hidden.md").write_text("secret")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    docs = load_documents(root)
    assert not isinstance(docs, list)
    by_id = {doc.id_: doc for doc in docs}
    assert set(by_id) == {"a.md", "sub/b.txt"}
    assert by_id["a.md"].metadata["title"] == "A"
    only_md = {doc.id_ for doc in load_documents(root, extensions=["md"])}
    assert only_md == {"a.md"}


# ----------------------------------------------------------------------------- the LlamaIndex way


def test_ingestion_pipeline_run_and_arun(emulator: Emulator, tmp_path: Path) -> None:
    embed = make_embed(emulator)
    docs = list(load_documents(sample_corpus_dir()))
    with ChromaStore("pipeline-sync", path=str(tmp_path / "a"), embed_model=embed) as store:
        pipeline = IngestionPipeline(
            transformations=[SentenceSplitter(chunk_size=128, chunk_overlap=10), embed],
            vector_store=store,
        )
        nodes = pipeline.run(documents=docs)
        assert len(nodes) == store.count() > 10
    with ChromaStore("pipeline-async", path=str(tmp_path / "b"), embed_model=embed) as store:
        pipeline = IngestionPipeline(
            transformations=[SentenceSplitter(chunk_size=128, chunk_overlap=10), embed],
            vector_store=store,
        )
        nodes = asyncio.run(pipeline.arun(documents=docs))
        assert len(nodes) == store.count() > 10


def test_vector_store_index_round_trip_with_filters(emulator: Emulator, tmp_path: Path) -> None:
    embed = make_embed(emulator, output_dimensionality=768)
    path = str(tmp_path / "chroma")
    with ChromaStore("index-test", path=path, embed_model=embed) as store:
        ingest(sample_corpus_dir(), embed_model=embed, store=store, show_progress=False)
    with ChromaStore("index-test", path=path, embed_model=embed) as store:
        index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
        nodes = index.as_retriever(similarity_top_k=3).retrieve("How much is the Team plan?")
        assert nodes and nodes[0].node.ref_doc_id == "05-pricing.md"
        filters = MetadataFilters(filters=[ExactMatchFilter(key="category", value="support")])
        retriever = VectorIndexRetriever(index, similarity_top_k=3, filters=filters)
        hits = retriever.retrieve("export notes")
        assert hits and {h.node.metadata["category"] for h in hits} == {"support"}


def test_from_documents_into_store_then_ingest_skips_nothing_twice(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Nodes written by plain VectorStoreIndex carry no lige_hash: ingest() replaces them."""
    embed = make_embed(emulator)
    docs = list(documents(3, sentences=2))
    with ChromaStore("mixed-test", path=str(tmp_path / "c"), embed_model=embed) as store:
        VectorStoreIndex.from_documents(
            docs,
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=embed,
        )
        plain = store.count()
        report = ingest(docs, embed_model=embed, store=store, show_progress=False)
        assert report.embedded == 3 and report.deleted == plain
        assert store.count() == 3


@pytest.mark.server
def test_ingest_into_a_chroma_server(emulator: Emulator, chroma_server: Any) -> None:
    embed = make_embed(emulator)
    name = f"server-ingest-{os.getpid()}-{time.monotonic_ns()}"
    with ChromaStore.from_url(chroma_server.url, collection_name=name) as store:
        report = ingest(sample_corpus_dir(), embed_model=embed, store=store, show_progress=False)
        assert report.ok and store.count() == 10
        again = ingest(sample_corpus_dir(), embed_model=embed, store=store, show_progress=False)
        assert again.skipped == 10 and again.embedded == 0
        store.client.delete_collection(name)
