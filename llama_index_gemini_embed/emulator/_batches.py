"""Gemini Batch API (embeddings) and Files API logic for the emulator.

    job = create_job(state, model="gemini-embedding-001", body=request_body)
    poll(state, job)        # PENDING → RUNNING → SUCCEEDED/FAILED/EXPIRED across GETs
    operation_json(job)     # the Operation the SDK parses into a BatchJob

Results are computed with the same parsing and vector code as the online endpoints, so a
batch embedding equals the online embedding of the same text/task/title/dimension.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Mapping
from typing import Any

import orjson

from ._protocol import ApiError, bad_request, compute_vectors, parse_embed_item, pick
from ._state import BatchJob, EmulatorState, FileRecord, rfc3339_now
from ._vectors import Encoder

__all__ = [
    "GRPC_CODES",
    "create_job",
    "file_json",
    "operation_json",
    "parse_jsonl",
    "poll",
    "resolve_file",
]

GRPC_CODES: dict[int, int] = {400: 3, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14, 504: 4}
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch"


# ---------------------------------------------------------------- files
def file_json(
    f: FileRecord, base_url: str, api_version: str, *, generated: bool = False
) -> dict[str, Any]:
    """The File resource as the Files API returns it."""
    out: dict[str, Any] = {
        "name": f.name,
        "mimeType": f.mime_type,
        "sizeBytes": str(len(f.data)),
        "createTime": f.create_time,
        "updateTime": f.create_time,
        "expirationTime": f.create_time,
        "sha256Hash": base64.b64encode(hashlib.sha256(bytes(f.data)).digest()).decode(),
        "uri": f"{base_url}/{api_version}/{f.name}",
        "state": "ACTIVE" if f.active else "PROCESSING",
        "source": "GENERATED" if generated else "UPLOADED",
    }
    if f.display_name:
        out["displayName"] = f.display_name
    if generated:
        out["downloadUri"] = f"{base_url}/download/{api_version}/{f.name}:download?alt=media"
    return out


def parse_jsonl(data: bytes) -> list[tuple[str | None, dict[str, Any] | str]]:
    """Batch input lines ``{"key": …, "request": {…}}``; bad lines become error strings."""
    inputs: list[tuple[str | None, dict[str, Any] | str]] = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            inputs.append((None, f"Invalid JSON on line {n}."))
            continue
        if not isinstance(obj, dict):
            inputs.append((None, f"Line {n} is not a JSON object."))
            continue
        key = obj.get("key")
        key = None if key is None else str(key)
        request = obj.get("request")
        if not isinstance(request, dict):
            inputs.append((key, f"Line {n} has no 'request' object."))
            continue
        inputs.append((key, request))
    return inputs


def resolve_file(state: EmulatorState, uri: str) -> tuple[str, bytes]:
    """``fileData.fileUri`` (``…/files/ID`` or ``files/ID``) → (MIME type, bytes)."""
    file_id = uri.rstrip("/").rsplit("/files/", 1)[-1].removeprefix("files/")
    with state.lock:
        f = state.files.get(file_id)
    if f is None:
        raise ApiError(
            403, f"You do not have permission to access the File {file_id} or it may not exist."
        )
    if not f.active:
        # Seen when a just-uploaded video is used before it is ACTIVE (python-genai#864).
        raise ApiError(
            400,
            f"The File {file_id} is not in an ACTIVE state and usage is not allowed.",
            status="FAILED_PRECONDITION",
        )
    return f.mime_type, bytes(f.data)


# ---------------------------------------------------------------- jobs
def create_job(
    state: EmulatorState, *, model: str, body: Mapping[str, Any], api_version: str
) -> BatchJob:
    """Validate an ``asyncBatchEmbedContent`` body and register a PENDING job."""
    batch = pick(body, "batch")
    if not isinstance(batch, Mapping):
        raise bad_request("* EmbedContentBatch: batch is required.\n", "batch")
    cfg = pick(batch, "inputConfig")
    if not isinstance(cfg, Mapping):
        raise bad_request("* EmbedContentBatch.input_config: input_config is required.\n")
    file_name = pick(cfg, "fileName")
    inline = pick(cfg, "requests")
    if (file_name is None) == (inline is None):
        raise bad_request(
            "* EmbedContentBatch.input_config: exactly one of requests or file_name is required.\n"
        )
    inputs: list[tuple[str | None, dict[str, Any] | str]] = []
    if inline is not None:
        items = pick(inline, "requests") if isinstance(inline, Mapping) else None
        if not isinstance(items, list) or not items:
            raise bad_request("* EmbedContentBatch.input_config.requests: requests is empty.\n")
        for i, entry in enumerate(items):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("request"), dict):
                raise bad_request(
                    f"* EmbedContentBatch.input_config.requests.requests[{i}].request: "
                    "request is required.\n"
                )
            meta = entry.get("metadata")
            key = meta.get("key") if isinstance(meta, Mapping) else None
            inputs.append((None if key is None else str(key), entry["request"]))
    else:
        if not isinstance(file_name, str):
            raise bad_request("Invalid value at 'batch.input_config.file_name'.")
        file_id = file_name.removeprefix("files/")
        with state.lock:
            f = state.files.get(file_id)
        if f is None or not f.complete:
            raise ApiError(404, f"File {file_name} not found or not ready.")
        inputs = parse_jsonl(bytes(f.data))
        if not inputs:
            raise bad_request(f"The input file {file_name} contains no requests.")
    now = rfc3339_now()
    job = BatchJob(
        id=state.next_id("emb"),
        model=model,
        display_name=pick(batch, "displayName"),
        inputs=inputs,
        file_input=file_name if isinstance(file_name, str) else None,
        behaviour=state.new_behaviour(),
        create_time=now,
        update_time=now,
        stats={"requestCount": str(len(inputs)), "pendingRequestCount": str(len(inputs))},
    )
    with state.lock:
        state.batches[job.id] = job
    state.count("batch_jobs_created")
    state.count("batch_items", len(inputs))
    return job


def _finish(job: BatchJob, state_name: str) -> None:
    job.state = f"BATCH_STATE_{state_name}"
    job.end_time = job.update_time = rfc3339_now()


def poll(
    state: EmulatorState,
    job: BatchJob,
    *,
    encoder: Encoder | None,
    strict_length: bool,
    api_version: str,
) -> None:
    """One GET of the job: advance its state machine (and compute results when it succeeds)."""
    if job.done:
        if job.held_output is not None:
            job.polls += 1
            if job.polls >= job.behaviour.polls_until_done + job.behaviour.results_lag_polls:
                job.output, job.held_output = job.held_output, None
        return
    job.polls += 1
    b = job.behaviour
    if job.polls >= b.polls_until_done:
        if b.final_state == "SUCCEEDED":
            _run(state, job, encoder=encoder, strict_length=strict_length, api_version=api_version)
            _finish(job, "SUCCEEDED")
            if b.results_lag_polls > 0:
                job.held_output, job.output = job.output, None
        elif b.final_state == "FAILED":
            job.error = {"code": 13, "message": "Batch job failed: internal error (emulated)."}
            job.stats = {"requestCount": str(len(job.inputs)), "failedRequestCount": "0"}
            _finish(job, "FAILED")
        else:
            _finish(job, "EXPIRED")
    elif job.polls >= b.polls_until_running and job.state == "BATCH_STATE_PENDING":
        job.state = "BATCH_STATE_RUNNING"
        job.update_time = rfc3339_now()


def cancel(job: BatchJob) -> None:
    """Cancel a job that has not finished yet."""
    if not job.done:
        _finish(job, "CANCELLED")


def _run(
    state: EmulatorState,
    job: BatchJob,
    *,
    encoder: Encoder | None,
    strict_length: bool,
    api_version: str,
) -> None:
    b = job.behaviour
    rng = random.Random(b.seed)
    results: list[dict[str, Any]] = [{} for _ in job.inputs]
    ok_idx: list[int] = []
    parsed = []
    for i, (key, request) in enumerate(job.inputs):
        if isinstance(request, str):
            results[i] = {"error": {"code": 3, "message": request}}
            continue
        injected = (key if key is not None else str(i)) in b.item_error_keys
        if b.item_error_rate > 0 and rng.random() < b.item_error_rate:
            injected = True
        if injected:
            results[i] = {"error": {"code": 13, "message": "Internal error encountered."}}
            continue
        try:
            item = parse_embed_item(
                request,
                where=f"EmbedContentBatch.requests[{i}].request",
                field_path=f"requests[{i}].request",
                url_model=job.model,
                api_version=api_version,
                vertex=False,
                strict_length=strict_length,
                resolve_file=lambda uri: resolve_file(state, uri),
            )
        except ApiError as err:
            results[i] = {"error": {"code": GRPC_CODES.get(err.code, 2), "message": err.message}}
            continue
        ok_idx.append(i)
        parsed.append(item)
    plain = [p.item for p in parsed]
    vectors = compute_vectors(plain, job.model, encoder) if plain else []
    for i, p, vec in zip(ok_idx, parsed, vectors, strict=True):
        # tokenCount is an int64, which proto JSON writes as a string (cookbook Batch_mode).
        results[i] = {"response": {"tokenCount": str(p.tokens), "embedding": {"values": vec}}}
    failed = len(job.inputs) - len(ok_idx)
    job.stats = {
        "requestCount": str(len(job.inputs)),
        "successfulRequestCount": str(len(ok_idx)),
        "failedRequestCount": str(failed),
    }
    mode = b.answer_mode
    if mode == "auto":
        inline = len(job.inputs) <= b.inline_answer_max_items
    elif mode == "submitted":
        inline = job.file_input is None
    else:
        inline = mode == "inline"
    if inline:
        inlined = []
        for (key, _), res in zip(job.inputs, results, strict=True):
            entry = dict(res)
            if key is not None:
                entry["metadata"] = {"key": key}
            inlined.append(entry)
        job.output = {"inlinedResponses": {"inlinedResponses": inlined}}
        return
    lines = []
    for i, ((key, _), res) in enumerate(zip(job.inputs, results, strict=True)):
        if b.item_error_form == "status" and "error" in res:
            res = {"status": res["error"]}
        lines.append(
            orjson.dumps(
                {"key": key if key is not None else str(i), **res},
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
        )
    out = FileRecord(
        id=f"batch-{job.id}",
        display_name=f"{job.name} responses",
        mime_type="application/jsonl",
        data=bytearray(b"\n".join(lines) + b"\n"),
        expected_size=None,
        create_time=rfc3339_now(),
        complete=True,
    )
    with state.lock:
        state.files[out.id] = out
        state.generated_files.add(out.id)
    job.output = {"responsesFile": out.name}


def operation_json(job: BatchJob) -> dict[str, Any]:
    """The long-running Operation for ``job`` (``metadata`` is the EmbedContentBatch)."""
    meta: dict[str, Any] = {
        "@type": BATCH_TYPE,
        "model": f"models/{job.model}",
        "name": job.name,
        "state": job.state,
        "createTime": job.create_time,
        "updateTime": job.update_time,
        "batchStats": dict(job.stats),
    }
    if job.display_name:
        meta["displayName"] = job.display_name
    if job.end_time:
        meta["endTime"] = job.end_time
    if job.output is not None:
        meta["output"] = job.output
    op: dict[str, Any] = {"name": job.name, "metadata": meta}
    if job.done:
        op["done"] = True
    if job.error is not None:
        op["error"] = job.error
    return op
