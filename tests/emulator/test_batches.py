"""The emulator's Gemini Batch API (embeddings) and Files API, driven by the real SDK."""

from __future__ import annotations

import io
import json
import urllib.request
import warnings
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from llama_index_gemini_embed.emulator import Emulator, embed_text

E1 = "gemini-embedding-001"
E2 = "gemini-embedding-2"


def inline_job(c: genai.Client, texts: list[str], model: str = E1, **cfg: Any) -> types.BatchJob:
    contents: Any = list(texts)
    if model != E1:  # one Content per text, as for the online -2 path
        contents = [types.Content(parts=[types.Part(text=t)]) for t in texts]
    return c.batches.create_embeddings(
        model=model,
        src=types.EmbeddingsBatchJobSource(
            inlined_requests=types.EmbedContentBatch(
                contents=contents, config=types.EmbedContentConfig(**cfg)
            )
        ),
        config={"display_name": "ingest-1"},
    )


def states(c: genai.Client, name: str, n: int) -> list[types.JobState | None]:
    return [c.batches.get(name=name).state for _ in range(n)]


def post_raw(emu: Emulator, path: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(
        emu.base_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "x-goog-api-key": emu.api_key},
    )
    with urllib.request.urlopen(req) as resp:
        return resp.status, json.loads(resp.read())


def test_inline_batch_runs_through_the_state_machine(
    emulator: Emulator, client: genai.Client
) -> None:
    texts = ["doc one", "doc two", "doc three"]
    job = inline_job(client, texts, task_type="RETRIEVAL_DOCUMENT", output_dimensionality=768)
    assert job.name is not None and job.name.startswith("batches/")
    assert job.state == types.JobState.JOB_STATE_PENDING and job.display_name == "ingest-1"
    assert job.model == f"models/{E1}"
    body = emulator.requests[-1].body
    assert emulator.requests[-1].path == f"/v1/models/{E1}:asyncBatchEmbedContent"
    assert len(body["batch"]["inputConfig"]["requests"]["requests"]) == 3
    got = [client.batches.get(name=job.name) for _ in range(2)]
    assert [g.state for g in got] == [
        types.JobState.JOB_STATE_RUNNING,
        types.JobState.JOB_STATE_SUCCEEDED,
    ]
    done = got[-1]
    assert done.done and done.dest is not None and done.end_time is not None
    responses = done.dest.inlined_embed_content_responses or []
    batch_vectors = [
        r.response.embedding.values for r in responses if r.response and r.response.embedding
    ]
    online = client.models.embed_content(
        model=E1,
        contents=list(texts),  # type: ignore[arg-type]
        config={"task_type": "RETRIEVAL_DOCUMENT", "output_dimensionality": 768},
    )
    assert online.embeddings is not None
    assert batch_vectors == [e.values for e in online.embeddings]
    assert batch_vectors[0] == embed_text("doc one", task_type="RETRIEVAL_DOCUMENT", dimension=768)
    c = emulator.counters
    assert c.batch_jobs_created == 1 and c.batch_items == 3
    assert c.embed_items == 3  # only the online call counts as interactive usage


def test_batch_for_embedding_2_matches_online_vectors(client: genai.Client) -> None:
    texts = ["task: search result | query: jaguar", "title: none | text: jaguar facts"]
    job = inline_job(client, texts, model=E2, output_dimensionality=256)
    assert job.name is not None
    job = [client.batches.get(name=job.name) for _ in range(2)][-1]
    assert job.dest is not None
    got = [
        r.response.embedding.values
        for r in job.dest.inlined_embed_content_responses or []
        if r.response and r.response.embedding
    ]
    assert got == [embed_text(t, model=E2, dimension=256) for t in texts]


