"""Reading a shop's training data into examples: judged queries (TREC files + catalog) and sessions.

File formats are those of ``coldstart.trec``: ``qid<TAB>query`` requests, TREC qrels, JSON-lines sessions; the
catalog is a Parquet file with an id column and a text column.
"""

from __future__ import annotations

import logging
from pathlib import Path

from coldstart.training.config import TrainConfig
from coldstart.training.export import data_fingerprint
from coldstart.training.pairs import Example, build_examples

logger = logging.getLogger(__name__)


def read_catalog_texts(path: str | Path, *, id_col: str = "item_id", text_col: str | None = None) -> dict[str, str]:
    """``item_id → text`` from a Parquet catalog; the text column is ``text`` or else ``title``."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if text_col is None:
        text_col = "text" if "text" in table.column_names else "title"
    if id_col not in table.column_names or text_col not in table.column_names:
        raise ValueError(f"{path}: need columns {id_col!r} and {text_col!r}, found {table.column_names}")
    ids = table.column(id_col).to_pylist()
    texts = table.column(text_col).to_pylist()
    return {str(i): (t or "") for i, t in zip(ids, texts)}


def judgment_examples(queries_path: str | Path, qrels_path: str | Path, texts: dict[str, str],
                      config: TrainConfig) -> tuple[list[Example], str]:
    """Examples from judged queries with BM25-mined hard negatives; returns them and a data fingerprint."""
    from coldstart.bm25 import BM25Retriever
    from coldstart.trec import read_qrels, read_requests

    queries = {r.qid: r.query for r in read_requests(queries_path) if r.query}
    qrels = {qid: judged for qid, judged in read_qrels(qrels_path).items() if qid in queries}
    qrels = {qid: {i: g for i, g in judged.items() if i in texts} for qid, judged in qrels.items()}
    mined = None
    if config.bm25_depth > 0:
        ids = list(texts)
        bm25 = BM25Retriever(ids, [texts[i] for i in ids])
        qids = list(qrels)
        hits = bm25.search([queries[q] for q in qids], config.bm25_depth + 20)
        mined = {q: [i for i, _ in h] for q, h in zip(qids, hits)}
    examples = build_examples(
        queries, qrels, mined=mined, strong_min_grade=config.strong_min_grade, weak_min_grade=config.weak_min_grade,
        weak_weight=config.weak_weight, negative_max_grade=config.negative_max_grade,
        relevant_min_grade=config.relevant_min_grade, max_negatives=max(config.bm25_depth, 1))
    fp = data_fingerprint(f"{e.qid}\t{e.positive}\t{e.weight}" for e in examples)
    return examples, fp
