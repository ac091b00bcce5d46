"""Score the benchmark data with every signal, write TREC runs, and evaluate them.

Two systems, each blending full-catalog signals with :func:`coldstart.ranking.fusion.blend` (weights from
``[retrieval]`` in the config, chosen on dev):

- **query → product** (Home Depot): ``dense`` (the fine-tuned encoder's cosine), ``bm25``, ``neighbours`` (the
  judgments of the most similar *training* queries, :mod:`coldstart.ranking.judged_neighbours`);
- **clicks → product** (Amazon Scientific): ``content`` (cosine to the mean of the clicked items' vectors),
  ``bm25`` (clicked texts as the query), and the session signals of
  :class:`coldstart.signals.sessions.SessionSignals`: ``covisit`` (other users' sessions), ``popularity``,
  ``category`` and ``brand`` (what kinds of product follow the kinds clicked, :mod:`coldstart.signals.transitions`; the
  labels come from the items' ``category``/``brand`` columns, or else from the text, which Amazon Scientific
  writes as "title. categories. brand.").

Only ``*_train`` files are learned from; every other split found in DATA_DIR gets a run::

    python -m benchmarks.quality reproduce --data DATA_DIR --out OUT_DIR --model MODEL_DIR --config CONFIG
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from coldstart.ranking.fusion import blend, top_k
from coldstart.ranking.judged_neighbours import JudgedNeighbours
from coldstart.ranking.config import RetrievalConfig, load_retrieval_config
from coldstart.signals.sessions import SessionSignals
from coldstart.training.sources import read_catalog_texts

logger = logging.getLogger("benchmarks.quality")

RUN_DEPTH = 100
CHUNK = 256


def encode(model: str, texts: Sequence[str], *, max_length: int, cache_dir: Path | None) -> np.ndarray:
    """``(n, d) float32`` L2-normalised; cached on disk by encoder fingerprint + texts."""
    from coldstart.encoders.encoder import Encoder, EncoderConfig, encoder_fingerprint
    from coldstart.encoders.model_source import resolve_model_dir

    key = None
    if cache_dir is not None:
        fp = encoder_fingerprint(resolve_model_dir(model), pooling="mean", max_length=max_length)
        h = hashlib.sha256(fp.encode())
        for t in texts:
            h.update(t.encode() + b"\0")
        key = Path(cache_dir) / f"vectors-{h.hexdigest()[:20]}.npy"
        if key.is_file():
            return np.load(key)
    t0 = time.perf_counter()
    vectors = _encoder(model, max_length).encode(list(texts))
    logger.info("encoded %d texts with %s in %.0f s", len(texts), model, time.perf_counter() - t0)
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        np.save(key, vectors)
    return vectors


_ENCODERS: dict = {}


def _encoder(model: str, max_length: int):
    from coldstart.encoders.encoder import Encoder, EncoderConfig

    if (model, max_length) not in _ENCODERS:
        _ENCODERS[(model, max_length)] = Encoder(EncoderConfig(model=model, max_length=max_length))
    return _ENCODERS[(model, max_length)]


def splits(directory: Path, prefix: str, suffix: str) -> list[str]:
    """Split names of ``<prefix><split><suffix>`` files, ``train`` excluded, sorted."""
    pattern = re.compile(re.escape(prefix) + r"(.+)" + re.escape(suffix) + "$")
    found = [m.group(1) for p in directory.glob(f"{prefix}*{suffix}") if (m := pattern.match(p.name))]
    return sorted(s for s in found if s != "train")


class QuerySystem:
    """Home Depot style: a catalog, judged training queries, the signals for new queries."""

    def __init__(self, data: Path, *, model: str, config: RetrievalConfig, cache_dir: Path | None):
        from coldstart.ranking.bm25 import BM25Retriever

        self.dir = Path(data)
        texts = read_catalog_texts(self.dir / "catalog.parquet")
        self.ids = list(texts)
        self.row = {i: n for n, i in enumerate(self.ids)}
        self.model, self.config, self.cache_dir = model, config, cache_dir
        self.item_vectors = encode(model, [texts[i] for i in self.ids], max_length=config.encode_max_length,
                                   cache_dir=cache_dir)
        self.bm25 = BM25Retriever(self.ids, [texts[i] for i in self.ids], tokens=config.query_bm25_tokens)
        self._neighbours: JudgedNeighbours | None = None

    @property
    def neighbours(self) -> JudgedNeighbours:
        """Built on first use: it encodes every training query."""
        if self._neighbours is None:
            from coldstart.evaluation.trec import read_qrels, read_requests

            train_q = [r for r in read_requests(self.dir / "queries_train.tsv") if r.query]
            qrels = read_qrels(self.dir / "qrels_train.tsv")
            train_q = [r for r in train_q if r.qid in qrels]
            qv = self.encode_queries([r.query for r in train_q])
            self._neighbours = JudgedNeighbours(self.ids, qv, [qrels[r.qid] for r in train_q], self.config.neighbours)
        return self._neighbours

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        return encode(self.model, queries, max_length=self.config.encode_max_length, cache_dir=self.cache_dir)

    def signals(self, queries: Sequence[str], vectors: np.ndarray,
                names: Sequence[str] = ("dense", "bm25", "neighbours")) -> dict[str, np.ndarray]:
        """``name → (b, n_items) float32`` for the signals named."""
        make = {
            "dense": lambda: vectors @ self.item_vectors.T,
            "bm25": lambda: np.stack([self.bm25.scores(q) for q in queries]).astype(np.float32),
            "neighbours": lambda: self.neighbours.scores(vectors),
        }
        return {name: make[name]() for name in names}


def rank_queries(system: QuerySystem, requests, weights: dict[str, float], qrels=None, reranker=None):
    """``(run, pair_scores)``: top-100 per query and the score of every judged pair in ``qrels``
    (``[retrieval] pair_score``). With a :class:`coldstart.ranking.rerank.Reranker`, its fused score orders the top
    ``rerank_depth``."""
    run, pairs = {}, {}
    pair_score = system.config.pair_score
    if pair_score == "reranker" and reranker is None:
        raise ValueError("[retrieval] pair_score = 'reranker' needs a re-ranker model (--reranker)")
    vectors = system.encode_queries([r.query for r in requests])
    for start in range(0, len(requests), CHUNK):
        chunk = requests[start:start + CHUNK]
        names = {name for name, w in weights.items() if w} | {"dense"}
        sig = system.signals([r.query for r in chunk], vectors[start:start + CHUNK], sorted(names))
        for b, r in enumerate(chunk):
            scores = blend({k: v[b] for k, v in sig.items()}, weights)
            rows = top_k(scores, RUN_DEPTH)
            run[r.qid] = [(system.ids[i], float(scores[i])) for i in rows]
            if qrels is not None and r.qid in qrels:
                judged = [i for i in qrels[r.qid] if i in system.row]
                source = sig["dense"][b] if pair_score in ("dense", "reranker") else scores
                pairs[r.qid] = {i: float(source[system.row[i]]) for i in judged}
        if reranker is not None and pair_score == "reranker" and qrels is not None:
            # every judged pair of the chunk in one cross-encoder call: logit + weight × the cosine kept above
            judged = [(r, i) for r in chunk if r.qid in pairs for i in pairs[r.qid]]
            logits = reranker.cross.score([r.query for r, _ in judged], [reranker.text(i) for _, i in judged])
            w = system.config.rerank_pair_dense_weight
            for (r, i), logit in zip(judged, logits):
                pairs[r.qid][i] = float(logit) + w * pairs[r.qid][i]
        if reranker is not None:
            reranked = reranker.rerank_many([r.query for r in chunk], [run[r.qid] for r in chunk])
            run.update((r.qid, ranking) for r, ranking in zip(chunk, reranked))
        logger.info("ranked %d/%d queries", min(start + CHUNK, len(requests)), len(requests))
    return run, pairs


# Amazon Scientific's text is "title. categories. brand." (data README); the category path starts with the top
# category's name. A text the pattern does not fit gets no labels (134 of the 4,385 items).
AMAZON_TEXT = re.compile(r"\. (?P<category>Industrial & Scientific[^.]*)\. ?(?P<brand>.*?)\.?$")


def item_attributes(path: Path, texts: dict[str, str]) -> dict[str, dict[str, str]]:
    """``{"category": {item_id: label}, "brand": {...}}`` from the items file's columns, or else from the text."""
    import pyarrow.parquet as pq

    columns = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=["item_id"] + sorted(columns & {"category", "brand"})).to_pydict()
    labels: dict[str, dict[str, str]] = {"category": {}, "brand": {}}
    for n, item in enumerate(table["item_id"]):
        found = {name: table[name][n] for name in labels if name in table}
        if len(found) < len(labels):
            m = AMAZON_TEXT.search(texts.get(item, "").strip())
            if m:
                found = {**m.groupdict(), **found}
        for name, value in found.items():
            if value:
                labels[name][item] = value
    logger.info("item attributes: %s", {name: len(v) for name, v in labels.items()})
    return labels


