"""BatchEmbedder: the Gemini Batch API path, through the real SDK against the emulator.

Time is fake: ``sleep`` only advances a counter, so polling backoff never really waits.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from google.genai import errors as genai_errors
from google.genai import types

from llama_index_gemini_embed import BatchOptions, GeminiEmbedding
from llama_index_gemini_embed._batch.jobs import (
    BatchEmbedder,
    BatchRunReport,
    BatchStateError,
    JobStatus,
    estimate_batch_cost,
)
from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._errors import ConfigurationError
from llama_index_gemini_embed._tasks import wire_text
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator._tokens import count_tokens as emulator_count_tokens
from tests.fakes import FakeTime

E1 = "gemini-embedding-001"
E2 = "gemini-embedding-2"
DOC = "RETRIEVAL_DOCUMENT"


class Sink:
    """An ``on_vectors`` that records what was delivered (only calls that returned)."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.vectors: dict[str, list[float]] = {}
        self.deliveries: Counter[str] = Counter()
        self.calls = 0
        self.fail_on_call = fail_on_call

    async def __call__(self, pairs: list[tuple[str, list[float]]]) -> None:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("store went away")
        for key, vector in pairs:
            self.vectors[key] = vector
            self.deliveries[key] += 1


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def model(emu: Emulator, fake: FakeTime, name: str = E1, **kwargs: Any) -> GeminiEmbedding:
    return GeminiEmbedding(
        model_name=name,
        api_key=emu.api_key,
        base_url=emu.base_url,
        clock=fake.clock,
        sleep=fake.sleep,
        **kwargs,
    )


def batcher(embed: GeminiEmbedding, path: Path, fake: FakeTime, **options: Any) -> BatchEmbedder:
    return BatchEmbedder(
        embed, path, options=BatchOptions(**options), sleep=fake.sleep, clock=fake.clock
    )


def corpus(n: int = 5, *, titles: bool = False, prefix: str = "doc") -> list[tuple[str, TextSpec]]:
    return [
        (
            f"{prefix}{i}#0",
            TextSpec(
                f"{prefix} {i}: jaguars run fast in text {i}", DOC, f"Title {i}" if titles else None
            ),
        )
        for i in range(n)
    ]


def state_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def created_requests(emu: Emulator) -> list[dict[str, Any]]:
    return [
        r.body
        for r in emu.requests
        if r.path.endswith(":asyncBatchEmbedContent") and r.status == 200 and r.body is not None
    ]


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def assert_all_delivered_once(sink: Sink, items: list[tuple[str, TextSpec]]) -> None:
    assert set(sink.deliveries) == {key for key, _ in items}
    assert set(sink.deliveries.values()) == {1}


# ----------------------------------------------------------------------------- happy paths


