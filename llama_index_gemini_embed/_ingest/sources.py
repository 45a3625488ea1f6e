"""Reading the input of :func:`ingest`: files and folders (or Documents) -> Documents, lazily.

    docs = load_documents("./docs", extensions=[".md"])   # an iterator of Documents
    source = open_source("./docs", extensions=None, recursive=True)
    source.documents, source.total, source.skipped_files

Doc ids are paths relative to the folder given, so re-runs recognise unchanged documents.
Markdown front matter becomes metadata and a leading ``# Heading`` the ``title``; hidden
files are never read; binary files without a LlamaIndex reader are skipped and counted.
"""

from __future__ import annotations

import functools
import logging
import mimetypes
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from llama_index.core.schema import Document

from llama_index_gemini_embed._errors import ConfigurationError, EmptyInputError

from .media import media_document, media_kind
from .plan import doc_id_for_path, markdown_title, parse_front_matter

__all__ = [
    "IngestSource",
    "PathInput",
    "SourceInput",
    "load_documents",
    "open_source",
    "sample_corpus_dir",
]

logger = logging.getLogger("llama_index_gemini_embed")

PathInput: TypeAlias = "str | os.PathLike[str]"
IngestSource: TypeAlias = (
    "str | os.PathLike[str] | Document | Iterable[Document] | Sequence[str | os.PathLike[str]]"
)

#: Metadata of files read from disk that is stored but neither embedded nor shown to LLMs
#: (LlamaIndex's choice, plus the absolute path: moving a folder must not change what is
#: embedded; the relative ``source`` path is kept instead).
_FILE_EMBED_EXCLUDED = ["file_path", "file_name", "file_type", "file_size", "last_modified_date"]
_FILE_LLM_EXCLUDED = ["file_path", "file_name", "file_type", "file_size", "last_modified_date"]
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def sample_corpus_dir() -> Path:
    """The small sample corpus bundled with the package (docs of a fictional app)."""
    return Path(__file__).parent.parent / "data" / "sample_corpus"


@dataclass
class SourceInput:
    """Documents to ingest, produced lazily, with a count when it is known up front."""

    documents: Iterator[Document]
    total: int | None
    skipped_files: list[str] = field(default_factory=list)
    paths: tuple[str, ...] | None = None
    """The paths given (None when the input is Documents)."""
    media_skipped: dict[str, int] = field(default_factory=dict)
    """Media files a text-only model skipped, per modality."""

    def nothing_readable(self) -> EmptyInputError | None:
        """Once read: the error to raise when paths were given but no file could be read."""
        if self.paths is None or not self.total or len(self.skipped_files) < self.total:
            return None
        if self.media_skipped:
            return EmptyInputError(
                f"Nothing to ingest: the {self.total} files in {_where(self.paths)} are "
                f"{_media_count(self.media_skipped)} or unreadable, and the model embeds text "
                "only; use model_name='gemini-embedding-2' to embed images, PDFs, audio and "
                "video",
                reason="no_readable_files",
                paths=self.paths,
            )
        return EmptyInputError(
            f"Nothing to ingest: none of the {self.total} files in {_where(self.paths)} could "
            "be read as text (binary without a reader, or unreadable); pass text files "
            "(.md, .txt, ...) or install llama-index-readers-file for PDF and DOCX",
            reason="no_readable_files",
            paths=self.paths,
        )


def _is_hidden(parts: Sequence[str]) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in parts)


def _list_files(
    root: Path, extensions: set[str] | None, recursive: bool, exclude: Sequence[Path] = ()
) -> list[Path]:
    pattern = root.rglob("*") if recursive else root.glob("*")
    resolved = root.resolve()
    skip = [
        folder.relative_to(resolved).parts for folder in exclude if folder.is_relative_to(resolved)
    ]
    files = []
    for path in pattern:
        relative = path.relative_to(root).parts
        if _is_hidden(relative) or not path.is_file():
            continue
        if any(relative[: len(parts)] == parts for parts in skip):
            continue  # e.g. the store's own directory inside the folder being ingested
        if extensions is not None and path.suffix.lower() not in extensions:
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _resolve_paths(
    paths: Sequence[PathInput],
    extensions: Sequence[str] | None,
    recursive: bool,
    exclude: Sequence[Path] = (),
) -> list[tuple[Path, str]]:
    """``(file, doc id)`` pairs for files and folders; doc ids relative to each root.

    Files under ``exclude`` (resolved folders) are never listed. Raises EmptyInputError
    when no file is left.
    """
    exts = _normalise_extensions(extensions)
    pairs: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = [
                (f, doc_id_for_path(f.relative_to(path).parts))
                for f in _list_files(path, exts, recursive, exclude)
            ]
        elif path.is_file():
            found = [(path, path.name)]
        else:
            raise ConfigurationError(f"No such file or directory: {os.fspath(raw)!r}")
        for file, doc_id in found:
            if doc_id in seen and seen[doc_id] != file.resolve():
                raise ConfigurationError(
                    f"Two inputs map to the same document id {doc_id!r} ({seen[doc_id]} and "
                    f"{file}); ingest them into different collections or one common folder"
                )
            seen[doc_id] = file.resolve()
            pairs.append((file, doc_id))
    if not pairs:
        raise _no_files(paths, extensions, recursive, exclude)
    return pairs


