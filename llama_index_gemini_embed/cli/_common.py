"""What every ``gemini-embed`` command shares: exit codes, the one-line error parser, the
store and model options, the API key, opening the store and building the embedding model.

Each command lives in its own module (``ingest``, ``batch``, ``query``, ``info``,
``emulator``, ``demo``) with ``register(commands)`` adding its subparser and ``run(args)``
doing the work; :mod:`.app` assembles them and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

if TYPE_CHECKING:
    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._store.store import ChromaStore

PROG = "gemini-embed"

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_QUOTA = 4
EXIT_STORE = 5
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_PARTIAL: "partial failure: some chunks failed (listed; re-run to retry them)",
    EXIT_USAGE: "usage or configuration error (bad option, missing path or API key)",
    EXIT_API: "Gemini API error (invalid key, unknown model, request refused)",
    EXIT_QUOTA: "quota exhausted (e.g. the per-day quota): progress is kept, resume later",
    EXIT_STORE: "store error: locked, unreachable, empty, or fingerprint mismatch",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): progress is kept, re-run to resume",
}

# One key rule everywhere, google-genai's: GOOGLE_API_KEY wins when both are set. Same
# as _client.KEY_ENV_VARS (not imported: that would load the SDK before argument parsing).
KEY_ENV_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")

#: What a command runs: parsed arguments in, exit code out.
Handler = Callable[[argparse.Namespace], int]
#: The top-level ``add_subparsers()`` object each command module registers itself with.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(Exception):
    """A command-line mistake found after parsing (exit code 2)."""


#: Values that may be keys, kept out of argparse's messages (set by :func:`main`).
ARGV_SECRETS: list[str] = []


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``gemini-embed: error: ...`` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        from llama_index_gemini_embed._errors import redact

        command = self.prog if self.prog != PROG else PROG
        message = mask_unrecognized(redact(message, *ARGV_SECRETS))
        print_error(f"{message} (see `{command} --help`)")
        raise SystemExit(EXIT_USAGE)


def mask_unrecognized(message: str) -> str:
    """Keep the names of unrecognized options, never their values (a mistyped --api-key)."""
    prefix = "unrecognized arguments: "
    if not message.startswith(prefix):
        return message
    words, previous = [], ""
    for word in message.removeprefix(prefix).split(" "):
        if word.startswith("-") and "=" in word:
            words.append(word.partition("=")[0] + "=***")
        elif not word.startswith("-") and previous.startswith("-") and "=" not in previous:
            words.append("***")
        else:
            words.append(word)
        previous = word
    return prefix + " ".join(words)


def argv_secrets(argv: Sequence[str]) -> list[str]:
    """What may be a key in ``argv``: the value of any option naming a key, whether it is
    ``--api-key``, misplaced before the command, or mistyped (``--api-kye``), since argparse
    echoes such values in its errors; and the keys in the environment."""
    found = [os.environ.get(var, "") for var in KEY_ENV_VARS]
    for i, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if not name.startswith("-") or "key" not in name.lower() or name == "--api-key-env":
            continue
        if equals:
            found.append(value)
        elif i + 1 < len(argv):
            found.append(argv[i + 1])
    return sorted({secret for secret in found if secret.strip()}, key=len, reverse=True)


def print_error(message: str) -> None:
    """Print ``gemini-embed: error: MESSAGE`` as one line on stderr."""
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- exit codes


def exit_code_for(error: BaseException) -> int:
    """The documented exit code for an exception (see :data:`EXIT_CODES`)."""
    return code_for_class(type(error))


def code_for_class(cls: type[BaseException]) -> int:
    """The exit code for an exception class: our hierarchy first, then where it came from."""
    from llama_index_gemini_embed._errors import (
        ConfigurationError,
        GeminiAPIError,
        InputError,
        QuotaExhaustedError,
        StoreError,
    )

    if issubclass(cls, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if issubclass(cls, UsageError | ConfigurationError | InputError):
        return EXIT_USAGE
    if issubclass(cls, QuotaExhaustedError):
        return EXIT_QUOTA
    if issubclass(cls, GeminiAPIError):
        return EXIT_API
    if issubclass(cls, StoreError):
        return EXIT_STORE
    if issubclass(cls, ValueError):  # a setting refused by LlamaIndex/pydantic validation
        return EXIT_USAGE
    # Anything else escaping a command: an SDK/transport failure or a Chroma one.
    return EXIT_API if cls.__module__.startswith(("google.", "httpx", "aiohttp")) else EXIT_STORE


def code_for_type_name(name: str) -> int:
    """The exit code for an exception class of ``_errors`` named ``name`` (else API error)."""
    from llama_index_gemini_embed import _errors

    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return code_for_class(cls)
    return EXIT_API


# ----------------------------------------------------------------------------- parser pieces


def epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    return (
        "exit codes:\n"
        f"{codes}\n\n"
        "The API key is read from GEMINI_API_KEY (or GOOGLE_API_KEY, or --api-key-env NAME)\n"
        "and never printed. Without a key, `gemini-embed demo` runs on a local emulator."
    )


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks on errors",
    )


def add_store_options(parser: argparse.ArgumentParser) -> None:
    add_debug(parser)
    group = parser.add_argument_group("store")
    group.add_argument(
        "--collection", default="docs", help="Chroma collection name (default: %(default)s)"
    )
    where = group.add_mutually_exclusive_group()
    where.add_argument("--path", default=None, help="local Chroma directory (default: ./chroma)")
    where.add_argument(
        "--server", metavar="URL", help="a `chroma run` server, e.g. http://localhost:8000"
    )


def add_model_options(parser: argparse.ArgumentParser, *, quota: bool) -> None:
    group = parser.add_argument_group("embedding model")
    group.add_argument(
        "--model",
        help="Gemini embedding model (default: the collection's, else gemini-embedding-001)",
    )
    group.add_argument(
        "--dimension",
        type=int,
        help="output dimensionality 128-3072 (default: the collection's, else the model's)",
    )
    group.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="read the API key from this environment variable (default: GEMINI_API_KEY, "
        "then GOOGLE_API_KEY)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key itself (discouraged: visible in `ps`; prefer the environment)",
    )
    group.add_argument("--base-url", metavar="URL", help="API base URL, e.g. a local emulator")
    if quota:
        group.add_argument(
            "--items-per-minute",
            "--rpm",
            dest="rpm",
            type=int,
            metavar="N",
            help="quota: embedded items per minute",
        )
        group.add_argument("--tpm", type=int, metavar="N", help="quota: tokens per minute")
        group.add_argument(
            "--items-per-day",
            "--rpd",
            dest="rpd",
            type=int,
            metavar="N",
            help="quota: embedded items per day",
        )
        group.add_argument(
            "--concurrency", type=int, default=8, metavar="N", help="requests in flight"
        )
        group.add_argument(
            "--batch-size", type=int, default=100, metavar="N", help="texts per request"
        )
        group.add_argument(
            "--max-retries", type=int, default=8, metavar="N", help="retries per request"
        )


def add_command(
    commands: Commands, name: str, *, help: str, description: str, run: Handler
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` with the common epilog (exit codes); ``run`` handles it."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=description, epilog=epilog(), formatter_class=formatter
    )
    parser.set_defaults(run=run)
    return parser


# ----------------------------------------------------------------------------- helpers


def api_key(args: argparse.Namespace) -> str | None:
    """The key from --api-key, --api-key-env or the default variables (None: not set)."""
    if getattr(args, "api_key", None) and getattr(args, "api_key_env", None):
        raise UsageError("--api-key and --api-key-env both name a key: pass only one of them")
    if getattr(args, "api_key", None):
        return str(args.api_key)
    name = getattr(args, "api_key_env", None)
    if name:
        value = os.environ.get(name)
        if not value:
            raise UsageError(f"--api-key-env {name}: the environment variable is not set")
        return value
    for var in KEY_ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value
    return None


def key_option(args: argparse.Namespace) -> str:
    """Where this command's key came from, in CLI terms, for messages about the key."""
    name = getattr(args, "api_key_env", None)
    return str(name) if name and not getattr(args, "api_key", None) else "--api-key"


