"""Rank the benchmark data with the library's ranking pipeline and write TREC runs: the engine of
``reproduce_quality.sh``. It defines no ranking of its own.

Each data set is published into a store (under ``--cache``, else a temporary folder) by
:func:`coldstart.publish.publish_catalog` with the in-process embedding step — the validate → plan → stage →
publish path of ``coldstart embed``, so an unchanged catalog is never embedded twice — and ranked by
:class:`coldstart.ranking.pipeline.RankingPipeline`, the object ``coldstart search`` ranks with:

- **Home Depot** (queries → products): the ``[retrieval.query]`` blend of the encoder's cosine and BM25, re-ranked
  by the cross-encoder given ``--reranker``; judged pairs scored as ``[retrieval] pair_score`` says;
- **Amazon Scientific** (a new user's first k clicks → products): the ``[retrieval.clicks]`` blend with the session
  signals fitted from ``sessions_train`` and the category/brand labels the config's ``attributes_pattern`` finds in
  the items' text.

Only ``*_train`` files are learned from; every other split found in DATA_DIR gets a run::

    python -m benchmarks.quality reproduce --data DATA_DIR --out OUT_DIR --model MODEL_DIR --config CONFIG
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import tempfile
from pathlib import Path
from typing import Iterable

from coldstart.config import JobConfig, load_config
from coldstart.ranking.config import RetrievalConfig, load_retrieval_config

logger = logging.getLogger("benchmarks.quality")

RUN_DEPTH = 100


def published(catalog: Path, *, text_col: str, model: str, config_path: str | None, cache: Path | None,
              backend: str | None = None) -> JobConfig:
    """``catalog`` embedded by ``model`` (on ``backend``, default the config's) and published into a store of its own
    under ``cache`` (one per catalog, model and backend, so switching does not re-embed); the job config that names
    it, with the file's other sections."""
    from coldstart.encoders.model_source import resolve_model_dir
    from coldstart.encoders.multilingual import is_multilingual
    from coldstart.publish import embed_in_process, publish_catalog

    root = Path(cache) if cache is not None else Path(tempfile.mkdtemp(prefix="coldstart-bench-"))
    job = load_config(config_path).replace(schema__text_cols=(text_col,), encoder__model=model,
                                           encoder__backend=backend)
    name = f"{Path(catalog).resolve()}\0{model if is_multilingual(model) else resolve_model_dir(model)}"
    name += "" if job.encoder.backend == "torch" else f"\0{job.encoder.backend}"
    key = hashlib.sha256(name.encode()).hexdigest()[:16]
    job = job.replace(catalog=str(catalog), store=str(root / f"store-{key}"))
    result = publish_catalog(job, embed=embed_in_process)
    logger.info("%s with %s: version %s (%s)", catalog, model, result.version,
                "embedded now" if result.published else "already published")
    return job


def homedepot(data: Path, *, model: str, config_path: str | None, cache: Path | None,
              backend: str | None = None) -> JobConfig:
    return published(data / "homedepot" / "catalog.parquet", text_col="title", model=model, config_path=config_path,
                     cache=cache, backend=backend)


def scientific(data: Path, *, config_path: str | None, cache: Path | None) -> JobConfig:
    """Amazon Scientific with the packaged encoder (no model was trained on its sessions)."""
    return published(data / "amazon_scientific" / "items.parquet", text_col="text", model="default",
                     config_path=config_path, cache=cache)


def session_signals(data: Path, recommender, config: RetrievalConfig):
    from coldstart.signals.sessions import SessionSignals

    sci = data / "amazon_scientific"
    return SessionSignals.from_files(recommender.version.index.ids, sci / "sessions_train.jsonl",
                                     attributes=sci / "items.parquet", config=config)


def splits(directory: Path, prefix: str, suffix: str) -> list[str]:
    """Split names of ``<prefix><split><suffix>`` files, ``train`` excluded, sorted."""
    pattern = re.compile(re.escape(prefix) + r"(.+)" + re.escape(suffix) + "$")
    found = [m.group(1) for p in directory.glob(f"{prefix}*{suffix}") if (m := pattern.match(p.name))]
    return sorted(s for s in found if s != "train")


def fitted_ranker(job: JobConfig, recommender, config: RetrievalConfig, *, reranker_model: str | None = None,
                  **training):
    """A learned ranker trained by the library (:func:`coldstart.ranking.ranker_training.train_ranker`) over
    ``recommender``'s version, published into ``job``'s store and loaded back as every reader loads it."""
    from coldstart.artifacts.store import open_store
    from coldstart.ranking.ranker_artifact import load_ranker
    from coldstart.ranking.ranker_training import train_and_publish

    store = open_store(job.store)
    manifest = train_and_publish(store, recommender, config, depth=RUN_DEPTH, reranker=reranker_model,
                                 device=job.encoder.device, **training)
    return load_ranker(store, manifest.ranker_id)


def reproduce(data: Path, out: Path, *, model: str, config_path: str | None, cache_dir: Path | None,
              reranker_model: str | None = None, ranker_queries: Path | None = None,
              encoder_queries: Path | None = None, ranker: bool = False) -> list[Path]:
    """One run per non-train query/sessions file of DATA_DIR (layout of ../shared/data). With ``ranker``, a learned
    ranker orders the blend's candidates: for Home Depot trained on ``ranker_queries`` (``.tsv`` and the qrels
    beside it as ``qrels_<name>``) — queries the encoders were not fine-tuned on (``encoder_queries``, checked) —
    and for Amazon Scientific on ``sessions_train`` out of fold."""
    from coldstart.evaluation.runs import rank_all, score_pairs
    from coldstart.evaluation.trec import (judged_pairs, read_requests, read_sessions,
                                           sessions_to_requests_and_qrels, write_run, write_scores)
    from coldstart.ranking.pipeline import RankingPipeline, load_recommender

    config = load_retrieval_config(config_path)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    hd = data / "homedepot"
    if (hd / "queries_train.tsv").is_file():
        pairs_config = config
        if config.pair_score == "reranker" and not reranker_model:  # trained without a re-ranker: the cosine
            import dataclasses

            pairs_config = dataclasses.replace(config, pair_score="dense")
        job = homedepot(data, model=model, config_path=config_path, cache=cache_dir)
        recommender = load_recommender(job)
        learned = None
        if ranker:
            if ranker_queries is None:
                raise ValueError("the learned ranker needs judged queries the encoders did not see: ranker_queries")
            learned = fitted_ranker(job, recommender, config, reranker_model=reranker_model,
                                    queries=str(ranker_queries),
                                    qrels=str(ranker_queries.with_name(ranker_queries.name.replace("queries_",
                                                                                                     "qrels_"))),
                                    encoder_queries=str(encoder_queries) if encoder_queries else None)
        pipeline = RankingPipeline(recommender, pairs_config, retriever="blend", reranker=reranker_model,
                                   device=job.encoder.device, ranker=learned)
        for split in splits(hd, "queries_", ".tsv"):
            requests = [r for r in read_requests(hd / f"queries_{split}.tsv") if r.query]
            write_run(out / f"homedepot-{split}.run", rank_all(pipeline, requests, k=RUN_DEPTH).items(), "coldstart")
            written.append(out / f"homedepot-{split}.run")
            qrels_path = hd / f"qrels_{split}.tsv"
            if qrels_path.is_file():
                scores, _ = score_pairs(pipeline, judged_pairs(hd / f"queries_{split}.tsv", qrels_path))
                write_scores(out / f"homedepot-{split}.scores", scores)
                written.append(out / f"homedepot-{split}.scores")
    sci = data / "amazon_scientific"
    if (sci / "sessions_train.jsonl").is_file():
        job = scientific(data, config_path=config_path, cache=cache_dir)
        recommender = load_recommender(job)
        learned = fitted_ranker(job, recommender, config, sessions=str(sci / "sessions_train.jsonl"),
                                attributes=str(sci / "items.parquet")) if ranker else None
        pipeline = RankingPipeline(recommender, config, retriever="blend",
                                   sessions=session_signals(data, recommender, config), ranker=learned)
        for split in splits(sci, "sessions_", ".jsonl"):
            sessions = read_sessions(sci / f"sessions_{split}.jsonl")
            for k in (1, 3):
                requests, _ = sessions_to_requests_and_qrels(sessions, k)
                path = out / f"scientific-{split}-k{k}.run"
                write_run(path, rank_all(pipeline, requests, k=RUN_DEPTH).items(), "coldstart")
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
    rep.add_argument("--cache", type=Path, help="where the published stores are kept between runs")
    rep.add_argument("--reranker", help="a cross-encoder model dir re-scoring the top [retrieval] rerank_depth")
    rep.add_argument("--ranker", action="store_true", help="train and rank with the learned ranker")
    rep.add_argument("--ranker-queries", type=Path, help="with --ranker: Home Depot queries_<name>.tsv (its "
                     "qrels_<name>.tsv beside it) the ranker trains on; never ones the encoders were fine-tuned on")
    rep.add_argument("--encoder-queries", type=Path, help="the queries the encoders were fine-tuned on (checked "
                     "disjoint from --ranker-queries)")
    split = sub.add_parser("split", help="split judged queries into the encoders' part and the ranker's part")
    split.add_argument("--queries", required=True, type=Path)
    split.add_argument("--qrels", required=True, type=Path)
    split.add_argument("--fraction", type=float, default=0.2, help="the ranker's share (default 0.2)")
    split.add_argument("--out", required=True, type=Path, help="writes queries_/qrels_ encoders.tsv and ranker.tsv")
    args = parser.parse_args(argv)
    from coldstart.logs import setup_logging

    setup_logging(False)
    if args.command == "split":
        for path in split_judged(args.queries, args.qrels, args.fraction, args.out):
            print(path)
        return 0
    for path in reproduce(args.data, args.out, model=args.model, config_path=args.config, cache_dir=args.cache,
                          reranker_model=args.reranker, ranker=args.ranker, ranker_queries=args.ranker_queries,
                          encoder_queries=args.encoder_queries):
        print(path)
    return 0


def split_judged(queries: Path, qrels: Path, fraction: float, out: Path) -> list[Path]:
    """The judged queries split by :func:`coldstart.ranking.ranker_training.split_queries` into
    ``queries_encoders.tsv`` / ``queries_ranker.tsv`` and their qrels, lines copied unchanged."""
    from coldstart.evaluation.trec import read_requests
    from coldstart.ranking.ranker_training import split_queries

    rest, held = split_queries([r.qid for r in read_requests(queries)], fraction)
    side = {**{q: "encoders" for q in rest}, **{q: "ranker" for q in held}}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source, stem in ((queries, "queries"), (qrels, "qrels")):
        lines = {"encoders": [], "ranker": []}
        for line in source.read_text(encoding="utf-8").splitlines(keepends=True):
            qid = line.split("\t", 1)[0]
            if qid in side:
                lines[side[qid]].append(line)
        for name, kept in lines.items():
            path = out / f"{stem}_{name}.tsv"
            path.write_text("".join(kept), encoding="utf-8")
            written.append(path)
    logger.info("judged queries split: %d for the encoders, %d for the ranker", len(rest), len(held))
    return written


if __name__ == "__main__":
    raise SystemExit(main())
