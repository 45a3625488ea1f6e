"""The emulator stands for Google: its own facts, token counts, usage and refusals (issue 13)."""

from __future__ import annotations

import ast
import io
import warnings
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

import llama_index_gemini_embed.emulator as emulator_pkg
from llama_index_gemini_embed.emulator import Emulator, embed_text
from llama_index_gemini_embed.emulator._facts import PAYLOAD_LIMIT_BYTES
from llama_index_gemini_embed.emulator._tokens import count_tokens
from tests.emulator.support import client_for

E1 = "gemini-embedding-001"
E2 = "gemini-embedding-2"


def _client_imports(path: Path) -> list[str]:
    """Imports in ``path`` that reach the client package outside ``emulator/``."""
    bad: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level >= 2:  # from .. import x / from .._models import y
                names = ["llama_index_gemini_embed." + (node.module or "")]
            elif node.level == 0 and node.module:
                names = [node.module]
        for name in names:
            if name.startswith("llama_index_gemini_embed") and not name.startswith(
                "llama_index_gemini_embed.emulator"
            ):
                bad.append(f"{path.name}:{getattr(node, 'lineno', 0)}: {name}")
    return bad


def test_no_emulator_module_imports_client_code() -> None:
    root = Path(emulator_pkg.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) >= 10  # the scan really ran over the package
    bad = [hit for f in files for hit in _client_imports(f)]
    assert bad == []


def test_import_scan_catches_client_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from llama_index_gemini_embed._models import KNOWN_MODELS\n"
        "from .._tokens import estimate_tokens\n"
        "import llama_index_gemini_embed._errors\n"
        "from llama_index_gemini_embed.emulator import Emulator\n"
        "from ._facts import EMBEDDING_MODELS\n",
        encoding="utf-8",
    )
    assert [h.split(": ", 1)[1] for h in _client_imports(probe)] == [
        "llama_index_gemini_embed._models",
        "llama_index_gemini_embed._tokens",
        "llama_index_gemini_embed._errors",
    ]


# ---------------------------------------------------------------- usage the API reports
def test_embedding_answers_carry_usage_metadata(client: genai.Client) -> None:
    texts = ["Invoice 2026-12-01, total 1,234.56 EUR", "plain words here"]
    r = client.models.embed_content(
        model=E1, contents=[types.Content(parts=[types.Part(text=t)]) for t in texts]
    )
    usage = r.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == sum(count_tokens(t) for t in texts) == 26
    assert usage.prompt_tokens_details is not None
    assert [(d.modality, d.token_count) for d in usage.prompt_tokens_details] == [
        (types.MediaModality.TEXT, 26)
    ]


def test_batch_results_carry_token_count_per_item(emulator: Emulator) -> None:
    c = client_for(emulator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK marks batches as experimental
        job = c.batches.create_embeddings(
            model=E1,
            src=types.EmbeddingsBatchJobSource(
                inlined_requests=types.EmbedContentBatch(
                    contents=["alpha beta", "order 12345"],
                    config=types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT"),
                )
            ),
        )
    assert job.name is not None
    for _ in range(5):
        job = c.batches.get(name=job.name)
        if job.done:
            break
    assert job.dest is not None and job.dest.inlined_embed_content_responses is not None
    got = [
        (x.response.token_count if x.response else None)
        for x in job.dest.inlined_embed_content_responses
    ]
    assert got == [count_tokens("alpha beta"), count_tokens("order 12345")] == [2, 6]
    c.close()


# ---------------------------------------------------------------- what the API refuses
def test_request_payload_over_4_mib_is_refused_like_the_real_api(client: genai.Client) -> None:
    # 100 items of ~42 KB: each under the input limit, the request over 4,194,304 bytes.
    big = "word " * 8_500
    contents = [types.Content(parts=[types.Part(text=big)]) for _ in range(100)]
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E2, contents=contents)
    assert exc.value.code == 400 and exc.value.status == "INVALID_ARGUMENT"
    assert exc.value.message == "Request payload size exceeds the limit: 4194304 bytes."
    # Just under the cap is fine.
    ok = client.models.embed_content(model=E2, contents=contents[:90])
    assert ok.embeddings is not None and len(ok.embeddings) == 90
    assert 90 * len(big) < PAYLOAD_LIMIT_BYTES < 100 * len(big)


def test_retired_generation_model_answers_404_no_longer_available(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc.value.code == 404
    assert (exc.value.message or "").startswith(
        "This model models/gemini-2.5-flash is no longer available to new users."
    )
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model="gemini-3-pro-preview", contents="hi")
    assert exc.value.code == 404 and "is not found for API version" in (exc.value.message or "")
    # A current model answers.
    r = client.models.generate_content(model="gemini-2.5-flash-lite", contents="hi")
    assert r.candidates


@pytest.mark.parametrize("model", ["gemini-embedding-exp-03-07", "text-embedding-004"])
def test_shut_down_embedding_models_are_404(client: genai.Client, model: str) -> None:
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=model, contents="a")
    assert exc.value.code == 404 and exc.value.status == "NOT_FOUND"


def test_models_listing_has_no_retired_model(client: genai.Client) -> None:
    names = {m.name for m in client.models.list()}
    assert "models/gemini-2.5-flash" not in names
    assert {f"models/{E1}", f"models/{E2}", "models/gemini-2.5-flash-lite"} <= names


def test_embed_text_matches_the_server_for_long_numeric_text(client: genai.Client) -> None:
    # Truncation follows the emulator's own count (digits one token each).
    long = " ".join(str(1000 + i) for i in range(1000))  # 4,000 tokens > 2,048
    r = client.models.embed_content(model=E1, contents=long)
    assert r.embeddings is not None and r.embeddings[0].values == embed_text(long)
    assert r.usage_metadata is not None and r.usage_metadata.prompt_token_count == 4000


def test_samples_module_needs_no_client_code() -> None:
    from llama_index_gemini_embed.emulator import samples

    assert _client_imports(Path(samples.__file__)) == []
    assert io.BytesIO(samples.png_with_description("x")).read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["_tokens", "_facts", "_media", "samples", "_vectors", "_state"])
def test_docstring_examples_run(name: str) -> None:
    import doctest
    import importlib

    module = importlib.import_module(f"llama_index_gemini_embed.emulator.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 1 and result.failed == 0
