"""The encoder as an ONNX Runtime graph: fp32 (``onnx``) or dynamically quantised to int8 (``onnx-int8``).

Any Hugging Face encoder directory (the packaged MiniLM, a ``jobs.finetune`` export, an ``s3://`` prefix once
fetched) is exported once per encoder fingerprint — weights, tokenizer, pooling and max length — and cached under
``$COLDSTART_CACHE/onnx/<fingerprint>/`` (default ``~/.cache/coldstart``), not once per process: the first process
exports under a file lock and moves the result into place atomically, every later one (another Ray actor, the next
job) only loads it.

The exported graph is the whole encoder as the torch backend computes it — transformer, mean or CLS pooling over
the attention mask, L2 normalisation — so both backends return the same ``(b, d) float32`` unit vectors (fp32:
cosine ≥ 0.9999 to torch's; int8: see BENCHMARKS.md). The int8 model is ONNX Runtime's dynamic quantisation of
the fp32 graph (int8 weights with per-channel scales, activations quantised per batch at run time; AVX-512 VNNI
where the CPU has it).

Threads are set explicitly (``intra_op_num_threads`` = the encoder's ``num_threads``, else 1) and ONNX Runtime's
worker threads never spin while idle: a serving replica must not burn a core between requests.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
# the file name names the recipe: a changed recipe is a new file, never a stale cached one
_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8-per-channel.onnx"}
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_cache_dir(fingerprint: str) -> Path:
    from coldstart.encoders.model_source import cache_root

    return cache_root() / "onnx" / fingerprint[:32]


def onnx_model_path(model_dir: str | Path, *, fingerprint: str, backend: str, pooling: str, max_length: int) -> Path:
    """The cached ONNX file for ``backend`` of this encoder, exported (and quantised) on first use."""
    if backend not in _FILES:
        raise ValueError(f"encoder backend {backend!r} has no ONNX file; use one of {tuple(_FILES)}")
    folder = onnx_cache_dir(fingerprint)
    target = folder / _FILES[backend]
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one exporter per fingerprint; the others wait and then load
        if not target.is_file():
            fp32 = folder / _FILES["onnx"]
            if not fp32.is_file():
                _atomic(fp32, lambda tmp: export_onnx(model_dir, tmp, pooling=pooling, max_length=max_length))
            if backend == "onnx-int8":
                _atomic(target, lambda tmp: quantize_int8(fp32, tmp))
    return target


def _atomic(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        t0 = time.perf_counter()
        write(Path(tmp))
        os.replace(tmp, target)
        logger.info("wrote %s (%.1f MB) in %.1f s", target, target.stat().st_size / 1e6, time.perf_counter() - t0)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_onnx(model_dir: str | Path, out: Path, *, pooling: str, max_length: int) -> None:
    """The encoder (transformer + pooling + L2) as one ONNX graph with dynamic batch and sequence axes.

    Uses torch's ``torch.export``-based exporter: the older TorchScript one silently produced a wrong graph for
    BERT in torch 2.13 (cosine 0.92 to the eager model on the same input)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from coldstart.encoders.encoder import pool

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    try:
        model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False)
    except TypeError:
        model = AutoModel.from_pretrained(model_dir)
    model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            return torch.nn.functional.normalize(pool(hidden, attention_mask, pooling), p=2, dim=1)

    sample = tokenizer(["a sample product title for the export", "short"], padding=True, truncation=True,
                       max_length=max_length, return_tensors="pt", return_token_type_ids=True)
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", max=max(max_length, 8))
    wrapped = Pooled(model).eval()
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(wrapped, tuple(sample[k] for k in _INPUTS), str(out), input_names=list(_INPUTS),
                          output_names=["sentence_embedding"], dynamo=True, external_data=False,
                          dynamic_shapes=tuple({0: batch, 1: tokens} for _ in _INPUTS))


def quantize_int8(fp32: Path, out: Path) -> None:
    """ONNX Runtime's dynamic int8 quantisation: int8 weights with one scale per output channel, activations
    quantised per batch. Per-channel scales keep MiniLM's title vectors at cosine 0.992 (mean) to fp32, where one
    scale per tensor gives 0.957, and run as fast (BENCHMARKS.md, issue 13)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)


class OnnxRunner:
    """One ONNX Runtime session: padded token batches in, ``(b, d) float32`` unit vectors out."""

    def __init__(self, path: Path, *, num_threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.asarray(batch[name], dtype=np.int64) if name in batch
                else np.zeros_like(np.asarray(batch["input_ids"], dtype=np.int64)) for name in self.inputs}
        return self.session.run(None, feed)[0].astype(np.float32, copy=False)


def clear_cache(fingerprint: str) -> None:
    """Remove the cached ONNX files of one encoder (a later use exports them again)."""
    shutil.rmtree(onnx_cache_dir(fingerprint), ignore_errors=True)
