"""Leave-one-out next item on Amazon Industrial & Scientific dev, beside the published sequential recommenders.

    python -m benchmarks.next_item --data DATA_DIR [--config configs/train-cpu.toml] [--cache DIR] [--out FILE]

Each dev user's items but the last are the history (the clicks of a clicks-only request), the last item is the one
relevant item (:func:`coldstart.evaluation.trec.sessions_to_leave_one_out`). Ranked in the same run, each by a
:class:`coldstart.ranking.pipeline.RankingPipeline` over the version :func:`benchmarks.quality.scientific` publishes
(the packaged encoder):

- ``coldstart``: the ``blend`` retriever with the session signals fitted from ``sessions_train`` (what
  ``benchmarks/quality.py reproduce`` ranks Amazon Scientific with);
- ``pop``: the same blend with ``[retrieval.clicks]`` = popularity only (the number of training sessions an item
  is in), i.e. the most frequent items of ``sessions_train``;
- ``bm25``: the ``bm25`` retriever (the history's texts as the query);
- ``minilm``: the ``dense`` retriever (the history's item vectors, recency-weighted).

NDCG@10 and Recall@10 come from :func:`coldstart.evaluation.metrics.evaluate_run` (ranx). Users whose target is also
in their history cannot be reached (clicked items are never recommended): they stay in the denominator, as the
published protocol counts them, and the numbers without them are printed too.

The published figures (Recformer paper, Li et al., KDD 2023, Amazon "Scientific") come from ANOTHER PROTOCOL: there
the users' earlier interactions were in the training data (and some papers rank sampled negatives; Recformer ranks
the full item set). Here the dev users are new, unseen in training, and the whole catalog of 4,385 items is ranked
for each. They are printed beside ours as a point of reference, not as a like-for-like comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import NamedTuple

from benchmarks.quality import scientific, session_signals

logger = logging.getLogger("benchmarks.next_item")

DEPTH = 100  # ranked per user; the metrics need 10, evaluate_run's deep recall 100

PROTOCOL = ("protocols differ: ours = new users unseen in training, the full catalog (4,385 items) ranked; published = "
            "users whose earlier interactions were in training (some papers sample negatives; Recformer ranks the full "
            "item set)")

PUBLISHED = (  # (system, NDCG@10, Recall@10), Recformer paper (Li et al., KDD 2023), Amazon "Scientific"
    ("SASRec", 0.056, 0.101),
    ("VQ-Rec", 0.064, 0.121),
    ("Recformer", 0.103, 0.145),
)


class Setup(NamedTuple):
    """One ranked row: a retriever of the pipeline, the ``[retrieval.clicks]`` weights (None: the config's), and
    whether it gets the session signals."""

    name: str
    retriever: str
    click_weights: dict[str, float] | None = None
    sessions: bool = False


SETUPS = (  # one line per row
    Setup("coldstart (blend + session signals)", "blend", sessions=True),
    Setup("pop (most frequent in sessions_train)", "blend", {"popularity": 1.0}, sessions=True),
    Setup("bm25", "bm25"),
    Setup("minilm (packaged encoder)", "dense"),
)


def evaluate(data: Path, *, config_path: str | None, cache: Path | None) -> tuple[list[dict], dict]:
    """Every setup ranked for the dev users and scored; returns the rows and the protocol's counts."""
    from coldstart.evaluation.metrics import evaluate_run
    from coldstart.evaluation.runs import rank_all
    from coldstart.evaluation.trec import read_sessions, sessions_to_leave_one_out
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.pipeline import RankingPipeline, load_recommender

    config = load_retrieval_config(config_path)
    split = sessions_to_leave_one_out(read_sessions(data / "amazon_scientific" / "sessions_dev.jsonl"))
    reachable = split.without_repeated()
    recommender = load_recommender(scientific(data, config_path=config_path, cache=cache))
    signals = session_signals(data, recommender, config)
    rows = []
    for setup in SETUPS:
        started = time.time()
        weights = config.click_weights if setup.click_weights is None else setup.click_weights
        pipeline = RankingPipeline(recommender, dataclasses.replace(config, click_weights=weights),
                                   retriever=setup.retriever, sessions=signals if setup.sessions else None)
        run = {qid: dict(ranking) for qid, ranking in rank_all(pipeline, split.requests, k=DEPTH).items()}
        every, without = evaluate_run(split.qrels, run), evaluate_run(reachable, run)
        rows.append({"system": setup.name, "ndcg@10": every["ndcg@10"], "recall@10": every["recall@10"],
                     "reachable_ndcg@10": without["ndcg@10"], "reachable_recall@10": without["recall@10"],
                     "users": every["queries"], "seconds": round(time.time() - started, 1)})
        logger.info("%s", rows[-1])
    counts = {"users": len(split.requests), "target_in_history": len(split.repeated), "items": len(
        recommender.version.index.ids)}
    return rows, counts


def _table(rows: list[dict], counts: dict) -> str:
    n, repeated = counts["users"], counts["target_in_history"]
    lines = [f"| Amazon Scientific dev, leave-one-out ({n:,} users, {counts['items']:,} items) | NDCG@10 | Recall@10 "
             f"| NDCG@10 without the {repeated} | Recall@10 without the {repeated} |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['system']} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | {r['reachable_ndcg@10']:.4f} "
              f"| {r['reachable_recall@10']:.4f} |" for r in rows]
    lines += [f"| {name} (published; another protocol) | {ndcg:.3f} | {recall:.3f} | | |"
              for name, ndcg, recall in PUBLISHED]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the benchmark data folder (../shared/data)")
    parser.add_argument("--config", default="configs/train-cpu.toml")
    parser.add_argument("--cache", type=Path, help="where the published store is kept between runs")
    parser.add_argument("--out", type=Path, help="also write the rows as a results file (benchmarks/record.py)")
    args = parser.parse_args(argv)
    from coldstart.logs import setup_logging

    setup_logging(False)
    sci = args.data / "amazon_scientific"
    if not all((sci / name).is_file() for name in ("items.parquet", "sessions_train.jsonl", "sessions_dev.jsonl")):
        print(f"skipped: no Amazon Scientific data (items.parquet, sessions_train.jsonl, sessions_dev.jsonl) under {sci}")
        return 0
    started = time.time()
    rows, counts = evaluate(args.data, config_path=args.config, cache=args.cache)
    print(_table(rows, counts))
    print(f"\n{counts['target_in_history']} of {counts['users']} users have their target in their history: unreachable "
          "(clicked items are never recommended), kept in the denominator as the published protocol does; the last "
          "two columns leave them out.")
    print(f"NOTE: {PROTOCOL}.")
    print(f"({time.time() - started:.0f} s)")
    if args.out is not None:
        from benchmarks.record import write_results

        published = [{"system": name, "ndcg@10": ndcg, "recall@10": recall, "protocol": "published (another)"}
                     for name, ndcg, recall in PUBLISHED]
        path = write_results(args.out, "next_item", rows + published, script="benchmarks.next_item", started=started,
                             argv=argv, protocol=PROTOCOL, **counts)
        print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
