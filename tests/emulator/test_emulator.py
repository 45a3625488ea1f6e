"""The Gemini API emulator, driven by the real google-genai SDK over loopback.

These tests prove the emulator speaks the protocol the SDK expects (paths, bodies, error
envelopes, exception types) and that its vectors, quotas and faults behave as documented.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from llama_index_gemini_embed.emulator import (
    DEFAULT_API_KEY,
    Emulator,
    EncodeRequest,
    Fault,
    QuotaConfig,
    cosine,
    embed_text,
)
from llama_index_gemini_embed.emulator._vectors import count_tokens, truncate_to_tokens
from tests.emulator.support import client_for, vertex_client

E1 = "gemini-embedding-001"
E2 = "gemini-embedding-2"


# ---------------------------------------------------------------- helpers
def raw(
    emu: Emulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = DEFAULT_API_KEY,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A plain HTTP call (no SDK); returns (status, parsed JSON or raw bytes)."""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        hdrs["x-goog-api-key"] = key
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(emu.base_url + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, payload, ctype = resp.status, resp.read(), resp.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        status, payload, ctype = err.code, err.read(), err.headers["Content-Type"]
    if ctype and ctype.startswith("application/json"):
        return status, json.loads(payload)
    return status, payload


def many(texts: Any) -> Any:
    """A list of strings typed for the SDK's invariant ``contents`` parameter."""
    return list(texts)


def values(resp: types.EmbedContentResponse) -> list[list[float]]:
    assert resp.embeddings is not None
    return [list(e.values or []) for e in resp.embeddings]


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


# ---------------------------------------------------------------- happy paths
@pytest.mark.parametrize("version", [None, "v1", "v1beta", "v1alpha"])
def test_sdk_embeddings_match_embed_text_on_every_dev_version(
    emulator: Emulator, version: str | None
) -> None:
    c = client_for(emulator, api_version=version)
    cfg = types.EmbedContentConfig(
        task_type="RETRIEVAL_DOCUMENT", title="T", output_dimensionality=768
    )
    resp = c.models.embed_content(
        model=E1, contents=many(["hello world", "second text"]), config=cfg
    )
    got = values(resp)
    assert got == [
        embed_text("hello world", task_type="RETRIEVAL_DOCUMENT", title="T", dimension=768),
        embed_text("second text", task_type="RETRIEVAL_DOCUMENT", title="T", dimension=768),
    ]
    rec = emulator.requests[-1]
    assert rec.path == f"/{version or 'v1'}/models/{E1}:batchEmbedContents"
    assert rec.status == 200 and rec.items == 2 and rec.model == E1
    assert rec.body["requests"][0]["model"] == f"models/{E1}"
    c.close()


async def test_async_sdk_embeddings(emulator: Emulator) -> None:
    c = client_for(emulator)
    resp = await c.aio.models.embed_content(
        model=E1, contents=many(["alpha beta", "gamma"]), config={"task_type": "RETRIEVAL_QUERY"}
    )
    assert values(resp) == [
        embed_text("alpha beta", task_type="RETRIEVAL_QUERY"),
        embed_text("gamma", task_type="RETRIEVAL_QUERY"),
    ]
    assert len(values(resp)[0]) == 3072
    await c.aio.aclose()
    c.close()


async def test_async_context_manager() -> None:
    async with Emulator() as emu:
        c = client_for(emu)
        resp = await c.aio.models.embed_content(model=E1, contents="x")
        assert values(resp) == [embed_text("x")]
        await c.aio.aclose()


def test_counters_and_request_log(emulator: Emulator, client: genai.Client) -> None:
    client.models.embed_content(model=E1, contents=many(["one two", "three"]))
    client.models.count_tokens(model=E1, contents="count these tokens please")
    c = emulator.counters
    assert c.requests == 2 and c.embed_requests == 1 and c.count_tokens_requests == 1
    assert c.embed_items == 2
    assert c.tokens == count_tokens("one two") + count_tokens("three")
    assert c.status == {200: 2}
    snapshot = emulator.counters
    client.models.embed_content(model=E1, contents="more")
    assert snapshot.embed_items == 2  # a copy, not live
    emulator.reset_counters()
    assert emulator.counters.requests == 0 and emulator.requests == []


def test_raw_embed_content_route_with_query_key_and_snake_case(emulator: Emulator) -> None:
    status, body = raw(
        emulator,
        "POST",
        f"/v1beta/models/{E1}:embedContent?key={DEFAULT_API_KEY}",
        {
            "model": f"models/{E1}",
            "content": {"parts": [{"text": "What is the meaning of life?"}]},
            "task_type": "RETRIEVAL_QUERY",
            "output_dimensionality": 256,
        },
        key=None,
    )
    assert status == 200
    assert body["embedding"]["values"] == embed_text(
        "What is the meaning of life?", task_type="RETRIEVAL_QUERY", dimension=256
    )
    # Items without the optional "model" field are accepted too.
    status, body = raw(
        emulator,
        "POST",
        f"/v1/models/{E1}:batchEmbedContents",
        {"requests": [{"content": {"parts": [{"text": "a"}]}, "taskType": "CLUSTERING"}]},
    )
    assert status == 200
    assert body == {
        "embeddings": [{"values": embed_text("a", task_type="CLUSTERING")}],
        "usageMetadata": {
            "promptTokenCount": 1,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1}],
        },
    }


