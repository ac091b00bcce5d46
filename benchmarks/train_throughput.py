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

from coldstart.adversarial import AdversarialConfig
from coldstart.training.config import TrainConfig
from coldstart.training.sources import judgment_examples, read_catalog_texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    hd = args.data / "homedepot"
    if not (hd / "queries_train.tsv").is_file():
        print(f"skipped: no Home Depot data under {args.data}")
        return 0
    from pipelines.train import run_training

    base = TrainConfig(model=args.model, max_length=32, max_steps=args.steps, batch_size=args.batch_size,
                       checkpoint_every=args.steps, warmup_steps=1)
    texts = read_catalog_texts(hd / "catalog.parquet")
    examples, _ = judgment_examples(hd / "queries_train.tsv", hd / "qrels_train.tsv", texts, base)
    attacks = {"plain": AdversarialConfig(method="none"), "fgm": AdversarialConfig(method="fgm", epsilon=0.5),
               "pgd-k3": AdversarialConfig(method="pgd", epsilon=0.5, alpha=0.2, steps=3)}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, attack in attacks.items():
            config = base.replace(adversarial=attack, storage_path=f"{tmp}/train")
            result = run_training(config, examples, texts, run_id=f"throughput-{name}", out_dir=Path(tmp),
                                  publish=False)
            rows[name] = {"pairs_per_s": round(result.metrics["pairs_per_s"], 2),
                          "s_per_step": round(result.metrics["s_per_step"], 2)}
    for name, row in rows.items():
        row["relative"] = round(row["pairs_per_s"] / rows["plain"]["pairs_per_s"], 2)
    print(json.dumps({"steps": args.steps, "global_batch": args.batch_size * base.num_workers, "runs": rows},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
