"""Every code block in README.md runs, as a reader would run it, against the emulator.

``python`` blocks run as scripts; in ``bash``/``console`` blocks each ``gemini-embed …``
command runs (set-up lines such as ``pip install`` are the reader's business, not ours).
Each block gets a fresh working directory holding the folders the README names
(``./my-docs``, ``./docs``, ``./corpus``: copies of the bundled sample corpus) and an
environment that points the SDK at the emulator (``GEMINI_API_KEY``,
``GOOGLE_GEMINI_BASE_URL``), exactly as the README's emulator section tells users to.
``gemini-embed emulator`` is a server: it runs until it prints its URL, then is stopped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from llama_index_gemini_embed import sample_corpus_dir
from llama_index_gemini_embed.cli import main
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import (
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)
from tests.chroma_server import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
#: Folders the README's examples read; each is seeded with the sample corpus (and ./media
#: with generated pictures, a PDF, a clip and a note).
INPUT_FOLDERS = ("my-docs", "docs", "corpus")
TIMEOUT = 240


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int

    @property
    def id(self) -> str:
        return f"README.md:{self.line}-{self.language}"


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(match.group(1), match.group(2), line))
    return blocks


def commands(block: Block) -> list[list[str]]:
    """The ``gemini-embed …`` commands of a shell block, as argv lists."""
    found = []
    for raw in block.code.splitlines():
        line = raw.strip().removeprefix("$ ")
        argv = shlex.split(line, comments=True)
        if argv and argv[0] == "gemini-embed":
            found.append(argv)
    return found


BLOCKS = readme_blocks()
PYTHON = [b for b in BLOCKS if b.language == "python"]
SHELL = [b for b in BLOCKS if b.language in ("bash", "console", "sh", "shell")]


def test_readme_has_the_blocks_this_suite_runs() -> None:
    assert {b.language for b in BLOCKS} <= {"python", "bash", "console", "sh", "shell", "text"}
    assert len(PYTHON) >= 3
    assert sum(len(commands(b)) for b in SHELL) >= 8


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    cwd = tmp_path / "reader"
    cwd.mkdir()
    for name in INPUT_FOLDERS:
        shutil.copytree(sample_corpus_dir(), cwd / name)
    media = cwd / "media"  # the multimodal section's mixed folder
    media.mkdir()
    (media / "bicycle.png").write_bytes(png_with_description("a red bicycle at night"))
    (media / "cake.png").write_bytes(png_with_description("a chocolate birthday cake"))
    (media / "recipes.pdf").write_bytes(pdf_with_pages(["Cake recipe.", "Bake 40 minutes."]))
    (media / "birdsong.wav").write_bytes(wav_with_title("birdsong at dawn"))
    (media / "note.md").write_text("Oil the bicycle chain every month.")
    return cwd


def reader_env(emu: Emulator) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI")
    }
    env.update(
        GEMINI_API_KEY=emu.api_key,
        GOOGLE_GEMINI_BASE_URL=emu.base_url,
        ANONYMIZED_TELEMETRY="False",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_block_runs(block: Block, workdir: Path, emulator: Emulator) -> None:
    result = subprocess.run(
        [sys.executable, "-c", block.code],
        cwd=workdir,
        env=reader_env(emulator),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, f"{block.id} failed:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert result.stdout.strip(), f"{block.id} printed nothing"
    if "image_query(" in block.code:  # searching by the cake photo finds it first, twice
        lines = result.stdout.strip().splitlines()
        assert lines[0].startswith("1.00") and lines[0].endswith("cake.png"), result.stdout
        assert lines[-1].startswith("1.00") and lines[-1].endswith("cake.png"), result.stdout
    if 'retrieve("a red bicycle")' in block.code:  # the multimodal example finds the photo
        assert result.stdout.strip().splitlines()[-2].endswith("bicycle.png"), result.stdout
    if "Emulator(" not in block.code:  # a block that starts its own emulator uses that one
        assert emulator.counters.requests > 0, f"{block.id} never reached the (emulated) API"


def run_emulator_command(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    """Start ``gemini-embed emulator`` (on a free port), wait for its URL, stop it."""
    port = free_port()
    args = list(argv[1:])
    if "--port" in args:
        args[args.index("--port") + 1] = str(port)
    else:
        args += ["--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_index_gemini_embed.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # blocks until the server is listening
        assert f"127.0.0.1:{port}" in first, first + (
            process.stderr.read() if process.stderr else ""
        )
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.id)
def test_shell_block_commands_run(
    block: Block,
    workdir: Path,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each command runs through the CLI's ``main`` in this process (the entry point the
    ``gemini-embed`` script calls; a new interpreter per command would only add start-up)."""
    env = reader_env(emulator)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    for name in ("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "ANONYMIZED_TELEMETRY"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.chdir(workdir)
    # Batch jobs finish at their first poll (the CLI still waits its --poll-seconds once).
    emulator.set_batch_behaviour(polls_until_running=1, polls_until_done=1)
    for argv in commands(block):
        if argv[1:2] == ["emulator"]:
            run_emulator_command(argv, workdir, env)
            continue
        shown = shlex.join(argv)
        code = main(argv[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{block.id}: `{shown}` exited {code}:\n{err}"
        assert "Traceback" not in err, shown
        assert out.strip(), f"`{shown}` printed nothing"
        if argv[1] == "query":
            assert "no results" not in out, f"`{shown}` found nothing in the README's corpus"
        if "a red bicycle at night" in argv:
            assert "bicycle.png" in out.split("\n\n")[0] or "bicycle.png" in out[:400], out
        if "--image" in argv:  # the photo itself first, with its path
            assert out.startswith("1. [score 1.000] image ") and "cake.png" in out.splitlines()[0]
