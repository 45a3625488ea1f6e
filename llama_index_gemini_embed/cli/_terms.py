"""Library messages in command-line terms: ``--collection docs``, not ``collection_name=``.

The library's errors name Python parameters (``output_dimensionality=64 is out of range``);
a CLI user never wrote those, so :func:`in_cli_terms` rewrites each hint into the option
that sets it:

    in_cli_terms("Use for example collection_name='my-docs'.", key_option=None)
    # 'Use for example --collection my-docs.'

Every rewrite is tested through the command that produces the message (tests/cli).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["in_cli_terms"]

Rewrite = tuple["re.Pattern[str]", "str | Callable[[re.Match[str]], str]"]

_QUOTED = r"""(?:'([^']*)'|"([^"]*)")"""


def _quoted(match: re.Match[str], first: int = 1) -> str:
    value = match.group(first)
    return value if value is not None else match.group(first + 1)


_REWRITES: tuple[Rewrite, ...] = (
    # The over-length warning: the CLI has no on_overlength option (it always truncates).
    (
        re.compile(
            r"\(counted in usage\.truncated; shown once; on_overlength='raise' refuses such "
            r"texts instead\)"
        ),
        "(shown once)",
    ),
    # The local-store lock: serve the directory and point every command at the server.
    (
        re.compile(
            r"open it from every process with ChromaStore\(\.\.\., host='([^']*)', port=(\d+)\)"
        ),
        r"pass --server http://\1:\2 to every gemini-embed command",
    ),
    (re.compile(r"or fix host=/port=\."), "or fix --server URL."),
    (re.compile(r"collection_name=" + _QUOTED), lambda m: f"--collection {_quoted(m)}"),
    (re.compile(r"\bpath=" + _QUOTED), lambda m: f"--path {_quoted(m)}"),
    (re.compile(r" \(client\.delete_collection\([^)]*\)\)"), ""),
    (re.compile(r", or None for the default"), ", or leave --dimension out for the default"),
    (re.compile(r"output_dimensionality=(\S+)"), r"--dimension \1"),
    (re.compile(r"model_name=" + _QUOTED), lambda m: f"--model {_quoted(m)}"),
    (
        re.compile(r"or list them with client\.models\.list\(\)"),
        "or see https://ai.google.dev/gemini-api/docs/embeddings",
    ),
    (re.compile(r"the address \(base_url\)"), "the address (--base-url)"),
    (re.compile(r"and base_url, or raise timeout=;"), "and --base-url;"),
    (
        re.compile(r"Set items_per_minute= / tokens_per_minute= to your tier's limits"),
        "Pass --rpm / --tpm with your tier's limits",
    ),
    (re.compile(r"items_per_minute / tokens_per_minute, or --rpm / --tpm,"), "--rpm / --tpm"),
    (re.compile(r"\b(?:items|requests)_per_minute=?"), "--rpm"),
    (re.compile(r"\btokens_per_minute=?"), "--tpm"),
    (re.compile(r"\b(?:items|requests)_per_day=?"), "--rpd"),
    (re.compile(r"\bmax_concurrency=?"), "--concurrency"),
    (re.compile(r"\bembed_batch_size=?"), "--batch-size"),
    (re.compile(r"\bmax_retries=?"), "--max-retries"),
    (re.compile(r"\bmedia_upload_timeout= \(seconds\)"), "--media-upload-timeout SECONDS"),
    (re.compile(r"\braise memory_limit_ids\b"), "raise --memory-limit-ids N"),
    (
        re.compile(r"extensions=\[([^\]]*)\]"),
        lambda m: "--ext " + " ".join(v.strip(" '\"") for v in m.group(1).split(",")),
    ),
    (re.compile(r"change extensions= or leave it out"), "change --ext or leave it out"),
    (re.compile(r"(?:sync|delete_missing)=True with an empty input"), "--sync with no input"),
    (
        re.compile(r"Use store\.clear\(\) to empty it on purpose\."),
        "To empty it on purpose, delete the collection.",
    ),
)


def in_cli_terms(message: str, *, key_option: str | None) -> str:
    """``message`` with Python parameter hints replaced by the CLI options that set them.

    ``key_option`` names where this command took its key (``--api-key``, or the variable
    given to ``--api-key-env``); it replaces the library's ``api_key=``.
    """
    for pattern, replacement in _REWRITES:
        message = pattern.sub(replacement, message)
    if key_option is not None:
        message = message.replace("api_key=...", key_option).replace("api_key=", key_option)
    return message