def test_api_key_is_never_recorded(emulator: Emulator, client: genai.Client) -> None:
    client.models.embed_content(model=E1, contents="secret check")
    raw(emulator, "GET", f"/v1/models?key={DEFAULT_API_KEY}", key=None)
    raw(emulator, "POST", f"/v1/models/{E1}:countTokens?key={DEFAULT_API_KEY}", {"contents": []})
    assert len(emulator.requests) == 3
    assert DEFAULT_API_KEY not in repr(emulator.requests)


def test_models_get_and_list(client: genai.Client) -> None:
    m = client.models.get(model=E1)
    assert m.name == f"models/{E1}" and m.input_token_limit == 2048
    assert m.supported_actions is not None
    assert {"embedContent", "countTokens", "asyncBatchEmbedContent"} <= set(m.supported_actions)
    assert client.models.get(model=E2).input_token_limit == 8192
    flash = client.models.get(model="gemini-2.5-flash-lite")
    assert flash.supported_actions is not None and "generateContent" in flash.supported_actions
    names = [m.name for m in client.models.list(config={"page_size": 2})]
    assert f"models/{E1}" in names and "models/gemini-2.5-flash-lite" in names
    with pytest.raises(errors.ClientError) as exc:
        client.models.get(model="no-such-model")
    assert exc.value.code == 404


def test_count_tokens_uses_the_emulators_own_counter(client: genai.Client) -> None:
    r = client.models.count_tokens(model=E1, contents=many(["one", "two words here"]))
    assert r.total_tokens == count_tokens("one") + count_tokens("two words here") == 4
    r = client.models.count_tokens(model="gemini-2.5-flash-lite", contents="日本語のテキスト")
    assert r.total_tokens == count_tokens("日本語のテキスト") == 8


def test_token_counter_is_its_own_and_not_the_clients_estimate() -> None:
    # Digits and punctuation count one each, like a subword tokenizer that splits digits;
    # the client's estimate (ASCII / 4) says 3 for this date and 3 for "hello world".
    assert count_tokens("2026-12-01") == 10
    assert count_tokens("hello world") == 2
    assert count_tokens("") == 0 and count_tokens(" ") == 1
    rng = np.random.default_rng(3)
    alphabet = [*"abc xyz\t\n.,é日本語9 ", "  "]
    for _ in range(300):  # monotone in the prefix length (truncation depends on it)
        text = "".join(rng.choice(alphabet, size=int(rng.integers(1, 60))))
        counts = [count_tokens(text[:k]) for k in range(1, len(text) + 1)]
        assert counts == sorted(counts)
    long = "word " * 5000
    cut = truncate_to_tokens(long, 2048)
    assert count_tokens(cut) <= 2048 < count_tokens(long[: len(cut) + 1])


# ---------------------------------------------------------------- error envelopes
def test_unknown_model_is_404_with_the_real_message(emulator: Emulator) -> None:
    c = client_for(emulator, api_version="v1beta")
    with pytest.raises(errors.ClientError) as exc:
        c.models.embed_content(model="xyz", contents="a")
    assert exc.value.code == 404 and exc.value.status == "NOT_FOUND"
    assert exc.value.message == (
        "models/xyz is not found for API version v1beta, or is not supported for embedContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )
    # A generation model cannot embed either.
    with pytest.raises(errors.ClientError) as exc:
        c.models.embed_content(model="gemini-2.5-flash", contents="a")
    assert exc.value.code == 404
    c.close()


def test_bad_key_is_400_api_key_invalid(emulator: Emulator) -> None:
    c = client_for(emulator, key="wrong-key")
    with pytest.raises(errors.ClientError) as exc:
        c.models.embed_content(model=E1, contents="a")
    e = exc.value
    assert e.code == 400 and e.status == "INVALID_ARGUMENT"
    assert e.message == "API key not valid. Please pass a valid API key."
    reasons = [d.get("reason") for d in e.details["error"]["details"]]
    assert "API_KEY_INVALID" in reasons
    assert emulator.counters.embed_requests == 0  # refused before the handler


def test_missing_key_is_403_or_configured(emulator: Emulator) -> None:
    status, body = raw(emulator, "GET", "/v1/models", key=None)
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"
    with Emulator(missing_key_status=400) as emu:
        status, body = raw(emu, "GET", "/v1/models", key=None)
        assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"


def test_batch_limit_is_100_with_the_exact_message(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E1, contents=many([f"t{i}" for i in range(101)]))
    assert exc.value.code == 400 and exc.value.status == "INVALID_ARGUMENT"
    assert exc.value.message == (
        "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"
    )
    with pytest.raises(errors.ClientError) as exc:  # the SDK sends {"requests": []} for -001
        client.models.embed_content(model=E1, contents=many([]))
    assert exc.value.code == 400
    ok = client.models.embed_content(model=E1, contents=many([f"t{i}" for i in range(100)]))
    assert len(values(ok)) == 100


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"model": "models/gemini-embedding-2"}, "must match the model in the URL"),
        ({"outputDimensionality": 64}, "output_dimensionality"),
        ({"outputDimensionality": 4096}, "output_dimensionality"),
        ({"taskType": "NOT_A_TASK"}, "Invalid value at 'requests[0].task_type'"),
        ({"content": {"parts": [{"text": ""}]}}, "must not be empty"),
        ({"content": {"parts": []}}, "must not be empty"),
        ({"autoTruncate": True}, 'Unknown name "autoTruncate"'),
    ],
)
def test_invalid_items_are_400(emulator: Emulator, item: dict[str, Any], fragment: str) -> None:
    base = {"model": f"models/{E1}", "content": {"parts": [{"text": "ok"}]}}
    status, body = raw(
        emulator,
        "POST",
        f"/v1beta/models/{E1}:batchEmbedContents",
        {"requests": [{**base, **item}]},
    )
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT" and body["error"]["code"] == 400
    assert fragment in body["error"]["message"]


