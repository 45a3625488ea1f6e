"""The examples and the notebook run top to bottom (on the emulator), so they cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["ANONYMIZED_TELEMETRY"] = "False"
    return env


def run_example(name: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=cwd,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "using the local Gemini emulator" in result.stdout
    assert list(cwd.iterdir()) == [], "examples must not litter the working directory"
    return result.stdout


def test_quickstart_script(tmp_path: Path) -> None:
    out = run_example("quickstart.py", tmp_path)
    ranked = [line for line in out.splitlines() if line.startswith("  ")]
    assert "Team plan costs" in ranked[0]
    assert "usage: UsageSnapshot(items=5" in out


def test_ingest_folder_script(tmp_path: Path) -> None:
    out = run_example("ingest_folder.py", tmp_path)
    assert "10 embedded" in out
    assert "second run (nothing changed):\n10 documents, 10 chunks: 0 embedded" in out
    assert "dry run: 10 documents" in out


def test_query_engine_filters_script(tmp_path: Path) -> None:
    out = run_example("query_engine_filters.py", tmp_path)
    blocks = out.split("\nQ: ")[1:]
    assert len(blocks) == 3
    assert all("category=billing" in line for line in blocks[0].splitlines()[1:])
    assert all("category=support" in line for line in blocks[1].splitlines()[1:])
    assert "08-troubleshooting.md" in blocks[2].splitlines()[1]


def test_quickstart_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    temp = tmp_path / "tmp"  # the kernel's tempfile directory, to see what it leaves behind
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    # "python3" resolves to this interpreter (jupyter_client launches sys.executable for it).
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    text = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    assert "using the local Gemini emulator" in text
    assert "10 embedded" in text and "0 requests" in text
    assert "08-troubleshooting.md" in text and "04-security.md" in text
    assert list(temp.glob("quickstart-chroma-*")) == [], "the notebook removes its store"
