"""The API key appears nowhere: logs at DEBUG, reprs, serialisations, errors, CLI output,
stored metadata and state files, across ingest, query, rerank and failing requests."""

from __future__ import annotations

import pytest

from llama_index_gemini_embed.cli import main
from tests.reliability_support import KEY_VARS, SECRET


@pytest.fixture(autouse=True)
def no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")


@pytest.mark.parametrize(
    "argv",
    [
        ["--api-key", SECRET, "ingest", "docs"],  # the option placed before the command
        [f"--api-key={SECRET}", "query", "x"],
        ["ingest", "docs", "--api-kye", SECRET],  # mistyped option
        ["ingest", "docs", f"--apikey={SECRET}"],
        ["query", "x", "--api-key", SECRET, "--top-k", "many"],
        ["query", "x", "--api-key", SECRET, "--bogus", SECRET],
        ["--debug", "--api-key", SECRET, "info"],
        ["info", "--colection", SECRET],  # mistyped option whose name does not say "key"
    ],
)
def test_argparse_errors_never_echo_a_key(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert err.startswith("gemini-embed: error: ") and err.count("\n") == 1
    assert SECRET not in out + err
    assert SECRET[:12] not in err  # not even partly


def test_the_env_key_is_not_echoed_when_typed_as_a_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    with pytest.raises(SystemExit):
        main([SECRET])
    err = capsys.readouterr().err
    assert err == (
        "gemini-embed: error: argument COMMAND: invalid choice: '***' (choose from 'ingest', "
        "'batch', 'query', 'info', 'emulator', 'demo') (see `gemini-embed --help`)\n"
    )