def test_sdk_surfaces_validation_errors_as_client_error(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E1, contents="a", config={"task_type": "BOGUS"})
    assert exc.value.code == 400
    assert exc.value.message is not None and exc.value.message.startswith(
        "Invalid value at 'requests[0].task_type'"
    )
    with pytest.raises(errors.ClientError):
        client.models.embed_content(model=E1, contents="a", config={"output_dimensionality": 8})


def test_error_bodies_are_json_for_aiohttp(emulator: Emulator) -> None:
    async def go() -> errors.APIError:
        c = client_for(emulator)
        try:
            await c.aio.models.embed_content(model="nope", contents="a")
        except errors.APIError as err:
            return err
        finally:
            await c.aio.aclose()
        raise AssertionError("no error")

    err = asyncio.run(go())
    assert isinstance(err, errors.ClientError) and err.status == "NOT_FOUND"


def test_injected_server_errors_raise_server_error(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.script_faults([Fault.status(500), Fault.status(503), Fault.ok()])
    with pytest.raises(errors.ServerError) as exc:
        client.models.embed_content(model=E1, contents="a")
    assert exc.value.code == 500 and exc.value.status == "INTERNAL"
    with pytest.raises(errors.ServerError) as exc:
        client.models.embed_content(model=E1, contents="a")
    assert exc.value.code == 503 and exc.value.status == "UNAVAILABLE"
    assert values(client.models.embed_content(model=E1, contents="a")) == [embed_text("a")]
    c = emulator.counters
    assert c.faults == {"500": 1, "503": 1} and c.status == {500: 1, 503: 1, 200: 1}
    assert c.embed_items == 1


def _quota_info(err: errors.APIError) -> tuple[str, str | None]:
    details = err.details["error"]["details"]
    quota_id = next(
        d["violations"][0]["quotaId"] for d in details if d["@type"].endswith("QuotaFailure")
    )
    delay = next((d["retryDelay"] for d in details if d["@type"].endswith("RetryInfo")), None)
    return quota_id, delay


def test_injected_429s_look_like_real_quota_errors(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.script_faults([Fault.status(429, retry_delay="2s"), Fault.status(429, daily=True)])
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E1, contents="a")
    assert exc.value.code == 429 and exc.value.status == "RESOURCE_EXHAUSTED"
    assert _quota_info(exc.value) == (
        "EmbedContentRequestsPerMinutePerUserPerProjectPerModel-FreeTier",
        "2s",
    )
    assert "Please retry in 2s." in (exc.value.message or "")
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E1, contents="a")
    assert _quota_info(exc.value)[0] == "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier"
    assert emulator.counters.faults == {"429": 2}


# ---------------------------------------------------------------- vectors
def test_001_is_an_unnormalised_prefix_and_2_is_renormalised(client: genai.Client) -> None:
    full1 = values(client.models.embed_content(model=E1, contents="prefix test"))[0]
    d768 = values(
        client.models.embed_content(
            model=E1, contents="prefix test", config={"output_dimensionality": 768}
        )
    )[0]
    assert abs(norm(full1) - 1.0) < 1e-5
    assert norm(d768) < 0.9
    assert np.allclose(d768, full1[:768], atol=1e-7)

    docs = [types.Content(parts=[types.Part(text="prefix test")])]
    full2 = values(client.models.embed_content(model=E2, contents=docs))[0]
    d2 = values(
        client.models.embed_content(model=E2, contents=docs, config={"output_dimensionality": 768})
    )[0]
    assert abs(norm(full2) - 1.0) < 1e-5 and abs(norm(d2) - 1.0) < 1e-5
    assert cosine(d2, full2[:768]) > 0.9999
    # The two models live in different spaces.
    assert cosine(full1, full2) < 0.5


def test_task_type_moves_001_vectors_a_little(client: genai.Client) -> None:
    def emb(task: str) -> list[float]:
        return values(
            client.models.embed_content(
                model=E1, contents="jaguar speed", config={"task_type": task}
            )
        )[0]

    q, d = emb("RETRIEVAL_QUERY"), emb("RETRIEVAL_DOCUMENT")
    assert q != d
    assert 0.9 <= cosine(q, d) <= 0.98


