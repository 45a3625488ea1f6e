"""Task types, and how each model receives them (pure).

gemini-embedding-001 takes ``taskType`` (and ``title`` with RETRIEVAL_DOCUMENT) as request
fields; gemini-embedding-2 ignores both, so intent goes into the text as Google's prefixes:

    >>> wire_text("what is RAG?", "RETRIEVAL_QUERY", None, prefixes=True)
    'task: search result | query: what is RAG?'
    >>> wire_text("RAG combines...", "RETRIEVAL_DOCUMENT", "RAG", prefixes=True)
    'title: RAG | text: RAG combines...'
"""

from __future__ import annotations

from ._errors import ConfigurationError

__all__ = ["QUERY_TASK_PREFIXES", "TASK_TYPES", "normalise_task_type", "wire_text"]

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

# gemini-embedding-2 prefixes (shared/docs/gemini-api.md §1.4); the symmetric tasks use the
# query form on both sides.
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
