"""Pure Batch API planning: packing, digests, state schema, coverage, cost, backoff."""

from __future__ import annotations

import doctest
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llama_index_gemini_embed._batch import plan as _batch_plan
from llama_index_gemini_embed._batch.plan import (
    PlanItem,
    batch_cost,
    inline_request_bytes,
    item_digest,
    jsonl_payload,
    next_poll_delay,
    plan_jobs,
)
from llama_index_gemini_embed._batch.state import (
    BatchState,
    BatchStateError,
    JobRecord,
    short_state,
)
from llama_index_gemini_embed._models import model_spec

DOC = "RETRIEVAL_DOCUMENT"
FP: dict[str, str | int | bool] = {
    "model": "gemini-embedding-001",
    "dimension": 768,
    "scheme": "task_type:RETRIEVAL_DOCUMENT",
    "normalised": True,
}


def item(i: int, title: str | None = None, text: str = "some text", task: str = DOC) -> PlanItem:
    return PlanItem(f"k{i}", item_digest(text, task, title), text, task, title, tokens=3)


def test_doctests() -> None:
    result = doctest.testmod(_batch_plan, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0


@given(
    st.lists(st.tuples(st.sampled_from([None, "A", "B"]), st.integers(1, 50)), max_size=60),
    st.integers(1, 7),
    st.integers(0, 3000),
)
def test_every_item_lands_in_one_job_in_order(
    specs: list[tuple[str | None, int]], per_job: int, inline_limit: int
) -> None:
    items = [item(i, title, "x" * size) for i, (title, size) in enumerate(specs)]
    jobs = list(
        plan_jobs(items, dimension=768, max_items_per_job=per_job, max_inline_bytes=inline_limit)
    )
    assert [it for job in jobs for it in job.items] == items
    for job in jobs:
        assert 1 <= len(job.items) <= per_job
        configs = {(it.task_type, it.title) for it in job.items}
        if job.mode == "inline":
            assert configs == {(job.task_type, job.title)}
            assert sum(inline_request_bytes(it, 768) for it in job.items) <= inline_limit
        else:
            assert job.task_type is None and job.title is None


def test_file_size_cap_splits_jobs() -> None:
    items = [item(i, f"T{i}", "y" * 100) for i in range(10)]
    jobs = list(
        plan_jobs(
            items, dimension=None, max_items_per_job=100, max_inline_bytes=0, max_file_bytes=400
        )
    )
    assert len(jobs) > 1 and all(len(jsonl_payload(j.items, None)) <= 400 for j in jobs)
    big = [item(0, None, "z" * 1000)]
    (alone,) = plan_jobs(
        big, dimension=None, max_items_per_job=5, max_inline_bytes=0, max_file_bytes=10
    )
    assert alone.items == tuple(big)
    with pytest.raises(ValueError):
        list(plan_jobs(items, dimension=None, max_items_per_job=0, max_inline_bytes=1))


def test_jsonl_lines_carry_their_own_config() -> None:
    lines = jsonl_payload([item(1, "Title"), item(2, None, task="RETRIEVAL_QUERY")], 256)
    first, second = (json.loads(line) for line in lines.splitlines())
    assert first == {
        "key": "k1",
        "request": {
            "content": {"parts": [{"text": "some text"}]},
            "task_type": DOC,
            "title": "Title",
            "output_dimensionality": 256,
        },
    }
    assert "title" not in second["request"] and second["request"]["task_type"] == "RETRIEVAL_QUERY"
    assert inline_request_bytes(item(3, None, "é"), None) > inline_request_bytes(
        item(3, None, "e"), None
    )  # the SDK escapes non-ASCII


def test_state_round_trip_and_setup_check() -> None:
    record = JobRecord(
        "gemini-embed-x-0001", "file", [("a", "d1", 5), ("b", "d2", 7)], name="batches/1"
    )
    record.state, record.input_file = "RUNNING", "files/in"
    state = BatchState("gemini-embedding-001", 768, dict(FP), [record])
    loaded = BatchState.from_json(json.loads(json.dumps(state.to_json())), path="p")
    assert loaded == state and loaded.jobs[0].tokens == 12
    state.check_setup("gemini-embedding-001", 768, FP, path="p")
    with pytest.raises(BatchStateError, match="dimension: file=768 vs now=1536") as exc:
        state.check_setup("gemini-embedding-001", 1536, {**FP, "dimension": 1536}, path="p")
    assert "1 unfinished job" in str(exc.value) and "batch cancel --state p" in str(exc.value)
    empty = BatchState("gemini-embedding-001", 768, dict(FP))
    empty.check_setup("gemini-embedding-2", 3072, {}, path="p")  # nothing to lose
    bad = state.to_json()
    bad["jobs"][0]["mode"] = "carrier-pigeon"
    with pytest.raises(BatchStateError, match="damaged"):
        BatchState.from_json(bad, path="p")


def test_short_states_cost_and_backoff() -> None:
    from google.genai import types

    assert short_state(types.JobState.JOB_STATE_EXPIRED) == "EXPIRED"
    assert short_state("JOB_STATE_PARTIALLY_SUCCEEDED") == "PARTIALLY_SUCCEEDED"
    cost = batch_cost(1_000_000, model_spec("gemini-embedding-001"))
    assert cost.batch_usd == pytest.approx(0.075) and cost.online_usd == pytest.approx(0.15)
    assert cost.saving_usd == pytest.approx(cost.batch_usd)  # half price
    delays = [10.0]
    for _ in range(5):
        delays.append(next_poll_delay(delays[-1], maximum=120.0))
    assert delays == [10.0, 20.0, 40.0, 80.0, 120.0, 120.0]
    assert item_digest("t", DOC, None) != item_digest("t", "RETRIEVAL_QUERY", None)
