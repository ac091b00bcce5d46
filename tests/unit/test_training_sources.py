"""Hard-negative mining for training: BM25 and the model itself, interleaved."""

from coldstart.training.config import TrainConfig
from coldstart.training.sources import interleave, judgment_examples, mine_dense

TEXTS = {"a": "cordless drill 18v", "b": "drill bit set", "c": "garden hose 50 ft", "d": "hose nozzle",
         "e": "led light bulb", "f": "ceiling light fixture"}


def test_interleave_keeps_each_miners_best_first_without_repeats():
    assert interleave([["a", "b", "c"], ["b", "d"]]) == ["a", "b", "d", "c"]
    assert interleave([]) == []


def test_dense_mining_ranks_by_the_encoder_and_skips_the_top(tiny_model_dir):
    queries = [TEXTS["c"], TEXTS["e"]]
    top = mine_dense(TEXTS, queries, model=str(tiny_model_dir), pooling="mean", max_length=16, depth=3)
    assert [x[0] for x in top] == ["c", "e"]  # an item's own text is its nearest neighbour
    assert all(len(x) == 3 and len(set(x)) == 3 for x in top)
    skipped = mine_dense(TEXTS, queries, model=str(tiny_model_dir), pooling="mean", max_length=16, depth=2, skip=1)
    assert skipped == [x[1:3] for x in top]


def test_mined_negatives_from_both_miners_are_never_judged_relevant(tmp_path, tiny_model_dir):
    (tmp_path / "q.tsv").write_text("q1\tcordless drill\nq2\tgarden hose\n")
    (tmp_path / "qrels.tsv").write_text("q1\t0\ta\t6\nq1\t0\tb\t3\nq2\t0\tc\t5\nq2\t0\te\t1\n")
    config = TrainConfig(model=str(tiny_model_dir), max_length=16, bm25_depth=3, dense_mining_depth=3)
    examples, _ = judgment_examples(tmp_path / "q.tsv", tmp_path / "qrels.tsv", TEXTS, config)
    by_query = {e.qid: e for e in examples}
    assert "a" not in by_query["q1"].negatives and "b" not in by_query["q1"].negatives  # judged ≥ 3
    assert by_query["q2"].negatives[0] == "e"  # the judged negative first
    assert "c" not in by_query["q2"].negatives
    assert by_query["q1"].negatives  # from the model: BM25 finds only a and b (both judged) for "cordless drill"
    bm25_only, _ = judgment_examples(tmp_path / "q.tsv", tmp_path / "qrels.tsv", TEXTS,
                                     TrainConfig(model=str(tiny_model_dir), bm25_depth=3))
    assert next(e for e in bm25_only if e.qid == "q1").negatives == ()
