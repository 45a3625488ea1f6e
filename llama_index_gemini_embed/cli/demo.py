"""``gemini-embed demo``: ingest the bundled sample corpus and answer a few questions.

gemini-embed demo            # Gemini when GEMINI_API_KEY is set, else a local emulator
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import textwrap
from collections.abc import Iterator

from ._common import EXIT_OK, KEY_ENV_VARS, Commands, UsageError, add_command, add_debug
from .query import Result, format_result, retrieve

DEMO_QUESTIONS: tuple[str, ...] = (
    "How do I encrypt my notebooks?",
    "What does the Team plan cost per month?",
    "How can I export a note to PDF?",
    "Why does sync fail with error K-409?",
)


def register(commands: Commands) -> None:
    """Add ``demo`` and its options."""
    demo = add_command(
        commands,
        "demo",
        run=run,
        help="ingest the bundled sample corpus and answer a few questions end to end",
        description="Ingest the bundled sample corpus (docs of a fictional app) and answer "
        "built-in questions: retrieve, rerank, print the top passages. Uses Gemini when "
        "GEMINI_API_KEY is set, otherwise a local emulator started in-process.",
    )
    add_debug(demo)
    demo.add_argument("--path", help="keep the store in this directory (default: a temp dir)")
    demo.add_argument("--top-k", type=int, default=2, metavar="K", help="passages per question")
    demo.add_argument("--no-rerank", action="store_true", help="skip the reranking step")


@contextlib.contextmanager
def _demo_backend() -> Iterator[tuple[str, str | None, str]]:
    """(api key, base url or None, description): Gemini if a key is set, else an emulator."""
    for var in KEY_ENV_VARS:
        key = os.environ.get(var)
        if key:
            yield key, None, f"Gemini API (key from {var})"
            return
    from llama_index_gemini_embed.emulator import Emulator

    with Emulator() as emu:
        yield emu.api_key, emu.base_url, f"local Gemini emulator at {emu.base_url}"


def run(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._ingest import ingest, sample_corpus_dir
    from llama_index_gemini_embed._store.store import ChromaStore

    if args.top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {args.top_k}")
    with contextlib.ExitStack() as stack:
        key, base_url, backend = stack.enter_context(_demo_backend())
        if base_url is not None:
            print(
                "No GEMINI_API_KEY set: running on the local emulator (offline; deterministic "
                "lexical vectors, not real Gemini quality). Set GEMINI_API_KEY to use Gemini."
            )
        print(f"backend: {backend}")
        path = args.path or stack.enter_context(tempfile.TemporaryDirectory(prefix="gemini-demo-"))
        embed = GeminiEmbedding(api_key=key, base_url=base_url, output_dimensionality=768)
        store = ChromaStore("kestrel-demo", path=path, embed_model=embed)
        stack.callback(store.close)
        corpus = sample_corpus_dir()
        print(f"ingesting the sample corpus ({corpus}) into {path} ...")
        report = ingest(corpus, store=store, embed_model=embed, show_progress=False)
        print(report.summary())
        rerank = not args.no_rerank
        for question in DEMO_QUESTIONS:
            print()
            print(f"Q: {question}")

            def answer(rerank: bool, question: str = question) -> tuple[list[Result], bool]:
                return retrieve(
                    store,
                    embed,
                    question,
                    args.top_k,
                    None,
                    rerank=rerank,
                    key=key,
                    base_url=base_url,
                )

            try:
                results, reranked = answer(rerank)
            except UsageError:
                rerank = False
                print("   (reranker unavailable: showing retrieval order)")
                results, reranked = answer(False)
            for rank, result in enumerate(results, 1):
                print(textwrap.indent(format_result(rank, result, reranked), "   "))
        usage = embed.usage
        print()
        print(
            f"done: {usage.requests} embedding requests, ~{usage.tokens:,} tokens, "
            f"~${usage.cost_usd:.4f}"
        )
    return EXIT_OK
