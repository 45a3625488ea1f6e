"""Every error this package raises, each saying what happened and what to do next.

* GeminiEmbedError
  x ConfigurationError (also ValueError): a setting is wrong; fix the arguments.
    - MissingAPIKeyError
    - EmptyInputError: ingest() was given nothing to read (no files, none matching, none readable).
    - BatchStateError: the batch state file is unreadable, or from another version or setup.
  x GeminiAPIError: the API refused or failed a request, after our retries.
    - InvalidAPIKeyError
    - UnknownModelError
    - QuotaExhaustedError: 429s persisted after every retry.
      · QuotaBlockedError: a 429 waiting cannot fix (spend cap, prepay, limit 0); a run
        stops on it at once. ``.kind`` says which.
        · DailyQuotaExceededError: the per-day quota is spent; retrying today is pointless.
    - TransientAPIError: retries were used up on 408/429/5xx, timeouts or dropped connections.
      · APIUnreachableError: no HTTP answer at all after every retry; a run stops on it.
    - UnexpectedAnswerError: the API answered in a shape the SDK could not read.
    - RerankAnswerError: the judge's answer was invalid twice (``failure_policy="raise"``).
  x InputError (also ValueError): a text or document cannot be embedded as given.
    - MediaError: a medium breaks the model's documented limits (or the model is text-only).
      · MediaFileUnavailableError (also GeminiAPIError): a Files API file a request names
        is gone (403: expired after 48 h, deleted, or another project's); fails its item only.
    - EmptyTextError
    - TextTooLongError
  x StoreError: the vector store refused an operation.
    - FingerprintMismatchError (also ValueError): the collection was built with another
      embedding setup.
    - DimensionMismatchError (also ValueError): a vector's length differs from the
      collection's.
    - StoreLockedError: another process is writing to this local store.
    - StoreUnavailableError: the Chroma server cannot be reached.

Messages never include the API key: build them from :func:`redact` when in doubt.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the report type is data only; importing it here would be a cycle
    from . import IngestReport

__all__ = [
    "APIUnreachableError",
    "BatchStateError",
    "ConfigurationError",
    "DailyQuotaExceededError",
    "DimensionMismatchError",
    "EmptyInputError",
    "EmptyTextError",
    "FingerprintMismatchError",
    "GeminiAPIError",
    "GeminiEmbedError",
    "InputError",
    "InvalidAPIKeyError",
    "MediaError",
    "MediaFileUnavailableError",
    "MissingAPIKeyError",
    "QuotaBlockedError",
    "QuotaExhaustedError",
    "RerankAnswerError",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TextTooLongError",
    "TransientAPIError",
    "UnexpectedAnswerError",
    "UnknownModelError",
    "redact",
]


class GeminiEmbedError(Exception):
    """Base class of every error raised by llama-index-gemini-embed."""

    report: IngestReport | None = None
    """Set by ``ingest()`` on the error that stopped a run: what was done before it."""


class ConfigurationError(GeminiEmbedError, ValueError):
    """A constructor argument or option is invalid."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was given and none is in the environment."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No Gemini API key: pass api_key=... or set GEMINI_API_KEY "
            "(or GOOGLE_API_KEY); for Vertex AI pass vertexai=True with project= and location="
        )


