"""Deterministic, lexically meaningful embedding vectors for the emulator.

    >>> v = embed_text("hello world", task_type="RETRIEVAL_QUERY", dimension=768)
    >>> len(v)
    768

Algorithm (stable across processes and platforms):

* lower-case the text and split it into word tokens (each CJK character is its own token);
* feature-hash every word and every word bigram with blake2b (salted per model family, so
  gemini-embedding-001 and -2 live in different spaces) into one signed bucket in each of the
  nested bands [0,128) [128,256) [256,512) [512,768) [768,1536) [1536,3072), so every
  Matryoshka prefix of ≥ 128 dims keeps every word; stopwords weigh 0.25, bigrams 0.5;
* add the title's words (when a title applies) at weight 0.35 of the text;
* add a fixed pseudo-random direction per task type at weight 0.25, so the same text under
  two task types stays close (cosine ≈ 0.94) but not equal;
* L2-normalise at 3072. gemini-embedding-001 returns ``unit[:d]`` (not re-normalised);
  gemini-embedding-2* returns ``normalise(unit[:d])``.

gemini-embedding-2* ignores ``taskType``/``title`` and reads Google's text prefixes instead
(``task: search result | query: …`` and ``title: … | text: …``), applying the same task/title
components from the parsed parts. Several parts in one content give one aggregated vector.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import orjson

from ._facts import EMBEDDING_MODELS
from ._tokens import count_tokens

__all__ = [
    "FULL_DIMENSION",
    "PREFIX_TASKS",
    "TASK_TYPES",
    "VERTEX_LEGACY_MODELS",
    "EmbedItem",
    "EncodeRequest",
    "Encoder",
    "MediaPart",
    "count_tokens",
    "embed_text",
    "finish_vector",
    "is_multimodal_model",
    "item_vector",
    "max_dimension",
    "max_input_tokens",
    "parse_prefix",
    "part_tokens",
    "to_json_floats",
    "truncate_to_tokens",
]

FULL_DIMENSION = 3072

TASK_TYPES: frozenset[str] = frozenset(
    {
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    }
)

PREFIX_TASKS: dict[str, str] = {
    "search result": "RETRIEVAL_QUERY",
    "question answering": "QUESTION_ANSWERING",
    "fact checking": "FACT_VERIFICATION",
    "code retrieval": "CODE_RETRIEVAL_QUERY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
    "sentence similarity": "SEMANTIC_SIMILARITY",
}
"""gemini-embedding-2 query-prefix task names → the equivalent -001 task type."""

_TITLE_WEIGHT = 0.35
_TASK_WEIGHT = 0.25
_BIGRAM_WEIGHT = 0.5
_STOPWORD_WEIGHT = 0.25

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD_RE = re.compile(rf"[^\W{_CJK}]+|[{_CJK}]")
_TASK_PREFIX_RE = re.compile(r"^\s*task:\s*(.*?)\s*\|\s*query:\s?(.*)\Z", re.DOTALL | re.IGNORECASE)
_TITLE_PREFIX_RE = re.compile(
    r"^\s*title:\s*(.*?)\s*\|\s*text:\s?(.*)\Z", re.DOTALL | re.IGNORECASE
)

_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i if in into is it its "  # noqa: SIM905
    "of on or our she so than that the their them then there these they this to was we "
    "were what when where which who why will with you your".split()
)

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EncodeRequest:
    """What a custom encoder receives: ``encoder(req) -> one full vector per text``.

    For gemini-embedding-001 ``texts`` are the (truncated) item texts with ``task_type`` and
    the effective ``titles``; for gemini-embedding-2* ``texts`` are the raw texts (prefixes
    included, parts joined by a newline), ``task_type`` is None and ``titles`` are all None,
    because the real -2 ignores those fields.
    """

    texts: list[str]
    model: str
    task_type: str | None = None
    titles: list[str | None] = field(default_factory=list)
    dimension: int | None = None


Encoder = Callable[[EncodeRequest], Sequence[Sequence[float]]]


@dataclass(frozen=True)
class MediaPart:
    """A media part as the emulator understands it (see ``_media.read_media``)."""

    modality: str
    description: str | None
    digest: str
    tokens: int

    @property
    def text(self) -> str:
        """The text that places this medium in the space (its description, else its hash)."""
        return self.description if self.description else f"media {self.digest}"


Part = str | MediaPart


def part_tokens(part: Part) -> int:
    """Tokens of one part: the counter's for text, the published rate for media."""
    return part.tokens if isinstance(part, MediaPart) else count_tokens(part)


