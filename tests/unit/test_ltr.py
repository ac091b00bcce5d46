"""The learned ranker (coldstart.ranking.ltr, ranker_training, ranker_artifact) over a real published version.

A small catalog where the judged answer is decided by something the blend does not weigh — whether the title has
the query's number (one digit: BM25's default tokens drop it, and the blend here is BM25 alone) — so a ranker that
learns from the features must beat the blend on held-out queries, and one without those features cannot. Also:
features, the leakage guards, the artifact's round trip through the store and its refusals, and the pipeline
with the ranker as `coldstart search` builds it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from coldstart.config import JobConfig
from coldstart.encoders.encoder import EncoderConfig
from coldstart.evaluation.metrics import evaluate_run
from coldstart.evaluation.trec import Request, Session
from coldstart.publish import embed_in_process, publish_catalog
from coldstart.ranking.config import RetrievalConfig
from coldstart.ranking.dense import UserRequest
from coldstart.ranking.ltr import (QUERY_GROUPS, LearnedRanker, RankerMismatch, RankerParams, feature_names,
                                   fit_model, hashed_fraction, training_table)
from coldstart.ranking.pipeline import RankingPipeline, load_recommender
from coldstart.ranking.ranker_training import click_table_out_of_fold, query_table, split_queries

KINDS = ["drill", "saw", "hose", "lamp", "chair", "table"]
SIZES = [str(n) for n in range(2, 10)]
PARAMS = RankerParams(min_data_in_leaf=5, num_leaves=7, learning_rate=0.1, max_rounds=200, early_stopping=30,
                      valid_fraction=0.2, threads=1)


@pytest.fixture(scope="module")
def job(tmp_path_factory, tiny_model_dir) -> JobConfig:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = tmp_path_factory.mktemp("ltr")
    ids = [f"{k}-{s}" for k in KINDS for s in SIZES]
    titles = [f"acme {k} {s} inch pro {k}" for k in KINDS for s in SIZES]
    catalog = tmp / "catalog.parquet"
    pq.write_table(pa.table({"item_id": ids, "title": titles}), catalog)
    config = JobConfig(catalog=str(catalog), store=str(tmp / "store"),
                       encoder=EncoderConfig(model=str(tiny_model_dir), device="cpu"))
    assert publish_catalog(config, embed=embed_in_process).published
    return config


def judged(n: int, seed: int) -> tuple[list[Request], dict]:
    """Queries "<kind> <size>": the product of that kind and size is grade 3, the kind's others grade 0."""
    rng = np.random.default_rng(seed)
    requests, qrels = [], {}
    for q in range(n):
        kind, size = KINDS[rng.integers(len(KINDS))], SIZES[rng.integers(len(SIZES))]
        qid = f"s{seed}-q{q}"
        requests.append(Request(qid=qid, query=f"{kind} {size}"))
        qrels[qid] = {f"{kind}-{s}": 3 if s == size else 0 for s in SIZES}
    return requests, qrels


BLEND = RetrievalConfig(query_weights={"bm25": 1.0}, query_bm25_tokens="bm25s")


def pipeline_for(job, **kwargs) -> RankingPipeline:
    return RankingPipeline(load_recommender(job), BLEND, **kwargs)


def ndcg(pipeline, requests, qrels) -> float:
    run = {r.qid: dict(ranking) for r, ranking in
           zip(requests, pipeline.search([UserRequest(query=r.query) for r in requests], k=20))}
    return evaluate_run(qrels, run, relevant_grade=1)["ndcg@10"]


def test_query_features_are_named_per_group_and_computed_for_the_blends_candidates(job):
    pipeline = pipeline_for(job)
    builder = pipeline.features(depth=10)
    assert builder.groups("query") == ["first", "dense", "bm25", "lexical", "numbers"]  # no cross, no labels
    [c] = builder.build([UserRequest(query="drill 7")])
    assert c.names == feature_names("query", builder.groups("query")) and c.features.shape == (10, len(c.names))
    blend = [i for i, _ in pipeline.search([UserRequest(query="drill 7")], k=10)[0]]
    assert [builder.index.ids[r] for r in c.rows] == blend
    ids = [builder.index.ids[r] for r in c.rows]

    def row(item):
        return {n: c.features[ids.index(item), j] for j, n in enumerate(c.names)}

    hit = row("drill-7")
    assert hit["numbers_matched"] == 1 and hit["query_numbers"] == 1 and hit["coverage"] == 1.0
    assert hit["overlap"] == 1 and hit["phrase"] == 1 and hit["title_tokens"] == len({"acme", "drill", "inch", "pro"})
    other = row(next(i for i in ids if i.startswith("drill-") and i != "drill-7"))
    assert other["numbers_matched"] == 0 and other["coverage"] == 1.0 and other["phrase"] == 0


