"""The public face of ingest()/aingest(): a typed keyword-only signature, deprecated aliases."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from llama_index_gemini_embed import aingest, ingest
from llama_index_gemini_embed.emulator import Emulator


def test_ingest_and_aingest_share_one_typed_keyword_only_signature() -> None:
    sync_params = inspect.signature(ingest).parameters
    async_params = inspect.signature(aingest).parameters
    assert list(sync_params) == list(async_params)
    for name in sync_params:
        assert str(sync_params[name]) == str(async_params[name]), name
    source, *options = sync_params.values()
    assert source.name == "source" and source.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in options)
    assert all(p.annotation is not inspect.Parameter.empty for p in sync_params.values())
    assert {"store", "embed_model", "delete_missing", "dry_run", "extensions"} <= set(sync_params)
    assert sync_params["delete_missing"].default is False


def test_sync_is_a_deprecated_alias_of_delete_missing_that_warns_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    # A fresh interpreter: "once per process" must not depend on what other tests ran.
    script = textwrap.dedent(
        """
        import sys, warnings
        from llama_index.core import Document
        from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, ingest

        store_path, key, url = sys.argv[1:]
        embed = GeminiEmbedding(api_key=key, base_url=url, output_dimensionality=128)
        docs = [Document(id_=name, text=name) for name in ("alpha", "beta", "gone")]
        with ChromaStore("alias", path=store_path, embed_model=embed) as store:
            ingest(docs, store=store, embed_model=embed, show_progress=False)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _ in range(2):
                    report = ingest(docs[:2], store=store, embed_model=embed, sync=True,
                                    show_progress=False)
                    print(report.deleted_documents, sorted(store.get_index()))
        for w in caught:
            print(w.category.__name__, w.filename.rsplit("/", 1)[-1], w.message)
        """
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "chroma"),
            emulator.api_key,
            emulator.base_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "1 ['alpha', 'beta']",
        "0 ['alpha', 'beta']",
        "FutureWarning <string> ingest(sync=...) is deprecated: use delete_missing=... "
        "(delete documents that are no longer in the input)",
    ]
