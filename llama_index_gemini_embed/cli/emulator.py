"""``gemini-embed emulator``: serve the offline Gemini API emulator in the foreground.

    gemini-embed emulator --port 8765

It prints its base URL on stdout (for scripts) and, on stderr, the key it accepts and the
exact flags and environment variables that point the CLI and the library at it. The options
are the emulator's own (``python -m llama_index_gemini_embed.emulator``), so the two
launchers cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys

from ._common import EXIT_OK, PROG, Commands, add_command, add_debug


def register(commands: Commands) -> None:
    """Add ``emulator`` with the emulator launcher's own option list."""
    from llama_index_gemini_embed.emulator.__main__ import add_emulator_arguments

    emulator = add_command(
        commands,
        "emulator",
        run=run,
        help="serve the offline Gemini API emulator in the foreground",
        description="Serve the offline Gemini API emulator until Ctrl-C. It prints the key "
        "it accepts and how to point gemini-embed (--base-url) and the library "
        "(GOOGLE_GEMINI_BASE_URL, GEMINI_API_KEY) at it.",
    )
    add_debug(emulator)
    add_emulator_arguments(emulator)


def instructions(base_url: str, api_keys: tuple[str, ...], *, default_key: str) -> str:
    """What ``gemini-embed emulator`` prints on stderr once it listens (tested verbatim)."""
    if api_keys == (default_key,):
        key, key_note = default_key, "its built-in test key, not a Gemini key"
    else:
        key, key_note = "KEY", "the key you passed with --api-key (not printed)"
    return "\n".join(
        [
            f"{PROG}: Gemini API emulator listening on {base_url} (Ctrl-C to stop)",
            f"  API key: {key}  ({key_note})",
            "  point the CLI and the library at it (google-genai reads both variables):",
            f"    export GOOGLE_GEMINI_BASE_URL={base_url}",
            f"    export GEMINI_API_KEY={key}",
            "  or per command:",
            f"    GEMINI_API_KEY={key} {PROG} ingest ./docs --base-url {base_url}",
            f"    GeminiEmbedding(api_key={key!r}, base_url={base_url!r})",
        ]
    )


def run(args: argparse.Namespace) -> int:
    from llama_index_gemini_embed.emulator import DEFAULT_API_KEY, Emulator
    from llama_index_gemini_embed.emulator.__main__ import emulator_from_args

    launch = emulator_from_args(args)

    def ready(emu: Emulator) -> None:
        print(emu.base_url, flush=True)
        text = instructions(emu.base_url, launch.api_keys, default_key=DEFAULT_API_KEY)
        print(text, file=sys.stderr, flush=True)

    launch.serve(on_ready=ready)
    return EXIT_OK
