"""Server mode: the ingest/query/rerank suite against a real ``chroma run`` server gives the
local store's answers; the server going away mid-run is a clean StoreUnavailableError
(CLI exit 5) and the re-run after a restart completes without duplicates; two ingest
processes writing one server collection end with the union and no errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.retrievers import VectorIndexRetriever
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from llama_index_gemini_embed import (
    ChromaStore,
    GeminiEmbedding,
    GeminiReranker,
    IngestReport,
    StoreUnavailableError,
    aingest,
    ingest,
    sample_corpus_dir,
)
from llama_index_gemini_embed._ingest.writer import COALESCE_RECORDS, write_lag
from llama_index_gemini_embed.cli import main
from llama_index_gemini_embed.emulator import Emulator
from tests.chroma_server import ChromaServer, start_chroma
from tests.reliability_support import (
    SECRET,
    Row,
    clean_env,
    cli_command,
    make_embed,
    one_line_error,
    snapshot,
    write_files,
)

pytestmark = pytest.mark.server

BATCH = 10
CONCURRENCY = 2
CHUNK_SIZE = 96


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def splitter() -> SentenceSplitter:
    """The CLI's splitter for ``--chunk-size CHUNK_SIZE`` (overlap capped at half)."""
    return SentenceSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_SIZE // 2)


def reference(source: Any, **kwargs: Any) -> dict[str, Row]:
    """What one uninterrupted in-process run stores (in an in-memory Chroma)."""
    client = chromadb.EphemeralClient(Settings(anonymized_telemetry=False))
    name = unique("ref")
    with Emulator(api_keys=(SECRET,)) as emu, ChromaStore(name, client=client) as store:
        report = ingest(
            source, embed_model=make_embed(emu), store=store, show_progress=False, **kwargs
        )
        assert report.ok
        rows = snapshot(store)
        client.delete_collection(name)
    return rows


def server_rows(url: str, collection: str) -> dict[str, Row]:
    with ChromaStore.from_url(url, collection_name=collection) as store:
        return snapshot(store)


def server_count(url: str, collection: str) -> int:
    """Rows in a server collection (0 if it does not exist yet or cannot be read)."""
    host, port = url.removeprefix("http://").split(":")
    try:
        client = chromadb.HttpClient(
            host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
        )
        return client.get_collection(collection).count()
    except Exception:
        return 0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)  # polling interval, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------- the suite


def suite(store: ChromaStore, emu: Emulator, corpus: Path) -> dict[str, Any]:
    """Ingest, re-run, change, sync, filtered query, rerank: what a user would do."""
    out: dict[str, Any] = {}
    embed = make_embed(emu, output_dimensionality=256)
    first = ingest(corpus, embed_model=embed, store=store, show_progress=False)
    calls = emu.counters.embed_requests
    again = ingest(corpus, embed_model=embed, store=store, show_progress=False)
    out["first"] = (first.ok, first.documents, first.embedded, first.written)
    out["again"] = (again.skipped, again.embedded, emu.counters.embed_requests - calls)
    (corpus / "05-pricing.md").write_text(
        "---\ncategory: billing\n---\n# Plans and pricing\n\nThe Team plan now costs 9 euros "
        "per member per month, billed yearly.\n"
    )
    (corpus / "10-release-notes.txt").unlink()
    changed = ingest(
        corpus, embed_model=embed, store=store, show_progress=False, delete_missing=True
    )
    out["changed"] = (changed.embedded, changed.deleted_documents, changed.skipped)
    out["index"] = sorted(store.get_index())
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    question = "How much does the Team plan cost per month?"
    hits = index.as_retriever(similarity_top_k=4).retrieve(question)
    out["hits"] = [(h.node.node_id, round(h.score or 0.0, 5)) for h in hits]
    billing = VectorIndexRetriever(
        index,
        similarity_top_k=4,
        filters=MetadataFilters(
            filters=[
                MetadataFilter(key="category", value=["billing", "security"], operator="in"),
                MetadataFilter(key="text", value="plan", operator=FilterOperator.TEXT_MATCH),
            ]
        ),
    ).retrieve(question)
    out["filtered"] = [h.node.node_id for h in billing]
    reranker = GeminiReranker(api_key=SECRET, base_url=emu.base_url, top_n=2)
    ranked = reranker.postprocess_nodes(hits, query_str=question)
    out["reranked"] = [(n.node.node_id, n.score) for n in ranked]
    out["text"] = ranked[0].node.get_content()
    return out