def part_text(part: Part) -> str:
    """A part as text (media: its description), for custom encoders."""
    return part.text if isinstance(part, MediaPart) else part


@dataclass(frozen=True)
class EmbedItem:
    """One embedding request item: its text and media parts and options (already validated)."""

    parts: tuple[Part, ...]
    task_type: str | None = None
    title: str | None = None
    dimension: int | None = None


VERTEX_LEGACY_MODELS: dict[str, int] = {
    "text-embedding-005": 768,
    "text-multilingual-embedding-002": 768,
}
"""Vertex-only text models (``:predict``): their own maximum dimension, unit-norm output."""


def _bare(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def is_multimodal_model(model: str) -> bool:
    """True for gemini-embedding-2* (media parts, normalised at every dimension, no taskType)."""
    bare = _bare(model)
    spec = EMBEDDING_MODELS.get(bare)
    return spec.multimodal if spec is not None else "gemini-embedding-2" in bare


def max_dimension(model: str) -> int:
    """Largest (and default) output dimension of ``model``."""
    bare = _bare(model)
    if bare in VERTEX_LEGACY_MODELS:
        return VERTEX_LEGACY_MODELS[bare]
    spec = EMBEDDING_MODELS.get(bare)
    return spec.max_dimension if spec is not None else FULL_DIMENSION


def max_input_tokens(model: str) -> int:
    """Input token limit of ``model`` (Vertex legacy text models: 2,048)."""
    spec = EMBEDDING_MODELS.get(_bare(model))
    if spec is not None:
        return spec.max_input_tokens
    return 8192 if is_multimodal_model(model) else 2048


def _renormalises(model: str) -> bool:
    return is_multimodal_model(model) or _bare(model) in VERTEX_LEGACY_MODELS


def _family(model: str) -> str:
    return "gemini-embedding-2" if is_multimodal_model(model) else "gemini-embedding-001"


# ---------------------------------------------------------------- hashing
_BANDS = ((0, 128), (128, 256), (256, 512), (512, 768), (768, 1536), (1536, FULL_DIMENSION))
_BAND_SALTS = tuple(
    np.uint64((0x9E3779B97F4A7C15 * (i + 1)) & 0xFFFFFFFFFFFFFFFF) for i in range(6)
)
_hash_caches: dict[str, dict[str, int]] = {}
_HASH_CACHE_LIMIT = 1 << 18


def _word_hash(cache: dict[str, int], family: str, word: str) -> int:
    digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8, key=family.encode("ascii"))
    h = int.from_bytes(digest.digest(), "little")
    if len(cache) >= _HASH_CACHE_LIMIT:
        cache.clear()
    cache[word] = h
    return h


