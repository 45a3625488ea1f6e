"""Fault modes reported for the real service (issue 13 §1), driven by the real SDK.

Batch results that lag behind SUCCEEDED or come back in the other form, status-form item
errors, a JSONL upload refused for its MIME type, and 429s that waiting cannot fix.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from llama_index_gemini_embed.emulator import Emulator, Fault, embed_text
from tests.emulator.support import vertex_client

E1 = "gemini-embedding-001"


def inline_job(c: genai.Client, texts: list[str]) -> str:
    job = c.batches.create_embeddings(
        model=E1,
        src=types.EmbeddingsBatchJobSource(
            inlined_requests=types.EmbedContentBatch(contents=list(texts))
        ),
    )
    assert job.name is not None
    return job.name


def file_job(c: genai.Client, texts: list[str], mime_type: str = "application/jsonl") -> str:
    lines = [
        json.dumps({"key": f"k{i}", "request": {"content": {"parts": [{"text": t}]}}})
        for i, t in enumerate(texts)
    ]
    f = c.files.upload(
        file=io.BytesIO(("\n".join(lines) + "\n").encode()), config={"mime_type": mime_type}
    )
    assert f.name is not None
    job = c.batches.create_embeddings(
        model=E1, src=types.EmbeddingsBatchJobSource(file_name=f.name)
    )
    assert job.name is not None
    return job.name


def download(c: genai.Client, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in c.files.download(file=name).splitlines()]


# ---------------------------------------------------------------- batch results
def test_results_appear_some_polls_after_succeeded(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.set_batch_behaviour(polls_until_done=1, results_lag_polls=2)
    name = inline_job(client, ["a b", "c d"])
    seen = [client.batches.get(name=name) for _ in range(4)]
    assert [j.state for j in seen] == [types.JobState.JOB_STATE_SUCCEEDED] * 4
    assert [j.dest is None for j in seen] == [True, True, False, False]
    last = seen[-1].dest
    assert last is not None and last.inlined_embed_content_responses is not None
    got = [
        r.response.embedding.values
        for r in last.inlined_embed_content_responses
        if r.response and r.response.embedding
    ]
    assert got == [embed_text("a b"), embed_text("c d")]


def test_a_file_job_can_answer_inline_with_keys(emulator: Emulator, client: genai.Client) -> None:
    emulator.set_batch_behaviour(polls_until_done=1, answer_mode="inline")
    job = client.batches.get(name=file_job(client, ["first", "second"]))
    assert job.dest is not None and job.dest.file_name is None
    responses = job.dest.inlined_embed_content_responses
    assert responses is not None
    assert [r.metadata for r in responses] == [{"key": "k0"}, {"key": "k1"}]
    assert responses[1].response is not None and responses[1].response.embedding is not None
    assert responses[1].response.embedding.values == embed_text("second")


def test_an_inline_job_can_answer_with_a_results_file(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.set_batch_behaviour(polls_until_done=1, answer_mode="auto", inline_answer_max_items=2)
    small = client.batches.get(name=inline_job(client, ["one", "two"]))
    assert small.dest is not None and small.dest.inlined_embed_content_responses is not None
    big = client.batches.get(name=inline_job(client, ["one", "two", "three"]))
    assert big.dest is not None and big.dest.inlined_embed_content_responses is None
    assert big.dest.file_name is not None
    lines = download(client, big.dest.file_name)
    assert [x["key"] for x in lines] == ["0", "1", "2"]
    assert lines[2]["response"]["embedding"]["values"] == embed_text("three")
    assert lines[2]["response"]["tokenCount"] == "1"


def test_item_errors_in_status_form(emulator: Emulator, client: genai.Client) -> None:
    emulator.set_batch_behaviour(
        polls_until_done=1, item_error_keys={"k1"}, item_error_form="status"
    )
    job = client.batches.get(name=file_job(client, ["fine", "broken"]))
    assert job.dest is not None and job.dest.file_name is not None
    lines = download(client, job.dest.file_name)
    assert "response" in lines[0] and "error" not in lines[1]
    assert lines[1]["key"] == "k1" and lines[1]["status"]["code"] == 13


def test_bad_batch_behaviour_values_are_refused(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="answer_mode must be"):
        emulator.set_batch_behaviour(answer_mode="sometimes")
    with pytest.raises(ValueError, match="item_error_form must be"):
        emulator.set_batch_behaviour(item_error_form="both")


def test_jsonl_upload_refused_for_its_mime_type(emulator: Emulator, client: genai.Client) -> None:
    emulator.set_upload_behaviour(refuse_mime_types={"application/jsonl"})
    with pytest.raises(errors.ClientError) as exc:
        file_job(client, ["x"])
    assert exc.value.code == 400 and exc.value.message == "Unsupported MIME type: application/jsonl"
    name = file_job(client, ["x"], mime_type="text/plain")  # another type still works
    assert name.startswith("batches/")


# ---------------------------------------------------------------- 429s waiting cannot fix
def _detail(exc: errors.APIError, type_suffix: str) -> dict[str, Any]:
    details = exc.details["error"]["details"]
    return next(d for d in details if d["@type"].endswith(type_suffix))


def test_limit_zero_lists_per_minute_and_per_day_ids_together(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.script_faults([Fault.exhausted("limit_zero")])
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E1, contents="a")
    assert exc.value.code == 429 and exc.value.status == "RESOURCE_EXHAUSTED"
    ids = [v["quotaId"] for v in _detail(exc.value, "QuotaFailure")["violations"]]
    assert any("PerMinute" in i for i in ids) and any("PerDay" in i for i in ids)
    assert (exc.value.message or "").count("limit: 0") == 3
    values = {v["quotaValue"] for v in _detail(exc.value, "QuotaFailure")["violations"]}
    assert values == {"0"}


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("spend_cap", "Your billing account has exceeded its monthly spending cap."),
        ("prepay_depleted", "Your prepayment credits are depleted."),
        ("capacity", "No capacity available for model gemini-embedding-001 on the server"),
    ],
)
def test_non_quota_429s(emulator: Emulator, client: genai.Client, reason: Any, words: str) -> None:
    emulator.script_faults([Fault.exhausted(reason)])
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E1, contents="a")
    assert exc.value.code == 429 and (exc.value.message or "").startswith(words)
    details = exc.value.details["error"].get("details", [])
    if reason == "capacity":  # Google's capacity, worth waiting for
        assert _detail(exc.value, "ErrorInfo")["reason"] == "MODEL_CAPACITY_EXHAUSTED"
        assert _detail(exc.value, "RetryInfo")["retryDelay"] == "30s"
    else:  # only the text tells: no QuotaFailure, no RetryInfo
        assert details == []
    assert client.models.embed_content(model=E1, contents="a").embeddings  # next one is fine


def test_an_injected_rate_limit_names_a_real_limit(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.script_faults([Fault.status(429)])
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E1, contents="a")
    assert "limit: 100, model: gemini-embedding-001" in (exc.value.message or "")
    violation = _detail(exc.value, "QuotaFailure")["violations"][0]
    assert violation["quotaValue"] == "100" and "PerMinute" in violation["quotaId"]


def test_unknown_exhausted_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="reason must be one of"):
        Fault.exhausted("tired")  # type: ignore[arg-type]


# ---------------------------------------------------------------- what /v1 may lack
def test_v1_without_batch_and_files_routes(emulator: Emulator) -> None:
    emulator.set_v1_behaviour(batches_and_files=False)
    v1 = genai.Client(
        api_key=emulator.api_key,
        http_options=types.HttpOptions(base_url=emulator.base_url, api_version="v1"),
    )
    with pytest.raises(errors.ClientError) as exc:
        v1.files.upload(file=io.BytesIO(b"{}\n"), config={"mime_type": "text/plain"})
    assert exc.value.code == 404
    with pytest.raises(errors.ClientError) as exc, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inline_job(v1, ["a"])
    assert exc.value.code == 404
    assert v1.models.embed_content(model=E1, contents="a").embeddings  # embeddings stay
    v1.close()
    beta = genai.Client(
        api_key=emulator.api_key,
        http_options=types.HttpOptions(base_url=emulator.base_url, api_version="v1beta"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert inline_job(beta, ["a"]).startswith("batches/")
    beta.close()


def test_v1_generate_refuses_v1beta_only_fields(emulator: Emulator) -> None:
    emulator.set_v1_behaviour(generate_config=False)
    config = types.GenerateContentConfig(
        system_instruction="judge", response_mime_type="application/json"
    )
    for version, ok in (("v1", False), ("v1beta", True)):
        c = genai.Client(
            api_key=emulator.api_key,
            http_options=types.HttpOptions(base_url=emulator.base_url, api_version=version),
        )
        if ok:
            assert c.models.generate_content(
                model="gemini-2.5-flash-lite", contents="hi", config=config
            ).candidates
        else:
            with pytest.raises(errors.ClientError) as exc:
                c.models.generate_content(
                    model="gemini-2.5-flash-lite", contents="hi", config=config
                )
            assert exc.value.code == 400
            assert exc.value.message == (
                "Invalid JSON payload received. "
                'Unknown name "systemInstruction": Cannot find field.'
            )
            plain = c.models.generate_content(model="gemini-2.5-flash-lite", contents="hi")
            assert plain.candidates
        c.close()


def test_vertex_location_without_embedding_models_answers_404(emulator: Emulator) -> None:
    emulator.set_vertex_behaviour(embedding_locations=["us-central1"])
    for location, ok in (("global", False), ("us-central1", True)):
        c = vertex_client(emulator, express=False, location=location)
        if ok:
            assert c.models.embed_content(model=E1, contents="a").embeddings
        else:
            with pytest.raises(errors.ClientError) as exc:
                c.models.embed_content(model=E1, contents="a")
            assert exc.value.code == 404
            assert "projects/proj/locations/global/publishers/google/models/" in (
                exc.value.message or ""
            )
        c.close()
