"""Issue 15 §5: ``gemini-embed ingest ./photos --model gemini-embedding-2``; ``query`` prints
media hits with their paths and page ranges; ``--modality`` filters (emulator + real Chroma;
media are placed by their embedded descriptions, see the emulator's docs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llama_index_gemini_embed.emulator import Emulator, samples
from tests.cli.test_cli import SECRET, run


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    media = tmp_path / "photos"
    media.mkdir()
    (media / "bike.png").write_bytes(samples.png_with_description("a red bicycle at night"))
    (media / "cat.png").write_bytes(samples.png_with_description("a sleeping cat on a sofa"))
    pages = ["how to fix a flat tyre", "oiling the bicycle chain", "adjusting the brakes"]
    (media / "manual.pdf").write_bytes(samples.pdf_with_pages(pages))
    (media / "notes.md").write_text("# Notes\n\nThe quarterly budget meeting is on Tuesday.")
    return media


def test_ingest_media_then_query_prints_paths_and_filters_by_modality(
    emu: Emulator, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--path", str(tmp_path / "chroma"), "--base-url", emu.base_url, "--api-key", SECRET]
    code, out, err = run(["ingest", str(folder), "--model", "gemini-embedding-2", *where], capsys)
    assert code == 0, err
    assert "4 written" in out and "by modality: 1 text, 2 image, 1 pdf" in out

    code, out, _ = run(["query", "a red bicycle at night", *where, "--top-k", "2"], capsys)
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("1. [score 0.") and first.endswith(f"image {folder / 'bike.png'}")

    code, out, _ = run(["query", "oiling the chain", *where, "--modality", "pdf"], capsys)
    assert code == 0
    line, *text = out.splitlines()  # the only PDF: one item of its 3 pages, then its text
    assert re.fullmatch(rf"1\. \[score -?\d\.\d{{3}}\] pdf {folder}/manual\.pdf pages 1-3", line)
    assert "oiling the bicycle chain" in " ".join(text)  # the range's text layer, as for text

    code, out, _ = run(["query", "a red bicycle", *where, "--modality", "text", "--json"], capsys)
    results = json.loads(out)
    assert code == 0 and [r["modality"] for r in results] == ["text"]
    assert results[0]["path"] == str(folder / "notes.md")

    code, out, _ = run(["query", "bicycle", *where, "--modality", "image", "--json"], capsys)
    results = json.loads(out)
    assert {r["path"] for r in results} == {str(folder / "bike.png"), str(folder / "cat.png")}
    assert {r["modality"] for r in results} == {"image"}


def test_modality_must_be_a_known_kind(capsys: pytest.CaptureFixture[str]) -> None:
    from llama_index_gemini_embed.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["query", "x", "--modality", "photo"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "gemini-embed: error: argument --modality: invalid choice: 'photo' (choose from "
        "'text', 'image', 'pdf', 'audio', 'video') (see `gemini-embed query --help`)\n"
    )