def _features(text: str, family: str) -> npt.NDArray[np.float64]:
    """Signed feature-hash vector (not normalised) of ``text``'s words and bigrams."""
    words = _WORD_RE.findall(text.lower())
    if not words:
        stripped = text.strip()
        words = [stripped if stripped else text]
    cache = _hash_caches.setdefault(family, {})
    get = cache.get
    hashes = np.array(
        [h if (h := get(w)) is not None else _word_hash(cache, family, w) for w in words],
        dtype=np.uint64,
    )
    weights = np.array([_STOPWORD_WEIGHT if w in _STOPWORDS else 1.0 for w in words])
    if len(words) > 1:
        # Bigram hashes mixed arithmetically from the word hashes (no string hashing).
        with np.errstate(over="ignore"):
            mixed = (hashes[:-1] * np.uint64(0x9E3779B97F4A7C15)) ^ (
                hashes[1:] + np.uint64(0xBF58476D1CE4E5B9)
            )
            mixed = (mixed ^ (mixed >> np.uint64(29))) * np.uint64(0x94D049BB133111EB)
        hashes = np.concatenate([hashes, mixed])
        weights = np.concatenate([weights, np.full(len(words) - 1, _BIGRAM_WEIGHT)])
    # Matryoshka-like layout: every feature lands once in each nested band, so any prefix of
    # 128 or more dimensions still carries every word (and similarity survives truncation).
    index_parts: list[npt.NDArray[np.intp]] = []
    value_parts: list[npt.NDArray[np.float64]] = []
    with np.errstate(over="ignore"):
        for salt, (lo, hi) in zip(_BAND_SALTS, _BANDS, strict=True):
            m = hashes ^ salt
            m = (m ^ (m >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
            m = (m ^ (m >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            m = m ^ (m >> np.uint64(33))
            index_parts.append(lo + (m % np.uint64(hi - lo)).astype(np.intp))
            value_parts.append(np.where(m >> np.uint64(63), -weights, weights))
    out: npt.NDArray[np.float64] = np.bincount(
        np.concatenate(index_parts), weights=np.concatenate(value_parts), minlength=FULL_DIMENSION
    ).astype(np.float64, copy=False)
    return out


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0.0 else v


@lru_cache(maxsize=64)
def _task_direction(family: str, task_type: str) -> npt.NDArray[np.float64]:
    seed = int.from_bytes(
        hashlib.blake2b(f"{family}|task|{task_type}".encode(), digest_size=8).digest(), "little"
    )
    v = np.random.default_rng(seed).standard_normal(FULL_DIMENSION)
    out = _unit(v)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4096)
def _unit_vector(
    text: str, family: str, task_type: str | None, title: str | None
) -> npt.NDArray[np.float64]:
    v = _unit(_features(text, family))
    if title:
        v = _unit(v + _TITLE_WEIGHT * _unit(_features(title, family)))
    if task_type and task_type != "TASK_TYPE_UNSPECIFIED":
        v = _unit(v + _TASK_WEIGHT * _task_direction(family, task_type))
    v.setflags(write=False)
    return v


_MODALITY_WEIGHT = 0.25


@lru_cache(maxsize=4096)
def _media_vector(text: str, family: str, modality: str) -> npt.NDArray[np.float64]:
    # A medium sits next to the text of its description, nudged by a fixed direction per
    # modality (like a task type), so "a red bicycle" finds the picture described so, and
    # the picture is not the very same point as the sentence.
    v = _unit(_features(text, family) if text else np.zeros(FULL_DIMENSION))
    v = _unit(v + _MODALITY_WEIGHT * _task_direction(family, f"modality:{modality}"))
    v.setflags(write=False)
    return v


# ---------------------------------------------------------------- prefixes / truncation
def parse_prefix(text: str) -> tuple[str, str | None, str | None]:
    """Split a gemini-embedding-2 prefix: ``(content, task_type, title)``.

    ``task: question answering | query: x`` → ``("x", "QUESTION_ANSWERING", None)``;
    ``title: T | text: x`` → ``("x", "RETRIEVAL_DOCUMENT", "T")`` (``title: none`` → no title);
    anything else → ``(text, None, None)``. Unknown task names get their own direction.
    """
    m = _TASK_PREFIX_RE.match(text)
    if m:
        name = m.group(1).strip().lower()
        return m.group(2), PREFIX_TASKS.get(name, f"custom:{name}"), None
    m = _TITLE_PREFIX_RE.match(text)
    if m:
        title = m.group(1).strip()
        return m.group(2), "RETRIEVAL_DOCUMENT", (None if title.lower() in ("", "none") else title)
    return text, None, None


def truncate_to_tokens(text: str, limit: int) -> str:
    """Longest prefix of ``text`` whose :func:`count_tokens` is at most ``limit``."""
    if count_tokens(text) <= limit:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # count_tokens is monotone in the prefix length
        mid = (lo + hi + 1) // 2
        if count_tokens(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def truncate_parts(parts: Sequence[Part], limit: int) -> tuple[tuple[Part, ...], bool]:
    """Cut the text of ``parts`` so that all tokens add up to at most ``limit``.

    Media parts are kept whole (their tokens are spent first); text fills what is left.
    """
    media_tokens = sum(p.tokens for p in parts if isinstance(p, MediaPart))
    out: list[Part] = []
    budget = limit - media_tokens
    truncated = False
    for part in parts:
        if isinstance(part, MediaPart):
            out.append(part)
            continue
        if budget <= 0:
            truncated = True
            continue
        tokens = count_tokens(part)
        if tokens <= budget:
            out.append(part)
            budget -= tokens
        else:
            out.append(truncate_to_tokens(part, budget))
            truncated = True
            budget = 0
    return tuple(out), truncated


def effective_title(task_type: str | None, title: str | None) -> str | None:
    """The title only counts with RETRIEVAL_DOCUMENT (as documented for -001)."""
    return title if title and task_type == "RETRIEVAL_DOCUMENT" else None


# ---------------------------------------------------------------- public computation
def item_vector(item: EmbedItem, model: str) -> npt.NDArray[np.float64]:
    """Full unit 3072-d vector for one (already truncated) request item."""
    family = _family(model)
    if family == "gemini-embedding-2":
        total = np.zeros(FULL_DIMENSION)
        for part in item.parts:
            if isinstance(part, MediaPart):
                total += _media_vector(part.text, family, part.modality)
                continue
            content, task, title = parse_prefix(part)
            total += _unit_vector(content, family, task, title)
        return _unit(total) if len(item.parts) > 1 else total
    text = "\n".join(part_text(p) for p in item.parts)
    return _unit_vector(text, family, item.task_type, effective_title(item.task_type, item.title))


def finish_vector(full: npt.ArrayLike, model: str, dimension: int | None) -> FloatArray:
    """Apply the model's output rule to a full vector: unit at full length, then ``[:d]``.

    gemini-embedding-001 keeps the prefix as is (norm < 1); -2 re-normalises it.
    """
    v = _unit(np.asarray(full, dtype=np.float64))
    d = min(dimension or max_dimension(model), max_dimension(model))
    if d < len(v):
        v = v[:d]
        if _renormalises(model):
            v = _unit(v)
    return np.ascontiguousarray(v, dtype=np.float32)


def to_json_floats(vector: FloatArray) -> list[float]:
    """The floats a JSON client parses from the emulator's serialisation of ``vector``."""
    parsed: list[float] = orjson.loads(orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY))
    return parsed


def embed_text(
    text: str,
    *,
    model: str = "gemini-embedding-001",
    task_type: str | None = None,
    title: str | None = None,
    dimension: int | None = None,
) -> list[float]:
    """Exactly the vector the emulator returns for one item with this text and options.

    Applies the same truncation (to the model's input limit), the -2 rules (taskType and
    title ignored, prefixes parsed) and the dimension rule as the server.
    """
    parts, _ = truncate_parts((text,), max_input_tokens(model))
    if is_multimodal_model(model):
        task_type, title = None, None
    item = EmbedItem(parts=parts, task_type=task_type, title=title, dimension=dimension)
    return to_json_floats(finish_vector(item_vector(item, model), model, dimension))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (helper for tests and examples)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    denom = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denom if denom else 0.0