def test_embedding_2_ignores_task_type_but_honours_prefixes(client: genai.Client) -> None:
    docs = [types.Content(parts=[types.Part(text="jaguar speed")])]
    q = values(
        client.models.embed_content(
            model=E2, contents=docs, config={"task_type": "RETRIEVAL_QUERY"}
        )
    )
    d = values(
        client.models.embed_content(
            model=E2, contents=docs, config={"task_type": "RETRIEVAL_DOCUMENT", "title": "Cats"}
        )
    )
    assert q == d == [embed_text("jaguar speed", model=E2)]

    def emb2(text: str) -> list[float]:
        return values(
            client.models.embed_content(
                model=E2, contents=[types.Content(parts=[types.Part(text=text)])]
            )
        )[0]

    plain = emb2("jaguar speed")
    query = emb2("task: search result | query: jaguar speed")
    doc = emb2("title: none | text: jaguar speed")
    titled = emb2("title: Big cats | text: jaguar speed")
    assert query == embed_text("task: search result | query: jaguar speed", model=E2)
    assert 0.9 <= cosine(query, doc) <= 0.98
    assert 0.9 <= cosine(plain, query) < 0.999
    assert doc != titled and cosine(doc, titled) > 0.85
    # The prefix words themselves are not hashed: two unrelated queries share only the task part.
    other = emb2("task: search result | query: quarterly revenue")
    assert cosine(query, other) < 0.15
    # Each documented task name gives its own direction.
    qa = emb2("task: question answering | query: jaguar speed")
    assert qa != query and cosine(qa, query) > 0.85


def test_list_of_strings_aggregates_for_2_but_contents_do_not(client: genai.Client) -> None:
    merged = values(
        client.models.embed_content(model=E2, contents=many(["red apples", "green pears"]))
    )
    assert len(merged) == 1
    separate = values(
        client.models.embed_content(
            model=E2,
            contents=[
                types.Content(parts=[types.Part(text="red apples")]),
                types.Content(parts=[types.Part(text="green pears")]),
            ],
        )
    )
    assert len(separate) == 2
    assert separate == [embed_text("red apples", model=E2), embed_text("green pears", model=E2)]
    agg = merged[0]
    assert abs(norm(agg) - 1.0) < 1e-5
    assert cosine(agg, separate[0]) > 0.6 and cosine(agg, separate[1]) > 0.6
    # -001 keeps one vector per string.
    assert len(values(client.models.embed_content(model=E1, contents=many(["a b", "c d"])))) == 2


def test_lexical_closeness_and_determinism(emulator: Emulator, client: genai.Client) -> None:
    texts = [
        "The quick brown fox jumps over the lazy dog",
        "A quick brown fox leaped over a sleeping dog",
        "Quarterly revenue grew by twelve percent in Europe",
    ]
    a, b, c = values(client.models.embed_content(model=E1, contents=many(texts)))
    assert cosine(a, b) > cosine(a, c) + 0.3
    with Emulator(seed=99) as other:
        oc = client_for(other)
        assert values(oc.models.embed_content(model=E1, contents=many(texts))) == [a, b, c]
        oc.close()


def test_title_only_counts_for_retrieval_document(client: genai.Client) -> None:
    def emb(cfg: types.EmbedContentConfigDict) -> list[float]:
        return values(client.models.embed_content(model=E1, contents="body text", config=cfg))[0]

    with_title = emb({"task_type": "RETRIEVAL_DOCUMENT", "title": "A title"})
    without = emb({"task_type": "RETRIEVAL_DOCUMENT"})
    assert with_title != without and cosine(with_title, without) > 0.9
    # A title with another task type is refused, as the real API does (js-genai#549).
    with pytest.raises(errors.ClientError) as exc:
        emb({"task_type": "RETRIEVAL_QUERY", "title": "A title"})
    assert exc.value.code == 400 and (exc.value.message or "").startswith(
        "Unable to submit request because the model does not support the title parameter "
        "unless the task_type is RETRIEVAL_DOCUMENT."
    )
    # gemini-embedding-2 ignores both fields instead (the SDK's own tests send them).
    r = client.models.embed_content(
        model=E2, contents="body", config={"task_type": "RETRIEVAL_QUERY", "title": "T"}
    )
    assert values(r)[0] == embed_text("body", model=E2)


def test_over_long_text_is_truncated_silently_or_refused_when_strict(emulator: Emulator) -> None:
    long = " ".join(f"w{chr(97 + i % 26)}" for i in range(3000))  # 3000 tokens > 2048 for -001
    c = client_for(emulator)
    got = values(c.models.embed_content(model=E1, contents=long))[0]
    assert got == embed_text(long)
    assert got == embed_text(truncate_to_tokens(long, 2048))
    assert emulator.counters.truncated_items == 1
    assert emulator.counters.tokens == count_tokens(long)  # tokens as sent
    # gemini-embedding-2 takes up to 8192 tokens: no truncation for this text.
    c.models.embed_content(model=E2, contents=long)
    assert emulator.counters.truncated_items == 1
    c.close()
    with Emulator(strict_length=True) as strict:
        sc = client_for(strict)
        with pytest.raises(errors.ClientError) as exc:
            sc.models.embed_content(model=E1, contents=long)
        assert exc.value.code == 400
        assert "exceeds the maximum number of tokens allowed (2048)" in (exc.value.message or "")
        sc.close()


