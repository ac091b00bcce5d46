"""jobs.evaluate end to end on a version written in-process (no Ray): search, TREC run, metrics."""

from __future__ import annotations

import json

import pytest

from coldstart.catalog.reader import validate_catalog
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.ranking.faiss_index import IndexConfig
from coldstart.artifacts.versions import write_version
from coldstart.artifacts.store import LocalStore
from jobs.evaluate import main


@pytest.fixture
def published_store(tmp_path, sample_catalog_path, tiny_model_dir):
    catalog = validate_catalog(str(sample_catalog_path))
    encoder = Encoder(EncoderConfig(model=str(tiny_model_dir), device="cpu"))
    store = LocalStore(tmp_path / "store")
    write_version(store, items=catalog.good, vectors=encoder.encode(catalog.good.column("text").to_pylist()),
                  encoder=encoder.info(), index_config=IndexConfig(), catalog={"uri": str(sample_catalog_path)})
    return store, catalog.good


def test_evaluate_job_searches_the_live_version_and_scores_the_run(tmp_path, published_store, tiny_model_dir,
                                                                  capsys):
    store, items = published_store
    # Each query is a product's own (unique) text: the product must come back first.
    texts, ids = items.column("text").to_pylist(), items.column("item_id").to_pylist()
    unique = [i for i, t in enumerate(texts) if texts.count(t) == 1][:20]
    (tmp_path / "requests.tsv").write_text("".join(f"q{i}\t{texts[i]}\n" for i in unique))
    (tmp_path / "qrels.tsv").write_text("".join(f"q{i}\t0\t{ids[i]}\t1\n" for i in unique))
    config = tmp_path / "eval.toml"
    config.write_text(f'store = "{store.root}"\n[encoder]\nmodel = "{tiny_model_dir}"\ndevice = "cpu"\n')

    status = main(["--config", str(config), "--requests", str(tmp_path / "requests.tsv"),
                   "--qrels", str(tmp_path / "qrels.tsv"), "--k", "10", "--out-dir", str(tmp_path / "out")])
    assert status == 0
    search_summary, metrics = _json_objects(capsys.readouterr().out)
    assert search_summary["requests"] == len(unique) and search_summary["empty_results"] == 0
    assert (tmp_path / "out" / "run.trec").is_file()
    assert metrics["queries"] == len(unique) and metrics["mrr@10"] == pytest.approx(1.0)


def test_evaluate_job_fails_with_one_line_when_nothing_is_published(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "requests.tsv").write_text("q1\tgarden chair\n")
    (tmp_path / "qrels.tsv").write_text("q1\t0\tSKU00001\t1\n")
    config = tmp_path / "eval.toml"
    config.write_text(f'store = "{tmp_path / "empty"}"\n[encoder]\nmodel = "{tiny_model_dir}"\n')
    status = main(["--config", str(config), "--requests", str(tmp_path / "requests.tsv"),
                   "--qrels", str(tmp_path / "qrels.tsv"), "--out-dir", str(tmp_path / "out")])
    assert status == 1
    err = capsys.readouterr().err.splitlines()
    (cause,) = [i for i, line in enumerate(err) if line.startswith("error: ")]  # log lines may come before it
    assert err[cause].startswith("error: no index version is published in ")
    assert err[cause + 1] == "Traceback (most recent call last):"


def _json_objects(text: str) -> list[dict]:
    """The JSON documents printed one after another (compact or indented)."""
    decoder, out, pos = json.JSONDecoder(), [], 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out


