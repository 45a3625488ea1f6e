"""The API key appears nowhere: logs at DEBUG, reprs, serialisations, errors, CLI output,
stored metadata and state files, across ingest, query, rerank and failing requests."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.retrievers import VectorIndexRetriever
from llama_index.core.vector_stores.types import ExactMatchFilter, MetadataFilters
from llama_index_instrumentation import get_dispatcher
from pydantic import Field

from llama_index_gemini_embed import (
    ChromaStore,
    GeminiEmbedding,
    GeminiReranker,
    InvalidAPIKeyError,
    TransientAPIError,
    UnknownModelError,
    ingest,
    sample_corpus_dir,
)
from llama_index_gemini_embed.cli import main
from llama_index_gemini_embed.emulator import Emulator, Fault
from tests.fakes import FakeTime
from tests.reliability_support import (
    SECRET,
    clean_env,
    iter_exception_texts,
    run_cli,
)


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
        "'batch', 'query', 'info', 'emulator', 'demo', 'doctor') (see `gemini-embed --help`)\n"
    )


# ----------------------------------------------------------------------------- the sweep

WRONG = "sk-WRONG-secret-c0ffee1234"
SECRETS = (SECRET, WRONG)
LOGGERS = ("", "google_genai", "google", "httpx", "httpcore", "aiohttp", "chromadb", "urllib3")


class EventRecorder(BaseEventHandler):
    """Every LlamaIndex instrumentation event, serialised."""

    texts: list[str] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.texts.append(repr(event))
        with contextlib.suppress(Exception):
            self.texts.append(event.model_dump_json())


@dataclass
class Sweep:
    """Everything a user, a log collector or an attacker with the files could read."""

    texts: list[str] = field(default_factory=list)

    def add(self, *texts: object) -> None:
        self.texts.extend(str(t) for t in texts)

    def component(self, obj: Any) -> None:
        self.add(repr(obj), str(obj))
        for name in ("to_json", "to_dict", "to_payload", "model_dump_json", "dict"):
            method = getattr(obj, name, None)
            if callable(method):
                with contextlib.suppress(Exception):
                    self.add(json.dumps(method(), default=str) if name != "to_json" else method())

    def error(self, error: BaseException) -> None:
        self.texts.extend(iter_exception_texts(error))
        report = getattr(error, "report", None)
        if report is not None:
            self.add(report.summary(), json.dumps(report.to_dict()))

    def files(self, root: Path) -> None:
        for path in root.rglob("*"):
            if path.is_file():
                self.add(path.read_bytes().decode("latin-1"))

    def assert_clean(self) -> None:
        assert self.texts, "nothing was collected"
        for secret in SECRETS:
            for fragment in (secret, secret[-12:]):
                leaks = [t for t in self.texts if fragment in t]
                assert not leaks, f"{fragment!r} leaked in: {leaks[0][:500]!r}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """DEBUG on for the root logger and the SDK/transport/Chroma loggers, formatted with
    tracebacks into a buffer (and captured by caplog)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


@pytest.fixture
def events() -> Iterator[list[str]]:
    recorder = EventRecorder(texts=[])
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(recorder)
    try:
        yield recorder.texts
    finally:
        dispatcher.event_handlers.remove(recorder)