class SessionSystem:
    """Amazon Scientific style: items with text, training sessions, the signals for new users' clicks."""

    def __init__(self, data: Path, *, model: str, config: RetrievalConfig, cache_dir: Path | None):
        from coldstart.ranking.bm25 import BM25Retriever
        from coldstart.evaluation.trec import read_sessions

        self.dir = Path(data)
        texts = read_catalog_texts(self.dir / "items.parquet")
        self.ids = list(texts)
        self.texts = [texts[i] for i in self.ids]
        self.row = {i: n for n, i in enumerate(self.ids)}
        self.vectors = encode(model, self.texts, max_length=128, cache_dir=cache_dir)
        self.bm25 = BM25Retriever(self.ids, self.texts)
        sessions = read_sessions(self.dir / "sessions_train.jsonl")
        self.sessions = SessionSignals(self.ids, (s.items for s in sessions),
                                       labels=item_attributes(self.dir / "items.parquet", texts),
                                       covisit=config.covisit, transitions=config.transitions)

    def signals(self, clicks: Sequence[str]) -> dict[str, np.ndarray]:
        rows = [self.row[c] for c in clicks if c in self.row]
        profile = self.vectors[rows].mean(axis=0) if rows else np.zeros(self.vectors.shape[1], np.float32)
        query = " ".join(self.texts[r][:200] for r in rows)
        return {
            "content": self.vectors @ profile,
            "bm25": self.bm25.scores(query) if query else np.zeros(len(self.ids), np.float32),
            **self.sessions.signals(clicks),
        }