def test_search_and_score_with_a_reranker(tmp_path, published_store, tiny_model_dir, tiny_cross_encoder_dir,
                                          capsys):
    """`coldstart search --reranker` re-orders the first stage's top 30 as coldstart.ranking.rerank does in-process;
    `coldstart score --reranker` writes the cross-encoder's own pair scores."""
    import numpy as np

    from coldstart.cli import main as cli
    from coldstart.ranking.rerank import CrossEncoder, RerankerConfig
    from coldstart.evaluation.trec import read_run, read_scores

    store, items = published_store
    texts, ids = items.column("text").to_pylist(), items.column("item_id").to_pylist()
    (tmp_path / "requests.tsv").write_text("q1\tgarden chair\nq2\trunning shoes\n")
    common = ["--store", str(store.root), "--model", str(tiny_model_dir), "--device", "cpu"]
    assert cli(["search", *common, "--requests", str(tmp_path / "requests.tsv"), "--k", "40",
                "--out", str(tmp_path / "dense.run")]) == 0
    assert cli(["search", *common, "--requests", str(tmp_path / "requests.tsv"), "--k", "40",
                "--reranker", str(tiny_cross_encoder_dir), "--out", str(tmp_path / "reranked.run")]) == 0
    dense, reranked = read_run(tmp_path / "dense.run"), read_run(tmp_path / "reranked.run")
    cross = CrossEncoder(RerankerConfig(model=str(tiny_cross_encoder_dir)))
    text_of = dict(zip(ids, texts))
    for qid, query in (("q1", "garden chair"), ("q2", "running shoes")):
        first = sorted(dense[qid], key=dense[qid].get, reverse=True)
        ranked = sorted(reranked[qid], key=reranked[qid].get, reverse=True)
        assert sorted(ranked[:30]) == sorted(first[:30]) and ranked[30:] == first[30:40]
        logits = cross.score([query] * 30, [text_of[i] for i in first[:30]])
        z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
        fused = z(logits) + 1.0 * z(np.array([dense[qid][i] for i in first[:30]]))
        assert ranked[:30] == [first[n] for n in np.argsort(-fused, kind="stable")]

    (tmp_path / "qrels.tsv").write_text(f"q1\t0\t{ids[0]}\t2\nq1\t0\tnot-in-the-index\t1\nq2\t0\t{ids[1]}\t0\n")
    assert cli(["score", *common, "--queries", str(tmp_path / "requests.tsv"), "--qrels", str(tmp_path / "qrels.tsv"),
                "--reranker", str(tiny_cross_encoder_dir), "--out", str(tmp_path / "pairs.scores")]) == 0
    scores = read_scores(tmp_path / "pairs.scores")
    assert scores == {"q1": {ids[0]: pytest.approx(float(cross.score(["garden chair"], [texts[0]])[0]), abs=1e-5)},
                      "q2": {ids[1]: pytest.approx(float(cross.score(["running shoes"], [texts[1]])[0]), abs=1e-5)}}
    assert '"unknown_items": 1' in capsys.readouterr().out


def test_search_blends_other_users_sessions_for_clicks_only_requests(tmp_path, published_store, tiny_model_dir):
    """`coldstart search --retriever blend --sessions --attributes`: a clicks-only request gets what other users
    bought after the same click; a request with a query is ranked as without sessions."""
    from coldstart.cli import main as cli
    from coldstart.evaluation.trec import read_run

    store, items = published_store
    ids = items.column("item_id").to_pylist()
    click, follow = ids[0], ids[7]
    sessions = [{"user_id": f"u{n}", "items": [click, follow, "SKU-GONE"]} for n in range(20)]
    sessions += [{"user_id": f"v{n}", "items": [ids[n + 10], ids[n + 11]]} for n in range(20)]
    (tmp_path / "sessions.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sessions))
    (tmp_path / "attrs.csv").write_text("item_id,category\n" + "".join(f"{i},c{n % 5}\n" for n, i in enumerate(ids)))
    (tmp_path / "requests.jsonl").write_text(json.dumps({"qid": "u", "clicks": [click]}) + "\n"
                                             + json.dumps({"qid": "q", "query": "garden chair"}) + "\n")
    common = ["--store", str(store.root), "--model", str(tiny_model_dir), "--device", "cpu", "--retriever", "blend",
              "--requests", str(tmp_path / "requests.jsonl"), "--k", "20"]
    assert cli(["search", *common, "--out", str(tmp_path / "plain.run")]) == 0
    assert cli(["search", *common, "--sessions", str(tmp_path / "sessions.jsonl"), "--attributes",
                str(tmp_path / "attrs.csv"), "--out", str(tmp_path / "sessions.run")]) == 0
    plain, with_sessions = read_run(tmp_path / "plain.run"), read_run(tmp_path / "sessions.run")
    assert max(with_sessions["u"], key=with_sessions["u"].get) == follow
    assert max(plain["u"], key=plain["u"].get) != follow
    assert click not in with_sessions["u"]
    assert with_sessions["q"] == pytest.approx(plain["q"])
    with pytest.raises(SystemExit, match="--retriever blend"):
        cli(["search", *common[:-4], "--retriever", "dense", "--requests", str(tmp_path / "requests.jsonl"),
             "--sessions", str(tmp_path / "sessions.jsonl"), "--out", str(tmp_path / "x.run")])
