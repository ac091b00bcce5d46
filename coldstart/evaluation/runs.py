"""Requests ranked into runs and judged pairs scored, by the ranking pipeline: what ``coldstart search``,
``coldstart score``, ``jobs.evaluate`` and the benchmark scripts all do, written once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

logger = logging.getLogger(__name__)


def rank_all(pipeline, requests: Sequence, *, k: int = 100, batch_size: int = 256) -> dict[str, list]:
    """``qid → [(item_id, score), ...]`` (top ``k``, best first) for :class:`coldstart.evaluation.trec.Request`
    objects, ranked by ``pipeline`` (a :class:`coldstart.ranking.pipeline.RankingPipeline`) ``batch_size`` at a
    time. A request with no signal gets an empty list."""
    from coldstart.progress import Progress
    from coldstart.ranking.dense import UserRequest

    out: dict[str, list] = {}
    with Progress(len(requests), desc="search", unit="requests") as progress:
        for start in range(0, len(requests), batch_size):
            chunk = requests[start:start + batch_size]
            rankings = pipeline.search([UserRequest(query=r.query, clicks=r.clicks) for r in chunk], k)
            out.update((r.qid, ranking) for r, ranking in zip(chunk, rankings))
            progress.update(len(chunk))
    return out


def search_to_run(pipeline, requests_path: str | Path, out: str | Path, *, k: int = 100, batch_size: int = 256,
                  tag: str = "coldstart") -> dict:
    """Rank every request of ``requests_path`` and write the top ``k`` of each to the TREC run ``out``. Returns the
    counts: requests read, rows written, empty results, the version ranked."""
    from coldstart.evaluation.trec import read_requests, write_run

    requests = read_requests(requests_path)
    run = rank_all(pipeline, requests, k=k, batch_size=batch_size)
    write_run(out, run.items(), tag=tag)
    empty = sum(1 for ranking in run.values() if not ranking)
    return {"requests": len(requests), "written": len(run), "empty_results": empty, "version": pipeline.version,
            "out": str(out)}


def score_pairs(pipeline, pairs: Sequence[tuple[str, str, str]], *,
                chunk_size: int = 4096) -> tuple[dict[str, dict[str, float]], int]:
    """``(qid → {item_id: score}, unknown)`` for ``(qid, query, item_id)`` pairs scored by
    :meth:`~coldstart.ranking.pipeline.RankingPipeline.pair_scores`; pairs naming an item not in the version get
    no score and are counted in ``unknown``.

    Scored about ``chunk_size`` pairs at a time, for the progress line; a chunk ends where a query's pairs end, so
    a query's pairs are scored together (a pair's score depends only on its query and item either way)."""
    import numpy as np

    from coldstart.progress import Progress

    parts = []
    with Progress(len(pairs), desc="score pairs", unit="pairs") as progress:
        start = 0
        while start < len(pairs):
            end = min(start + chunk_size, len(pairs))
            while end < len(pairs) and pairs[end][1] == pairs[end - 1][1]:
                end += 1
            chunk = pairs[start:end]
            parts.append(pipeline.pair_scores([p[1] for p in chunk], [p[2] for p in chunk]))
            progress.update(len(chunk))
            start = end
    scores = np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)
    by_query: dict[str, dict[str, float]] = {}
    unknown = 0
    for (qid, _, item_id), score in zip(pairs, scores):
        if score != score:  # NaN: the item is not in the index
            unknown += 1
            continue
        by_query.setdefault(qid, {})[item_id] = float(score)
    if unknown:
        logger.warning("%d pairs name items not in the index; they get no score", unknown)
    return by_query, unknown