async def test_async_batch_and_custom_progress(emulator: Emulator) -> None:
    emulator.set_batch_behaviour(polls_until_running=2, polls_until_done=4)
    c = genai.Client(
        api_key=emulator.api_key, http_options=types.HttpOptions(base_url=emulator.base_url)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = await c.aio.batches.create_embeddings(
            model=E1,
            src=types.EmbeddingsBatchJobSource(
                inlined_requests=types.EmbedContentBatch(contents=["a", "b"])
            ),
        )
        assert job.name is not None
        seen = [(await c.aio.batches.get(name=job.name)).state for _ in range(5)]
    s = types.JobState
    assert seen == [
        s.JOB_STATE_PENDING,
        s.JOB_STATE_RUNNING,
        s.JOB_STATE_RUNNING,
        s.JOB_STATE_SUCCEEDED,
        s.JOB_STATE_SUCCEEDED,
    ]
    await c.aio.aclose()
    c.close()


@pytest.mark.parametrize(
    ("final", "expected"),
    [("FAILED", types.JobState.JOB_STATE_FAILED), ("EXPIRED", types.JobState.JOB_STATE_EXPIRED)],
)
def test_failed_and_expired_jobs(
    emulator: Emulator, client: genai.Client, final: str, expected: types.JobState
) -> None:
    emulator.set_batch_behaviour(polls_until_done=1, final_state=final)
    job = inline_job(client, ["x"])
    assert job.name is not None
    job = client.batches.get(name=job.name)
    assert job.state == expected and job.done and job.dest is None


def test_file_input_and_responses_file(emulator: Emulator, client: genai.Client) -> None:
    lines = [
        {
            "key": "request_1",
            "request": {
                "output_dimensionality": 512,
                "content": {"parts": [{"text": "Explain GenAI"}]},
            },
        },
        {
            "key": "request_2",
            "request": {
                "taskType": "RETRIEVAL_QUERY",
                "content": {"parts": [{"text": "What is RAG?"}]},
            },
        },
        {"key": "bad_task", "request": {"taskType": "NOPE", "content": {"parts": [{"text": "x"}]}}},
    ]
    data = ("\n".join(json.dumps(x) for x in lines) + "\n").encode() + b"not json\n"
    f = client.files.upload(
        file=io.BytesIO(data),
        config={"mime_type": "application/jsonl", "display_name": "emb.jsonl"},
    )
    assert f.name is not None and f.state == types.FileState.ACTIVE
    assert f.size_bytes == len(data) and f.display_name == "emb.jsonl"
    assert client.files.get(name=f.name).mime_type == "application/jsonl"
    job = client.batches.create_embeddings(
        model=E1, src=types.EmbeddingsBatchJobSource(file_name=f.name)
    )
    assert job.name is not None
    assert emulator.requests[-1].body["batch"]["inputConfig"]["file_name"] == f.name
    job = [client.batches.get(name=job.name) for _ in range(2)][-1]
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    assert job.dest is not None and job.dest.file_name is not None
    out = [json.loads(line) for line in client.files.download(file=job.dest.file_name).splitlines()]
    assert [o["key"] for o in out] == ["request_1", "request_2", "bad_task", "3"]
    assert out[0]["response"]["embedding"]["values"] == embed_text("Explain GenAI", dimension=512)
    assert out[1]["response"]["embedding"]["values"] == embed_text(
        "What is RAG?", task_type="RETRIEVAL_QUERY"
    )
    assert out[2]["error"]["code"] == 3 and "task_type" in out[2]["error"]["message"]
    assert out[3]["error"]["code"] == 3
    generated = client.files.get(name=job.dest.file_name)
    assert generated.source == types.FileSource.GENERATED and generated.download_uri
    assert {x.name for x in client.files.list()} == {f.name, job.dest.file_name}
    client.files.delete(name=f.name)
    with pytest.raises(errors.ClientError):
        client.files.get(name=f.name)


def test_item_errors_keys_and_batch_stats(emulator: Emulator) -> None:
    emulator.set_batch_behaviour(polls_until_done=1, item_error_keys={"k1"}, item_error_rate=0.0)
    reqs = [
        {"request": {"content": {"parts": [{"text": f"t{i}"}]}}, "metadata": {"key": f"k{i}"}}
        for i in range(3)
    ]
    reqs.append({"request": {"content": {"parts": [{"text": ""}]}}, "metadata": {"key": "empty"}})
    status, op = post_raw(
        emulator,
        f"/v1beta/models/{E1}:asyncBatchEmbedContent",
        {"batch": {"input_config": {"requests": {"requests": reqs}}, "display_name": "raw"}},
    )
    assert status == 200 and op["metadata"]["state"] == "BATCH_STATE_PENDING"
    assert op["metadata"]["batchStats"] == {"requestCount": "4", "pendingRequestCount": "4"}
    with urllib.request.urlopen(
        urllib.request.Request(
            emulator.base_url + f"/v1beta/{op['name']}",
            headers={"x-goog-api-key": emulator.api_key},
        )
    ) as resp:
        done = json.loads(resp.read())
    assert done["done"] is True
    meta = done["metadata"]
    assert meta["batchStats"] == {
        "requestCount": "4",
        "successfulRequestCount": "2",
        "failedRequestCount": "2",
    }
    items = meta["output"]["inlinedResponses"]["inlinedResponses"]
    assert [i["metadata"]["key"] for i in items] == ["k0", "k1", "k2", "empty"]
    assert items[0]["response"]["embedding"]["values"] == embed_text("t0")
    assert items[1]["error"]["code"] == 13 and items[3]["error"]["code"] == 3


def test_item_error_rate_is_seeded(emulator: Emulator, client: genai.Client) -> None:
    def failures(seed: int) -> list[bool]:
        emulator.set_batch_behaviour(polls_until_done=1, item_error_rate=0.5, seed=seed)
        job = inline_job(client, [f"text {i}" for i in range(20)])
        assert job.name is not None
        job = client.batches.get(name=job.name)
        assert job.dest is not None
        return [r.error is not None for r in job.dest.inlined_embed_content_responses or []]

    first = failures(5)
    assert first == failures(5) and any(first) and not all(first)
    assert failures(6) != first


def test_cancel_delete_list_and_unknown(emulator: Emulator, client: genai.Client) -> None:
    job = inline_job(client, ["a"])
    other = inline_job(client, ["b"])
    assert job.name is not None and other.name is not None
    client.batches.cancel(name=job.name)
    cancelled = client.batches.get(name=job.name)
    assert cancelled.state == types.JobState.JOB_STATE_CANCELLED and cancelled.done
    assert {j.name for j in client.batches.list()} == {job.name, other.name}
    client.batches.delete(name=other.name)
    with pytest.raises(errors.ClientError) as exc:
        client.batches.get(name=other.name)
    assert exc.value.code == 404
    with pytest.raises(errors.ClientError) as exc:
        client.batches.create_embeddings(
            model="xyz",
            src=types.EmbeddingsBatchJobSource(
                inlined_requests=types.EmbedContentBatch(contents=["a"])
            ),
        )
    assert exc.value.code == 404 and "asyncBatchEmbedContent" in (exc.value.message or "")


def test_chunked_resumable_upload_protocol(emulator: Emulator) -> None:
    start = urllib.request.Request(
        emulator.base_url + "/upload/v1beta/files",
        data=json.dumps({"file": {"display_name": "chunks.jsonl"}}).encode(),
        method="POST",
        headers={
            "x-goog-api-key": emulator.api_key,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": "10",
            "X-Goog-Upload-Header-Content-Type": "application/jsonl",
        },
    )
    with urllib.request.urlopen(start) as resp:
        url = resp.headers["x-goog-upload-url"]
        assert resp.headers["x-goog-upload-status"] == "active"
    assert url.startswith(emulator.base_url + "/upload/v1beta/files?upload_id=")

    def chunk(data: bytes, offset: int, command: str) -> Any:
        req = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)},
        )
        return urllib.request.urlopen(req)

    with chunk(b"hello", 0, "upload") as resp:
        assert resp.headers["x-goog-upload-status"] == "active"
    with chunk(b"world", 5, "upload, finalize") as resp:
        assert resp.headers["x-goog-upload-status"] == "final"
        info = json.loads(resp.read())["file"]
    assert info["sizeBytes"] == "10" and info["state"] == "ACTIVE"
    assert info["mimeType"] == "application/jsonl"
    c = genai.Client(
        api_key=emulator.api_key, http_options=types.HttpOptions(base_url=emulator.base_url)
    )
    assert c.files.download(file=info["name"]) == b"helloworld"
    c.close()
