"""The learned ranker: LightGBM LambdaRank over every signal of the first stage's candidates.

The hand-weighted blend (:class:`~coldstart.ranking.retrievers.BlendRetriever`) finds the candidates — its top
``depth`` — and the ranker orders them from features of each (request, candidate) pair. Query requests and
clicks-only requests are different problems and get a model each:

- **query** features: the blend's score and rank; the encoder's cosine and its rank over the catalog; BM25's
  score, rank and share of the request's best; the cross-encoder's logit over the blend's top ``cross_depth``
  (NaN below, as LightGBM expects a missing value); term overlap, the query's coverage by the title and the
  title's by the query, the whole query as a phrase, the lengths, whether the title's first word (often the brand)
  is in the query; numbers in the query and how many the title has too; the item's brand in the query and its
  category's words in it (where session signals carry category/brand labels);
- **clicks** features: the blend's score and rank; cosine to the recency-weighted profile (and its rank), the best
  and the last click's cosine; BM25 of the clicks' text (score, rank); co-visitation (score, rank), the category
  and brand transitions, popularity; whether the item shares a category or brand with a click; the clicks'
  count.

A group is left out where its data is missing (no cross-encoder, no labels); the model records the features it
was trained with, in order, and a pipeline that cannot compute them refuses it (:class:`RankerMismatch`).

Training (:func:`training_table`, :func:`fit_model`) reads labelled requests; the features must come from models
that did not see those requests: ``jobs.fit_ranker`` computes click features with session signals fitted on the
other folds of the training sessions (out-of-fold), and query features with encoders trained on other queries
(``--holdout`` of ``benchmarks/reproduce_quality.sh``). The artifact is :mod:`coldstart.ranking.ranker_artifact`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from coldstart.ranking.dense import UserRequest

logger = logging.getLogger(__name__)

KINDS = ("query", "clicks")
QUERY_GROUPS: dict[str, tuple[str, ...]] = {
    "first": ("first_score", "first_rank"),
    "dense": ("dense", "dense_rank"),
    "bm25": ("bm25", "bm25_rank", "bm25_share"),
    "cross": ("cross",),
    "lexical": ("overlap", "coverage", "title_coverage", "phrase", "title_tokens", "query_tokens", "first_token"),
    "numbers": ("query_numbers", "numbers_matched", "numbers_coverage"),
    "attributes": ("brand_in_query", "category_overlap"),
}
CLICK_GROUPS: dict[str, tuple[str, ...]] = {
    "first": ("first_score", "first_rank"),
    "dense": ("dense", "dense_rank", "dense_best_click", "dense_last_click"),
    "bm25": ("bm25", "bm25_rank"),
    "covisit": ("covisit", "covisit_rank"),
    "transitions": ("category", "brand"),
    "popularity": ("popularity",),
    "attributes": ("same_category", "same_brand"),
    "clicks": ("clicks",),
}
GROUPS = {"query": QUERY_GROUPS, "clicks": CLICK_GROUPS}
_NUMBER = re.compile(r"\d+(?:[./]\d+)?")


class RankerMismatch(ValueError):
    """A ranker model needs features this pipeline cannot compute (or was trained on another encoder)."""


def kind_of(request: UserRequest) -> str:
    return "query" if request.query else "clicks"


def feature_names(kind: str, groups: Sequence[str]) -> list[str]:
    table = GROUPS[kind]
    unknown = set(groups) - set(table)
    if unknown:
        raise ValueError(f"unknown {kind} feature groups {sorted(unknown)}; known: {list(table)}")
    return [name for g in table if g in groups for name in table[g]]


def _catalog_rank(signal: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """1 + how many catalog items score strictly above each candidate."""
    ordered = np.sort(signal)
    return (len(signal) - np.searchsorted(ordered, signal[rows], side="right") + 1).astype(np.float32)


@dataclass
class Candidates:
    """One request's candidates (index rows, the blend's order) and their feature matrix (NaN = missing)."""

    kind: str
    rows: np.ndarray
    features: np.ndarray  # (len(rows), len(names)) float32
    names: list[str]
    first_scores: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))


class FeatureBuilder:
    """Features of every request's top ``depth`` blend candidates.

    ``first`` is the pipeline's :class:`~coldstart.ranking.retrievers.BlendRetriever`; ``cross`` a
    :class:`~coldstart.ranking.rerank.Reranker` (None: no ``cross`` group); labels for the attribute groups come
    from the first stage's session signals (their category/brand transitions), when it has them."""

    def __init__(self, first, *, cross=None, depth: int = 100, cross_depth: int = 30):
        if depth < 1 or cross_depth < 0:
            raise ValueError("ranker depth must be ≥ 1 and cross_depth ≥ 0")
        self.first, self.cross, self.depth, self.cross_depth = first, cross, depth, cross_depth
        index = first.recommender.version.index
        self.index = index
        lexical = first.lexical
        texts = [lexical.bm25.texts[lexical.bm25.row_of[item]] for item in index.ids]
        self.texts = texts
        tokens = [lexical.bm25.tokenize(t) for t in texts]
        self._tokens = [frozenset(t) for t in tokens]
        self._first_token = [t[0] if t else "" for t in tokens]
        self._numbers = [frozenset(_NUMBER.findall(t.lower())) for t in texts]
        self._labels: dict[str, np.ndarray] = {}
        self._label_words: dict[str, list[frozenset[str]]] = {}
        sessions = first.sessions
        if sessions is not None:
            rows = first._session_rows
            for name, t in sessions.transitions.items():
                label_of = np.asarray(t.label_of)[rows]
                self._labels[name] = label_of
                words = [frozenset(lexical.bm25.tokenize(str(label))) for label in t.labels]
                self._label_words[name] = [words[n] if n >= 0 else frozenset() for n in label_of]

    def groups(self, kind: str) -> list[str]:
        """The feature groups this pipeline can compute for ``kind`` requests."""
        if kind == "query":
            return [g for g in QUERY_GROUPS if (g != "cross" or self.cross is not None)
                    and (g != "attributes" or self._labels)]
        sessions = self.first.sessions
        missing = set() if sessions is not None else {"covisit", "popularity", "transitions"}
        if not self._labels:
            missing |= {"attributes", "transitions"}
        return [g for g in CLICK_GROUPS if g not in missing]

    def build(self, requests: Sequence[UserRequest], query_vectors=None, *, depth: int | None = None,
              rows: Sequence[np.ndarray] | None = None) -> list[Candidates | None]:
        """Each request's candidates with every feature this pipeline can compute (None: no signal at all):
        the blend's top ``depth``, or given index ``rows`` per request (judged pairs to score). The cross-encoder
        reads the pairs among the blend's top ``cross_depth`` either way, as in training."""
        from coldstart.ranking.fusion import blend, top_k

        depth = depth or self.depth
        if rows is not None and len(rows) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(rows)} row lists: pass one per request")
        index = self.index
        signals_all = self.first.signals_all(requests, query_vectors, every=True)
        out: list[Candidates | None] = []
        for n, (r, signals) in enumerate(zip(requests, signals_all)):
            if signals is None:
                out.append(None)
                continue
            weights = {name: w for name, w in self.first.weights_for(r).items() if name in signals}
            blended = blend(signals, weights)
            if rows is None:
                banned = np.array([index.row_of[c] for c in (*r.clicks, *r.exclude) if c in index.row_of], np.int64)
                chosen = top_k(blended, depth, exclude=banned)
            else:
                chosen = np.asarray(rows[n], np.int64)
            kind = kind_of(r)
            columns = (self._query_columns if kind == "query" else self._click_columns)(r, signals, blended, chosen)
            names = feature_names(kind, self.groups(kind))
            matrix = np.column_stack([np.asarray(columns[name], np.float32) for name in names]) if len(chosen) \
                else np.zeros((0, len(names)), np.float32)
            out.append(Candidates(kind, chosen, matrix, names, blended[chosen].astype(np.float32)))
        if self.cross is not None and self.cross_depth:
            self._add_cross(requests, out)
        return out

    def _first_columns(self, blended: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {"first_score": blended[rows], "first_rank": _catalog_rank(blended, rows)}

    def _query_columns(self, r: UserRequest, signals, blended, rows) -> dict[str, np.ndarray]:
        bm25, dense = signals["bm25"], signals["dense"]
        best = float(bm25.max()) if len(bm25) else 0.0
        tokenize = self.first.lexical.bm25.tokenize
        q_tokens = frozenset(tokenize(r.query))
        q_numbers = frozenset(_NUMBER.findall(r.query.lower()))
        q_lower = " ".join(r.query.lower().split())
        n = len(rows)
        cols = {**self._first_columns(blended, rows), "dense": dense[rows], "dense_rank": _catalog_rank(dense, rows),
                "bm25": bm25[rows], "bm25_rank": _catalog_rank(bm25, rows),
                "bm25_share": bm25[rows] / best if best > 0 else np.zeros(n, np.float32),
                "cross": np.full(n, np.nan, np.float32)}
        overlap, title_len, phrase, first_tok, matched = (np.zeros(n, np.float32) for _ in range(5))
        brand, category = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for j, row in enumerate(rows):
            tokens = self._tokens[row]
            overlap[j] = len(q_tokens & tokens)
            title_len[j] = len(tokens)
            phrase[j] = q_lower in " ".join(self.texts[row].lower().split())
            first_tok[j] = self._first_token[row] in q_tokens
            matched[j] = len(q_numbers & self._numbers[row])
            if "brand" in self._label_words:
                words = self._label_words["brand"][row]
                brand[j] = bool(words) and words <= q_tokens
            if "category" in self._label_words:
                category[j] = len(self._label_words["category"][row] & q_tokens)
        cols.update(overlap=overlap, coverage=overlap / max(len(q_tokens), 1),
                    title_coverage=overlap / np.maximum(title_len, 1), phrase=phrase, title_tokens=title_len,
                    query_tokens=np.full(n, len(q_tokens), np.float32), first_token=first_tok,
                    query_numbers=np.full(n, len(q_numbers), np.float32), numbers_matched=matched,
                    numbers_coverage=matched / max(len(q_numbers), 1), brand_in_query=brand,
                    category_overlap=category)
        return cols

    def _click_columns(self, r: UserRequest, signals, blended, rows) -> dict[str, np.ndarray]:
        index, n = self.index, len(rows)
        clicked = [index.row_of[c] for c in r.clicks if c in index.row_of]
        dense = signals["dense"]
        cols = {**self._first_columns(blended, rows), "dense": dense[rows], "dense_rank": _catalog_rank(dense, rows),
                "bm25": signals["bm25"][rows], "bm25_rank": _catalog_rank(signals["bm25"], rows),
                "clicks": np.full(n, len(clicked), np.float32)}
        if clicked:
            sims = index.vectors[rows] @ index.vectors[clicked].T
            cols["dense_best_click"], cols["dense_last_click"] = sims.max(axis=1), sims[:, -1]
        else:
            cols["dense_best_click"] = cols["dense_last_click"] = np.full(n, np.nan, np.float32)
        if "covisit" in signals:
            cols["covisit"], cols["covisit_rank"] = signals["covisit"][rows], _catalog_rank(signals["covisit"], rows)
            cols["popularity"] = signals["popularity"][rows]
        for name in ("category", "brand"):
            cols[name] = signals[name][rows] if name in signals else np.full(n, np.nan, np.float32)
            labels = self._labels.get(name)
            if labels is None:
                cols[f"same_{name}"] = np.full(n, np.nan, np.float32)
            else:
                mine = {labels[c] for c in clicked} - {-1}
                cols[f"same_{name}"] = np.isin(labels[rows], list(mine)).astype(np.float32)
        return cols

    def _add_cross(self, requests: Sequence[UserRequest], built: list[Candidates | None]) -> None:
        """The cross-encoder's logits over each query request's top ``cross_depth``, in one pass."""
        jobs = [(n, c) for n, (r, c) in enumerate(zip(requests, built))
                if c is not None and c.kind == "query" and "cross" in c.names and len(c.rows)]
        if not jobs:
            return
        heads = [np.flatnonzero(c.features[:, c.names.index("first_rank")] <= self.cross_depth) for _, c in jobs]
        pair_q = [requests[n].query for (n, _), head in zip(jobs, heads) for _ in head]
        pair_t = [self.texts[c.rows[at]] for (_, c), head in zip(jobs, heads) for at in head]
        logits = self.cross.cross.score(pair_q, pair_t)
        pos = 0
        for (_, c), head in zip(jobs, heads):
            c.features[head, c.names.index("cross")] = logits[pos:pos + len(head)]
            pos += len(head)


@dataclass
class TrainingTable:
    """Rows of (request, candidate) features, labels (grades) and the group size of each request."""

    kind: str
    names: list[str]
    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray  # candidates per request, in row order
    qids: list[str]
    info: dict = field(default_factory=dict)

    def subset(self, keep: Sequence[int]) -> "TrainingTable":
        starts = np.concatenate([[0], np.cumsum(self.groups)])
        rows = np.concatenate([np.arange(starts[g], starts[g + 1]) for g in keep]) if len(keep) else \
            np.empty(0, np.int64)
        return TrainingTable(self.kind, self.names, self.features[rows], self.labels[rows], self.groups[list(keep)],
                             [self.qids[g] for g in keep], dict(self.info))

    def without(self, groups: Sequence[str]) -> "TrainingTable":
        """The same rows without the features of ``groups`` (an ablation)."""
        drop = {n for g in groups for n in GROUPS[self.kind][g]}
        keep = [j for j, n in enumerate(self.names) if n not in drop]
        return TrainingTable(self.kind, [self.names[j] for j in keep], self.features[:, keep], self.labels,
                             self.groups, self.qids, dict(self.info))

    @staticmethod
    def concat(tables: Sequence["TrainingTable"]) -> "TrainingTable":
        first = tables[0]
        if any(t.names != first.names or t.kind != first.kind for t in tables):
            raise ValueError("training tables with different features cannot be joined")
        info = {k: sum(t.info.get(k, 0) for t in tables) for k in first.info}
        return TrainingTable(first.kind, first.names, np.concatenate([t.features for t in tables]),
                             np.concatenate([t.labels for t in tables]), np.concatenate([t.groups for t in tables]),
                             [q for t in tables for q in t.qids], info)


def training_table(builder: FeatureBuilder, requests: Sequence, qrels: Mapping[str, Mapping[str, int]], *,
                   batch_size: int = 128) -> TrainingTable:
    """Features and graded labels of labelled requests (:class:`~coldstart.evaluation.trec.Request`: ``qid``,
    ``query`` or ``clicks``) of one kind. Requests with no candidate judged above 0 teach LambdaRank nothing and
    are left out — counted in ``info``, with the relevant items the candidates missed."""
    from coldstart.progress import Progress

    kinds = {kind_of(UserRequest(query=r.query, clicks=r.clicks)) for r in requests}
    if len(kinds) != 1:
        raise ValueError(f"train one kind of request at a time, got {sorted(kinds)}")
    kind = kinds.pop()
    feats, labels, groups, qids = [], [], [], []
    info = {"requests": len(requests), "no_candidates": 0, "no_relevant_candidate": 0, "relevant": 0,
            "relevant_in_candidates": 0}
    ids = builder.index.ids
    with Progress(len(requests), desc=f"ranker features ({kind})", unit="requests") as progress:
        for start in range(0, len(requests), batch_size):
            chunk = requests[start:start + batch_size]
            built = builder.build([UserRequest(query=r.query, clicks=r.clicks) for r in chunk])
            for r, c in zip(chunk, built):
                judged = qrels.get(r.qid, {})
                info["relevant"] += sum(1 for g in judged.values() if g > 0)
                if c is None or not len(c.rows):
                    info["no_candidates"] += 1
                    continue
                y = np.array([judged.get(ids[row], 0) for row in c.rows], np.int32)
                y = np.maximum(y, 0)
                info["relevant_in_candidates"] += int((y > 0).sum())
                if not y.any():
                    info["no_relevant_candidate"] += 1
                    continue
                feats.append(c.features)
                labels.append(y)
                groups.append(len(c.rows))
                qids.append(r.qid)
                names = c.names
            progress.update(len(chunk))
    if not groups:
        raise ValueError(f"none of the {len(requests)} {kind} requests has a relevant item among its candidates: "
                         "nothing to learn from (check the qrels against the catalog)")
    info["trained_requests"] = len(groups)
    logger.info("ranker training table (%s): %s", kind, info)
    return TrainingTable(kind, names, np.concatenate(feats), np.concatenate(labels), np.array(groups), qids, info)


@dataclass(frozen=True)
class RankerParams:
    """LightGBM LambdaRank settings; ``valid_fraction`` of the training requests (by a hash of their id) decides
    when to stop adding trees."""

    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    max_rounds: int = 600
    early_stopping: int = 50
    valid_fraction: float = 0.15
    threads: int = 2
    seed: int = 0


def hashed_fraction(key: str, seed: int = 0) -> float:
    """A stable number in [0, 1) for ``key``: how splits by id are made, the same on every machine."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def fit_model(table: TrainingTable, params: RankerParams = RankerParams()):
    """A LightGBM booster trained with LambdaRank on ``table``; linear gains (grade = gain, as our NDCG).
    Returns ``(booster, info)`` with the best iteration and the validation NDCG@10."""
    import lightgbm as lgb

    # a request id's part before "#" names its user (one user's k=1 and k=3 requests stay on one side)
    valid = [g for g, q in enumerate(table.qids)
             if hashed_fraction(q.split("#")[0], params.seed) < params.valid_fraction]
    train = [g for g in range(len(table.qids)) if g not in set(valid)]
    if not train or not valid:
        raise ValueError(f"{len(table.qids)} training requests are too few to hold {params.valid_fraction:.0%} out "
                         "for early stopping")
    fit, held = table.subset(train), table.subset(valid)
    config = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [10],
              "label_gain": list(range(int(table.labels.max()) + 1)), "learning_rate": params.learning_rate,
              "num_leaves": params.num_leaves, "min_data_in_leaf": params.min_data_in_leaf,
              "feature_fraction": params.feature_fraction, "bagging_fraction": params.bagging_fraction,
              "bagging_freq": 1, "num_threads": params.threads, "seed": params.seed, "deterministic": True,
              "force_col_wise": True, "verbose": -1}
    train_set = lgb.Dataset(fit.features, fit.labels, group=fit.groups, feature_name=table.names,
                            free_raw_data=False)
    valid_set = lgb.Dataset(held.features, held.labels, group=held.groups, reference=train_set)
    booster = lgb.train(config, train_set, num_boost_round=params.max_rounds, valid_sets=[valid_set],
                        valid_names=["valid"], callbacks=[lgb.early_stopping(params.early_stopping, verbose=False)])
    info = {"best_iteration": int(booster.best_iteration),
            "valid_ndcg@10": float(booster.best_score["valid"]["ndcg@10"]),
            "train_requests": len(train), "valid_requests": len(valid), "rows": int(len(table.labels)),
            "table": table.info}
    logger.info("ranker (%s): %d trees, validation NDCG@10 %.4f", table.kind, info["best_iteration"],
                info["valid_ndcg@10"])
    return booster, info


class LearnedRanker:
    """A ranking stage: the blend's candidates re-ordered by a model per request kind.

    ``models`` maps ``"query"`` / ``"clicks"`` to ``(booster, feature names)``; a request whose kind has no model
    keeps the blend's order. A model's features must be ones this pipeline computes, in the same order."""

    def __init__(self, builder: FeatureBuilder, models: Mapping[str, tuple[object, Sequence[str]]]):
        self.builder = builder
        self.models = {}
        for kind, (booster, names) in models.items():
            if kind not in KINDS:
                raise ValueError(f"unknown ranker model kind {kind!r}: use {KINDS}")
            have = feature_names(kind, builder.groups(kind))
            missing = [n for n in names if n not in have]
            if missing:
                raise RankerMismatch(
                    f"the {kind} ranker was trained with features {missing} that this pipeline cannot compute "
                    f"(it has {have}): give it the cross-encoder or session signals it was trained with")
            self.models[kind] = (booster, [have.index(n) for n in names])

    def search(self, requests: Sequence[UserRequest], k: int, query_vectors=None):
        return self.rank(self.builder.build(requests, query_vectors, depth=max(k, self.builder.depth)), k)

    def scores(self, candidates: Candidates) -> np.ndarray | None:
        """The model's score of each candidate, or None when its kind has no model (the blend's order stands)."""
        model = self.models.get(candidates.kind)
        if model is None or not len(candidates.rows):
            return None
        booster, columns = model
        return booster.predict(candidates.features[:, columns], num_threads=1)

    def rank(self, built: Sequence[Candidates | None], k: int):
        """Top ``k`` ``(item_id, score)`` of already built candidates, best first."""
        ids = self.builder.index.ids
        out = []
        for c in built:
            if c is None:
                out.append([])
                continue
            scores = self.scores(c)
            if scores is None:
                out.append([(ids[row], float(s)) for row, s in zip(c.rows[:k], c.first_scores[:k])])
                continue
            order = np.argsort(-scores, kind="stable")[:k]
            out.append([(ids[c.rows[o]], float(scores[o])) for o in order])
        return out

    def pair_scores(self, queries: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """``(n,) float32`` query model score of each (query, item) pair, NaN for an item not in the version."""
        if "query" not in self.models:
            raise ValueError("this ranker has no query model to score (query, item) pairs with")
        row_of = self.builder.index.row_of
        by_query: dict[str, list[int]] = {}
        for n, (q, item) in enumerate(zip(queries, item_ids)):
            if item in row_of:
                by_query.setdefault(q, []).append(n)
        out = np.full(len(queries), np.nan, dtype=np.float32)
        unique = list(by_query)
        built = self.builder.build([UserRequest(query=q) for q in unique],
                                   rows=[np.array([row_of[item_ids[n]] for n in by_query[q]]) for q in unique])
        for q, c in zip(unique, built):
            out[by_query[q]] = self.scores(c)
        return out

    def kinds(self) -> list[str]:
        return list(self.models)
