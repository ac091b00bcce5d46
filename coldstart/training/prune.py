"""A smaller encoder that saves time: drop whole transformer layers, then distil the teacher back into it.

Unstructured magnitude pruning zeroes weights but leaves every matrix multiply as large as before; dropping layers
removes their compute. A student keeps ``keep`` of the teacher's layers (e.g. 0, 2, 4 of MiniLM's six: every other
one, so what each layer expects to read stays close), initialised from them, and learns to reproduce the teacher's
normalised embeddings of the shop's own texts (catalog titles, past queries): loss = 1 − cosine(student, teacher),
teacher vectors computed once. The result is a Hugging Face model directory like any other: ``--model DIR`` for
``coldstart embed``/``search``, every backend (``onnx-int8`` too), and ``jobs.finetune`` for further training.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneConfig:
    keep: tuple[int, ...] = (0, 2, 4)  # teacher layers the student keeps, in order
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-4
    max_length: int = 64
    pooling: str = "mean"
    num_threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.keep or sorted(set(self.keep)) != list(self.keep):
            raise ValueError(f"prune.keep={self.keep}: give increasing, distinct layer indices, e.g. (0, 2, 4)")
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("prune: steps must be ≥ 0, batch_size ≥ 1 and lr > 0")


def keep_layers(model, keep: Sequence[int]):
    """``model`` (a BERT-like ``AutoModel``) with only the encoder layers ``keep``, in place; returns it."""
    import torch

    layers = model.encoder.layer
    if max(keep) >= len(layers):
        raise ValueError(f"the model has {len(layers)} layers; cannot keep {list(keep)}")
    model.encoder.layer = torch.nn.ModuleList([layers[i] for i in keep])
    model.config.num_hidden_layers = len(keep)
    return model


def prune_and_distil(teacher_dir: str | Path, texts: Sequence[str], out_dir: str | Path,
                     config: PruneConfig = PruneConfig()) -> dict:
    """Write the distilled student to ``out_dir`` (a Hugging Face directory + ``coldstart-prune.json``); returns
    the run's numbers (losses before and after, seconds)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from coldstart.encoders.encoder import Encoder, EncoderConfig, pool

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.num_threads)
    rng = random.Random(config.seed)
    texts = list(dict.fromkeys(t for t in texts if t))
    if not texts:
        raise ValueError("distillation needs texts (catalog titles, queries): got none")
    t0 = time.perf_counter()
    teacher = Encoder(EncoderConfig(model=str(teacher_dir), pooling=config.pooling, max_length=config.max_length,
                                    num_threads=config.num_threads, device="cpu"))
    targets = torch.from_numpy(teacher.encode(texts))  # (n, d), L2-normalised, computed once
    tokenizer = AutoTokenizer.from_pretrained(teacher.model_dir)
    student = keep_layers(AutoModel.from_pretrained(teacher.model_dir, add_pooling_layer=False), config.keep)
    seconds_teacher = time.perf_counter() - t0

    def loss_on(rows: list[int]) -> torch.Tensor:
        enc = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=config.max_length,
                        return_tensors="pt")
        hidden = student(**enc).last_hidden_state
        vectors = torch.nn.functional.normalize(pool(hidden, enc["attention_mask"], config.pooling), dim=1)
        return (1 - (vectors * targets[rows]).sum(dim=1)).mean()

    probe = rng.sample(range(len(texts)), min(512, len(texts)))
    student.eval()
    with torch.no_grad():
        before = float(np.mean([loss_on(probe[i:i + 64]).item() for i in range(0, len(probe), 64)]))
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr)
    student.train()
    t1 = time.perf_counter()
    for step in range(config.steps):
        loss = loss_on(rng.sample(range(len(texts)), min(config.batch_size, len(texts))))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % 100 == 0 or step + 1 == config.steps:
            logger.info("distil step %d/%d loss %.4f (%.2f s/step)", step + 1, config.steps, loss.item(),
                        (time.perf_counter() - t1) / (step + 1))
    student.eval()
    with torch.no_grad():
        after = float(np.mean([loss_on(probe[i:i + 64]).item() for i in range(0, len(probe), 64)]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out)
    tokenizer.save_pretrained(out)
    summary = {"teacher": str(teacher_dir), "texts": len(texts), "config": asdict(config),
               "probe_loss_before": before, "probe_loss_after": after,
               "seconds": {"teacher_vectors": seconds_teacher, "distil": time.perf_counter() - t1}}
    (out / "coldstart-prune.json").write_text(json.dumps(summary, indent=2))
    logger.info("pruned %s to layers %s: probe 1-cos %.4f -> %.4f; wrote %s", teacher_dir, list(config.keep),
                before, after, out)
    return summary
