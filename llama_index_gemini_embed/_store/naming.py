"""Chroma names and addresses: collection names Chroma accepts, server URLs.

validate_collection_name("docs")          # -> "docs", or ConfigurationError saying what to do
suggest_collection_name("my docs")        # -> "my-docs"
parse_server_url("http://localhost:8000") # -> ("localhost", 8000, False)

Pure functions, no I/O; each is unit-tested as a table of cases.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from llama_index_gemini_embed._errors import ConfigurationError

__all__ = ["parse_server_url", "suggest_collection_name", "validate_collection_name"]

_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def suggest_collection_name(raw: object) -> str:
    """A valid Chroma collection name close to ``raw`` (used in error messages)."""
    text = re.sub(r"[^a-zA-Z0-9._-]+", "-", str(raw))
    text = re.sub(r"\.{2,}", ".", text)
    text = text.strip("._-")[:512].strip("._-")
    if _is_ipv4(text):
        text = text.replace(".", "-")
    if len(text) < 3:
        text = f"{text}-docs" if text else "docs"
    return text


def validate_collection_name(name: object) -> str:
    """Return ``name`` if Chroma accepts it, else raise ConfigurationError saying what to do.

    Chroma's rule: 3-512 characters from ``[a-zA-Z0-9._-]``, starting and ending with a
    letter or digit, without two consecutive periods, and not an IPv4 address.
    """
    if isinstance(name, str) and _NAME_RE.fullmatch(name):
        if ".." in name:
            problem = "Chroma refuses two consecutive periods ('..') in a name"
        elif _is_ipv4(name):
            problem = "Chroma refuses names that are IPv4 addresses"
        else:
            return name
    else:
        problem = (
            "Chroma accepts 3-512 characters from [a-zA-Z0-9._-] that start and end with a "
            "letter or digit"
        )
    raise ConfigurationError(
        f"Invalid Chroma collection name {name!r}: {problem}. "
        f"Use for example collection_name={suggest_collection_name(name)!r}."
    )


def parse_server_url(url: str) -> tuple[str, int, bool]:
    """Split ``http(s)://host:port`` into ``(host, port, ssl)``; default ports 8000 / 443."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"Cannot read a Chroma server address from {url!r}: "
            "use a URL such as 'http://localhost:8000'."
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"Chroma server URL {url!r} has a path, query or fragment; "
            "give only scheme, host and port, e.g. 'http://localhost:8000'."
        )
    ssl = parts.scheme == "https"
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"Invalid port in Chroma server URL {url!r}: {exc}") from exc
    return parts.hostname, port if port is not None else (443 if ssl else 8000), ssl
