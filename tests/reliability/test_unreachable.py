"""An API that cannot be reached stops a run at once, with what was done kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import Document

from llama_index_gemini_embed import (
    APIUnreachableError,
    ChromaStore,
    GeminiEmbedding,
    TransientAPIError,
    aingest,
)
from llama_index_gemini_embed.cli import EXIT_API, main
from llama_index_gemini_embed.emulator import Emulator
from tests.fakes import FakeTime
from tests.reliability_support import closed_port_url


def test_unreachable_endpoint_is_a_typed_error_after_retries() -> None:
    fake = FakeTime()
    embed = GeminiEmbedding(
        api_key="k", base_url=closed_port_url(), max_retries=2, clock=fake.clock, sleep=fake.sleep
    )
    with pytest.raises(APIUnreachableError, match="Could not reach the Gemini API") as info:
        embed.get_text_embedding("x")
    assert isinstance(info.value, TransientAPIError)
    assert "run again to resume" in str(info.value)
    assert embed.usage.retries == 2 and len(fake.sleeps) == 2


async def test_ingest_stops_at_once_when_every_connection_drops(
    emulator: Emulator, tmp_path: Path
) -> None:
    fake = FakeTime()
    embed = GeminiEmbedding(
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        output_dimensionality=128,
        embed_batch_size=5,
        max_concurrency=2,
        max_retries=1,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    docs = [Document(id_=f"d{i}", text=f"document number {i} about things") for i in range(200)]
    store = ChromaStore("unreachable", path=str(tmp_path / "chroma"))
    # the first 2 requests succeed, then the API vanishes
    await aingest(docs[:10], store=store, embed_model=embed, show_progress=False)
    assert store.count() == 10
    emulator.set_faults(rate_drop=1.0, seed=1)
    with pytest.raises(APIUnreachableError) as info:
        await aingest(docs, store=store, embed_model=embed, show_progress=False)
    report = info.value.report
    assert report is not None
    assert report.pending > 100, "stopped instead of trying every remaining request"
    assert emulator.counters.faults["drop"] <= 2 * 2, "only the requests in flight retried"
    assert store.count() == 10, "what was stored before is kept"
    store.close()


def test_cli_exit_code_for_an_unreachable_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nsome text to embed\n")
    code = main(
        [
            "ingest",
            str(docs),
            "--path",
            str(tmp_path / "chroma"),
            "--collection",
            "cli-unreach",
            "--base-url",
            closed_port_url(),
            "--max-retries",
            "0",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_API
    assert "Could not reach the Gemini API" in err and err.count("\n") == 1