def test_encoder_hook(emulator: Emulator, client: genai.Client) -> None:
    seen: list[EncodeRequest] = []

    def encoder(req: EncodeRequest) -> list[list[float]]:
        seen.append(req)
        return [[float(len(t)), 1.0] + [0.5] * 3070 for t in req.texts]

    emulator.set_encoder(encoder)
    got = values(
        client.models.embed_content(
            model=E1,
            contents=many(["ab", "abcd"]),
            config={"task_type": "RETRIEVAL_DOCUMENT", "title": "T", "output_dimensionality": 128},
        )
    )
    assert seen[0].texts == ["ab", "abcd"] and seen[0].task_type == "RETRIEVAL_DOCUMENT"
    assert seen[0].titles == ["T", "T"] and seen[0].dimension == 128 and seen[0].model == E1
    full = np.array([2.0, 1.0] + [0.5] * 3070)
    expected = (full / np.linalg.norm(full))[:128].astype(np.float32)
    assert np.allclose(got[0], expected, atol=1e-7)  # -001: unit at full length, then a prefix
    got2 = values(
        client.models.embed_content(
            model=E2,
            contents=[types.Content(parts=[types.Part(text="x")])],
            config={"task_type": "RETRIEVAL_QUERY", "output_dimensionality": 128},
        )
    )
    assert seen[1].task_type is None and seen[1].titles == [None]
    assert abs(norm(got2[0]) - 1.0) < 1e-5  # -2: re-normalised
    emulator.set_encoder(None)
    assert values(client.models.embed_content(model=E1, contents="ab")) == [embed_text("ab")]


# ---------------------------------------------------------------- quotas
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_items_per_minute_counts_items_with_real_retry_delay() -> None:
    clock = FakeClock()
    with Emulator(quota=QuotaConfig(items_per_minute=100), clock=clock) as emu:
        c = client_for(emu)
        c.models.embed_content(model=E1, contents=many([f"a{i}" for i in range(60)]))
        clock.now += 20
        c.models.embed_content(model=E1, contents=many([f"b{i}" for i in range(40)]))
        clock.now += 10
        with pytest.raises(errors.ClientError) as exc:
            c.models.embed_content(model=E1, contents="one more")
        assert exc.value.code == 429 and exc.value.status == "RESOURCE_EXHAUSTED"
        quota_id, delay = _quota_info(exc.value)
        assert quota_id == "EmbedContentRequestsPerMinutePerUserPerProjectPerModel-FreeTier"
        assert delay == "30s"  # the first 60 items leave the window at t+60
        assert "limit: 100, model: gemini-embedding-001" in (exc.value.message or "")
        assert emu.counters.embed_items == 100 and emu.counters.quota == {"minute_items": 1}
        clock.now += 29.5
        with pytest.raises(errors.ClientError) as exc:
            c.models.embed_content(model=E1, contents="still too early")
        assert _quota_info(exc.value)[1] == "0.5s"
        clock.now += 0.5
        c.models.embed_content(model=E1, contents=many([f"c{i}" for i in range(60)]))
        # Another model has its own budget.
        c.models.embed_content(model=E2, contents=[types.Content(parts=[types.Part(text="z")])])
        assert emu.counters.embed_items == 161
        c.close()


def test_tokens_per_minute_quota() -> None:
    clock = FakeClock()
    quota = QuotaConfig(tokens_per_minute=100, window_seconds=10.0)
    with Emulator(quota=quota, clock=clock) as emu:
        c = client_for(emu)
        text = "x" * 300  # 50 tokens
        c.models.embed_content(model=E1, contents=many([text, text]))
        with pytest.raises(errors.ClientError) as exc:
            c.models.embed_content(model=E1, contents="tiny")
        quota_id, delay = _quota_info(exc.value)
        assert quota_id == "EmbedContentInputTokensPerModelPerMinute-FreeTier" and delay == "10s"
        assert emu.counters.tokens == 100 and emu.counters.quota == {"minute_tokens": 1}
        clock.now += 10
        c.models.embed_content(model=E1, contents="tiny")
        c.close()


def test_items_per_day_and_manual_reset() -> None:
    clock = FakeClock()
    quota = QuotaConfig(items_per_minute=1000, items_per_day=150, window_seconds=1.0)
    with Emulator(quota=quota, clock=clock) as emu:
        c = client_for(emu)
        for _ in range(3):
            c.models.embed_content(model=E1, contents=many([f"d{i}" for i in range(50)]))
            clock.now += 2
        with pytest.raises(errors.ClientError) as exc:
            c.models.embed_content(model=E1, contents="over")
        quota_id, delay = _quota_info(exc.value)
        assert quota_id == "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier"
        assert delay == "1434s"  # a day is window * 1440 = 1440 s; 6 s have passed
        emu.reset_daily_quota()
        c.models.embed_content(model=E1, contents="after reset")
        clock.now += 1440
        emu.set_quota(QuotaConfig(items_per_day=1, window_seconds=1.0))
        c.models.embed_content(model=E1, contents="new day")
        with pytest.raises(errors.ClientError):
            c.models.embed_content(model=E1, contents="second of the day")
        assert emu.counters.quota == {"day": 2}
        c.close()


