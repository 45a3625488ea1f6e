"""Quickstart: embed a few texts with Gemini and rank them against a question.

    python examples/quickstart.py          # real API with GEMINI_API_KEY, else the emulator

Documents are embedded as RETRIEVAL_DOCUMENT and the question as RETRIEVAL_QUERY; vectors
are unit length, so a dot product is the cosine similarity.
"""

from __future__ import annotations

from _backend import gemini_backend

from llama_index_gemini_embed import GeminiEmbedding

TEXTS = [
    "Kestrel encrypts synced notebooks end to end with AES-256-GCM.",
    "The Team plan costs 8 US dollars per member per month, billed yearly.",
    "Export a note to PDF, HTML, Markdown or DOCX from File, Export.",
    "Ctrl+P opens the quick switcher to jump to any note by title.",
]
QUESTION = "How much does the Team plan cost?"


def main() -> None:
    with gemini_backend() as backend:
        embed = GeminiEmbedding(output_dimensionality=768, **backend.kwargs)
        doc_vectors = embed.get_text_embedding_batch(TEXTS)
        query_vector = embed.get_query_embedding(QUESTION)

    scores = [
        sum(q * d for q, d in zip(query_vector, vector, strict=True)) for vector in doc_vectors
    ]
    print(f"Q: {QUESTION}  ({backend.description}, {len(query_vector)} dimensions)")
    for score, text in sorted(zip(scores, TEXTS, strict=True), reverse=True):
        print(f"  {score:.3f}  {text}")
    print(f"usage: {embed.usage}")


if __name__ == "__main__":
    main()