def test_the_ranker_learns_what_the_blend_misses_and_beats_it_on_held_out_queries(job):
    pipeline = pipeline_for(job)
    train, train_qrels = judged(240, seed=1)
    test, test_qrels = judged(60, seed=2)
    table = query_table(pipeline, train, train_qrels, depth=20)
    assert table.info["trained_requests"] == len(train) and table.groups.tolist() == [20] * len(train)
    booster, info = fit_model(table, PARAMS)
    before = ndcg(pipeline, test, test_qrels)
    ranked = pipeline_for(job)
    ranked.retriever = LearnedRanker(ranked.features(depth=20), {"query": (booster, table.names)})
    after = ndcg(ranked, test, test_qrels)
    assert after > before + 0.1 and after > 0.9, (before, after)
    # without the features that carry the answer it cannot
    blind = table.without(["numbers", "lexical", "bm25", "dense"])
    blind_booster, _ = fit_model(blind, PARAMS)
    ranked.retriever = LearnedRanker(ranked.features(depth=20), {"query": (blind_booster, blind.names)})
    assert ndcg(ranked, test, test_qrels) < after - 0.1


def test_training_refuses_queries_the_encoders_were_fine_tuned_on(job):
    train, qrels = judged(10, seed=3)
    with pytest.raises(ValueError, match="fine-tune the encoders"):
        query_table(pipeline_for(job), train, qrels, trained_on=[train[4].qid])


def test_the_query_split_is_disjoint_stable_and_about_the_asked_share():
    qids = [f"q{n}" for n in range(4000)]
    rest, held = split_queries(qids, 0.2)
    assert set(rest).isdisjoint(held) and sorted(rest + held) == sorted(qids)
    assert 0.17 < len(held) / len(qids) < 0.23 and split_queries(qids, 0.2) == (rest, held)
    assert all(hashed_fraction(q) < 0.2 for q in held)


def test_requests_with_no_relevant_candidate_are_counted_and_left_out(job):
    train, qrels = judged(4, seed=4)
    qrels[train[0].qid] = {"not-in-the-catalog": 3}
    table = training_table(pipeline_for(job).features(depth=5), train, qrels)
    assert table.info["no_relevant_candidate"] >= 1 and train[0].qid not in table.qids
    assert table.info["trained_requests"] == len(table.qids)


def test_click_features_come_from_session_signals_fitted_without_the_users_own_fold(job):
    """A pair of items only one training user ever bought together: in that user's own training row the
    co-visitation between them must be zero (her session is in no signal she is scored with)."""
    lonely = ("saw-9", "lamp-2", "hose-9")
    others = [(f"{KINDS[n % 6]}-{SIZES[n % 8]}", f"{KINDS[(n + 1) % 6]}-{SIZES[(n + 5) % 8]}",
               f"{KINDS[(n + 2) % 6]}-{SIZES[(n + 7) % 8]}") for n in range(60)]
    sessions = [Session(f"u{n}", s) for n, s in enumerate(others) if not set(s) & set(lonely)]
    sessions.append(Session("lonely", lonely))
    recommender = load_recommender(job)
    config = RetrievalConfig(click_weights={"dense": 1.0, "covisit": 1.0})
    table = click_table_out_of_fold(recommender, config, sessions, folds=4, ks=(1,), depth=47)
    assert "covisit" in table.names and table.info["folds"] == 4
    starts = np.concatenate([[0], np.cumsum(table.groups)])
    g = table.qids.index("lonely#k1")
    rows = slice(starts[g], starts[g + 1])
    covisit = table.features[rows, table.names.index("covisit")]
    labels = table.labels[rows]
    assert labels.sum() == 2 and np.all(covisit[labels > 0] == 0)
    # fitted on every session (the leak), the same rows would see the pair
    from coldstart.signals.sessions import SessionSignals

    signals = SessionSignals(recommender.version.index.ids, [s.items for s in sessions], covisit=config.covisit)
    assert signals.signals(("saw-9",))["covisit"][signals.ids.index("lamp-2")] > 0


