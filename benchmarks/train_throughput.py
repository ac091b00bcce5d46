"""Training throughput (pairs/s) of plain, FGM and PGD (K=3) fine-tuning, measured in one run.

    python -m benchmarks.train_throughput --data ../shared/data [--steps 4] [--batch-size 16]

Same model, data, batch and Ray workers for the three; only the attack changes, so the ratios are the cost of
robustness (FGM: one extra forward/backward per step, PGD: K extra). The first step of each run (warm-up) is
included, so use a few steps. A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
import tempfile

from coldstart.training.adversarial import AdversarialConfig
from coldstart.training.config import TrainConfig
from coldstart.training.sources import judgment_examples, read_catalog_texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="default")
    parser.add_argument("--in-process", action="store_true",
                        help="time coldstart.training.step.train_step in this process (no Ray, no DDP): the same "
                             "step code without Ray's start-up, for a loaded machine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    hd = args.data / "homedepot"
    if not (hd / "queries_train.tsv").is_file():
        print(f"skipped: no Home Depot data under {args.data}")
        return 0
    base = TrainConfig(model=args.model, max_length=32, max_steps=args.steps, batch_size=args.batch_size,
                       checkpoint_every=args.steps, warmup_steps=1)
    texts = read_catalog_texts(hd / "catalog.parquet")
    examples, _ = judgment_examples(hd / "queries_train.tsv", hd / "qrels_train.tsv", texts, base)
    attacks = {"plain": AdversarialConfig(method="none"), "fgm": AdversarialConfig(method="fgm", epsilon=0.5),
               "pgd-k3": AdversarialConfig(method="pgd", epsilon=0.5, alpha=0.2, steps=3)}
    if args.in_process:
        rows = {name: _in_process(base.replace(adversarial=attack), examples, texts) for name, attack in attacks.items()}
    else:
        rows = {name: _with_ray(base.replace(adversarial=attack), examples, texts, name) for name, attack in attacks.items()}
    for name, row in rows.items():
        row["relative"] = round(row["pairs_per_s"] / rows["plain"]["pairs_per_s"], 2)
    workers = 1 if args.in_process else base.num_workers
    print(json.dumps({"steps": args.steps, "global_batch": args.batch_size * workers,
                      "mode": "in-process" if args.in_process else "ray-train", "runs": rows},
                     indent=2))
    return 0


def _with_ray(config: TrainConfig, examples, texts, name: str) -> dict:
    """One Ray Train run (2 DDP workers); pairs/s over its steps as the run reports them."""
    from pipelines.train import run_training

    with tempfile.TemporaryDirectory() as tmp:
        result = run_training(config.replace(storage_path=f"{tmp}/train"), examples, texts,
                              run_id=f"throughput-{name}", out_dir=Path(tmp), publish=False)
    return {"pairs_per_s": round(result.metrics["pairs_per_s"], 2), "s_per_step": round(result.metrics["s_per_step"], 2)}


def _in_process(config: TrainConfig, examples, texts) -> dict:
    """Time ``config.max_steps`` steps after one warm-up step, single process, all threads."""
    import random
    import time

    import torch
    from transformers import AutoModel, AutoTokenizer

    from coldstart.training.adversarial import make_attack
    from coldstart.encoders.model_source import resolve_model_dir
    from coldstart.training.step import make_batch, train_step

    path = resolve_model_dir(config.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, add_pooling_layer=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    attack = make_attack(model, config.adversarial)
    rng = random.Random(0)
    times = []
    for step in range(config.max_steps + 1):
        batch = make_batch(examples[step * config.batch_size:(step + 1) * config.batch_size], texts,
                           hard_negatives=config.hard_negatives, rng=rng)
        t0 = time.perf_counter()
        train_step(model, tokenizer, batch, attack=attack, optimizer=optimizer, temperature=config.temperature,
                   max_length=config.max_length)
        times.append(time.perf_counter() - t0)
    per_step = sum(times[1:]) / config.max_steps
    return {"pairs_per_s": round(config.batch_size / per_step, 2), "s_per_step": round(per_step, 2)}


if __name__ == "__main__":
    raise SystemExit(main())
