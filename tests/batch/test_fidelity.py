"""The Batch API path against what the real service does (issue 13 §3): never pay twice.

Real SDK against the emulator over loopback, using its documented fault modes (results
lagging behind SUCCEEDED, answers in the other form, ``status`` error lines, a refused JSONL
MIME type). The one behaviour it cannot produce, the SDK's own ``KeyError`` on an odd
answer, is raised from the *SDK* call on the client instance (never our code), as
``test_jobs.test_a_retried_create_never_pays_twice`` does for a lost answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import types

from llama_index_gemini_embed._batch.api import BATCH_API_VERSION, BatchAPI
from llama_index_gemini_embed._batch.plan import (
    MAX_INLINE_RESPONSE_BYTES,
    PlanItem,
    expected_result_bytes,
    plan_jobs,
)
from llama_index_gemini_embed._batch.results import inline_results, parse_results_file
from llama_index_gemini_embed._errors import UnexpectedAnswerError
from llama_index_gemini_embed.emulator import Emulator
from tests.batch.test_jobs import (
    Sink,
    assert_all_delivered_once,
    batcher,
    corpus,
    created_requests,
    model,
    state_json,
)
from tests.fakes import FakeTime

BATCH_PATHS = ("batches", "files", ":asyncBatchEmbedContent")


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def batch_paths(emu: Emulator) -> list[str]:
    return [r.path for r in emu.requests if any(part in r.path for part in BATCH_PATHS)]


# ----------------------------------------------------------------------------- API version


@pytest.mark.parametrize("titles", [False, True], ids=["inline", "file"])
async def test_batch_and_files_calls_use_v1beta_unless_the_user_sets_a_version(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, titles: bool
) -> None:
    """SDK 3.x defaults to v1; Google documents the Batch and Files APIs on v1beta."""
    assert BATCH_API_VERSION == "v1beta"
    items = corpus(3, titles=titles)
    report = await batcher(model(emulator, fake), tmp_path / "a.json", fake).run(items, Sink())
    assert report.ok
    paths = batch_paths(emulator)
    assert len(paths) >= 3  # create + get (+ upload, download, delete for a file job)
    assert all("/v1beta/" in path for path in paths), paths
    if titles:
        assert any(p.startswith("/upload/v1beta/files") for p in paths)
        assert any(p.endswith(":download") for p in paths)

    emulator.reset_counters()
    embed = model(emulator, fake, api_version="v1alpha")
    report = await batcher(embed, tmp_path / "b.json", fake).run(items, Sink())
    assert report.ok
    # google-genai 2.x hard-codes the upload route to upload/v1beta/files (files.py).
    sdk_2 = genai.__version__.startswith("2.")
    assert all(
        "/v1alpha/" in path or (sdk_2 and path.startswith("/upload/v1beta/files"))
        for path in batch_paths(emulator)
    )


# ----------------------------------------------------------------------------- late results


@pytest.mark.parametrize("titles", [False, True], ids=["inline", "file"])
async def test_results_lagging_behind_succeeded_are_awaited_not_paid_twice(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, titles: bool
) -> None:
    # GET 2 sees SUCCEEDED, but the output appears only 3 GETs later.
    emulator.set_batch_behaviour(polls_until_done=2, results_lag_polls=3)
    embed = model(emulator, fake, output_dimensionality=768)
    items = corpus(4, titles=titles)
    sink = Sink()
    path = tmp_path / "s.json"
    report = await batcher(embed, path, fake).run(items, sink)

    assert report.embedded_batch == 4 and report.embedded_online == 0 and report.ok
    assert emulator.counters.embed_items == 0  # nothing was paid a second time online
    assert report.jobs_results_missing == 0 and report.errors == []
    assert report.polls == 5 and fake.sleeps == [10.0, 20.0, 40.0, 80.0]  # backoff
    assert_all_delivered_once(sink, items)
    assert state_json(path)["jobs"] == []


async def test_results_that_never_appear_are_embedded_online_after_the_timeout(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    emulator.set_batch_behaviour(polls_until_done=1, results_lag_polls=1_000)
    embed = model(emulator, fake)
    items = corpus(3)
    path = tmp_path / "s.json"

    # One pass (--no-wait): the job stays, nothing is paid online.
    report = await batcher(embed, path, fake, results_timeout=300).run(items, Sink(), wait=False)
    assert report.jobs_pending == 1 and len(report.pending_keys) == 3
    assert report.embedded_online == 0 and emulator.counters.embed_items == 0
    (job,) = state_json(path)["jobs"]
    assert job["state"] == "SUCCEEDED" and job["absent_polls"] == 1

    # Waiting: re-polled with backoff for results_timeout, then proven absent.
    sink = Sink()
    started = fake.now
    report = await batcher(embed, path, fake, results_timeout=300).run(items, sink)
    assert fake.now - started >= 300 and fake.sleeps == [10.0, 20.0, 40.0, 80.0, 120.0, 120.0]
    assert report.jobs_results_missing == 1 and report.embedded_online == 3 and report.ok
    assert emulator.counters.embed_items == 3
    (message,) = report.errors
    assert "results never appeared" in message and "embedded online at full price" in message
    assert "results_timeout=300s" in message
    assert state_json(path)["jobs"] == []
    assert_all_delivered_once(sink, items)


# ----------------------------------------------------------------------------- result forms


@pytest.mark.parametrize(
    ("titles", "answer_mode"),
    [(True, "inline"), (False, "file"), (True, "auto"), (False, "auto")],
    ids=["file-job-answered-inline", "inline-job-answered-with-a-file", "auto-file", "auto-inline"],
)
async def test_results_are_read_in_whichever_form_arrives(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, titles: bool, answer_mode: str
) -> None:
    """A small file job may come back inline, a large inline job as a results file."""
    emulator.set_batch_behaviour(answer_mode=answer_mode, inline_answer_max_items=3)
    embed = model(emulator, fake, output_dimensionality=768)
    items = corpus(5, titles=titles)  # 5 items > 3: "auto" answers with a file
    sink = Sink()
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, sink)
    assert report.embedded_batch == 5 and report.embedded_online == 0 and report.ok
    assert emulator.counters.embed_items == 0 and report.errors == []
    assert_all_delivered_once(sink, items)
    online = await embed.engine.embed([spec for _, spec in items])
    for (key, _), expected in zip(items, online, strict=True):
        assert sink.vectors[key] == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("titles", [False, True], ids=["inline", "file"])
async def test_per_item_errors_in_the_status_form_are_read_and_retried_online(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, titles: bool
) -> None:
    emulator.set_batch_behaviour(
        item_error_keys={"doc2#0"} if titles else {"2"}, item_error_form="status"
    )
    items = corpus(4, titles=titles)
    sink = Sink()
    report = await batcher(model(emulator, fake), tmp_path / "s.json", fake).run(items, sink)
    assert report.item_errors == 1 and report.embedded_online == 1 and report.ok
    assert "13: Internal error encountered." in report.errors[0]
    assert_all_delivered_once(sink, items)


# ----------------------------------------------------------------------------- sizing


def items_of(n: int) -> list[PlanItem]:
    return [PlanItem(f"k{i}", "d", "some text", "RETRIEVAL_DOCUMENT", None, 3) for i in range(n)]


def test_inline_jobs_are_sized_by_their_expected_results() -> None:
    def modes(n: int, dimension: int) -> list[str]:
        return [
            job.mode
            for job in plan_jobs(
                items_of(n),
                dimension=dimension,
                max_items_per_job=10_000,
                max_inline_bytes=19_000_000,
                result_dimension=dimension,
            )
        ]

    # A 10,000-item 768-d job would answer ~124 MB inline: it goes through a file instead.
    assert expected_result_bytes(10_000, 768) > 100_000_000
    assert modes(10_000, 768) == ["file"]
    assert modes(1_000, 768) == ["inline"]
    assert expected_result_bytes(400, 3072) <= MAX_INLINE_RESPONSE_BYTES
    assert modes(400, 3072) == ["inline"] and modes(500, 3072) == ["file"]


async def test_a_small_inline_response_cap_sends_the_job_as_a_file(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    embed = model(emulator, fake, output_dimensionality=768)
    batch = batcher(embed, tmp_path / "s.json", fake, max_inline_response_bytes=20_000)
    sink = Sink()
    items = corpus(3)  # 3 x 768-d ~ 37 KB of results > 20 KB
    report = await batch.run(items, sink)
    assert "file_name" in created_requests(emulator)[0]["batch"]["inputConfig"]
    assert report.embedded_batch == 3
    assert_all_delivered_once(sink, items)


def test_status_and_download_timeouts_are_sized_to_the_results(emulator: Emulator) -> None:
    embed = model(emulator, FakeTime(), output_dimensionality=768, timeout=30.0)
    api = BatchAPI(embed, max_inline_response_bytes=MAX_INLINE_RESPONSE_BYTES)
    small = api.http_options(0)
    assert small.api_version == "v1beta" and small.timeout is None  # the client's 30 s
    big = api.http_options(expected_result_bytes(10_000, 768))
    assert big.timeout is not None and big.timeout >= (60 + 124) * 1000  # >= 1 MB/s


# ----------------------------------------------------------------------------- JSONL upload


def refuse_jsonl_with_keyerror(embed: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SDK's ``KeyError: 'file'`` when the upload answers 200 without a file
    (python-genai#1590): the emulator cannot answer that, so the SDK call raises it."""
    files = embed.client.aio.files
    real = files.upload
    tried: list[str] = []

    async def upload(**kwargs: Any) -> types.File:
        tried.append(kwargs["config"].mime_type)
        if kwargs["config"].mime_type == "application/jsonl":
            raise KeyError("file")
        result: types.File = await real(**kwargs)
        return result

    monkeypatch.setattr(files, "upload", upload)
    return tried


