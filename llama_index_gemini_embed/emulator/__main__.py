"""Run the emulator from a shell: prints its base URL, serves until SIGINT/SIGTERM.

    python -m llama_index_gemini_embed.emulator --port 8765 --api-key KEY \
        --items-per-minute 100 --window-seconds 1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._server import DEFAULT_API_KEY, Emulator, serve_forever
from ._state import QuotaConfig

__all__ = ["EmulatorLaunch", "add_emulator_arguments", "build_parser", "emulator_from_args", "main"]


@dataclass(frozen=True)
class EmulatorLaunch:
    """Everything a launcher needs: ``serve_forever(**launch.serve_kwargs(), on_ready=…)``."""

    host: str
    port: int
    api_keys: tuple[str, ...]
    quota: QuotaConfig
    latency: float
    jitter: float
    seed: int
    strict_length: bool

    def serve(self, *, on_ready: Callable[[Emulator], None] | None = None) -> None:
        """Serve until SIGINT/SIGTERM; ``on_ready(emu)`` once the port is bound."""
        serve_forever(
            host=self.host,
            port=self.port,
            api_keys=self.api_keys,
            quota=self.quota,
            latency=self.latency,
            jitter=self.jitter,
            seed=self.seed,
            strict_length=self.strict_length,
            on_ready=on_ready,
        )

    def emulator(self) -> Emulator:
        """An unstarted :class:`Emulator` with these settings (``with launch.emulator() as e``)."""
        return Emulator(
            api_keys=self.api_keys,
            host=self.host,
            port=self.port,
            quota=self.quota,
            latency=self.latency,
            jitter=self.jitter,
            seed=self.seed,
            strict_length=self.strict_length,
        )


def build_parser() -> argparse.ArgumentParser:
    """The standalone launcher's parser: :func:`add_emulator_arguments` on a new parser."""
    p = argparse.ArgumentParser(
        prog="python -m llama_index_gemini_embed.emulator",
        description="Offline Gemini API emulator (embeddings, countTokens, generateContent, "
        "Batch API, Files API).",
    )
    add_emulator_arguments(p)
    return p


def add_emulator_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the emulator's options to ``p`` (``gemini-embed emulator`` reuses this list).

    parser = add_emulator_arguments(subparsers.add_parser("emulator"))
    launch = emulator_from_args(parser.parse_args(argv))
    launch.serve(on_ready=lambda emu: print(emu.base_url))
    """
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


def emulator_from_args(args: argparse.Namespace) -> EmulatorLaunch:
    """The launch settings parsed by :func:`add_emulator_arguments`."""
    return EmulatorLaunch(
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_keys or (DEFAULT_API_KEY,)),
        quota=QuotaConfig(
            items_per_minute=args.items_per_minute,
            tokens_per_minute=args.tokens_per_minute,
            items_per_day=args.items_per_day,
            window_seconds=args.window_seconds,
            generate_requests_per_minute=args.generate_requests_per_minute,
        ),
        latency=args.latency,
        jitter=args.jitter,
        seed=args.seed,
        strict_length=args.strict_length,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, serve, and return the exit code."""
    launch = emulator_from_args(build_parser().parse_args(argv))

    def ready(emu: Emulator) -> None:
        print(emu.base_url, flush=True)
        print(f"gemini emulator listening on {emu.base_url} (Ctrl-C to stop)", file=sys.stderr)

    launch.serve(on_ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
