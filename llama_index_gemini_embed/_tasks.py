"""Task types, and how each model receives them (pure).

gemini-embedding-001 takes ``taskType`` (and ``title`` with RETRIEVAL_DOCUMENT) as request
fields; gemini-embedding-2 ignores both, so intent goes into the text as Google's prefixes:

    >>> wire_text("what is RAG?", "RETRIEVAL_QUERY", None, prefixes=True)
    'task: search result | query: what is RAG?'
    >>> wire_text("RAG combines...", "RETRIEVAL_DOCUMENT", "RAG", prefixes=True)
    'title: RAG | text: RAG combines...'
"""

from __future__ import annotations

from collections.abc import Sequence

from ._errors import ConfigurationError

__all__ = [
    "QUERY_TASK_PREFIXES",
    "TASK_TYPES",
    "normalise_task_type",
    "split_title",
    "wire_text",
]

TASK_TYPES: tuple[str, ...] = (
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
    "TASK_TYPE_UNSPECIFIED",
)

# gemini-embedding-2 prefixes (Google's gemini-embedding-2 page, cited in docs/gemini-api.md
# §1); the symmetric tasks use the query form on both sides.
QUERY_TASK_PREFIXES: dict[str, str] = {
    "RETRIEVAL_QUERY": "search result",
    "QUESTION_ANSWERING": "question answering",
    "FACT_VERIFICATION": "fact checking",
    "CODE_RETRIEVAL_QUERY": "code retrieval",
    "CLASSIFICATION": "classification",
    "CLUSTERING": "clustering",
    "SEMANTIC_SIMILARITY": "sentence similarity",
}


def normalise_task_type(value: str, field: str) -> str:
    """Upper-case and validate a task type name; ``field`` names the setting in errors."""
    name = value.strip().upper().replace("-", "_").replace(" ", "_")
    if name not in TASK_TYPES:
        raise ConfigurationError(
            f"Unknown task type {value!r} for {field}: use one of {', '.join(TASK_TYPES)}"
        )
    return name


def wire_text(text: str, task_type: str, title: str | None, *, prefixes: bool) -> str:
    """The text to send: unchanged for -001, with the task/title prefix for -2 models."""
    if not prefixes:
        return text
    if task_type == "RETRIEVAL_DOCUMENT":
        return f"title: {title or 'none'} | text: {text}"
    name = QUERY_TASK_PREFIXES.get(task_type)
    return f"task: {name} | query: {text}" if name else text


def split_title(text: str, keys: Sequence[str]) -> tuple[str, str | None]:
    r"""Move a document's title out of its LlamaIndex metadata header: ``(text, title)``.

        >>> split_title("title: Paris\nauthor: A\n\nThe tower...", ["title", "file_name"])
        ('author: A\n\nThe tower...', 'Paris')

    LlamaIndex's index paths (``VectorStoreIndex.from_documents``/``insert``/
    ``refresh_ref_docs``) hand the embedder only ``node.get_content(MetadataMode.EMBED)``:
    with the default templates, ``"key: value"`` lines, a blank line, then the content.
    The first non-empty ``keys`` line of that header (in ``keys`` order) becomes the API
    title and every ``keys`` line leaves the text, exactly as the node paths (``ingest()``,
    ``IngestionPipeline``, the Batch API) compute it, because they call this function too.
    Any other shape (custom templates, no header) is returned unchanged with no title, on
    every path alike.
    """
    if not keys:
        return text, None
    head, blank, body = text.partition("\n\n")
    if not blank:
        return text, None
    found: dict[str, str] = {}
    kept: list[str] = []
    for line in head.split("\n"):
        key, colon, value = line.partition(": ")
        if colon and key in keys and key not in found:
            found[key] = value.strip()
        else:
            kept.append(line)
    title = next((found[key] for key in keys if found.get(key)), None)
    if title is None:
        return text, None
    rest = "\n".join(kept).strip()
    return (f"{rest}\n\n{body}" if rest else body), title