def _normalise_extensions(extensions: Sequence[str] | None) -> set[str] | None:
    if extensions is None:
        return None
    return {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}


def _media_count(counts: dict[str, int]) -> str:
    """``{"image": 2, "audio": 1}`` -> ``"1 audio, 2 image files"``."""
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) + " files"


def _where(paths: Sequence[str]) -> str:
    return repr(paths[0]) if len(paths) == 1 else f"the {len(paths)} paths given"


def _no_files(
    paths: Sequence[PathInput],
    extensions: Sequence[str] | None,
    recursive: bool,
    exclude: Sequence[Path],
) -> EmptyInputError:
    """Why nothing was found: no files at all, or none with the extensions asked for."""
    given = tuple(os.fspath(p) for p in paths)
    where = _where(given)
    unfiltered: list[Path] = []
    if extensions is not None:
        for raw in paths:
            unfiltered += _list_files(Path(raw).expanduser(), None, recursive, exclude)
    if not unfiltered:
        return EmptyInputError(
            f"Nothing to ingest: {where} holds no files (hidden files and folders are not read"
            + ("" if recursive else "; sub-folders are not read with recursive=False")
            + ")",
            reason="no_files",
            paths=given,
        )
    suffixes: dict[str, int] = {}
    for file in unfiltered:
        suffix = file.suffix.lower() or "(none)"
        suffixes[suffix] = suffixes.get(suffix, 0) + 1
    found = ", ".join(f"{n} {s}" for s, n in sorted(suffixes.items(), key=lambda i: -i[1])[:5])
    wanted = sorted(_normalise_extensions(extensions) or ())
    return EmptyInputError(
        f"Nothing to ingest: no file in {where} has one of extensions={wanted} (found "
        f"{found}); change extensions= or leave it out to read every file",
        reason="no_matching_files",
        paths=given,
        extensions=tuple(wanted),
    )


def _file_metadata(path: Path, doc_id: str) -> dict[str, Any]:
    stat = path.stat()
    metadata: dict[str, Any] = {
        "file_path": str(path.resolve()),
        "file_name": path.name,
        "file_size": stat.st_size,
        "last_modified_date": datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d"),
        "source": doc_id,
    }
    file_type = mimetypes.guess_type(path.name)[0]
    if file_type:
        metadata["file_type"] = file_type
    return metadata


def _looks_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(8192)


@functools.cache
def _reader_suffixes() -> frozenset[str]:
    """Suffixes LlamaIndex has a dedicated reader for (PDF, DOCX... when installed)."""
    from llama_index.core import SimpleDirectoryReader

    readers_log = logging.getLogger("llama_index.core.readers.file.base")
    level = readers_log.level
    readers_log.setLevel(logging.ERROR)  # "llama-index-readers-file not found" is not news
    try:
        return frozenset(SimpleDirectoryReader.supported_suffix_fn())
    finally:
        readers_log.setLevel(level)


def _read_text(path: Path) -> str:
    """A text file as UTF-8; bytes that are not UTF-8 become U+FFFD, with a warning.

    Never dropped silently: "caf\\xe9" read with errors="ignore" would embed "caf".
    """
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        logger.warning(
            "%s is not valid UTF-8 (byte 0x%02x at offset %d): undecodable bytes are "
            "replaced with U+FFFD. Convert the file to UTF-8 to embed its exact text.",
            path,
            raw[exc.start],
            exc.start,
        )
        return raw.decode("utf-8", errors="replace")