def test_the_key_appears_nowhere(
    tmp_path: Path,
    debug_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    events: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sweep = Sweep()
    fake = FakeTime()
    store_path = tmp_path / "chroma"
    with Emulator(api_keys=(SECRET,)) as emu:
        embed = GeminiEmbedding(
            api_key=SECRET, base_url=emu.base_url, output_dimensionality=128, sleep=fake.sleep
        )
        reranker = GeminiReranker(api_key=SECRET, base_url=emu.base_url, top_n=2)

        # Ingest (with a retried 500 and a dropped connection on the way), query, rerank.
        emu.script_faults([Fault.status(500), Fault.drop()])
        with ChromaStore("secrets", path=str(store_path), embed_model=embed) as store:
            report = ingest(sample_corpus_dir(), embed_model=embed, store=store)
            assert report.ok and report.retries == 2
            sweep.add(report.summary(), json.dumps(report.to_dict()))
            index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
            retriever = VectorIndexRetriever(
                index,
                similarity_top_k=5,
                filters=MetadataFilters(
                    filters=[ExactMatchFilter(key="category", value="billing")]
                ),
            )
            hits = retriever.retrieve("What does the Team plan cost?")
            ranked = reranker.postprocess_nodes(hits, query_str="What does the Team plan cost?")
            assert ranked and reranker.last_report is not None
            sweep.add(reranker.last_report, reranker.usage, embed.usage)
            sweep.add(*(n.node.metadata for n in ranked), *(n.node.get_content() for n in ranked))
            for part in (embed, reranker, store, embed.client, embed.engine, report):
                sweep.component(part)
            # The collection's metadata and every stored record's metadata.
            rows = store.collection.get(include=["metadatas", "documents"])
            sweep.add(store.collection.metadata, rows, store.fingerprint)

            # Failing requests: unknown model, 500s until retries run out, a wrong key.
            failures: list[BaseException] = []
            bad_model = GeminiEmbedding(
                api_key=SECRET, base_url=emu.base_url, model_name="gemini-embedding-999"
            )
            with pytest.raises(UnknownModelError) as info:
                bad_model.get_text_embedding("x")
            failures.append(info.value)
            emu.script_faults([Fault.status(500)] * 3)
            flaky = GeminiEmbedding(
                api_key=SECRET, base_url=emu.base_url, max_retries=2, sleep=fake.sleep
            )
            with pytest.raises(TransientAPIError) as transient:
                flaky.get_query_embedding("x")
            failures.append(transient.value)
            wrong = GeminiEmbedding(api_key=WRONG, base_url=emu.base_url, output_dimensionality=128)
            with (
                ChromaStore("secrets-2", path=str(store_path)) as other,
                pytest.raises(InvalidAPIKeyError) as auth,
            ):
                ingest([Document(id_="new", text="new text")], embed_model=wrong, store=other)
            failures.append(auth.value)
            wrong_reranker = GeminiReranker(api_key=WRONG, base_url=emu.base_url)
            with pytest.raises(InvalidAPIKeyError) as rerank_auth:
                wrong_reranker.postprocess_nodes(hits, query_str="plan")
            failures.append(rerank_auth.value)
            for error in failures:
                sweep.error(error)
            for part in (bad_model, flaky, wrong, wrong_reranker):
                sweep.component(part)

        # Batch mode leaves a state file while jobs run (--no-wait).
        with ChromaStore("secrets-batch", path=str(store_path), embed_model=embed) as store:
            batch = ingest(
                sample_corpus_dir(),
                embed_model=embed,
                store=store,
                mode="batch",
                batch_wait=False,
                batch_state=tmp_path / "batch-state.json",
                batch_options={"sleep": fake, "poll_initial": 1.0, "poll_max": 1.0},
            )
            sweep.add(batch.summary(), json.dumps(batch.to_dict()))
        assert (tmp_path / "batch-state.json").exists()

        # The CLI, with and without --debug, succeeding and failing.
        monkeypatch.setenv("GEMINI_API_KEY", SECRET)
        where = ["--path", str(store_path), "--collection", "secrets", "--base-url", emu.base_url]
        runs = [
            ["ingest", str(sample_corpus_dir()), *where, "--json"],
            ["query", "Team plan price", *where, "--rerank", "--json"],
            ["info", "--path", str(store_path), "--collection", "secrets"],
            ["ingest", str(sample_corpus_dir()), *where[:-2], "--model", "gemini-embedding-9"],
            ["query", "x", *where, "--api-key", WRONG],
            ["ingest", str(tmp_path), *where, "--api-key", WRONG, "--max-retries", "0"],
        ]
        for argv in runs:
            for debug in ([], ["--debug"]):
                if argv[0] != "info":
                    emu.script_faults([Fault.status(503)])
                main([*debug, *argv])
                out, err = capsys.readouterr()
                sweep.add(out, err)
        # A real process too: --debug prints a traceback through the default handlers.
        result = run_cli(["--debug", "query", "x", *where, "--api-key", WRONG], env=clean_env())
        assert result.returncode == 3 and "Traceback" in result.stderr
        sweep.add(result.stdout, result.stderr)

    sweep.add(debug_logs.getvalue(), caplog.text)
    for record in caplog.records:
        sweep.add(record.getMessage(), record.args, record.exc_text, record.__dict__)
    sweep.texts.extend(events)
    sweep.files(tmp_path)  # every store file, lock file and batch state file, as bytes
    assert len(caplog.records) > 50 and len(events) > 10  # DEBUG logging really was on
    assert any(
        r.name.startswith(("httpx", "google", "aiohttp", "chromadb")) for r in caplog.records
    )
    sweep.assert_clean()


def test_the_sweep_finds_a_planted_key(tmp_path: Path) -> None:
    """Control: the checks above would see a key in a file, an exception chain or a log."""
    (tmp_path / "state.json").write_text(json.dumps({"key": f"prefix-{SECRET}"}))
    sweep = Sweep()
    sweep.files(tmp_path)
    with pytest.raises(AssertionError, match="leaked"):
        sweep.assert_clean()
    sweep = Sweep()
    try:
        try:
            raise ValueError(f"inner {WRONG}")
        except ValueError:
            raise RuntimeError("outer, clean") from None  # hidden from tracebacks only
    except RuntimeError as error:
        sweep.error(error)
    with pytest.raises(AssertionError, match="leaked"):
        sweep.assert_clean()