async def test_inline_job_walks_the_state_machine_with_backoff(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    emulator.set_batch_behaviour(polls_until_running=2, polls_until_done=4)
    events: list[JobStatus] = []
    embed = model(emulator, fake, output_dimensionality=768)
    batch = batcher(embed, tmp_path / "state.json", fake, on_event=events.append)
    items = corpus(5)
    sink = Sink()
    report = await batch.run(items, sink)

    assert [e.state for e in events] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert report.polls == 4 and fake.sleeps == [10.0, 20.0, 40.0]
    assert report.jobs_submitted == 1 and report.jobs_succeeded == 1
    assert report.embedded_batch == 5 and report.embedded_online == 0 and report.ok
    assert report.wall_seconds == 70.0
    (body,) = created_requests(emulator)
    inline = body["batch"]["inputConfig"]["requests"]["requests"]
    assert [r["request"]["taskType"] for r in inline] == [DOC] * 5
    assert all(r["request"]["outputDimensionality"] == 768 for r in inline)
    assert_all_delivered_once(sink, items)
    assert all(abs(norm(v) - 1.0) < 1e-9 and len(v) == 768 for v in sink.vectors.values())
    assert emulator.counters.embed_items == 0  # nothing went through the online endpoint
    assert state_json(tmp_path / "state.json")["jobs"] == []


async def test_titles_or_a_small_inline_limit_use_a_jsonl_file(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    embed = model(emulator, fake, output_dimensionality=768)
    titled = corpus(4, titles=True)
    sink = Sink()
    report = await batcher(embed, tmp_path / "a.json", fake).run(titled, sink)
    (body,) = created_requests(emulator)
    file_name = body["batch"]["inputConfig"]["file_name"]
    assert file_name.startswith("files/") and report.embedded_batch == 4
    uploads = [r for r in emulator.requests if r.path.startswith("/upload/")]
    assert uploads, "the JSONL went through the Files API"
    # The input file is deleted once the job is consumed (Files API storage is capped).
    assert file_name.removeprefix("files/") not in emulator.state.files
    assert_all_delivered_once(sink, titled)

    plain = corpus(3, prefix="p")
    report = await batcher(embed, tmp_path / "b.json", fake, max_inline_bytes=10).run(plain, sink)
    assert "file_name" in created_requests(emulator)[-1]["batch"]["inputConfig"]
    assert report.embedded_batch == 3


async def test_jobs_are_split_by_size_and_mixed_modes_work(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    embed = model(emulator, fake, output_dimensionality=256)
    items = [*corpus(4), *corpus(3, titles=True, prefix="t")]
    sink = Sink(fail_on_call=None)
    batch = batcher(embed, tmp_path / "s.json", fake, max_items_per_job=3, deliver_batch_size=2)
    report = await batch.run(items, sink)
    modes = ["file_name" in b["batch"]["inputConfig"] for b in created_requests(emulator)]
    assert modes == [False, True, False]  # one config: inline; mixed: file; one title: inline
    assert report.jobs_submitted == 3 and report.delivered == 7
    assert sink.calls == 5  # at most deliver_batch_size pairs per call: 2+1, 2+1, 1
    assert_all_delivered_once(sink, items)


@pytest.mark.parametrize(
    ("name", "dimension", "titles"),
    [(E1, 768, True), (E1, 768, False), (E1, None, True), (E2, 768, True), (E2, None, False)],
)
async def test_batch_vectors_equal_online_vectors(
    emulator: Emulator,
    fake: FakeTime,
    tmp_path: Path,
    name: str,
    dimension: int | None,
    titles: bool,
) -> None:
    embed = model(emulator, fake, name, output_dimensionality=dimension)
    items = corpus(6, titles=titles)
    items.append(("query#0", TextSpec("what do jaguars eat?", "RETRIEVAL_QUERY")))
    sink = Sink()
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, sink)
    assert report.embedded_batch == len(items) and report.ok
    online = await embed.engine.embed([spec for _, spec in items])
    for (key, _), expected in zip(items, online, strict=True):
        got = sink.vectors[key]
        assert len(got) == len(expected) == embed.dimension
        assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-7
    if name == E2:  # task intent travels as the text prefix, exactly like online
        texts = [
            r["request"]["content"]["parts"][0]["text"]
            for r in created_requests(emulator)[0]["batch"]["inputConfig"]["requests"]["requests"]
        ]
        assert texts[0] == wire_text(items[0][1].text, DOC, items[0][1].title, prefixes=True)


# ----------------------------------------------------------------------------- resume


async def test_crash_in_on_vectors_then_resume_reattaches_without_paying_again(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    items = corpus(5)
    first = batcher(model(emulator, fake), path, fake, max_items_per_job=2)
    with pytest.raises(RuntimeError, match="store went away"):
        await first.run(items, Sink(fail_on_call=1))
    assert emulator.counters.batch_jobs_created == 3
    saved = state_json(path)["jobs"]
    assert len(saved) == 3 and all(job["name"].startswith("batches/") for job in saved)

    # `batch cancel` keeps a job that already succeeded: its results are paid for.
    second = batcher(model(emulator, fake), path, fake, max_items_per_job=2)
    statuses = await second.cancel([saved[0]["name"]])
    assert [s.state for s in statuses] == ["SUCCEEDED"] and len(state_json(path)["jobs"]) == 3

    sink = Sink()
    report = await second.run(items, sink)
    assert emulator.counters.batch_jobs_created == 3
    assert report.jobs_reattached == 3 and report.jobs_submitted == 0
    assert report.embedded_batch == 5
    assert_all_delivered_once(sink, items)
    assert state_json(path)["jobs"] == []


async def test_cancelled_task_resumes_and_changed_docs_get_fresh_vectors(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    emulator.set_batch_behaviour(polls_until_done=3)
    path = tmp_path / "state.json"
    items = corpus(4)
    polling = asyncio.Event()

    async def stall(seconds: float) -> None:
        polling.set()
        await asyncio.Future()  # never returns: the task is cancelled here

    first = BatchEmbedder(model(emulator, fake), path, sleep=stall, clock=fake.clock)
    task = asyncio.create_task(first.run(items, Sink()))
    await polling.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert emulator.counters.batch_jobs_created == 1

    # Meanwhile doc1 changed, doc3 was deleted and doc9 is new.
    changed = TextSpec("doc 1: rewritten text about leopards", DOC)
    items2 = [items[0], ("doc1#0", changed), items[2], ("doc9#0", TextSpec("brand new", DOC))]
    sink = Sink()
    embed = model(emulator, fake)
    report = await batcher(embed, path, fake).run(items2, sink)
    assert emulator.counters.batch_jobs_created == 2  # only doc1 (changed) and doc9 (new)
    assert report.jobs_reattached == 1 and report.jobs_submitted == 1
    assert report.stale_results == 2  # old doc1 and deleted doc3 results are ignored
    assert_all_delivered_once(sink, items2)
    fresh = await embed.engine.embed([changed])
    assert sink.vectors["doc1#0"] == pytest.approx(fresh[0], abs=1e-12)


async def test_a_create_whose_answer_was_lost_is_found_by_display_name(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    """A crash between writing the record and hearing back from create costs nothing."""
    path = tmp_path / "state.json"
    embed = model(emulator, fake)
    items = corpus(2)
    batch = batcher(embed, path, fake)
    # Write a state as a crashed run would: two SUBMITTING records, one really created.
    plan = _plan_item(embed, *items[0])
    data = batch.load_state().to_json()
    data["jobs"] = [
        {
            "name": None,
            "display_name": name,
            "mode": "inline",
            "state": "SUBMITTING",
            "keys": [[plan.key, plan.digest, plan.tokens]],
        }
        for name in ("gemini-embed-lost-0001", "gemini-embed-never-created")
    ]
    path.write_text(json.dumps(data))
    await embed.client.aio.batches.create_embeddings(
        model=E1,
        src=types.EmbeddingsBatchJobSource(
            inlined_requests=types.EmbedContentBatch(
                contents=[items[0][1].text], config=types.EmbedContentConfig(task_type=DOC)
            )
        ),
        config={"display_name": "gemini-embed-lost-0001"},
    )
    sink = Sink()
    report = await batcher(embed, path, fake).run(items, sink)
    assert report.jobs_reattached == 1 and report.jobs_submitted == 1
    assert emulator.counters.batch_jobs_created == 2  # the lost one + one for doc1
    assert_all_delivered_once(sink, items)


async def test_a_retried_create_never_pays_twice(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job was created but the answer was lost (503): the retry finds it by name."""
    embed = model(emulator, fake)
    batches = embed.client.aio.batches
    real = batches.create_embeddings
    calls = 0

    async def answer_lost_once(**kwargs: Any) -> types.BatchJob:
        nonlocal calls
        calls += 1
        job = await real(**kwargs)
        if calls == 1:
            body = {"error": {"code": 503, "message": "lost", "status": "UNAVAILABLE"}}
            raise genai_errors.ServerError(503, body)
        return job

    monkeypatch.setattr(batches, "create_embeddings", answer_lost_once)
    items = corpus(3)
    sink = Sink()
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, sink)
    assert calls == 1 and emulator.counters.batch_jobs_created == 1
    assert report.jobs_submitted == 1 and len(fake.sleeps) >= 1  # one retry backoff
    assert_all_delivered_once(sink, items)


def _plan_item(embed: GeminiEmbedding, key: str, spec: TextSpec) -> Any:
    from llama_index_gemini_embed._batch.plan import PlanItem, item_digest

    item = next(embed.engine.prepare_items([spec]))
    digest = item_digest(item.text, item.task_type, item.title)
    return PlanItem(key, digest, item.text, item.task_type, item.title, item.tokens)


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("titles", [False, True], ids=["inline", "file"])
async def test_per_item_errors_are_retried_online(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, titles: bool
) -> None:
    items = corpus(4, titles=titles)
    # Inline requests carry no key: the emulator names them by position.
    emulator.set_batch_behaviour(item_error_keys={"doc1#0"} if titles else {"1"})
    embed = model(emulator, fake, output_dimensionality=768)
    sink = Sink()
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, sink)
    assert report.item_errors == 1 and report.embedded_online == 1
    assert report.embedded_batch == 3 and report.ok
    assert report.online_tokens > 0 and "retried online" in report.errors[0]
    assert emulator.counters.embed_items == 1
    assert_all_delivered_once(sink, items)
    online = await embed.engine.embed([items[1][1]])
    assert sink.vectors["doc1#0"] == pytest.approx(online[0], abs=1e-12)


@pytest.mark.parametrize("final", ["FAILED", "EXPIRED"])
async def test_failed_and_expired_jobs_are_reported_then_resubmitted(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, final: str
) -> None:
    emulator.set_batch_behaviour(polls_until_done=1, final_state=final)
    path = tmp_path / "s.json"
    items = corpus(3)
    report = await batcher(model(emulator, fake), path, fake).run(items, Sink())
    assert (report.jobs_failed, report.jobs_expired) == ((1, 0) if final == "FAILED" else (0, 1))
    assert sorted(f.key for f in report.failures) == sorted(k for k, _ in items)
    assert report.failures[0].error == f"BatchJob{final.title()}"
    assert final in report.errors[0] and "resubmitted on the next run" in report.errors[0]
    assert not report.ok and report.delivered == 0
    assert state_json(path)["jobs"] == []

    emulator.set_batch_behaviour(polls_until_done=1)
    sink = Sink()
    report = await batcher(model(emulator, fake), path, fake).run(items, sink)
    assert emulator.counters.batch_jobs_created == 2 and report.ok
    assert_all_delivered_once(sink, items)


async def test_fallback_online_embeds_a_failed_jobs_items_at_once(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    emulator.set_batch_behaviour(polls_until_done=1, final_state="EXPIRED")
    items = corpus(3)
    sink = Sink()
    batch = batcher(model(emulator, fake), tmp_path / "s.json", fake, fallback_online=True)
    report = await batch.run(items, sink)
    assert report.jobs_expired == 1 and report.embedded_online == 3 and report.ok
    assert "embedding them online now" in report.errors[0]
    assert report.batch_tokens == 0 and report.online_cost_usd > 0
    assert_all_delivered_once(sink, items)


async def test_a_job_the_api_forgot_is_reported_missing(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    emulator.set_batch_behaviour(polls_until_done=5)
    path = tmp_path / "s.json"
    embed = model(emulator, fake)
    await batcher(embed, path, fake).run(corpus(2), Sink(), wait=False)
    (job,) = state_json(path)["jobs"]
    await embed.client.aio.batches.delete(name=job["name"])
    report = await batcher(embed, path, fake).run(corpus(2), Sink())
    assert report.jobs_failed == 1 and "MISSING" in report.errors[0]
    assert len(report.failures) == 2 and state_json(path)["jobs"] == []


# ----------------------------------------------------------------------------- CLI helpers


async def test_status_cancel_and_rerun(emulator: Emulator, fake: FakeTime, tmp_path: Path) -> None:
    emulator.set_batch_behaviour(polls_until_done=10)
    path = tmp_path / "s.json"
    items = corpus(3)
    batch = batcher(model(emulator, fake), path, fake)
    report = await batch.run(items, Sink(), wait=False)
    assert report.jobs_pending == 1 and sorted(report.pending_keys) == sorted(k for k, _ in items)
    assert fake.sleeps == [] and "Run again later" in report.summary()

    (status,) = await batch.status()
    assert status.state == "RUNNING" and status.items == 3 and status.mode == "inline"
    assert status.name is not None and status.created and "RUNNING" in status.line()
    with pytest.raises(ConfigurationError, match="batches/nope"):
        await batch.cancel(["batches/nope"])
    (cancelled,) = await batch.cancel()
    assert cancelled.state == "CANCELLED"
    assert state_json(path)["jobs"] == [] and await batch.status() == []

    emulator.set_batch_behaviour()
    sink = Sink()
    report = await batch.run(items, sink)
    assert report.jobs_submitted == 1 and emulator.counters.batch_jobs_created == 2
    assert_all_delivered_once(sink, items)


async def test_max_wait_returns_with_pending_keys(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    emulator.set_batch_behaviour(polls_until_done=6)
    path = tmp_path / "s.json"
    report = await batcher(model(emulator, fake), path, fake).run(corpus(2), Sink(), max_wait=35)
    assert fake.sleeps == [10.0, 20.0] and report.polls == 3
    assert report.jobs_pending == 1 and len(report.pending_keys) == 2
    assert len(state_json(path)["jobs"]) == 1


async def test_state_file_of_another_setup_is_refused(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    emulator.set_batch_behaviour(polls_until_done=10)
    path = tmp_path / "s.json"
    await batcher(model(emulator, fake, output_dimensionality=768), path, fake).run(
        corpus(2), Sink(), wait=False
    )
    for other in (model(emulator, fake, E2, output_dimensionality=768), model(emulator, fake)):
        with pytest.raises(BatchStateError) as exc:
            await batcher(other, path, fake).run(corpus(2), Sink())
        message = str(exc.value)
        assert str(path) in message and "batch cancel" in message
        assert "dimension: file=768 vs now=3072" in message or E2 in message
        assert len(await batcher(other, path, fake).status()) == 1  # status still works
    assert emulator.counters.batch_jobs_created == 1

    # Once its jobs are finished, the file holds nothing to lose: another setup may reuse it.
    await batcher(model(emulator, fake), path, fake).cancel()
    emulator.set_batch_behaviour(polls_until_done=1)
    report = await batcher(model(emulator, fake, E2), path, fake).run(corpus(1), Sink())
    assert report.ok and state_json(path)["model"] == E2


def test_damaged_or_foreign_state_files_are_refused(emulator: Emulator, tmp_path: Path) -> None:
    embed = GeminiEmbedding(api_key=emulator.api_key, base_url=emulator.base_url)
    path = tmp_path / "s.json"
    batch = BatchEmbedder(embed, path)
    assert batch.load_state().jobs == []
    for content, match in [
        ("{nope", "not valid JSON"),
        ('{"kind": "something else"}', "not a gemini-embed batch state file"),
        (
            '{"kind": "llama-index-gemini-embed/batch-state", "schema": 99}',
            "schema version 99",
        ),
        (
            '{"kind": "llama-index-gemini-embed/batch-state", "schema": 1, "model": "m"}',
            "damaged",
        ),
    ]:
        path.write_text(content)
        with pytest.raises(BatchStateError, match=match):
            batch.load_state()


async def test_cost_and_saving_in_the_report(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    items = corpus(6)
    report = await batcher(model(emulator, fake), tmp_path / "s.json", fake).run(items, Sink())
    # The report uses each result's tokenCount: the emulator's own count of what was sent.
    tokens = sum(emulator_count_tokens(spec.text) for _, spec in items)
    assert report.batch_tokens == tokens
    assert report.batch_cost_usd == pytest.approx(tokens * 0.075 / 1e6)
    assert report.online_equivalent_usd == pytest.approx(2 * report.batch_cost_usd)
    assert report.saving_usd == pytest.approx(report.batch_cost_usd)
    assert report.cost_usd == pytest.approx(report.batch_cost_usd)
    data = report.to_dict()
    assert data["saving_usd"] == report.saving_usd and data["ok"] is True
    assert "saved $" in report.summary()
    assert estimate_batch_cost(1_000_000, E2) == pytest.approx(
        {"batch_usd": 0.10, "online_usd": 0.20, "saving_usd": 0.10}
    )


async def test_bad_inputs(emulator: Emulator, fake: FakeTime, tmp_path: Path) -> None:
    batch = batcher(model(emulator, fake), tmp_path / "s.json", fake)
    with pytest.raises(ConfigurationError, match="appears twice"):
        await batch.run([*corpus(1), *corpus(1)], Sink())
    sink = Sink()
    report: BatchRunReport = await batch.run([*corpus(1), ("blank", TextSpec("  ", DOC))], sink)
    assert [f.key for f in report.failures] == ["blank"]
    assert report.failures[0].error == "EmptyTextError" and report.embedded_batch == 1
    assert report.requested == 2 and not report.ok
    with pytest.raises(ConfigurationError, match=r"BatchOptions\(poll_initial=0\)"):
        BatchOptions(poll_initial=0)


async def test_files_fall_back_to_sync_calls_in_a_thread(
    emulator: Emulator, fake: FakeTime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older SDKs lack some ``client.aio.files`` methods: the sync ones run in a thread."""
    embed = model(emulator, fake)
    aio_files = type(embed.client.aio.files)
    for method in ("upload", "download", "delete"):
        monkeypatch.delattr(aio_files, method)
    items = corpus(3, titles=True)
    sink = Sink()
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, sink)
    assert report.embedded_batch == 3
    assert_all_delivered_once(sink, items)


async def test_the_state_file_is_written_atomically(
    emulator: Emulator, fake: FakeTime, tmp_path: Path
) -> None:
    emulator.set_batch_behaviour(polls_until_done=10)
    path = tmp_path / "nested" / "s.json"
    embed = model(emulator, fake, output_dimensionality=768)
    await batcher(embed, path, fake).run(corpus(2), Sink(), wait=False)
    data = state_json(path)
    assert data["kind"] == "llama-index-gemini-embed/batch-state" and data["schema"] == 1
    assert data["model"] == E1 and data["dimension"] == 768
    assert data["fingerprint"] == embed.fingerprint
    (job,) = data["jobs"]
    assert job["state"] == "RUNNING" and job["mode"] == "inline"
    assert [key for key, _, _ in job["keys"]] == ["doc0#0", "doc1#0"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.json"]  # no temp files left
