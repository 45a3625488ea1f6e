"""The emulator's stand-in for an LLM judge behind ``generateContent`` (for rerankers).

    >>> default_judge(JudgeRequest(model="gemini-2.5-flash", system_instruction=None,
    ...     prompt_text='<query>red fox</query><passage id="a">a red fox</passage>',
    ...     response_schema=None, response_json_schema=None))
    {'scores': [{'id': 'a', 'score': 10.0}]}

Default contract: the query is the text between ``<query>`` and ``</query>`` in the user
prompt; candidates are ``<passage id="ID">…</passage>`` blocks. Each passage is scored by
lexical overlap with the query on a 0–10 scale (10 × the share of distinct query words,
stopwords ignored, that occur in the passage; one decimal). The answer is
``{"scores": [{"id": ID, "score": S}, …]}`` in passage order, using the id-like and
score-like property names of the response schema when it has a ``scores`` array of
objects (integer ids when the schema says integer and the ids are numeric).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Judge", "JudgeRequest", "default_judge"]


@dataclass(frozen=True)
class JudgeRequest:
    """What a judge sees of one generateContent call: ``emu.set_judge(lambda r: ...)``."""

    model: str
    system_instruction: str | None
    prompt_text: str
    response_schema: dict[str, Any] | None
    response_json_schema: dict[str, Any] | None
    response_mime_type: str | None = None


Judge = Callable[[JudgeRequest], "str | dict[str, Any]"]

_QUERY_RE = re.compile(r"<query>(.*?)</query>", re.DOTALL | re.IGNORECASE)
_PASSAGE_RE = re.compile(
    r"<passage\s+id\s*=\s*[\"']([^\"']*)[\"']\s*>(.*?)</passage>", re.DOTALL | re.IGNORECASE
)
_WORD_RE = re.compile(r"\w+")
_STOP = frozenset(
    "a an and are as at be by does do for from how in is it of on or the to what when where "  # noqa: SIM905
    "which who why with".split()
)


def _terms(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall(text.lower()) if w not in _STOP}


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for key in ref[2:].split("/"):
            node = node.get(key, {}) if isinstance(node, Mapping) else {}
        return node if isinstance(node, Mapping) else {}
    return schema


def _fields(schema: Mapping[str, Any] | None) -> tuple[str, str, bool]:
    """(id field, score field, id is integer) from a schema with a ``scores`` array."""
    default = ("id", "score", False)
    if not isinstance(schema, Mapping):
        return default
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not isinstance(props.get("scores"), Mapping):
        return default
    items = props["scores"].get("items")
    if not isinstance(items, Mapping):
        return default
    items = _resolve(items, schema)
    item_props = items.get("properties")
    if not isinstance(item_props, Mapping) or len(item_props) < 2:
        return default
    names = list(item_props)
    id_name = next(
        (n for n in names if n.lower() in ("id", "index", "idx", "passage_id", "doc_id", "key")),
        next((n for n in names if "id" in n.lower() or "index" in n.lower()), names[0]),
    )
    score_name = next(
        (n for n in names if n != id_name and ("score" in n.lower() or "relevan" in n.lower())),
        next(n for n in names if n != id_name),
    )
    id_type = item_props[id_name].get("type") if isinstance(item_props[id_name], Mapping) else None
    return id_name, score_name, isinstance(id_type, str) and id_type.lower() == "integer"


def default_judge(req: JudgeRequest) -> dict[str, Any]:
    """Score ``<passage>`` blocks against the ``<query>`` by word overlap (0–10)."""
    m = _QUERY_RE.search(req.prompt_text)
    query = _terms(html.unescape(m.group(1))) if m else set()
    id_name, score_name, int_ids = _fields(req.response_schema or req.response_json_schema)
    scores: list[dict[str, Any]] = []
    for pid, body in _PASSAGE_RE.findall(req.prompt_text):
        words = _terms(html.unescape(body))
        score = round(10.0 * len(query & words) / len(query), 1) if query else 0.0
        ident: Any = int(pid) if int_ids and pid.strip().lstrip("-").isdigit() else pid
        scores.append({id_name: ident, score_name: score})
    return {"scores": scores}
