"""``gemini-embed doctor``: prove your key, models and endpoints in a few tiny calls.

    gemini-embed doctor                        # the default model, the default reranker
    gemini-embed doctor --model gemini-embedding-2 --dimension 768 --no-rerank

Prints one row per check; exits 3 (API error) with the fix under each failed row.
"""

from __future__ import annotations

import argparse

from ._common import (
    EXIT_API,
    EXIT_OK,
    Commands,
    add_command,
    add_debug,
    add_model_options,
    key_option,
    print_error,
    require_key,
)
from ._terms import in_cli_terms


def register(commands: Commands) -> None:
    """Add ``doctor`` and its options."""
    doctor = add_command(
        commands,
        "doctor",
        run=run,
        help="check your key, models and APIs with a few tiny calls",
        description="Check the setup on your own key with a few tiny calls: key valid, the "
        "model reachable, dimension and norm, task types honoured, real token count vs our "
        "estimate, Batch API and Files API reachable (list only), the reranker answering "
        "valid JSON. Exit 3 with the fix when a row fails.",
    )
    add_debug(doctor)
    add_model_options(doctor, quota=False)
    doctor.add_argument(
        "--rerank-model", metavar="MODEL", help="judge model to check (default: the reranker's)"
    )
    doctor.add_argument("--no-rerank", action="store_true", help="skip the reranker check")


def run(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed._doctor import doctor
    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._models import DEFAULT_MODEL
    from llama_index_gemini_embed._rerank.postprocessor import DEFAULT_RERANK_MODEL

    key = require_key(args)
    embed = GeminiEmbedding(
        model_name=args.model or DEFAULT_MODEL,
        output_dimensionality=args.dimension,
        api_key=key,
        base_url=args.base_url,
        max_retries=1,
    )
    rerank_model = None if args.no_rerank else (args.rerank_model or DEFAULT_RERANK_MODEL)
    report = doctor(embed, rerank_model=rerank_model)
    print(in_cli_terms(report.table(), key_option=key_option(args)))
    if report.ok:
        return EXIT_OK
    names = ", ".join(check.name for check in report.failures)
    print_error(f"{len(report.failures)} check(s) failed ({names}): see the fix under each")
    return EXIT_API
