"""Reading a shop's training data into examples: judged queries (TREC files + catalog) and sessions.

File formats are those of ``coldstart.evaluation.trec``: ``qid<TAB>query`` requests, TREC qrels, JSON-lines sessions; the
catalog is a Parquet file with an id column and a text column.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from coldstart.training.config import TrainConfig
from coldstart.training.export import data_fingerprint
from coldstart.training.pairs import Example, build_examples
from coldstart.training.pointwise import PointwiseExample, pointwise_examples

logger = logging.getLogger(__name__)


def read_catalog_texts(uri: str | Path, schema=None) -> dict[str, str]:
    """``item_id → text`` exactly as ``coldstart embed`` composes it: the catalog's own reader (Parquet, CSV or JSON
    Lines; a file or a folder; local or S3) and the ``[schema]`` text template (a
    :class:`coldstart.catalog.reader.CatalogSchema`; default: the ``title`` column), so the text a model is trained
    on is the text its index is built from. Bad rows are quarantined and counted in the log, as when embedding."""
    from coldstart.catalog.reader import CatalogSchema, validate_catalog

    catalog = validate_catalog(str(uri), schema or CatalogSchema())
    catalog.require_rows()
    if catalog.rows_quarantined:
        logger.warning("catalog %s: %d of %d rows quarantined, not trained on (the same rows embedding quarantines)",
                       uri, catalog.rows_quarantined, catalog.rows_read)
    good = catalog.good
    return dict(zip(good.column("item_id").to_pylist(), good.column("text").to_pylist()))


def read_judgments(queries_path: str | Path, qrels_path: str | Path, texts: dict[str, str]
                   ) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """``(qid → query, qid → {item_id: grade})`` for the queries with text; judgments of products missing from
    the catalog are left out and counted in the log."""
    from coldstart.evaluation.trec import read_qrels, read_requests

    queries = {r.qid: r.query for r in read_requests(queries_path) if r.query}
    qrels = {qid: judged for qid, judged in read_qrels(qrels_path).items() if qid in queries}
    known = {qid: {i: g for i, g in judged.items() if i in texts} for qid, judged in qrels.items()}
    dropped = sum(len(j) for j in qrels.values()) - sum(len(j) for j in known.values())
    if dropped:
        logger.warning("%d judged pairs name products missing from the catalog; left out", dropped)
    return queries, known


def judgment_examples(queries_path: str | Path, qrels_path: str | Path, texts: dict[str, str],
                      config: TrainConfig) -> tuple[list[Example], str]:
    """Examples from judged queries with hard negatives mined by BM25 (and by the model itself when
    ``dense_mining_depth`` > 0); returns them and a data fingerprint."""
    queries, qrels = read_judgments(queries_path, qrels_path, texts)
    qids = list(qrels)
    lists = []
    if config.bm25_depth > 0:
        lists.append(mine_bm25(texts, [queries[q] for q in qids], depth=config.bm25_depth + 20))
    if config.dense_mining_depth > 0:
        lists.append(mine_dense(texts, [queries[q] for q in qids], model=config.model, pooling=config.pooling,
                                max_length=config.max_length, depth=config.dense_mining_depth,
                                skip=config.dense_mining_skip))
    mined = {q: interleave([found[n] for found in lists]) for n, q in enumerate(qids)} if lists else None
    examples = build_examples(
        queries, qrels, mined=mined, strong_min_grade=config.strong_min_grade, weak_min_grade=config.weak_min_grade,
        weak_weight=config.weak_weight, negative_max_grade=config.negative_max_grade,
        relevant_min_grade=config.relevant_min_grade,
        max_negatives=max(config.bm25_depth + config.dense_mining_depth, 1))
    fp = data_fingerprint(f"{e.qid}\t{e.positive}\t{e.weight}" for e in examples)
    return examples, fp


def judgment_pairs(queries_path: str | Path, qrels_path: str | Path, texts: dict[str, str],
                   config: TrainConfig) -> tuple[list[PointwiseExample], str]:
    """Every judged (query, product) pair with its scaled grade, for a cross-encoder; and a data fingerprint.

    Pairs whose product is not in the catalog are dropped and counted in the log."""
    queries, qrels = read_judgments(queries_path, qrels_path, texts)
    examples = pointwise_examples(queries, {q: j for q, j in qrels.items() if j}, grade_max=config.grade_max)
    fp = data_fingerprint(f"{e.qid}\t{e.item}\t{e.label}" for e in examples)
    return examples, fp


def mine_bm25(texts: dict[str, str], queries: list[str], *, depth: int) -> list[list[str]]:
    """BM25's top ``depth`` item ids per query."""
    from coldstart.ranking.bm25 import BM25Retriever

    ids = list(texts)
    hits = BM25Retriever(ids, [texts[i] for i in ids]).search(queries, depth)
    return [[i for i, _ in h] for h in hits]


def mine_dense(texts: dict[str, str], queries: list[str], *, model: str, pooling: str, max_length: int, depth: int,
               skip: int = 0) -> list[list[str]]:
    """The encoder's ranks ``skip`` to ``skip + depth`` per query (exact cosine over every item)."""
    import numpy as np

    from coldstart.ranking.fusion import top_k
    from coldstart.encoders.encoder import Encoder, EncoderConfig
    from coldstart.progress import Progress

    encoder = Encoder(EncoderConfig(model=model, pooling=pooling, max_length=max_length))
    ids = list(texts)
    t0 = time.perf_counter()
    with Progress(len(ids), desc="mine negatives: embed the catalog", unit="titles") as progress:
        items = encoder.encode([texts[i] for i in ids], on_batch=progress.update)
    found = []
    for start in range(0, len(queries), 256):
        scores = encoder.encode(queries[start:start + 256]) @ items.T
        found.extend([ids[r] for r in top_k(row, skip + depth)[skip:]] for row in np.asarray(scores))
    logger.info("mined %d dense negatives for %d queries over %d items in %.0f s", depth, len(queries), len(ids),
                time.perf_counter() - t0)
    return found


def interleave(lists: list[list[str]]) -> list[str]:
    """``[a1, b1, a2, b2, ...]`` without repeats: every miner's best candidates come first."""
    out: dict[str, None] = {}
    for rank in range(max((len(x) for x in lists), default=0)):
        for x in lists:
            if rank < len(x):
                out.setdefault(x[rank])
    return list(out)