def rank_sessions(system: SessionSystem, requests, weights: dict[str, float]):
    run = {}
    for r in requests:
        scores = blend(system.signals(r.clicks), weights)
        exclude = np.array([system.row[c] for c in r.clicks if c in system.row], dtype=np.int64)
        rows = top_k(scores, RUN_DEPTH, exclude=exclude)
        run[r.qid] = [(system.ids[i], float(scores[i])) for i in rows]
    return run


def as_scores(run) -> dict[str, dict[str, float]]:
    return {qid: dict(ranking) for qid, ranking in run.items()}


def reproduce(data: Path, out: Path, *, model: str, config: RetrievalConfig, cache_dir: Path | None,
              reranker_model: str | None = None) -> list[Path]:
    """One run per non-train query/sessions file of DATA_DIR (layout of ../shared/data)."""
    from coldstart.evaluation.trec import read_qrels, read_requests, read_sessions, sessions_to_requests_and_qrels, write_run, \
        write_scores

    out.mkdir(parents=True, exist_ok=True)
    written = []
    hd = data / "homedepot"
    if (hd / "queries_train.tsv").is_file():
        system = QuerySystem(hd, model=model, config=config, cache_dir=cache_dir)
        reranker = None
        if reranker_model:
            from coldstart.ranking.rerank import Reranker, RerankerConfig

            texts = read_catalog_texts(hd / "catalog.parquet")
            reranker = Reranker(RerankerConfig(model=reranker_model, depth=config.rerank_depth,
                                               first_weight=config.rerank_first_weight), texts)
        for split in splits(hd, "queries_", ".tsv"):
            requests = [r for r in read_requests(hd / f"queries_{split}.tsv") if r.query]
            qrels_path = hd / f"qrels_{split}.tsv"
            qrels = read_qrels(qrels_path) if qrels_path.is_file() else None
            run, pairs = rank_queries(system, requests, config.query_weights, qrels, reranker)
            write_run(out / f"homedepot-{split}.run", run.items(), "coldstart")
            written.append(out / f"homedepot-{split}.run")
            if qrels is not None:
                write_scores(out / f"homedepot-{split}.scores", pairs)
                written.append(out / f"homedepot-{split}.scores")
    sci = data / "amazon_scientific"
    if (sci / "sessions_train.jsonl").is_file():
        system = SessionSystem(sci, model="default", config=config, cache_dir=cache_dir)
        for split in splits(sci, "sessions_", ".jsonl"):
            sessions = read_sessions(sci / f"sessions_{split}.jsonl")
            for k in (1, 3):
                requests, _ = sessions_to_requests_and_qrels(sessions, k)
                run = rank_sessions(system, requests, config.session_weights)
                path = out / f"scientific-{split}-k{k}.run"
                write_run(path, run.items(), "coldstart")
                written.append(path)
    return written


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="write runs for every non-train split")
    rep.add_argument("--data", required=True, type=Path)
    rep.add_argument("--out", required=True, type=Path)
    rep.add_argument("--model", default="default")
    rep.add_argument("--config")
    rep.add_argument("--cache", type=Path)
    rep.add_argument("--reranker", help="a cross-encoder model dir re-scoring the top [retrieval] rerank_depth")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_retrieval_config(args.config)
    for path in reproduce(args.data, args.out, model=args.model, config=config, cache_dir=args.cache,
                          reranker_model=args.reranker):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