def test_ingest_query_rerank_suite_gives_the_same_answers_on_a_server(
    chroma_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results: dict[str, dict[str, Any]] = {}
    name = unique("suite")
    with Emulator(api_keys=(SECRET,)) as emu:
        for backend in ("local", "server"):
            corpus = tmp_path / backend / "corpus"
            corpus.parent.mkdir()
            shutil.copytree(sample_corpus_dir(), corpus)
            if backend == "local":
                store = ChromaStore(name, path=str(tmp_path / "local" / "chroma"))
            else:
                store = ChromaStore.from_url(chroma_server.url, collection_name=name)
            with store:
                results[backend] = suite(store, emu, corpus)
        local, server = results["local"], results["server"]
        assert local["first"] == (True, 10, 10, 10)
        assert local["again"] == (10, 0, 0)  # unchanged: no API call at all
        assert local["changed"] == (1, 1, 8)
        assert "10-release-notes.txt" not in local["index"] and len(local["index"]) == 9
        assert local["hits"][0][0] == "05-pricing.md#0"
        assert set(local["filtered"]) <= {"05-pricing.md#0", "04-security.md#0"}
        assert local["reranked"][0][0] == "05-pricing.md#0" and "9 euros" in local["text"]
        for key in ("first", "again", "changed", "index", "filtered", "reranked", "text"):
            assert server[key] == local[key], key
        assert [i for i, _ in server["hits"]] == [i for i, _ in local["hits"]]
        assert [s for _, s in server["hits"]] == pytest.approx([s for _, s in local["hits"]])

        # The CLI's query (with --rerank) against the server collection.
        code = main(
            [
                *("query", "How much does the Team plan cost per month?"),
                *("--server", chroma_server.url, "--collection", name, "--rerank", "--json"),
                *("--base-url", emu.base_url, "--api-key", SECRET, "--top-k", "2"),
            ]
        )
        out, err = capsys.readouterr()
        assert code == 0 and err == ""
        answers = json.loads(out)
        assert [a["id"] for a in answers] == [i for i, _ in local["reranked"]]
    with ChromaStore.from_url(chroma_server.url, collection_name=name) as store:
        store.client.delete_collection(name)


# ----------------------------------------------------------------------------- outages


def start_ingest(
    corpus: Path, embed: GeminiEmbedding, store: ChromaStore
) -> asyncio.Task[IngestReport]:
    """``aingest`` of ``corpus`` with the CLI's splitter, as a task on the running loop."""
    return asyncio.create_task(
        aingest(
            corpus,
            embed_model=embed,
            store=store,
            transformations=[splitter()],
            show_progress=False,
        )
    )


def stop_when_rows(server: ChromaServer, collection: str, rows: int) -> int:
    """Stop ``server`` (SIGTERM, then SIGKILL) once ``collection`` holds ``rows`` rows."""
    seen = 0

    def enough() -> bool:
        nonlocal seen
        seen = server_count(server.url, collection)
        return seen >= rows

    wait_for(enough, f"{rows} rows on the server")
    server.stop()
    return seen


def test_server_going_away_mid_ingest_then_resume_after_restart(tmp_path: Path) -> None:
    corpus = write_files(tmp_path / "corpus", 20, sentences=40)
    expected = reference(corpus, transformations=[splitter()])
    total = len(expected)
    assert total > 200
    data = tmp_path / "server-data"
    collection = "outage"
    server = start_chroma(data)
    port = server.port
    try:
        with Emulator(api_keys=(SECRET,), latency=0.1) as emu:
            # 1. The Python API: the server stops mid-run -> StoreUnavailableError.
            async def api_run() -> BaseException:
                embed = make_embed(emu, embed_batch_size=BATCH, max_concurrency=CONCURRENCY)
                store = ChromaStore.from_url(server.url, collection_name=collection)
                task = start_ingest(corpus, embed, store)
                await asyncio.to_thread(stop_when_rows, server, collection, total // 4)
                with pytest.raises(StoreUnavailableError) as info:
                    await asyncio.wait_for(task, 60)
                store.close()
                return info.value

            error = asyncio.run(api_run())
            message = str(error)
            assert message.startswith(f"Cannot reach the Chroma server at 127.0.0.1:{port} ")
            assert f"`chroma run --path DIR --host 127.0.0.1 --port {port}`" in message
            assert isinstance(error, StoreUnavailableError)
            report = error.report
            assert report is not None
            assert report.fatal_error_type == "StoreUnavailableError"
            # Every chunk is accounted for: stored, failed, or left for the re-run.
            assert report.embedded + report.failed + report.pending == report.to_embed
            assert "run it again to resume" in " ".join(error.__notes__)
            spent_api = emu.counters.embed_items

            # 2. Restart on the same path and port; the CLI resumes, and the server goes
            # away again mid-run: one line, exit 5.
            server = start_chroma(data, port=port)
            stored_after_api = server_count(server.url, collection)
            assert 0 < stored_after_api < total
            env = clean_env(GEMINI_API_KEY=SECRET)
            command = cli_command(
                *("ingest", str(corpus), "--server", server.url, "--collection", collection),
                *("--base-url", emu.base_url, "--dimension", "128", "--quiet", "--json"),
                *("--chunk-size", str(CHUNK_SIZE), "--batch-size", str(BATCH)),
                *("--concurrency", str(CONCURRENCY), "--max-retries", "0"),
            )
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            try:
                stop_when_rows(
                    server, collection, stored_after_api + (total - stored_after_api) // 3
                )
                out, err = process.communicate(timeout=120)
            finally:
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
            assert process.returncode == 5, err
            assert one_line_error(err).startswith(
                f"Cannot reach the Chroma server at 127.0.0.1:{port} "
            )
            assert json.loads(out)["fatal_error_type"] == "StoreUnavailableError"

            # 3. Restart again: the re-run completes; no duplicates, nothing missing, and
            # the store equals an uninterrupted run's.
            server = start_chroma(data, port=port)
            before_final = server_count(server.url, collection)
            emu.set_latency(0.0)
            final = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=300, check=False
            )
            assert final.returncode == 0, final.stderr
            report_json = json.loads(final.stdout)
            assert report_json["skipped"] == before_final
            assert report_json["embedded"] == total - before_final
            assert server_rows(server.url, collection) == expected
            # What the outages cost: at most the batches in flight at each stop, plus the
            # answered ones still waiting to be written (as many again), plus the write
            # being gathered (under COALESCE_RECORDS chunks): README guarantee 2, per stop.
            bound = 2 * ((2 * CONCURRENCY + 1) * BATCH + COALESCE_RECORDS)
            respent = emu.counters.embed_items - total
            assert 0 <= respent <= bound, (respent, spent_api)
            print(
                f"\noutage: {total} chunks; stored {stored_after_api} then {before_final} "
                f"before the two stops; re-spent {respent} items (bound {bound})"
            )
    finally:
        server.stop()


# ----------------------------------------------------------------------------- two writers


def test_two_ingest_processes_write_one_server_collection(
    chroma_server: Any, tmp_path: Path
) -> None:
    corpus = write_files(tmp_path / "corpus", 60, sentences=20)
    files = sorted(corpus.iterdir())
    first, second = files[:40], files[25:]  # overlapping: 15 files in both
    expected = reference([str(f) for f in files], transformations=[splitter()])
    collection = unique("two-writers")
    with Emulator(api_keys=(SECRET,), latency=0.02) as emu:
        env = clean_env(GEMINI_API_KEY=SECRET)

        def command(paths: list[Path]) -> list[str]:
            return cli_command(
                *("ingest", *map(str, paths), "--server", chroma_server.url),
                *("--collection", collection, "--base-url", emu.base_url),
                *("--dimension", "128", "--chunk-size", str(CHUNK_SIZE), "--quiet", "--json"),
                *("--batch-size", str(BATCH), "--concurrency", str(CONCURRENCY)),
            )

        processes = [
            subprocess.Popen(
                command(part), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for part in (first, second)
        ]
        results = [p.communicate(timeout=300) for p in processes]
        embedded = []
        for process, (out, err) in zip(processes, results, strict=True):
            assert process.returncode == 0, err
            assert err == ""
            report = json.loads(out)
            assert report["ok"] and report["failed"] == 0
            embedded.append(report["embedded"])
        print(f"\ntwo writers: {len(expected)} chunks; embedded {embedded} by each process")
    got = server_rows(chroma_server.url, collection)
    assert got == expected  # the union: every chunk once, same texts, metadata, vectors
    with ChromaStore.from_url(chroma_server.url, collection_name=collection) as store:
        assert store.count() == len(expected)
        store.client.delete_collection(collection)


# ----------------------------------------------------------------------------- payload


def test_a_chunk_too_large_for_one_request_fails_alone_before_it_is_paid_for(
    chroma_server: Any,
) -> None:
    name = unique("payload")
    docs = [Document(id_=f"d{i}", text=f"Ordinary text {i}.") for i in range(5)]
    with (
        Emulator(api_keys=(SECRET,)) as emu,
        ChromaStore.from_url(
            chroma_server.url, collection_name=name, payload_cap_bytes=2**20
        ) as store,
    ):
        embed = make_embed(emu)
        assert ingest(docs, embed_model=embed, store=store, show_progress=False).ok
        before = snapshot(store)
        items = emu.counters.embed_items
        big = Document(id_="big", text="word " * 300_000)  # 1.5 MB in one chunk
        small = Document(id_="small", text="A small neighbour in the same request.")
        report = ingest(
            [big, small], embed_model=embed, store=store, transformations=[], show_progress=False
        )
        assert report.fatal_error is None and report.failed == 1
        [failure] = report.failures
        assert failure.node_id == "big#0" and failure.error_type == "InputError"
        assert failure.message == (
            "this chunk cannot be stored: it needs about 1.4 MiB in one HTTP request, more "
            "than the 1 MiB this store sends per request (chroma run refuses bodies over "
            "40 MiB); split it into smaller chunks"
        )
        assert report.written == 1 and emu.counters.embed_items == items + 1
        after = snapshot(store)
        assert {k: after[k] for k in before} == before and set(after) - set(before) == {"small#0"}
        store.client.delete_collection(name)


def test_requests_keep_going_out_while_a_write_hangs_then_everything_is_stored(
    tmp_path: Path,
) -> None:
    """Writes happen behind the stream: with the server frozen (SIGSTOP) mid-run, answered
    batches queue for the store (up to max_concurrency of them) instead of one hung write
    holding up every request; once it thaws, the run completes, each chunk stored once."""
    # Enough chunks (~290) that the run is still requesting after the first gathered write
    # (up to COALESCE_RECORDS rows) has landed and the server is frozen.
    corpus = write_files(tmp_path / "corpus", 40, sentences=24)
    collection = unique("behind")
    server = start_chroma(tmp_path / "chroma")
    try:
        with Emulator(api_keys=(SECRET,), latency=0.05) as emu:
            # No titles: every request carries a full batch of BATCH chunks.
            embed = make_embed(
                emu, embed_batch_size=BATCH, max_concurrency=CONCURRENCY, title_metadata_keys=[]
            )
            assert write_lag(embed) == CONCURRENCY

            async def run() -> tuple[int, int, int]:
                store = ChromaStore.from_url(server.url, collection_name=collection)
                task = start_ingest(corpus, embed, store)
                rows = 0

                def some_rows() -> bool:
                    nonlocal rows
                    rows = server_count(server.url, collection)
                    return rows >= BATCH

                await asyncio.to_thread(wait_for, some_rows, f"{BATCH} rows on the server")
                os.kill(server.process.pid, signal.SIGSTOP)
                try:
                    # Answered while nothing more can be stored: the hung write's batch,
                    # CONCURRENCY batches queued behind it and one waiting to be queued.
                    # Writing inline, only the hung batch and the other requests in flight
                    # could be: rows + CONCURRENCY x BATCH.
                    want = rows + (2 + CONCURRENCY) * BATCH
                    await asyncio.to_thread(
                        wait_for,
                        lambda: emu.counters.embed_items >= want,
                        f"{want} items answered while the store is frozen at {rows} rows",
                        10,
                    )
                finally:
                    os.kill(server.process.pid, signal.SIGCONT)
                report = await asyncio.wait_for(task, 120)
                assert report.ok, report.failures
                store.close()
                return rows, want, report.nodes

            rows, want, nodes = asyncio.run(run())
            assert rows < want < nodes, (rows, want, nodes)
            assert server_count(server.url, collection) == nodes
            assert emu.counters.embed_items == nodes  # nothing paid twice
    finally:
        server.stop()
