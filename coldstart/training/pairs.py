"""Training examples from queries and graded judgments, with hard negatives that are never judged relevant.

A shop's judgments are graded (Home Depot: 0..6). They are used as grades, not thrown away:

- grade ≥ ``strong_min_grade``: a positive with weight 1;
- ``weak_min_grade`` ≤ grade < ``strong_min_grade``: a positive with weight ``weak_weight`` (it still pulls, less);
- grade ≤ ``negative_max_grade``: a *judged* hard negative of that query — the most useful kind, since a human
  looked at it and said no;
- products ranked high by BM25 (or by the current model) that were not judged ≥ ``relevant_min_grade``: mined
  hard negatives.

A product judged ≥ ``relevant_min_grade`` for a query is never a negative of that query — neither as a hard negative
here, nor in-batch (``Example.relevant`` lets the loss mask it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    """One (query, positive) pair.

    ``negatives`` are item ids in preference order (judged negatives first, then mined ones); ``relevant`` is every
    item judged ≥ relevant_min_grade for the query (masked when it turns up as an in-batch negative); ``grade`` is
    the positive's judged grade and ``judged`` every judgment of the query (for the cross-query graded loss).
    """

    qid: str
    query: str
    positive: str
    weight: float
    negatives: tuple[str, ...]
    relevant: frozenset[str]
    grade: int | None = None
    judged: tuple[tuple[str, int], ...] = ()


def build_examples(
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    mined: Mapping[str, Sequence[str]] | None = None,
    strong_min_grade: int = 5,
    weak_min_grade: int = 4,
    weak_weight: float = 0.5,
    negative_max_grade: int = 2,
    relevant_min_grade: int = 3,
    max_negatives: int = 30,
) -> list[Example]:
    """One :class:`Example` per judged positive, in qrels order.

    Args:
        queries: ``qid → query text``; qrels of unknown queries are an error.
        qrels: ``qid → {item_id: grade}``.
        mined: ``qid → ranked item ids`` from BM25 or the current model; judged-relevant ids are dropped.
        max_negatives: how many negatives to keep per query (judged ones first).
    """
    if negative_max_grade >= relevant_min_grade:
        raise ValueError("negative_max_grade must be below relevant_min_grade")
    unknown = [qid for qid in qrels if qid not in queries]
    if unknown:
        raise ValueError(f"{len(unknown)} qrels queries have no text (e.g. {unknown[0]!r}); pass the matching queries")
    examples = []
    for qid, judged in qrels.items():
        relevant = frozenset(i for i, g in judged.items() if g >= relevant_min_grade)
        judged_neg = [i for i, g in sorted(judged.items(), key=lambda kv: kv[1]) if g <= negative_max_grade]
        mined_neg = [i for i in (mined or {}).get(qid, ()) if i not in judged and i not in relevant]
        negatives = tuple(dict.fromkeys(judged_neg + mined_neg))[:max_negatives]
        grades = tuple(judged.items())
        for item, grade in judged.items():
            if grade >= strong_min_grade:
                weight = 1.0
            elif grade >= weak_min_grade:
                weight = weak_weight
            else:
                continue
            examples.append(Example(qid, queries[qid], item, weight, negatives, relevant, grade, grades))
    logger.info("%d examples from %d queries (%d strong)", len(examples), len(qrels),
                sum(e.weight == 1.0 for e in examples))
    return examples


def session_examples(
    sessions: Sequence[Sequence[str]],
    texts: Mapping[str, str],
    *,
    window: int = 3,
    max_per_session: int = 20,
) -> list[Example]:
    """(clicked item → later item) pairs from training sessions: the item-to-item signal for new users.

    The 'query' is the earlier item's text; the positive is an item clicked within ``window`` steps after it.
    Every item of the same session is masked as a negative, since a user who bought both calls them related.
    """
    examples = []
    for n, items in enumerate(sessions):
        items = [i for i in items if i in texts]
        relevant = frozenset(items)
        count = 0
        for a in range(len(items)):
            for b in range(a + 1, min(len(items), a + 1 + window)):
                if items[a] == items[b] or count >= max_per_session:
                    continue
                examples.append(Example(f"s{n}:{a}", texts[items[a]], items[b], 1.0, (), relevant))
                count += 1
    return examples