@pytest.mark.parametrize("how", ["400", "keyerror"])
async def test_jsonl_upload_falls_back_to_a_mime_type_the_service_accepts(
    emulator: Emulator,
    fake: FakeTime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    embed = model(emulator, fake)
    if how == "400":
        emulator.set_upload_behaviour(refuse_mime_types={"application/jsonl"})
    else:
        tried = refuse_jsonl_with_keyerror(embed, monkeypatch)
    items = corpus(3, titles=True)
    sink = Sink()
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, sink)
    assert report.embedded_batch == 3 and report.ok
    assert_all_delivered_once(sink, items)
    if how == "400":
        refused = [
            r for r in emulator.requests if r.path.startswith("/upload/") and r.status == 400
        ]
        assert len(refused) == 1
    else:
        assert tried == ["application/jsonl", "text/plain"]


async def test_a_refused_upload_is_one_clear_error_and_the_next_run_resubmits(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    embed = model(emulator, fake)
    emulator.set_upload_behaviour(refuse_mime_types={"application/jsonl", "text/plain"})
    path = tmp_path / "s.json"
    items = corpus(2, titles=True)
    with pytest.raises(UnexpectedAnswerError) as exc:
        await batcher(embed, path, fake).run(items, Sink())
    message = str(exc.value)
    assert "application/jsonl" in message and "text/plain" in message
    assert "Unsupported MIME type" in message and "\n" not in message
    assert emulator.counters.batch_jobs_created == 0

    emulator.set_upload_behaviour()
    sink = Sink()
    report = await batcher(model(emulator, fake), path, fake).run(items, sink)
    assert report.jobs_submitted == 1 and report.ok
    assert_all_delivered_once(sink, items)


async def test_an_sdk_keyerror_never_escapes_a_batch_call(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embed = model(emulator, fake)
    batches = embed.client.aio.batches

    async def broken(**kwargs: Any) -> types.BatchJob:
        raise KeyError("metadata")

    monkeypatch.setattr(batches, "create_embeddings", broken)
    with pytest.raises(UnexpectedAnswerError, match="could not be read by the google-genai SDK"):
        await batcher(embed, tmp_path / "s.json", fake).run(corpus(2), Sink())


# ----------------------------------------------------------------------------- result forms


def test_results_files_are_read_in_every_documented_form() -> None:
    vector = [0.5] * 128
    lines = [
        {"key": "b", "response": {"tokenCount": "7", "embedding": {"values": vector}}},
        {"key": "a", "status": {"code": 3, "message": "Request contains an invalid argument."}},
        {"key": "c", "error": {"code": 13, "message": "Internal error encountered."}},
        {"key": "zzz", "response": {"embedding": {"values": vector}}},  # not ours: ignored
    ]
    data = b"\n".join(json.dumps(line).encode() for line in lines)
    results = parse_results_file(["a", "b", "c", "d"], data, dimension=128)
    assert results.values["a"] == "3: Request contains an invalid argument."
    assert results.values["b"] == vector and results.tokens == {"b": 7}
    assert results.values["c"] == "13: Internal error encountered."
    assert results.values["d"] == "no line for this key in the responses file"

    # An inline job answered with a file: keys are positions (or absent: line order).
    indexed = [{"key": str(i), "response": {"embedding": {"values": vector}}} for i in (1, 0)]
    data = b"\n".join(json.dumps(line).encode() for line in indexed)
    results = parse_results_file(["p", "q"], data, dimension=128)
    assert results.values == {"p": vector, "q": vector}
    unkeyed = [{"response": {"embedding": {"values": vector}}}, {"error": {"code": 13}}]
    data = b"\n".join(json.dumps(line).encode() for line in unkeyed)
    results = parse_results_file(["p", "q"], data, dimension=128)
    assert results.values["p"] == vector and results.values["q"] == "13: None"


def test_inline_results_map_by_key_when_present_else_by_position() -> None:
    v1, v2 = [0.25] * 128, [0.75] * 128

    def entry(values: list[float], key: str | None = None) -> types.InlinedEmbedContentResponse:
        return types.InlinedEmbedContentResponse(
            response=types.SingleEmbedContentResponse(
                embedding=types.ContentEmbedding(values=values), token_count=4
            ),
            metadata={"key": key} if key else None,
        )

    # A file job answered inline, out of order, with its keys.
    results = inline_results(["a", "b"], [entry(v2, "b"), entry(v1, "a")], dimension=128)
    assert results.values == {"a": v1, "b": v2} and results.tokens == {"a": 4, "b": 4}
    # No keys: by position.
    results = inline_results(["a", "b"], [entry(v1), entry(v2)], dimension=128)
    assert results.values == {"a": v1, "b": v2}
    # A count that cannot be matched: every item errors (retried online), none is guessed.
    results = inline_results(["a", "b"], [entry(v1)], dimension=128)
    assert all("cannot be matched" in str(v) for v in results.values.values())


# ----------------------------------------------------------------------------- titles (issue 14)


async def test_a_thousand_small_titled_documents_cost_one_job_and_one_delivery(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    """Issue 14 goal 1 on the Batch API path: distinct titles do not split the work.

    An inline job carries one config for all its items, so titled items go as a JSONL file
    where each line carries its own title: one job for 1,000 documents, each with its own
    title on the wire, delivered to the store in one write (deliver_batch_size=1000).
    """
    items = corpus(1_000, titles=True)
    sink = Sink()
    embed = model(emulator, fake, output_dimensionality=128)
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, sink)
    assert report.jobs_submitted == 1 and emulator.counters.batch_jobs_created == 1
    assert report.embedded_batch == 1_000 and report.ok
    (job,) = emulator.state.batches.values()
    sent = {key: request for key, request in job.inputs if isinstance(request, dict)}
    assert len(sent) == 1_000
    assert all(sent[f"doc{i}#0"]["title"] == f"Title {i}" for i in range(1_000))
    assert sink.calls == 1  # <= 20 store writes
    assert_all_delivered_once(sink, items)


# ----------------------------------------------------------------------------- media (issue 15)


async def test_media_items_are_never_embedded_as_text_only_by_the_batch_path(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    """The Batch API path carries text only: an item with media goes online (the same
    engine, so the same vector), and the report says so, instead of losing its image."""
    from llama_index_gemini_embed._embedding.engine import TextSpec
    from llama_index_gemini_embed._types import MediaPart
    from llama_index_gemini_embed.emulator.samples import png_with_description

    png = png_with_description("a red bicycle at night")
    picture = TextSpec("holiday", "RETRIEVAL_DOCUMENT", media=(MediaPart("image/png", data=png),))
    items = [*corpus(3), ("photo#0", picture)]
    embed = model(emulator, fake, "gemini-embedding-2", output_dimensionality=768)
    sink = Sink()
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, sink)
    assert report.embedded_batch == 3 and report.embedded_online == 1 and report.ok
    assert any("1 item(s) with media" in line and "online" in line for line in report.errors)
    (job,) = emulator.state.batches.values()
    assert len(job.inputs) == 3  # the picture was not sent as its caption alone
    online = await embed.engine.embed([picture])
    assert sink.vectors["photo#0"] == pytest.approx(online[0], abs=1e-9)
    assert_all_delivered_once(sink, items)


@pytest.mark.parametrize("titles", [False, True], ids=["inline", "file"])
async def test_batches_work_where_v1_does_not_serve_the_batch_and_files_apis(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, titles: bool
) -> None:
    """If /v1 lacks these routes (404, unverified for late 2026), the v1beta pin is what
    keeps batch mode working on SDK 3.x, whose default is v1."""
    emulator.set_v1_behaviour(batches_and_files=False)
    items = corpus(3, titles=titles)
    sink = Sink()
    report = await batcher(model(emulator, fake), tmp_path / "s.json", fake).run(items, sink)
    assert report.ok and report.embedded_batch == 3
    assert not [r for r in emulator.requests if r.status == 404]
    assert_all_delivered_once(sink, items)
