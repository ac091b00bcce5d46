"""The one ranking pipeline (coldstart.ranking.pipeline) and the library embed job that feeds it, without Ray.

A version is published in-process by :func:`coldstart.publish.publish_catalog` (the embed job's steps with the
in-process embedding step), then ranked: the pipeline's blend is checked against a brute-force reference, the CLI
against the pipeline, the session signals and the pair scores against their definitions.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from coldstart.catalog.reader import CatalogSchema
from coldstart.config import JobConfig
from coldstart.encoders.encoder import EncoderConfig
from coldstart.publish import embed_in_process, publish_catalog
from coldstart.ranking.config import RetrievalConfig
from coldstart.ranking.dense import UserRequest
from coldstart.ranking.fusion import zscore
from coldstart.ranking.pipeline import RankingPipeline, load_recommender

ROWS = [("p0", "red garden chair", "chairs", "Acme"), ("p1", "blue garden chair", "chairs", "Acme"),
        ("p2", "red kitchen table", "tables", "Birch"), ("p3", "green desk lamp", "lamps", "Lumo"),
        ("p4", "blue desk lamp", "lamps", "Lumo"), ("p5", "cordless drill 18v", "tools", "Volt"),
        ("p6", "drill bit set", "tools", "Volt"), ("p7", "garden hose 50 ft", "garden", "Acme")]
SESSIONS = [["p0", "p1", "p7"], ["p5", "p6"], ["p0", "p7"], ["p3", "p4"], ["p5", "p6", "p2"]]


@pytest.fixture
def job(tmp_path, tiny_model_dir) -> JobConfig:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids, titles, categories, brands = (list(c) for c in zip(*ROWS))
    catalog = tmp_path / "catalog.parquet"
    pq.write_table(pa.table({"item_id": ids, "title": titles, "category": categories, "brand": brands}), catalog)
    config = JobConfig(catalog=str(catalog), store=str(tmp_path / "store"),
                       encoder=EncoderConfig(model=str(tiny_model_dir), device="cpu"))
    result = publish_catalog(config, embed=embed_in_process)
    assert result.published and result.counts["embedded"] == len(ROWS)
    return config


@pytest.fixture
def sessions_file(tmp_path):
    path = tmp_path / "sessions.jsonl"
    path.write_text("".join(json.dumps({"user_id": f"u{n}", "items": s}) + "\n" for n, s in enumerate(SESSIONS)))
    return path


def test_the_library_embed_job_publishes_once_and_then_nothing(job):
    again = publish_catalog(job, embed=embed_in_process)
    assert not again.published and again.counts["carried_over"] == len(ROWS)
    assert again.counts["rows_read"] == again.counts["rows_good"] + again.counts["rows_quarantined"]


def test_the_blend_is_the_weighted_sum_of_z_scored_cosine_and_bm25(job):
    """Against a brute-force reference built from the encoder and BM25 directly."""
    from coldstart.ranking.bm25 import BM25Retriever

    config = RetrievalConfig(query_weights={"dense": 1.0, "bm25": 0.4}, query_bm25_tokens="bm25s")
    pipeline = RankingPipeline(load_recommender(job), config)
    version = pipeline.recommender.version
    query = "garden chair"
    cosine = version.index.vectors @ pipeline.recommender.encoder.encode([query])[0]
    bm25 = BM25Retriever(version.index.ids, version.items.column("text").to_pylist()).scores(query)
    reference = zscore(cosine) + np.float32(0.4) * zscore(bm25)
    ranking = pipeline.search([UserRequest(query=query)], k=len(ROWS))[0]
    assert [i for i, _ in ranking] == [version.index.ids[r] for r in np.argsort(-reference, kind="stable")]
    np.testing.assert_allclose([s for _, s in ranking], np.sort(reference)[::-1], rtol=1e-5, atol=1e-6)
    assert pipeline.signals_for(UserRequest(query=query)) == ["dense", "bm25"]


def test_clicks_only_requests_are_ranked_by_the_session_signals_and_never_return_a_click(job, sessions_file):
    config = RetrievalConfig(click_weights={"covisit": 1.0})
    pipeline = RankingPipeline.from_store(job, config, sessions=sessions_file)
    ranking = pipeline.search([UserRequest(clicks=("p5",))], k=3)[0]
    assert ranking[0][0] == "p6"  # bought after p5 by both users who clicked it
    assert "p5" not in [i for i, _ in ranking]
    assert pipeline.signals_for(UserRequest(clicks=("p5",))) == ["covisit"]
    assert pipeline.signals_for(UserRequest(query="drill")) == ["dense", "bm25"]  # queries keep the query blend


def test_signals_without_data_are_dropped_with_a_warning_never_silently(job, sessions_file, caplog):
    with caplog.at_level(logging.WARNING, logger="coldstart.ranking.pipeline"):
        pipeline = RankingPipeline.from_store(job, RetrievalConfig(), sessions=sessions_file)  # no attributes
    assert pipeline.dropped == ["clicks.brand", "clicks.category"]
    assert "have no data here" in caplog.text
    with_attributes = RankingPipeline.from_store(job, RetrievalConfig(), sessions=sessions_file,
                                                 attributes=job.catalog)
    assert with_attributes.dropped == []
    assert set(with_attributes.signals_for(UserRequest(clicks=("p0",)))) == {"dense", "bm25", "covisit",
                                                                            "popularity", "category", "brand"}


def test_pair_scores_are_the_cosine_by_default_and_nan_for_unknown_items(job):
    pipeline = RankingPipeline(load_recommender(job), RetrievalConfig(), retriever="dense")
    scores = pipeline.pair_scores(["garden chair", "garden chair"], ["p0", "missing"])
    version = pipeline.recommender.version
    expected = float(pipeline.recommender.encoder.encode(["garden chair"])[0] @ version.index.vectors[0])
    assert scores[0] == pytest.approx(expected, abs=1e-6) and np.isnan(scores[1])


def test_pair_scores_blend_score_every_judged_item_as_the_ranking_does(job):
    pipeline = RankingPipeline(load_recommender(job), RetrievalConfig(pair_score="blend"))
    ranking = dict(pipeline.search([UserRequest(query="desk lamp")], k=len(ROWS))[0])
    scores = pipeline.pair_scores(["desk lamp"] * 2, ["p3", "p6"])
    assert scores == pytest.approx([ranking["p3"], ranking["p6"]], abs=1e-6)


def test_a_reranker_pair_score_needs_a_reranker(job):
    pipeline = RankingPipeline(load_recommender(job), RetrievalConfig(pair_score="reranker"))
    assert pipeline.search([UserRequest(query="lamp")], k=2)[0]  # ranking needs none
    with pytest.raises(ValueError, match="needs a re-ranker model"):
        pipeline.pair_scores(["lamp"], ["p3"])


def test_session_signals_and_judged_neighbours_need_the_blend(job, sessions_file):
    with pytest.raises(ValueError, match="'blend' retriever"):
        RankingPipeline.from_store(job, RetrievalConfig(), retriever="dense", sessions=sessions_file)


def test_coldstart_search_writes_what_the_pipeline_ranks(job, sessions_file, tmp_path, capsys):
    """The CLI builds the same object: its run file equals the pipeline's rankings, to the score."""
    from coldstart.cli import main
    from coldstart.evaluation.trec import read_run

    requests = tmp_path / "requests.jsonl"
    asked = [{"qid": "q1", "query": "garden chair"}, {"qid": "q2", "clicks": ["p5"]},
             {"qid": "q3", "query": "lamp", "clicks": ["p3"]}]
    requests.write_text("".join(json.dumps(r) + "\n" for r in asked))
    config = tmp_path / "job.toml"
    config.write_text(f'store = "{job.store}"\n[encoder]\nmodel = "{job.encoder.model}"\ndevice = "cpu"\n'
                      '[retrieval.clicks]\ndense = 0.5\ncovisit = 1.0\n')
    out = tmp_path / "run.trec"
    assert main(["search", "--config", str(config), "--requests", str(requests), "--out", str(out), "--k", "5",
                 "--retriever", "blend", "--sessions", str(sessions_file)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["requests"] == 3 and summary["empty_results"] == 0
    from coldstart.ranking.config import load_retrieval_config

    pipeline = RankingPipeline.from_store(job, load_retrieval_config(config), sessions=sessions_file)
    expected = pipeline.search([UserRequest(query=r.get("query"), clicks=tuple(r.get("clicks", ())))
                                for r in asked], k=5)
    written = read_run(out)
    for r, ranking in zip(asked, expected):
        assert list(written[r["qid"]]) == [i for i, _ in ranking]
        assert [written[r["qid"]][i] for i, _ in ranking] == pytest.approx([s for _, s in ranking], abs=1e-5)


def test_attributes_can_come_from_the_text_with_a_pattern(tmp_path):
    from coldstart.catalog.attributes import read_attributes

    path = tmp_path / "items.jsonl"
    path.write_text('{"item_id": "a", "text": "Gloves. Safety > Hand. Ansell."}\n'
                    '{"item_id": "b", "text": "no labels here"}\n'
                    '{"item_id": "c", "text": "Mask. Safety > Face. 3M.", "brand": "3M Co"}\n')
    labels = read_attributes(path, pattern=r"\. (?P<category>Safety[^.]*)\. ?(?P<brand>.*?)\.?$")
    assert labels == {"category": {"a": "Safety > Hand", "c": "Safety > Face"},
                      "brand": {"a": "Ansell", "c": "3M Co"}}  # a column's value wins over the text's
    texts_only = tmp_path / "texts.jsonl"
    texts_only.write_text('{"item_id": "a", "text": "Gloves. Safety > Hand. Ansell."}\n')
    with pytest.raises(ValueError, match="pattern over its 'text' column"):
        read_attributes(texts_only)


def test_fine_tuning_reads_the_text_the_index_is_built_from(tmp_path):
    """One catalog reader: the training texts are the embed job's composed texts; bad rows are left out."""
    from coldstart.catalog.reader import validate_catalog
    from coldstart.training.sources import read_catalog_texts

    path = tmp_path / "catalog.csv"
    path.write_text("sku,title,brand\ns1,Garden hose,Acme\ns2,,\ns3,Drill,Volt\n")
    schema = CatalogSchema(id_col="sku", text_cols=("title", "brand"), template="{title}. {brand}")
    texts = read_catalog_texts(path, schema)
    good = validate_catalog(str(path), schema).good
    assert texts == dict(zip(good.column("item_id").to_pylist(), good.column("text").to_pylist()))
    assert set(texts) == {"s1", "s3"} and texts["s1"].startswith("Garden hose")
