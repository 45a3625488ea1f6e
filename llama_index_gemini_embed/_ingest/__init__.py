"""Ingestion: folders or Documents -> Gemini embeddings -> a vector store, streaming.

    from llama_index_gemini_embed._ingest import ingest
    report = ingest("./docs", embed_model=embed, store=store)

Modules, in the order one run uses them: :mod:`.api` (``ingest``/``aingest``),
:mod:`.sources` (reading files; :mod:`.media` for images, PDFs, audio, video),
:mod:`.chunks` (documents -> identified chunks), :mod:`.plan` (pure: ids, hashes, what to
embed, estimates), :mod:`.run` (the run loop), :mod:`.writer` (the store side),
:mod:`.report` (the report).
"""

from .api import aingest, default_batch_state_path, default_transformations, ingest
from .report import IngestReport, NodeFailure
from .sources import load_documents, sample_corpus_dir
from .writer import IngestStore

__all__ = [
    "IngestReport",
    "IngestStore",
    "NodeFailure",
    "aingest",
    "default_batch_state_path",
    "default_transformations",
    "ingest",
    "load_documents",
    "sample_corpus_dir",
]
