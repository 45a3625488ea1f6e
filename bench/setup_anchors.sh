#!/usr/bin/env bash
# Creates bench/.venv-anchors: the LlamaIndex anchors (GoogleGenAIEmbedding + ChromaVectorStore)
# at the versions we compare against. They pin google-genai<3, so they cannot share the main
# venv (google-genai 3.x). Our package is installed too (editable, --no-deps) so the anchor side
# can reuse the bench helpers; its own requirement google-genai>=2.20 is met by the 2.x there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv-anchors"
py="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q \
    llama-index-embeddings-google-genai==0.6.0 \
    llama-index-vector-stores-chroma==0.6.0 \
    "chromadb==1.5.9" "llama-index-core==0.14.25" \
    "google-genai[aiohttp]>=2.20,<3" tqdm numpy aiohttp orjson
"$venv/bin/pip" install -q --no-deps -e "$root"
"$venv/bin/python" - <<'PY'
import google.genai, chromadb, llama_index.core
from llama_index.embeddings.google_genai import GoogleGenAIEmbedding  # noqa: F401
from llama_index.vector_stores.chroma import ChromaVectorStore  # noqa: F401
import llama_index_gemini_embed  # noqa: F401
print("anchors venv ok: google-genai", google.genai.__version__, "chromadb", chromadb.__version__,
      "llama-index-core", llama_index.core.__version__)
PY