class EmptyInputError(ConfigurationError):
    """``ingest()`` was given nothing to read: no files, none matching, or none readable.

        except EmptyInputError as error:
            error.reason      # "no_files" | "no_matching_files" | "no_readable_files"
            error.paths       # the paths given
            error.extensions  # the extension filter given, if any

    The message speaks Python (``extensions=``); a command line can say the same in its
    own terms from these attributes.
    """

    reason: str
    paths: tuple[str, ...]
    extensions: tuple[str, ...] | None

    def __init__(
        self,
        message: str,
        *,
        reason: str = "no_files",
        paths: tuple[str, ...] = (),
        extensions: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.paths = paths
        self.extensions = extensions

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild = functools.partial(
            type(self), reason=self.reason, paths=self.paths, extensions=self.extensions
        )
        return (rebuild, (str(self),))


class BatchStateError(ConfigurationError):
    """The batch state file is unreadable, from another version, or from another setup."""


class GeminiAPIError(GeminiEmbedError):
    """The Gemini API answered with an error we do not retry, or retries ran out."""

    code: int | None
    """HTTP status code of the last answer (None: no answer, e.g. unreachable)."""
    status: str | None
    """Google's status name, e.g. ``RESOURCE_EXHAUSTED``."""

    def __init__(self, message: str, *, code: int | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class InvalidAPIKeyError(GeminiAPIError):
    """The API rejected the key."""

    key_source: str | None
    """Where the rejected key came from: ``GOOGLE_API_KEY``, ``GEMINI_API_KEY`` or
    ``api_key=`` (None when unknown)."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: str | None = None,
        key_source: str | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.key_source = key_source


class UnknownModelError(GeminiAPIError):
    """The API does not know the model (404)."""


class QuotaExhaustedError(GeminiAPIError):
    """A quota was exhausted and waiting did not help."""


class QuotaBlockedError(QuotaExhaustedError):
    """A 429 that waiting minutes cannot fix: nothing succeeds until the user acts (or the
    day/billing period turns), so a run stops at once instead of retrying."""

    kind: str
    """``per-day``, ``limit-0`` (model not on this tier), ``spend-cap`` or ``prepay``."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: str | None = None,
        kind: str = "per-day",
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.kind = kind


class DailyQuotaExceededError(QuotaBlockedError):
    """The per-day quota is spent: nothing will succeed until it resets."""


class TransientAPIError(GeminiAPIError):
    """A retryable failure persisted after every retry."""


class APIUnreachableError(TransientAPIError):
    """Every attempt of a request timed out or lost its connection: the API is unreachable."""

    url: str | None
    """``scheme://host:port`` that could not be reached, when known."""
    reason: str
    """Why, e.g. ``connection refused``, ``DNS lookup failed``, ``ReadTimeout``."""

    def __init__(self, message: str, *, url: str | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


class UnexpectedAnswerError(GeminiAPIError):
    """The API answered in a shape the SDK could not read (e.g. its ``KeyError: 'file'``)."""


class RerankAnswerError(GeminiAPIError):
    """The judge's answer was invalid twice for some candidates (``failure_policy="raise"``)."""


class InputError(GeminiEmbedError, ValueError):
    """A text or document cannot be embedded as given."""


class MediaError(InputError):
    """A media part cannot be embedded as given: wrong model, unsupported type, or over a
    per-item limit (raised before anything is sent)."""


class MediaFileUnavailableError(GeminiAPIError, MediaError):
    """A Files API file named by ``file_uri`` is gone: Google answers 403 "You do not have
    permission to access the File X or it may not exist." for a file that expired (files
    are kept 48 hours), was deleted, or belongs to another project.

        except MediaFileUnavailableError as error:
            error.file_name   # "files/abc123"

    Not a key problem, so it fails the item that names the file, never the whole run.
    Both a :class:`GeminiAPIError` (``code`` 403) and a :class:`MediaError`.
    """

    file_name: str
    """The file's resource name, ``files/ID``."""

    def __init__(
        self,
        message: str,
        *,
        file_name: str = "",
        code: int | None = 403,
        status: str | None = "PERMISSION_DENIED",
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.file_name = file_name

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild = functools.partial(
            type(self), file_name=self.file_name, code=self.code, status=self.status
        )
        return (rebuild, (str(self),))


class EmptyTextError(InputError):
    """An empty or whitespace-only text was passed for embedding."""


class TextTooLongError(InputError):
    """A text exceeds the model's input limit and the policy is to raise."""


class StoreError(GeminiEmbedError):
    """The vector store refused an operation."""


class FingerprintMismatchError(StoreError, ValueError):
    """The collection's embedding fingerprint differs from the embed model's."""


class DimensionMismatchError(StoreError, ValueError):
    """An embedding's length differs from the collection's vector dimension."""


class StoreLockedError(StoreError):
    """Another process holds the write lock of a local Chroma store."""


class StoreUnavailableError(StoreError):
    """The Chroma server cannot be reached."""


def redact(text: str, *secrets: str | None) -> str:
    """Replace every occurrence of each secret in ``text`` with ``***``.

    Strings shorter than 6 characters are not treated as secrets (real API keys are ~39):
    replacing them would mangle every message that happens to contain those letters.
    """
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text
