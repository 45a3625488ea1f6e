"""``gemini-embed ingest --media-upload-timeout SECONDS``: a video the Files API keeps
PROCESSING fails alone, with the fix in CLI terms (emulator: ``processing_polls``)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from llama_index_gemini_embed.emulator import Emulator, samples
from tests.cli.test_cli import SECRET, run


def big_video(title: str) -> bytes:
    """An MP4 over the 2 MB inline limit (a trailing ``free`` box), so it is uploaded."""
    mp4 = samples.mp4_with_title(title, seconds=2.0)
    pad = 2_100_000
    return mp4 + struct.pack(">I", pad + 8) + b"free" + b"\0" * pad


def test_a_video_still_processing_at_the_timeout_fails_alone_in_cli_terms(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.set_upload_behaviour(processing_polls=1_000_000)
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "ride.mp4").write_bytes(big_video("a night ride"))
    (folder / "notes.md").write_text("# Notes\n\nA ride at night.\n")
    where = ["--path", str(tmp_path / "chroma"), "--base-url", emu.base_url, "--api-key", SECRET]
    timeout = ["--media-upload-timeout", "0.01"]
    code, out, err = run(
        ["ingest", str(folder), "--model", "gemini-embedding-2", *where, "--quiet", *timeout],
        capsys,
    )
    assert code == 1, err  # partial failure: the note is stored, the video is not
    assert "1 embedded" in out and "1 failed" in out
    (line,) = [line for line in out.splitlines() if line.startswith("failed ")]
    assert "MediaError: Item #" in line and "video/mp4 upload files/" in line
    assert line.endswith(
        "was still PROCESSING after 0.01 s: pass a larger --media-upload-timeout SECONDS, "
        "or embed a shorter clip"
    )
    deletes = [r for r in emu.requests if r.method == "DELETE" and "/files/" in r.path]
    assert len(deletes) == 1


def test_media_upload_timeout_must_be_positive(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--path", str(tmp_path / "chroma"), "--base-url", emu.base_url, "--api-key", SECRET]
    code, _, err = run(["ingest", str(tmp_path), *where, "--media-upload-timeout", "0"], capsys)
    assert code == 2
    assert err.strip().endswith("--media-upload-timeout must be > 0, got 0.0")