def require_key(args: argparse.Namespace) -> str | None:
    """The API key, checked before anything else is opened (None: Vertex AI from env)."""
    from llama_index_gemini_embed._errors import MissingAPIKeyError

    key = api_key(args)
    vertex = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("1", "true")
    if key is None and not vertex:
        raise MissingAPIKeyError(
            "No Gemini API key: set GEMINI_API_KEY (or name another variable with "
            "--api-key-env); try `gemini-embed demo`, which runs offline without one"
        )
    return key


def open_store(args: argparse.Namespace, *, must_exist: bool) -> ChromaStore:
    from llama_index_gemini_embed._errors import StoreError
    from llama_index_gemini_embed._store.store import ChromaStore

    # A command that must find the store only reads it: read_only takes no lock, so `info`
    # and `query` work while another process writes (issue 11 item 8), and creates nothing.
    if args.server:
        store = ChromaStore.from_url(
            args.server, collection_name=args.collection, read_only=must_exist
        )
        where = args.server
    else:
        path = args.path or "./chroma"
        if must_exist and not Path(path).is_dir():
            raise StoreError(
                f"No Chroma store at {path!r}: run `gemini-embed ingest PATH --path {path}` "
                "first, or pass --path/--server"
            )
        store = ChromaStore(args.collection, path=path, read_only=must_exist)
        where = path
    if must_exist and store.fingerprint is None and store.count() == 0:
        store.close()  # an existing but empty collection: leave it as it is
        raise StoreError(
            f"Collection {args.collection!r} at {where} is empty: "
            "ingest something first (gemini-embed ingest PATH --collection NAME)"
        )
    return store


def embed_model(
    args: argparse.Namespace, store: ChromaStore, key: str | None, **extra: Any
) -> GeminiEmbedding:
    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._models import DEFAULT_MODEL

    recorded = store.fingerprint or {}
    model = args.model or recorded.get("model") or DEFAULT_MODEL
    dimension = args.dimension
    if (
        dimension is None
        and recorded.get("dimension") is not None
        and model == recorded.get("model")
    ):
        dimension = int(recorded["dimension"])
    settings: dict[str, Any] = {"model_name": str(model), "output_dimensionality": dimension}
    if key is not None:
        settings["api_key"] = key
    if args.base_url:
        settings["base_url"] = args.base_url
    settings.update({k: v for k, v in extra.items() if v is not None})
    return GeminiEmbedding(**settings)


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def snippet(text: str, width: int = 240) -> str:
    flat = one_line(text)
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"
