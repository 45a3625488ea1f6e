"""Run the emulator from a shell: prints its base URL, serves until SIGINT/SIGTERM.

    python -m llama_index_gemini_embed.emulator --port 8765 --api-key KEY \
        --items-per-minute 100 --window-seconds 1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._server import DEFAULT_API_KEY, Emulator, serve_forever
from ._state import QuotaConfig

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (reusable by the project's own CLI)."""
    p = argparse.ArgumentParser(
        prog="python -m llama_index_gemini_embed.emulator",
        description="Offline Gemini API emulator (embeddings, countTokens, generateContent, "
        "Batch API, Files API).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"accepted key (repeatable; default {DEFAULT_API_KEY!r})",
    )
    p.add_argument("--items-per-minute", type=int)
    p.add_argument("--tokens-per-minute", type=int)
    p.add_argument("--items-per-day", type=int)
    p.add_argument("--generate-requests-per-minute", type=int)
    p.add_argument("--window-seconds", type=float, default=60.0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strict-length", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, serve, and return the exit code."""
    args = build_parser().parse_args(argv)
    quota = QuotaConfig(
        items_per_minute=args.items_per_minute,
        tokens_per_minute=args.tokens_per_minute,
        items_per_day=args.items_per_day,
        window_seconds=args.window_seconds,
        generate_requests_per_minute=args.generate_requests_per_minute,
    )

    def ready(emu: Emulator) -> None:
        print(emu.base_url, flush=True)
        print(f"gemini emulator listening on {emu.base_url} (Ctrl-C to stop)", file=sys.stderr)

    serve_forever(
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_keys or (DEFAULT_API_KEY,)),
        quota=quota,
        latency=args.latency,
        jitter=args.jitter,
        seed=args.seed,
        strict_length=args.strict_length,
        on_ready=ready,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
