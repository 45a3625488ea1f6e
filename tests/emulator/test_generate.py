"""The emulator's generateContent (reranker judge), driven by the real google-genai SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from llama_index_gemini_embed.emulator import (
    Emulator,
    Fault,
    JudgeRequest,
    QuotaConfig,
    default_judge,
)
from llama_index_gemini_embed.emulator._tokens import count_tokens
from tests.emulator.support import client_for

FLASH = "gemini-2.5-flash-lite"

PROMPT = (
    "Score each passage for the query.\n"
    "<query>How fast can a jaguar run?</query>\n"
    '<passage id="0">The jaguar can run at up to 80 km/h in short bursts.</passage>\n'
    '<passage id="1">Quarterly revenue grew by twelve percent.</passage>\n'
    '<passage id="2">A jaguar is a big cat.</passage>\n'
)


class Score(BaseModel):
    index: int
    score: float


class Scores(BaseModel):
    scores: list[Score]


def test_default_judge_with_response_schema_parses_into_pydantic(emulator: Emulator) -> None:
    c = client_for(emulator)
    resp = c.models.generate_content(
        model=FLASH,
        contents=PROMPT,
        config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=Scores,
            temperature=0.0,
            system_instruction="You are a reranker",
            max_output_tokens=256,
            thinking_config=types.ThinkingConfig(thinking_budget=0),
        ),
    )
    parsed = resp.parsed
    assert isinstance(parsed, Scores)
    by_index = {s.index: s.score for s in parsed.scores}
    assert set(by_index) == {0, 1, 2}
    assert by_index[0] > by_index[2] > by_index[1] == 0.0
    assert all(0.0 <= s <= 10.0 for s in by_index.values())
    cand = resp.candidates[0] if resp.candidates else None
    assert cand is not None and cand.finish_reason == types.FinishReason.STOP
    usage = resp.usage_metadata
    assert usage is not None and resp.text is not None
    assert usage.prompt_token_count == count_tokens("You are a reranker") + count_tokens(PROMPT)
    assert usage.candidates_token_count == count_tokens(resp.text)
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert resp.model_version == FLASH and resp.response_id
    rec = emulator.requests[-1]
    assert rec.path == f"/v1/models/{FLASH}:generateContent"
    assert rec.body["generationConfig"]["responseMimeType"] == "application/json"
    assert emulator.counters.generate_requests == 1
    c.close()


def test_response_json_schema_with_refs_gives_a_dict(emulator: Emulator) -> None:
    c = client_for(emulator)
    resp = c.models.generate_content(
        model="gemini-2.5-flash-lite",
        contents=PROMPT,
        config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=Scores.model_json_schema(),
        ),
    )
    assert isinstance(resp.parsed, dict)
    assert [s["index"] for s in resp.parsed["scores"]] == [0, 1, 2]
    c.close()


def test_default_shape_without_schema() -> None:
    req = JudgeRequest(
        model=FLASH,
        system_instruction=None,
        prompt_text='<query>red fox</query><passage id="a">A red fox.</passage>'
        '<passage id="b">Blue whale</passage>',
        response_schema=None,
        response_json_schema=None,
    )
    assert default_judge(req) == {"scores": [{"id": "a", "score": 10.0}, {"id": "b", "score": 0.0}]}
    # Property names follow the schema when it has a scores array of objects.
    schema = {
        "type": "OBJECT",
        "properties": {
            "scores": {
                "type": "ARRAY",
                "items": {
                    "type": "OBJECT",
                    "properties": {
                        "passage_id": {"type": "STRING"},
                        "relevance": {"type": "NUMBER"},
                    },
                },
            }
        },
    }
    named = JudgeRequest(FLASH, None, req.prompt_text, schema, None)
    assert default_judge(named)["scores"][0] == {"passage_id": "a", "relevance": 10.0}
    # No query: every passage scores 0.
    empty = JudgeRequest(FLASH, None, '<passage id="x">text</passage>', None, None)
    assert default_judge(empty) == {"scores": [{"id": "x", "score": 0.0}]}


def test_custom_judge_sees_the_request_and_can_answer_anything(emulator: Emulator) -> None:
    seen: list[JudgeRequest] = []

    def judge(req: JudgeRequest) -> str | dict[str, Any]:
        seen.append(req)
        return '{"scores": [{"index": 0, "score": 9' if len(seen) == 1 else {"ok": True}

    emulator.set_judge(judge)
    c = client_for(emulator)
    config = types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=Scores,
        system_instruction="Be strict",
    )
    resp = c.models.generate_content(model=FLASH, contents="rank this", config=config)
    assert resp.text == '{"scores": [{"index": 0, "score": 9'  # malformed JSON passes through
    assert seen[0].system_instruction == "Be strict" and seen[0].prompt_text == "rank this"
    assert seen[0].response_schema is not None and seen[0].response_json_schema is None
    assert seen[0].response_mime_type == "application/json" and seen[0].model == FLASH
    resp = c.models.generate_content(model=FLASH, contents="again")
    assert json.loads(resp.text or "") == {"ok": True}
    emulator.set_judge(None)
    resp = c.models.generate_content(model=FLASH, contents=PROMPT)
    assert json.loads(resp.text or "")["scores"][0]["id"] == "0"
    c.close()


def test_max_output_tokens_truncates_with_max_tokens_finish(emulator: Emulator) -> None:
    c = client_for(emulator)
    resp = c.models.generate_content(
        model=FLASH, contents=PROMPT, config=types.GenerateContentConfig(max_output_tokens=5)
    )
    assert resp.candidates and resp.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert resp.text is not None and count_tokens(resp.text) <= 5
    c.close()


def test_unknown_or_embedding_models_are_404(emulator: Emulator) -> None:
    c = client_for(emulator)
    for model in ("xyz", "gemini-embedding-001"):
        with pytest.raises(errors.ClientError) as exc:
            c.models.generate_content(model=model, contents="hi")
        assert exc.value.code == 404
        assert "not supported for generateContent" in (exc.value.message or "")
    # Any gemini-<digit> generation name is served.
    assert c.models.generate_content(model="gemini-3-flash-preview", contents="hi").text
    c.close()


def test_faults_and_generate_quota(emulator: Emulator) -> None:
    now = [0.0]
    c = client_for(emulator)
    emulator.script_faults([Fault.status(503), Fault.status(429, retry_delay=3)])
    with pytest.raises(errors.ServerError) as server_exc:
        c.models.generate_content(model=FLASH, contents="a")
    assert server_exc.value.code == 503
    with pytest.raises(errors.ClientError) as exc:
        c.models.generate_content(model=FLASH, contents="a")
    details = exc.value.details["error"]["details"]
    assert details[0]["violations"][0]["quotaId"] == (
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    )
    assert details[-1]["retryDelay"] == "3s"
    c.close()
    with Emulator(
        quota=QuotaConfig(generate_requests_per_minute=2, items_per_minute=1), clock=lambda: now[0]
    ) as emu:
        c = client_for(emu)
        c.models.generate_content(model=FLASH, contents="one")
        now[0] += 15
        c.models.generate_content(model=FLASH, contents="two")
        with pytest.raises(errors.ClientError) as exc:
            c.models.generate_content(model=FLASH, contents="three")
        details = exc.value.details["error"]["details"]
        assert details[-1]["retryDelay"] == "45s"
        assert emu.counters.quota == {"generate_minute": 1}
        now[0] += 45
        c.models.generate_content(model=FLASH, contents="four")
        assert emu.counters.generate_requests == 4 and emu.counters.embed_items == 0
        c.close()


async def test_async_generate_and_vertex_route(emulator: Emulator) -> None:
    c = client_for(emulator)
    resp = await c.aio.models.generate_content(model=FLASH, contents=PROMPT)
    assert json.loads(resp.text or "")["scores"][0]["score"] > 0
    await c.aio.aclose()
    c.close()
    v = genai.Client(
        vertexai=True,
        api_key=emulator.api_key,
        http_options=types.HttpOptions(base_url=emulator.base_url),
    )
    resp = v.models.generate_content(model=FLASH, contents=PROMPT)
    assert json.loads(resp.text or "")["scores"][2]["id"] == "2"
    assert (
        emulator.requests[-1].path == f"/v1beta1/publishers/google/models/{FLASH}:generateContent"
    )
    v.close()
