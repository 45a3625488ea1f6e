"""``gemini-embed emulator``: serve the offline Gemini API emulator in the foreground.

gemini-embed emulator --port 8765
"""

from __future__ import annotations

import argparse
import sys

from ._common import EXIT_OK, PROG, Commands, add_command, add_debug


def register(commands: Commands) -> None:
    """Add ``emulator`` and its options."""
    emulator = add_command(
        commands,
        "emulator",
        run=run,
        help="serve the offline Gemini API emulator in the foreground",
        description="Serve the offline Gemini API emulator until Ctrl-C. Point clients at it "
        "with --base-url (or GOOGLE_GEMINI_BASE_URL).",
    )
    add_debug(emulator)
    emulator.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    emulator.add_argument(
        "--port", type=int, default=8765, help="0 picks a free port (default: %(default)s)"
    )
    emulator.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted key (repeatable; default: the emulator's built-in key)",
    )
    emulator.add_argument("--items-per-minute", type=int, metavar="N", help="quota")
    emulator.add_argument("--tokens-per-minute", type=int, metavar="N", help="quota")
    emulator.add_argument("--items-per-day", type=int, metavar="N", help="quota")
    emulator.add_argument(
        "--window-seconds", type=float, default=60.0, help="length of a quota 'minute'"
    )
    emulator.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    emulator.add_argument("--jitter", type=float, default=0.0, help="extra random seconds")
    emulator.add_argument("--seed", type=int, default=0, help="seed for faults and jitter")


def run(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed.emulator import (
        DEFAULT_API_KEY,
        Emulator,
        QuotaConfig,
        serve_forever,
    )

    quota = QuotaConfig(
        items_per_minute=args.items_per_minute,
        tokens_per_minute=args.tokens_per_minute,
        items_per_day=args.items_per_day,
        window_seconds=args.window_seconds,
    )

    def ready(emu: Emulator) -> None:
        print(emu.base_url, flush=True)
        print(
            f"{PROG}: Gemini API emulator listening on {emu.base_url} (Ctrl-C to stop); "
            f"use --base-url {emu.base_url}",
            file=sys.stderr,
            flush=True,
        )

    serve_forever(
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_keys or (DEFAULT_API_KEY,)),
        quota=quota,
        latency=args.latency,
        jitter=args.jitter,
        seed=args.seed,
        on_ready=ready,
    )
    return EXIT_OK
