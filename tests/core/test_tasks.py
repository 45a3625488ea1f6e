"""Task types and gemini-embedding-2 prefixes (`_tasks`)."""

from __future__ import annotations

import pytest

from llama_index_gemini_embed._errors import ConfigurationError
from llama_index_gemini_embed._tasks import normalise_task_type, wire_text


@pytest.mark.parametrize(
    ("task", "title", "expected"),
    [
        ("RETRIEVAL_QUERY", None, "task: search result | query: hi"),
        ("QUESTION_ANSWERING", None, "task: question answering | query: hi"),
        ("FACT_VERIFICATION", None, "task: fact checking | query: hi"),
        ("CODE_RETRIEVAL_QUERY", None, "task: code retrieval | query: hi"),
        ("CLASSIFICATION", None, "task: classification | query: hi"),
        ("CLUSTERING", None, "task: clustering | query: hi"),
        ("SEMANTIC_SIMILARITY", None, "task: sentence similarity | query: hi"),
        ("RETRIEVAL_DOCUMENT", "Doc", "title: Doc | text: hi"),
        ("RETRIEVAL_DOCUMENT", None, "title: none | text: hi"),
        ("TASK_TYPE_UNSPECIFIED", None, "hi"),
    ],
)
def test_gemini_embedding_2_prefixes(task, title, expected):
    assert wire_text("hi", task, title, prefixes=True) == expected
    assert wire_text("hi", task, title, prefixes=False) == "hi"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("retrieval_query", "RETRIEVAL_QUERY"), ("Semantic-Similarity", "SEMANTIC_SIMILARITY")],
)
def test_normalise_task_type(value, expected):
    assert normalise_task_type(value, "query_task_type") == expected


def test_unknown_task_type_message_lists_valid_names():
    with pytest.raises(
        ConfigurationError,
        match=r"Unknown task type 'RETRIEVAL' for query_task_type: use one of RETRIEVAL_QUERY",
    ):
        normalise_task_type("RETRIEVAL", "query_task_type")
