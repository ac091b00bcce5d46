"""Sanity check of the BM25 baseline on Home Depot dev: prints the metrics next to BENCHMARK.md's row.

Not a test: it prints numbers. Usage (from the repository root):

    python benchmarks/bm25_homedepot.py [DATA_DIR]

DATA_DIR defaults to ../shared/data relative to the repository; the data is never copied into the repo.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coldstart.ranking.bm25 import BM25Retriever  # noqa: E402
from coldstart.evaluation.metrics import evaluate_run  # noqa: E402
from coldstart.evaluation.trec import read_qrels, read_requests  # noqa: E402

BASELINE = {"ndcg@10": 0.343, "recall@10": 0.410, "recall@100": 0.691, "mrr@10": 0.330}
FLOOR_NDCG = 0.333


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=str(REPO.parent / "shared" / "data"),
                        help="folder holding homedepot/ (default: %(default)s)")
    parser.add_argument("--k1", type=float, default=1.5)
    parser.add_argument("--b", type=float, default=0.75)
    parser.add_argument("--depth", type=int, default=100, help="products retrieved per query")
    parser.add_argument("--tokens", nargs="+", default=["bm25s", "units"], choices=["bm25s", "units"],
                        help="tokenisations to measure; bm25s is the BENCHMARK.md baseline (default: both)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import bm25s  # noqa: F401  (bm25s sets its logger to DEBUG on import; quieten it after that)

    logging.getLogger("bm25s").setLevel(logging.WARNING)

    data = Path(args.data_dir) / "homedepot"
    needed = [data / name for name in ("catalog.parquet", "queries_dev.tsv", "qrels_dev.tsv")]
    if not all(path.is_file() for path in needed):
        print(f"SKIP: Home Depot data not found under {data} (need catalog.parquet, queries_dev.tsv, "
              "qrels_dev.tsv); pass the data folder as the first argument")
        return 0

    import pyarrow.parquet as pq

    catalog = pq.read_table(data / "catalog.parquet", columns=["item_id", "title"]).to_pydict()
    requests = read_requests(data / "queries_dev.tsv")
    qrels = read_qrels(data / "qrels_dev.tsv")

    print(f"catalog {len(catalog['item_id'])} products, {len(requests)} dev queries, top {args.depth} each; "
          f"k1 {args.k1}, b {args.b}, English stopwords, titles")
    rows = {}
    for tokens in args.tokens:
        start = time.perf_counter()
        retriever = BM25Retriever(catalog["item_id"], catalog["title"], k1=args.k1, b=args.b, stopwords="en",
                                  tokens=tokens)
        built = time.perf_counter()
        results = retriever.search([r.query for r in requests], args.depth)
        searched = time.perf_counter()
        run = {r.qid: dict(ranking) for r, ranking in zip(requests, results)}
        rows[tokens] = evaluate_run(qrels, run, relevant_grade=5, cutoff=10, depth=args.depth)
        print(f"tokens={tokens}: index {built - start:.1f} s, search {searched - built:.2f} s "
              f"({len(requests) / (searched - built):.0f} queries/s)")

    names = list(next(iter(rows.values())))
    print(f"\n{'metric':<26}" + "".join(f"{'tokens=' + t:>16}" for t in rows) + f"{'BENCHMARK.md':>14}")
    for name in names:
        cells = [row[name] for row in rows.values()]
        shown = "".join(f"{c:>16.4f}" if isinstance(c, float) else f"{c:>16}" for c in cells)
        reference = f"{BASELINE[name]:>14.3f}" if name in BASELINE else ""
        print(f"{name:<26}{shown}{reference}")
    for tokens, row in rows.items():
        verdict = "OK" if row["ndcg@10"] >= FLOOR_NDCG else "BELOW FLOOR"
        print(f"{verdict}: tokens={tokens} ndcg@10 {row['ndcg@10']:.4f} (floor {FLOOR_NDCG})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