def _read_file(path: Path, doc_id: str, *, media: bool = False) -> list[Document]:
    """One file -> its documents, with stable ids and metadata.

    With ``media`` (gemini-embedding-2), images, PDFs, audio and video become one media
    document each. Files with a dedicated LlamaIndex reader go through
    ``SimpleDirectoryReader``; other files are read as UTF-8 text (as SimpleDirectoryReader
    does), binary ones skipped.
    """
    metadata = _file_metadata(path, doc_id)
    kind = media_kind(path)
    if media and kind is not None:
        return [media_document(path, doc_id, kind, metadata, _FILE_EMBED_EXCLUDED)]
    if path.suffix.lower() in _reader_suffixes():
        from llama_index.core import SimpleDirectoryReader

        docs = SimpleDirectoryReader.load_file(
            input_file=path,
            file_metadata=lambda _: dict(metadata),
            file_extractor={},
            raise_on_error=True,
        )
        texts = [(doc.text, dict(doc.metadata)) for doc in docs]
    elif _looks_binary(path):
        return []
    else:
        texts = [(_read_text(path), metadata)]
    out: list[Document] = []
    for part, (raw, meta) in enumerate(texts):
        text = raw
        if path.suffix.lower() in (".md", ".markdown", ".txt"):
            front, text = parse_front_matter(text)
            for key, value in front.items():
                meta.setdefault(key, value)
            if "title" not in meta:
                title = markdown_title(text)
                if title:
                    meta["title"] = title
        out.append(
            Document(
                text=text,
                id_=doc_id if len(texts) == 1 else f"{doc_id}#part{part}",
                metadata=meta,
                excluded_embed_metadata_keys=list(_FILE_EMBED_EXCLUDED),
                excluded_llm_metadata_keys=list(_FILE_LLM_EXCLUDED),
            )
        )
    return out


def load_documents(
    paths: PathInput | Sequence[PathInput],
    *,
    extensions: Sequence[str] | None = None,
    recursive: bool = True,
) -> Iterator[Document]:
    """Read files and folders lazily as Documents with stable ids and useful metadata.

    Doc ids are paths relative to the folder given (a file given directly: its name).
    Markdown front matter (flat ``key: value`` lines) becomes metadata and a leading
    ``# Heading`` the ``title``; hidden files and binary files without a reader are skipped.
    """
    return _open_paths(paths, extensions, recursive).documents


def _open_paths(
    paths: PathInput | Sequence[PathInput],
    extensions: Sequence[str] | None,
    recursive: bool,
    exclude: Sequence[Path] = (),
    media: bool = False,
) -> SourceInput:
    items: Sequence[PathInput] = [paths] if isinstance(paths, str | os.PathLike) else paths
    pairs = _resolve_paths(items, extensions, recursive, exclude)
    source = SourceInput(iter(()), len(pairs), [], tuple(os.fspath(p) for p in items))

    def documents() -> Iterator[Document]:
        for path, doc_id in pairs:
            kind = media_kind(path)
            if kind is not None and not media and path.suffix.lower() not in _reader_suffixes():
                # A text-only model: one report line says what to use instead.
                source.media_skipped[kind[0]] = source.media_skipped.get(kind[0], 0) + 1
                source.skipped_files.append(doc_id)
                continue
            try:
                docs = _read_file(path, doc_id, media=media)
            except Exception as exc:
                logger.warning("Skipping %s: %s", path, exc)
                docs = []
            if not docs:
                source.skipped_files.append(doc_id)
            yield from docs

    source.documents = documents()
    return source


def open_source(
    source: IngestSource,
    extensions: Sequence[str] | None,
    recursive: bool,
    *,
    exclude: Sequence[str | os.PathLike[str]] = (),
    media: bool = False,
) -> SourceInput:
    """The documents of ``source``, lazily; files under ``exclude`` folders are never read.

    ``media``: the model embeds media (gemini-embedding-2), so images, PDFs, audio and video
    files become media documents (:mod:`.media`); else they are skipped and counted in
    ``media_skipped`` (PDFs are read as text when a LlamaIndex PDF reader is installed).

    Raises ConfigurationError for a missing path and EmptyInputError when the paths given
    hold no file to read (:meth:`SourceInput.nothing_readable` tells, once they are read,
    whether any could be read).
    """
    folders = [Path(folder).expanduser().resolve() for folder in exclude]
    if isinstance(source, Document):
        return SourceInput(iter([source]), 1)
    if isinstance(source, str | os.PathLike):
        return _open_paths(source, extensions, recursive, folders, media)
    if (
        isinstance(source, Sequence)
        and source
        and all(isinstance(s, str | os.PathLike) for s in source)
    ):
        return _open_paths(source, extensions, recursive, folders, media)
    total = len(source) if isinstance(source, Sequence) else None
    return SourceInput(_documents_only(source), total)


def _documents_only(source: Iterable[object]) -> Iterator[Document]:
    warned = False
    for doc in source:
        if not isinstance(doc, Document):
            raise ConfigurationError(
                f"ingest() takes Documents or paths; got a {type(doc).__name__} in the input"
            )
        if not warned and _UUID_RE.match(doc.id_):
            warned = True
            logger.warning(
                "Document %s has a random id: re-runs cannot recognise unchanged documents. "
                "Give documents stable ids (Document(id_=...), or SimpleDirectoryReader("
                "filename_as_id=True)), or pass paths to ingest().",
                doc.id_,
            )
        yield doc