def test_free_tier_preset_rejects_an_oversized_first_minute() -> None:
    with Emulator(quota=QuotaConfig.free_tier(), clock=FakeClock()) as emu:
        c = client_for(emu)
        c.models.embed_content(model=E1, contents=many([f"t{i}" for i in range(100)]))
        with pytest.raises(errors.ClientError) as exc:
            c.models.embed_content(model=E1, contents="101st item")
        assert exc.value.code == 429
        c.close()


# ---------------------------------------------------------------- faults and transport
def _outcomes(emu: Emulator, c: genai.Client, n: int) -> list[int]:
    out = []
    for i in range(n):
        try:
            c.models.embed_content(model=E1, contents=f"req {i}")
            out.append(200)
        except errors.APIError as err:
            out.append(err.code)
    return out


def test_random_faults_are_seeded_and_reproducible(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.set_faults(rate_429=0.2, rate_500=0.2, rate_503=0.1, seed=7)
    first = _outcomes(emulator, client, 40)
    counts = emulator.counters.faults
    emulator.set_faults(rate_429=0.2, rate_500=0.2, rate_503=0.1, seed=7)
    assert _outcomes(emulator, client, 40) == first
    assert {200, 429, 500, 503} <= set(first)
    assert counts == {str(k): first.count(k) for k in (429, 500, 503) if first.count(k)}
    emulator.set_faults(rate_429=0.2, rate_500=0.2, rate_503=0.1, seed=8)
    assert _outcomes(emulator, client, 40) != first
    emulator.clear_faults()
    assert set(_outcomes(emulator, client, 5)) == {200}


def test_dropped_connection_is_a_transport_error_sync(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.script_faults([Fault.drop()])
    with pytest.raises(Exception) as exc:
        client.models.embed_content(model=E1, contents="a")
    assert not isinstance(exc.value, errors.APIError)
    assert type(exc.value).__module__.startswith("httpx")
    assert emulator.counters.faults == {"drop": 1}
    assert emulator.requests[-1].status == 0
    assert values(client.models.embed_content(model=E1, contents="a")) == [embed_text("a")]


async def test_dropped_connection_is_a_transport_error_async(emulator: Emulator) -> None:
    import aiohttp

    # With retry_options set the SDK skips its implicit 1-10 s aiohttp retry.
    c = client_for(emulator, retry=types.HttpRetryOptions(attempts=1))
    emulator.script_faults([Fault.drop()])
    with pytest.raises(aiohttp.ClientError):
        await c.aio.models.embed_content(model=E1, contents="a")
    await c.aio.aclose()
    c.close()


def test_timeout_fault_holds_longer_than_the_client_waits(emulator: Emulator) -> None:
    emulator.set_faults(rate_timeout=1.0, timeout_seconds=30.0)
    c = client_for(emulator, timeout_ms=300)
    start = time.monotonic()
    with pytest.raises(Exception) as exc:
        c.models.embed_content(model=E1, contents="a")
    assert time.monotonic() - start < 5
    assert "timeout" in type(exc.value).__name__.lower() or "Timeout" in repr(exc.value)
    assert emulator.counters.faults == {"timeout": 1}
    c.close()
    # Stopping the emulator does not wait for the held request.


def test_slow_fault_and_latency_delay_but_succeed() -> None:
    with Emulator(latency=0.05) as emu:
        c = client_for(emu)
        emu.script_faults([Fault.slow(0.2)])
        start = time.monotonic()
        assert values(c.models.embed_content(model=E1, contents="a")) == [embed_text("a")]
        assert time.monotonic() - start >= 0.25
        c.close()


async def test_300_concurrent_async_requests_succeed(emulator: Emulator) -> None:
    c = client_for(emulator)
    cfg = types.EmbedContentConfig(output_dimensionality=128)
    results = await asyncio.gather(
        *(
            c.aio.models.embed_content(model=E1, contents=f"text {i}", config=cfg)
            for i in range(300)
        )
    )
    assert all(len(values(r)) == 1 for r in results)
    assert values(results[123]) == [embed_text("text 123", dimension=128)]
    assert emulator.counters.status == {200: 300}
    await c.aio.aclose()
    c.close()


def test_a_100x768_request_is_handled_in_milliseconds(emulator: Emulator) -> None:
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "omicron",
    ]
    body = {
        "requests": [
            {
                "model": f"models/{E1}",
                "content": {
                    "parts": [
                        {"text": " ".join(f"{words[(i * j) % 12]}{j % 97}" for j in range(150))}
                    ]
                },
                "taskType": "RETRIEVAL_DOCUMENT",
                "outputDimensionality": 768,
            }
            for i in range(100)
        ]
    }
    data = json.dumps(body).encode()
    url = emulator.base_url + f"/v1/models/{E1}:batchEmbedContents"
    headers = {"Content-Type": "application/json", "x-goog-api-key": emulator.api_key}
    timings = []
    for i in range(6):
        if i:  # new texts each time (no vector cache hits), same vocabulary
            data = data.replace(b"alpha", f"al{i}pha".encode())
        req = urllib.request.Request(url, data=data, headers=headers, method="POST")
        start = time.perf_counter()
        with urllib.request.urlopen(req) as resp:
            payload = resp.read()
        timings.append(time.perf_counter() - start)
    assert len(json.loads(payload)["embeddings"]) == 100
    best = min(timings[1:])
    print(f"100x768 batchEmbedContents round trip: best {best * 1000:.1f} ms")
    assert best < 0.25


# ---------------------------------------------------------------- Vertex AI
@pytest.mark.parametrize("express", [True, False])
def test_vertex_routes_through_the_sdk(emulator: Emulator, express: bool) -> None:
    v = vertex_client(emulator, express=express)
    prefix = "/v1beta1/" + ("" if express else "projects/proj/locations/us-central1/")
    # gemini-embedding-001, several texts: :batchEmbedContents with embedContentConfig.
    r = v.models.embed_content(
        model=E1,
        contents=many(["doc one", "doc two"]),
        config={"task_type": "RETRIEVAL_DOCUMENT", "title": "T", "output_dimensionality": 256},
    )
    assert values(r) == [
        embed_text("doc one", task_type="RETRIEVAL_DOCUMENT", title="T", dimension=256),
        embed_text("doc two", task_type="RETRIEVAL_DOCUMENT", title="T", dimension=256),
    ]
    assert r.embeddings is not None and r.embeddings[0].statistics is not None
    assert emulator.requests[-1].path == f"{prefix}publishers/google/models/{E1}:batchEmbedContents"
    # One text: :embedContent, usage folded into statistics.
    r = v.models.embed_content(model=E2, contents="single text", config={"auto_truncate": True})
    assert values(r) == [embed_text("single text", model=E2)]
    assert r.embeddings is not None and r.embeddings[0].statistics is not None
    assert r.embeddings[0].statistics.token_count == count_tokens("single text")
    assert emulator.requests[-1].path == f"{prefix}publishers/google/models/{E2}:embedContent"
    # gemini-embedding-2 with list[Content]: :batchEmbedContents, one vector each.
    r = v.models.embed_content(
        model=E2,
        contents=[types.Content(parts=[types.Part(text=t)]) for t in ("x y", "z")],
    )
    assert values(r) == [embed_text("x y", model=E2), embed_text("z", model=E2)]
    # Legacy text models use :predict.
    r = v.models.embed_content(
        model="text-embedding-005",
        contents=many(["p one", "p two"]),
        config={"task_type": "RETRIEVAL_QUERY"},
    )
    assert len(values(r)) == 2 and len(values(r)[0]) == 768
    assert abs(norm(values(r)[0]) - 1.0) < 1e-5
    assert r.metadata is not None and r.metadata.billable_character_count == 8
    assert emulator.requests[-1].path.endswith("text-embedding-005:predict")
    v.close()


def test_vertex_predict_shape_limits_and_title_rule(emulator: Emulator) -> None:
    path = f"/v1beta1/projects/p/locations/us-central1/publishers/google/models/{E1}:predict"
    body = {
        "instances": [{"content": "v one", "task_type": "RETRIEVAL_DOCUMENT", "title": "T"}],
        "parameters": {"outputDimensionality": 4 * 32, "autoTruncate": False},
    }
    status, out = raw(emulator, "POST", path, body, key=None, headers={"Authorization": "Bearer t"})
    assert status == 200
    pred = out["predictions"][0]["embeddings"]
    assert pred["values"] == embed_text(
        "v one", task_type="RETRIEVAL_DOCUMENT", title="T", dimension=128
    )
    assert pred["statistics"] == {"truncated": False, "token_count": count_tokens("v one")}
    assert out["metadata"] == {"billableCharacterCount": 4}
    # Express mode path without projects/...
    status, _ = raw(emulator, "POST", f"/v1beta1/publishers/google/models/{E1}:predict", body)
    assert status == 200
    # Title with another task type: 400 on Vertex only.
    bad = {"instances": [{"content": "x", "task_type": "RETRIEVAL_QUERY", "title": "T"}]}
    status, out = raw(emulator, "POST", path, bad, headers={"Authorization": "Bearer t"})
    assert status == 400 and "title parameter" in out["error"]["message"]
    # 251 instances and > 20,000 tokens.
    many = {"instances": [{"content": f"t{i}"} for i in range(251)]}
    status, out = raw(emulator, "POST", path, many)
    assert status == 400
    assert out["error"]["message"].startswith(
        "Unable to submit request because it included too many instances"
    )
    heavy = {"instances": [{"content": "w " * 1500} for _ in range(14)]}
    status, out = raw(emulator, "POST", path, heavy)
    assert status == 400 and "20000" in out["error"]["message"]
    # autoTruncate false refuses over-long input; true truncates and says so.
    long = {"instances": [{"content": "w " * 2100}], "parameters": {"autoTruncate": False}}
    status, out = raw(emulator, "POST", path, long)
    assert status == 400
    long["parameters"] = {"autoTruncate": True}
    status, out = raw(emulator, "POST", path, long)
    assert status == 200 and out["predictions"][0]["embeddings"]["statistics"]["truncated"] is True
    # No credentials at all: 401.
    status, out = raw(emulator, "POST", path, body, key=None)
    assert status == 401 and out["error"]["status"] == "UNAUTHENTICATED"
    # Unknown publisher model: 404.
    status, out = raw(emulator, "POST", path.replace(E1, "nope"), body)
    assert status == 404


# ---------------------------------------------------------------- CLI
def test_cli_prints_a_url_and_serves_the_sdk(tmp_path: Any) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_index_gemini_embed.emulator",
            "--port",
            "0",
            "--api-key",
            "cli-key",
            "--items-per-minute",
            "5",
            "--window-seconds",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        c = genai.Client(api_key="cli-key", http_options=types.HttpOptions(base_url=url))
        r = c.models.embed_content(model=E1, contents=many([f"cli {i}" for i in range(5)]))
        assert values(r)[0] == embed_text("cli 0")  # same vectors in another process
        with pytest.raises(errors.ClientError) as exc:
            c.models.embed_content(model=E1, contents="sixth")
        assert exc.value.code == 429
        c.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


# ---------------------------------------------------------------- route matrix
@pytest.mark.parametrize("ver", ["v1", "v1beta", "v1alpha"])
def test_every_developer_route_on_every_version(emulator: Emulator, ver: str) -> None:
    one = {"content": {"parts": [{"text": "route check"}]}}
    status, body = raw(
        emulator, "POST", f"/{ver}/models/{E1}:batchEmbedContents", {"requests": [one]}
    )
    assert status == 200 and body["embeddings"][0]["values"] == embed_text("route check")
    status, body = raw(emulator, "POST", f"/{ver}/models/{E2}:embedContent", one)
    assert status == 200 and body["embedding"]["values"] == embed_text("route check", model=E2)
    status, body = raw(
        emulator, "POST", f"/{ver}/models/{E1}:countTokens", {"contents": [one["content"]]}
    )
    assert status == 200 and body["totalTokens"] == count_tokens("route check")
    status, body = raw(emulator, "GET", f"/{ver}/models/{E2}")
    assert status == 200 and body["name"] == f"models/{E2}"
    status, body = raw(emulator, "GET", f"/{ver}/models?pageSize=2")
    assert status == 200 and len(body["models"]) == 2 and body["nextPageToken"] == "2"
    status, body = raw(emulator, "GET", f"/{ver}/models?pageSize=2&pageToken=2")
    assert status == 200 and body["models"][0]["name"] == "models/gemini-embedding-2-preview"
    status, body = raw(
        emulator,
        "POST",
        f"/{ver}/models/gemini-2.5-flash-lite:generateContent",
        {"contents": [one["content"]]},
    )
    assert status == 200 and body["candidates"][0]["finishReason"] == "STOP"
    status, body = raw(emulator, "POST", f"/{ver}/models/{E1}:notAMethod", {})
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    status, body = raw(emulator, "POST", f"/{ver}/models/{E1}:batchEmbedContents", b"{not json")
    assert status == 400


@pytest.mark.parametrize("ver", ["v1", "v1beta1"])
def test_vertex_routes_on_both_versions(emulator: Emulator, ver: str) -> None:
    bearer = {"Authorization": "Bearer any-token"}
    base = f"/{ver}/projects/p/locations/europe-west4/publishers/google/models"
    one = {"content": {"parts": [{"text": "vertex route"}]}}
    for prefix, headers, key in (
        (base, bearer, None),
        (f"/{ver}/publishers/google/models", None, DEFAULT_API_KEY),
    ):
        status, body = raw(
            emulator,
            "POST",
            f"{prefix}/{E1}:predict",
            {"instances": [{"content": "vertex route"}]},
            key=key,
            headers=headers,
        )
        assert status == 200 and body["predictions"][0]["embeddings"]["values"] == embed_text(
            "vertex route"
        )
        status, body = raw(
            emulator, "POST", f"{prefix}/{E1}:embedContent", one, key=key, headers=headers
        )
        assert status == 200 and body["truncated"] is False
        status, body = raw(
            emulator,
            "POST",
            f"{prefix}/{E2}:batchEmbedContents",
            {"requests": [one, one]},
            key=key,
            headers=headers,
        )
        assert status == 200 and len(body["embeddings"]) == 2
        status, body = raw(
            emulator,
            "POST",
            f"{prefix}/{E1}:countTokens",
            {"contents": [one["content"]]},
            key=key,
            headers=headers,
        )
        assert status == 200 and body["totalTokens"] == count_tokens("vertex route")
    # A wrong API key is refused on Vertex too.
    status, body = raw(
        emulator, "POST", f"/{ver}/publishers/google/models/{E1}:embedContent", one, key="bad"
    )
    assert status == 400 and body["error"]["message"].startswith("API key not valid")


async def test_in_flight_counters_track_concurrency() -> None:
    async with Emulator(latency=0.1) as emu:
        c = client_for(emu)
        await asyncio.gather(
            *(c.aio.models.embed_content(model=E1, contents=f"x{i}") for i in range(8))
        )
        counters = emu.counters
        assert counters.in_flight == 0 and 4 <= counters.max_in_flight <= 8
        await c.aio.models.embed_content(model=E1, contents="alone")
        emu.reset_counters()
        assert emu.counters.max_in_flight == 0
        await c.aio.models.embed_content(model=E1, contents="alone")
        assert emu.counters.max_in_flight == 1
        await c.aio.aclose()
        c.close()