def test_the_ranker_round_trips_through_the_store_and_ranks_as_search_does(job, tmp_path):
    from coldstart.artifacts.store import open_store
    from coldstart.cli import main as cli
    from coldstart.ranking.ranker_artifact import load_ranker, publish_ranker

    pipeline = pipeline_for(job)
    train, qrels = judged(120, seed=5)
    table = query_table(pipeline, train, qrels, depth=20)
    booster, info = fit_model(table, PARAMS)
    store = open_store(job.store)
    manifest = publish_ranker(store, {"query": (booster, {**info, "features": table.names})},
                              version=pipeline.recommender.version, depth=20, cross_depth=0, cross_encoder=None)
    loaded = load_ranker(store, "latest")
    assert loaded.ranker_id == manifest.ranker_id and loaded.models["query"][1] == table.names
    ranked = RankingPipeline(load_recommender(job), BLEND, ranker=loaded)
    request = UserRequest(query="hose 7")
    got = ranked.search([request], k=5)[0]
    direct = booster.predict(ranked.features(depth=20).build([request])[0].features)
    assert got[0][1] == pytest.approx(float(direct.max()), rel=1e-6)
    # a judged pair is scored from the same features as the candidate it is (what ROC-AUC reads)
    pairs = ranked.retriever.pair_scores([request.query] * 5 + ["drill 3"], [i for i, _ in got] + ["nope"])
    np.testing.assert_allclose(pairs[:5], [s for _, s in got], rtol=1e-5)
    assert np.isnan(pairs[5])
    assert ranked.signals_for(request) == ["bm25", "ranker"]
    assert ranked.signals_for(UserRequest(clicks=("hose-7",))) == ["bm25"]  # no clicks model: the blend

    config_path = tmp_path / "job.toml"
    config_path.write_text(f'store = "{job.store}"\n[encoder]\nmodel = "{job.encoder.model}"\ndevice = "cpu"\n'
                           '[retrieval]\nquery_bm25_tokens = "bm25s"\n[retrieval.query]\nbm25 = 1.0\n')
    requests = tmp_path / "requests.tsv"
    requests.write_text("r1\those 7\n")
    assert cli(["search", "--config", str(config_path), "--requests", str(requests), "--out",
                str(tmp_path / "run"), "--k", "5", "--retriever", "blend", "--ranker", "latest"]) == 0
    line = (tmp_path / "run").read_text().splitlines()[0].split()
    assert line[2] == got[0][0] and float(line[4]) == pytest.approx(got[0][1], rel=1e-5)


def test_a_ranker_is_refused_for_another_encoder_a_corrupt_file_or_a_missing_feature(job, tmp_path):
    from coldstart.artifacts.manifest import VersionRejected
    from coldstart.artifacts.store import open_store
    from coldstart.ranking.ranker_artifact import PREFIX, load_ranker, publish_ranker

    pipeline = pipeline_for(job)
    train, qrels = judged(60, seed=6)
    table = query_table(pipeline, train, qrels, depth=10)
    booster, info = fit_model(table, PARAMS)
    store = open_store(str(tmp_path / "other"))
    manifest = publish_ranker(store, {"query": (booster, {**info, "features": table.names + []})},
                              version=pipeline.recommender.version, depth=10, cross_depth=0, cross_encoder=None)
    raw = json.loads(store.read_bytes(f"{PREFIX}/{manifest.ranker_id}/manifest.json"))
    raw["encoder"]["fingerprint"] = "0" * 64
    store.write_bytes(f"{PREFIX}/{manifest.ranker_id}/manifest.json", json.dumps(raw).encode())
    with pytest.raises(RankerMismatch, match="retrain it"):
        RankingPipeline(load_recommender(job), RetrievalConfig(), ranker=load_ranker(store))
    store.write_bytes(f"{PREFIX}/{manifest.ranker_id}/query.txt", b"tree\n")
    with pytest.raises(VersionRejected, match="checksum"):
        load_ranker(store)
    with pytest.raises(LookupError, match="no learned ranker"):
        load_ranker(open_store(str(tmp_path / "empty")))
    # trained with the cross-encoder's logit, served without it
    with pytest.raises(RankerMismatch, match="cannot compute"):
        LearnedRanker(pipeline.features(), {"query": (booster, table.names + ["cross"])})
    assert "cross" in QUERY_GROUPS and "cross" not in pipeline.features().groups("query")


def test_the_job_trains_and_publishes_a_query_ranker_and_refuses_leaked_queries(job, tmp_path, capsys):
    from coldstart.artifacts.store import open_store
    from coldstart.ranking.ranker_artifact import load_ranker
    from jobs.fit_ranker import main

    train, qrels = judged(80, seed=7)
    queries, qrels_path = tmp_path / "queries.tsv", tmp_path / "qrels.tsv"
    queries.write_text("".join(f"{r.qid}\t{r.query}\n" for r in train))
    qrels_path.write_text("".join(f"{q}\t0\t{i}\t{g}\n" for q, judged_items in qrels.items()
                                  for i, g in judged_items.items()))
    config = tmp_path / "job.toml"
    config.write_text(f'store = "{job.store}"\n[encoder]\nmodel = "{job.encoder.model}"\ndevice = "cpu"\n'
                      '[retrieval]\nquery_bm25_tokens = "bm25s"\n[retrieval.query]\nbm25 = 1.0\n')
    args = ["--config", str(config), "--queries", str(queries), "--qrels", str(qrels_path), "--depth", "20",
            "--threads", "1"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    loaded = load_ranker(open_store(job.store))
    assert loaded.ranker_id == printed["ranker_id"] and list(loaded.models) == ["query"] and loaded.depth == 20
    assert main(args + ["--encoder-queries", str(queries)]) == 1  # the encoders saw them: refused
    assert "fine-tune the encoders" in capsys.readouterr().err
