"""The examples and the notebook run top to bottom (on the emulator), so they cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def execute_notebook(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, list[dict[str, Any]], Path]:
    """Run a notebook offline; returns its printed text, its outputs and the kernel's TMPDIR."""
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    temp = tmp_path / "tmp"  # the kernel's tempfile directory, to see what it leaves behind
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    notebook = nbformat.read(EXAMPLES / name, as_version=4)  # type: ignore[no-untyped-call]
    # "python3" resolves to this interpreter (jupyter_client launches sys.executable for it).
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]
    errors = [output for output in outputs if output.get("output_type") == "error"]
    assert not errors
    text = "\n".join(output.get("text", "") for output in outputs)
    return text, outputs, temp


def test_quickstart_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, _, temp = execute_notebook("quickstart.ipynb", tmp_path, monkeypatch)
    assert "using the local Gemini emulator" in text
    assert "10 embedded" in text and "0 requests" in text
    assert "08-troubleshooting.md" in text and "04-security.md" in text
    assert list(temp.glob("quickstart-chroma-*")) == [], "the notebook removes its store"


def test_multimodal_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15 §7: words find the right picture, PDF pages and clip; images shown inline."""
    text, outputs, temp = execute_notebook("multimodal.ipynb", tmp_path, monkeypatch)
    assert "using the local Gemini emulator" in text
    assert "6 documents, 6 chunks: 6 embedded" in text and "6 nodes stored" in text
    assert "by modality: 1 text, 3 image, 1 pdf, 1 audio" in text
    assert "6 unchanged, 0 empty, 0 failed; 0 written" in text  # the re-run pays nothing

    def first_hit(question: str) -> list[str]:
        lines = text.split(f"Q: {question}\n", 1)[1].splitlines()
        return lines[0].split()[1:]  # score dropped: modality, file, [pages], (type)

    assert first_hit("a red bicycle at night") == ["image", "bicycle.png", "(ImageNode)"]
    assert first_hit("at how many degrees do I bake the cake?") == [
        *["pdf", "recipes.pdf", "pages", "1-2", "(Node)"]
    ]
    assert first_hit("birds singing in the forest") == ["audio", "birdsong.wav", "(Node)"]
    assert first_hit("(photo) my-cake-photo.png") == ["image", "cake.png", "(ImageNode)"]
    assert text.split("Q: (photo) my-cake-photo.png\n", 1)[1].startswith("  1.000  image")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # the bicycle, then the two pictures of the modality filter
    filtered = [line for line in text.split("cleaned up")[0].splitlines() if line.strip()][-2:]
    assert filtered[0].endswith("cake.png") and filtered[1].endswith("bicycle.png")
    assert list(temp.glob("multimodal-*")) == [], "the notebook removes its folder and store"


def test_readme_lists_every_example() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    listed = readme.split("Examples that run offline", 1)[1].split("\n\n", 1)[0]
    examples = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".ipynb"))
    runnable = [name for name in examples if not name.startswith("_")]
    assert runnable and all(f"`examples/{name}`" in listed for name in runnable), listed
