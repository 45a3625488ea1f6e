"""``gemini-embed doctor`` / ``GeminiEmbedding.doctor()`` end to end against the emulator,
each failure row included (issue 13 §6)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator._vectors import EncodeRequest
from tests.cli.test_cli import SECRET, run

ROWS = (
    "API key",
    "model gemini-embedding-001",
    "dimension / norm",
    "task types",
    "token count",
    "quota headroom",
    "Batch API",
    "Files API",
    "reranker gemini-3.5-flash-lite",
)


def rows(out: str) -> dict[str, str]:
    """``{check name: status}`` from the table (fix lines skipped)."""
    found = {}
    for line in out.splitlines():
        for name in sorted(ROWS, key=len, reverse=True):
            if line.startswith(name + " "):
                found[name] = line[len(name) :].split()[0]
                break
    return found


def doctor(emu: Emulator, *extra: str) -> list[str]:
    return ["doctor", "--base-url", emu.base_url, "--api-key", SECRET, *extra]


def test_every_row_passes_on_a_good_setup_in_a_few_tiny_calls(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(doctor(emu), capsys)
    assert code == 0 and err == ""
    assert rows(out) == {name: ("-" if name == "quota headroom" else "ok") for name in ROWS}
    assert "3072 (expected 3072), norm 1.0000" in out
    counters = emu.counters
    assert counters.embed_requests == 2 and counters.embed_items == 2
    assert counters.count_tokens_requests == 1 and counters.generate_requests == 1
    assert counters.batch_jobs_created == 0


def test_the_library_call_gives_the_same_rows(emu: Emulator) -> None:
    embed = GeminiEmbedding(api_key=SECRET, base_url=emu.base_url, output_dimensionality=768)
    report = embed.doctor()
    assert report.ok and [c.name for c in report.checks] == list(ROWS[:-1])
    assert "768 (expected 768)" in report.checks[2].detail
    assert str(report) == report.table()


def test_a_bad_key_fails_its_row_with_the_fix(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["doctor", "--base-url", emu.base_url, "--api-key", "wrong"], capsys)
    assert code == 3
    assert rows(out) == {"API key": "FAIL"}
    assert "fix: create a key at https://aistudio.google.com/apikey" in out
    assert err == ("gemini-embed: error: 1 check(s) failed (API key): see the fix under each\n")
    assert "api_key=" not in out and "from --api-key" in out


def test_an_unknown_model_fails_its_row(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(doctor(emu, "--model", "gemini-embedding-999"), capsys)
    assert code == 3
    assert out.splitlines()[0].split() == ["API", "key", "ok", "accepted"]
    assert re.match(r"model gemini-embedding-999 +FAIL +Model ", out.splitlines()[1])
    assert "fix: use gemini-embedding-001 or gemini-embedding-2" in out


def test_task_types_not_honoured_fail_their_row(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    def ignores_task_type(request: EncodeRequest) -> Sequence[Sequence[float]]:
        return [[1.0] + [0.0] * 3071 for _ in request.texts]

    emu.set_encoder(ignores_task_type)
    code, out, _ = run(doctor(emu, "--no-rerank"), capsys)
    assert code == 3 and rows(out)["task types"] == "FAIL"
    assert "cosine 1.0000 (identical)" in out and "fix: the API ignored the task type" in out


def test_a_judge_without_valid_json_fails_the_reranker_row(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.set_judge(lambda request: "Sure! The first passage is the most relevant.")
    code, out, _ = run(doctor(emu), capsys)
    assert code == 3 and rows(out)["reranker gemini-3.5-flash-lite"] == "FAIL"
    assert "fix: pick a current generation model" in out


def test_a_retired_judge_model_fails_the_reranker_row(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(doctor(emu, "--rerank-model", "gemini-2.5-flash"), capsys)
    assert code == 3
    assert re.search(r"^reranker gemini-2\.5-flash +FAIL ", out, re.MULTILINE)
    assert [line for line in out.splitlines() if "FAIL" in line] == [
        line for line in out.splitlines() if line.startswith("reranker gemini-2.5-flash")
    ]


def test_batch_and_files_rows_use_the_batch_api_version(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where /v1 does not serve the Batch and Files APIs, the rows still pass (v1beta, like
    the batch path), and fail with the fix for a user who pins v1."""
    emu.set_v1_behaviour(batches_and_files=False)
    code, out, _ = run(doctor(emu, "--no-rerank"), capsys)
    assert code == 0 and rows(out)["Batch API"] == rows(out)["Files API"] == "ok"
    pinned = GeminiEmbedding(api_key=SECRET, base_url=emu.base_url, api_version="v1")
    report = pinned.doctor()
    failed = {check.name: check.fix for check in report.failures}
    assert failed == {
        "Batch API": "the Batch API refused a list call: check that the key's project may use it",
        "Files API": "the Files API refused a list call: check that the key's project may use it",
    }


def test_a_vector_of_another_shape_fails_the_dimension_row(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    def short_vectors(request: EncodeRequest) -> Sequence[Sequence[float]]:
        return [[0.5] * 100 for _ in request.texts]

    emu.set_encoder(short_vectors)
    code, out, _ = run(doctor(emu, "--no-rerank"), capsys)
    assert code == 3 and rows(out)["dimension / norm"] == "FAIL"
    assert "100 (expected 3072)" in out
    assert "fix: the API returned another shape than configured" in out


async def test_an_estimate_far_from_the_apis_count_fails_the_token_row(emu: Emulator) -> None:
    from llama_index_gemini_embed._doctor import _tokens

    embed = GeminiEmbedding(api_key=SECRET, base_url=emu.base_url)
    good = await _tokens(embed, estimate=12)
    assert good.ok is True and good.detail.startswith("API ")
    real = int(good.detail.split()[1].rstrip(","))
    check = await _tokens(embed, estimate=10 * real)
    assert check.ok is False
    assert check.detail == f"API {real}, our estimate {10 * real}"
    assert "off by more than 2x" in check.fix
