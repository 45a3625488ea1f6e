"""``gemini-embed ingest --memory-limit-ids N``: the ids-seen budget of ``aingest`` on the
command line (issue 14 goal 4); ``--sync`` stays exact past it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from llama_index_gemini_embed._ingest.seen import DEFAULT_MEMORY_LIMIT_IDS
from llama_index_gemini_embed.emulator import Emulator
from tests.cli.test_cli import SECRET, run


def notes(folder: Path, names: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.md").write_text(f"# {name}\n\nA note about {name}.\n")


def where(tmp_path: Path, emu: Emulator) -> list[str]:
    return ["--path", str(tmp_path / "chroma"), "--base-url", emu.base_url, "--api-key", SECRET]


def test_sync_deletes_exactly_the_removed_documents_past_the_budget(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "notes"
    notes(folder, ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"])
    budget = ["--memory-limit-ids", "2", "--quiet"]
    code, out, err = run(["ingest", str(folder), *where(tmp_path, emu), *budget], capsys)
    assert code == 0, err
    assert "6 documents" in out, out
    (folder / "bravo.md").unlink()
    (folder / "echo.md").unlink()
    code, out, err = run(["ingest", str(folder), *where(tmp_path, emu), *budget, "--sync"], capsys)
    assert code == 0, err
    assert "4 documents" in out and "2 deleted" in out, out


def test_the_budget_reaches_the_run(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the budget the ids spill to TMPDIR: with no usable TMPDIR the run says so, in
    CLI terms; within the default budget nothing spills and the same run succeeds."""
    folder = tmp_path / "notes"
    notes(folder, ["alpha", "bravo", "charlie"])
    not_a_dir = tmp_path / "not-a-directory"
    not_a_dir.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_dir))
    args = ["ingest", str(folder), *where(tmp_path, emu), "--quiet"]
    code, out, err = run([*args, "--memory-limit-ids", "1"], capsys)
    assert code != 0
    (line,) = err.strip().splitlines()
    assert "Cannot spill the document ids this run has read to " in line, err
    assert line.endswith("set TMPDIR to another directory, or raise --memory-limit-ids N"), err
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "3 documents" in out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--memory-limit-ids must be at least 1, got 0"),
        ("-5", "--memory-limit-ids must be at least 1, got -5"),
        ("lots", "argument --memory-limit-ids: invalid int value: 'lots'"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_flag(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    args = ["ingest", str(tmp_path), *where(tmp_path, emu), "--memory-limit-ids", value]
    try:
        code, _, err = run(args, capsys)
    except SystemExit as exit_info:  # argparse's own type check
        code, err = int(exit_info.code or 0), capsys.readouterr().err
    assert code == 2
    (line,) = err.strip().splitlines()
    assert message in line


def test_the_help_names_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(["ingest", "--help"], capsys)
    text = " ".join(capsys.readouterr().out.split())
    assert "--memory-limit-ids N document ids of this run kept in memory" in text
    assert f"(default {DEFAULT_MEMORY_LIMIT_IDS} = 8 MiB)" in text
