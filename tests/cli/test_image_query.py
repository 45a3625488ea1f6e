"""Issue 15 §3/§5: ``gemini-embed query --image PATH`` searches a gemini-embedding-2 collection
by picture: similar images and the passages/pages about it, printed like text hits (emulator +
real Chroma; the emulator places a picture where its embedded description would go)."""

from __future__ import annotations

import json
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
    pages = ["a red bicycle at night", "oiling the bicycle chain"]
    (media / "manual.pdf").write_bytes(samples.pdf_with_pages(pages))
    (media / "notes.md").write_text("# Cats\n\nA sleeping cat on a sofa all afternoon.")
    return media


def where(emu: Emulator, tmp_path: Path) -> list[str]:
    return ["--path", str(tmp_path / "chroma"), "--base-url", emu.base_url, "--api-key", SECRET]


def ingest_with_2(
    emu: Emulator, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """Ingest ``folder`` with gemini-embedding-2; the store options for the next commands."""
    opts = where(emu, tmp_path)
    code, _, err = run(["ingest", str(folder), "--model", "gemini-embedding-2", *opts], capsys)
    assert code == 0, err
    return opts


def test_query_by_image_prints_media_hits_with_paths_and_pages(
    emu: Emulator, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = ingest_with_2(emu, folder, tmp_path, capsys)
    probe = tmp_path / "my-bike.png"  # a new photo of the same scene (not in the store)
    probe.write_bytes(samples.png_with_description("a red bicycle at night"))

    code, out, err = run(["query", "--image", str(probe), *opts, "--top-k", "2"], capsys)
    assert code == 0, err
    first, second = (line for line in out.splitlines() if line[:1].isdigit())
    assert first == f"1. [score 1.000] image {folder / 'bike.png'}"
    assert second.startswith("2. [score 0.") and second.endswith(
        f"pdf {folder}/manual.pdf pages 1-2"
    )

    code, out, _ = run(
        ["query", "--image", str(folder / "cat.png"), *opts, "--modality", "text", "--json"],
        capsys,
    )
    results = json.loads(out)
    assert code == 0 and results[0]["path"] == str(folder / "notes.md")  # image-to-text
    assert {r["modality"] for r in results} == {"text"}


def test_image_query_refusals_are_one_line_in_cli_terms(
    emu: Emulator, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = where(emu, tmp_path)
    code, _, err = run(["ingest", str(folder / "notes.md"), *opts], capsys)  # -001: text only
    assert code == 0, err
    sent = emu.counters.embed_requests
    (tmp_path / "notes.txt").write_text("not a picture")
    cases = [
        (
            ["--image", str(folder / "bike.png")],
            "--image: gemini-embedding-001 embeds text only: use --model gemini-embedding-2 "
            "(on a collection ingested with it) to search by image",
        ),
        (
            ["--image", str(tmp_path / "missing.png")],
            f"--image {tmp_path / 'missing.png'}: cannot read it (No such file or directory); "
            "give a PNG or JPEG file",
        ),
        (
            ["--image", str(folder / "bike.png"), "bicycle"],
            "give either TEXT or --image PATH, not both",
        ),
        (
            ["--image", str(folder / "bike.png"), "--rerank"],
            "--rerank judges against a text question: leave it out with --image",
        ),
    ]
    for extra, message in cases:
        code, out, err = run(["query", *extra, *opts], capsys)
        assert (code, out, err) == (2, "", f"gemini-embed: error: {message}\n")

    # asking a -001 collection with --model gemini-embedding-2: the store says what to do
    image = str(folder / "bike.png")
    code, out, err = run(
        ["query", "--image", image, *opts, "--model", "gemini-embedding-2"], capsys
    )
    assert (code, out) == (5, "") and len(err.splitlines()) == 1
    assert "differs in model: 'gemini-embedding-001' -> 'gemini-embedding-2'" in err
    assert emu.counters.embed_requests == sent, "nothing was sent for a refused image query"


def test_an_unsupported_file_names_itself_and_the_fix(
    emu: Emulator, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = ingest_with_2(emu, folder, tmp_path, capsys)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a picture")
    code, out, err = run(["query", "--image", str(text_file), *opts], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"gemini-embed: error: The query image {text_file} is text/plain: gemini-embedding-2 "
        "searches by image/jpeg, image/png images; convert it to PNG or JPEG\n"
    )
