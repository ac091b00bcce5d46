"""evaluate_run and roc_auc_judged against a case computed by hand (arithmetic in the comments)."""

import math

import pytest

from coldstart.evaluation.metrics import evaluate_run, roc_auc_judged

L2_3 = math.log2(3)  # 1.5849625; the discount of rank 2 is log2(3), of rank 3 log2(4) = 2

QRELS = {
    # relevant_grade=2 -> relevant: A (3) and D (2); B (1) only adds gain to NDCG; C (0) adds nothing.
    "q1": {"A": 3, "B": 1, "C": 0, "D": 2},
    # only grade 1: no relevant product at relevant_grade=2 -> left out of every average.
    "q2": {"E": 1},
    # relevant, but missing from the run -> counts as 0 and is averaged in.
    "q3": {"F": 2},
    # two relevant products, one tied with an unjudged product.
    "q4": {"G": 2, "H": 2},
}

RUN = {
    # X (unjudged) and D tie at 0.7; X is given first, so X is rank 3 and D rank 4.
    # ranking: 1 B(1)  2 A(3)  3 X(0)  4 D(2)  5 C(0)
    "q1": {"B": 0.9, "A": 0.8, "X": 0.7, "D": 0.7, "C": 0.1},
    "q2": {"E": 0.3},
    # Y (unjudged) and H tie at 0.5, Y first. ranking: 1 Y(0)  2 H(2)  3 G(2)
    "q4": {"Y": 0.5, "H": 0.5, "G": 0.4},
    "q5": {"Z": 1.0},  # not in the qrels: ignored
}

# q1 NDCG@3: DCG = 1/log2(2) + 3/log2(3) + 0/2 = 1 + 1.8927893 = 2.8927893
#            ideal gains 3, 2, 1: IDCG = 3/1 + 2/log2(3) + 1/2 = 4.7618595 -> 0.6074898
Q1_NDCG = (1 + 3 / L2_3) / (3 + 2 / L2_3 + 1 / 2)
# q4 NDCG@3: DCG = 0 + 2/log2(3) + 2/2 = 2.2618595; IDCG = 2/1 + 2/log2(3) = 3.2618595 -> 0.6934264
Q4_NDCG = (2 / L2_3 + 2 / 2) / (2 + 2 / L2_3)


def test_hand_computed_case_with_excluded_missing_and_tied_queries():
    result = evaluate_run(QRELS, RUN, relevant_grade=2, cutoff=3, depth=5)

    assert result["queries"] == 3  # q1, q3, q4
    assert result["queries_without_relevant"] == 1  # q2
    assert result["queries_missing_from_run"] == 1  # q3
    # averages over q1, q3 (zeros), q4
    assert result["ndcg@3"] == pytest.approx((Q1_NDCG + 0 + Q4_NDCG) / 3)  # = 0.4336387
    # recall@3: q1 finds A of {A, D} = 1/2; q3 0; q4 finds H, G = 2/2 -> (0.5 + 0 + 1) / 3 = 0.5
    assert result["recall@3"] == pytest.approx(0.5)
    # recall@5: q1 finds A and D (rank 4) = 1; q3 0; q4 1 -> 2/3
    assert result["recall@5"] == pytest.approx(2 / 3)
    # mrr@3: q1 first relevant A at rank 2 = 1/2; q3 0; q4 H at rank 2 = 1/2 -> 1/3
    assert result["mrr@3"] == pytest.approx(1 / 3)
    assert set(result) == {"ndcg@3", "recall@3", "recall@5", "mrr@3", "queries", "queries_without_relevant",
                           "queries_missing_from_run"}


def test_ties_keep_the_run_order():
    # Put D before X in the tie: q1 becomes 1 B  2 A  3 D  4 X, so D is now inside the top 3.
    run = dict(RUN, q1={"B": 0.9, "A": 0.8, "D": 0.7, "X": 0.7, "C": 0.1})
    result = evaluate_run(QRELS, run, relevant_grade=2, cutoff=3, depth=5)
    # q1 NDCG@3: DCG = 1 + 3/log2(3) + 2/2 = 3.8927893, same IDCG 4.7618595
    q1 = (1 + 3 / L2_3 + 2 / 2) / (3 + 2 / L2_3 + 1 / 2)
    assert result["ndcg@3"] == pytest.approx((q1 + Q4_NDCG) / 3)
    # q1 recall@3 is now 2/2 -> (1 + 0 + 1) / 3
    assert result["recall@3"] == pytest.approx(2 / 3)


def test_relevant_grade_threshold_changes_the_query_set_and_relevance():
    result = evaluate_run(QRELS, RUN, relevant_grade=1, cutoff=3, depth=5)
    # Every query now has a grade >= 1 product: q1, q2, q3, q4.
    assert result["queries"] == 4 and result["queries_without_relevant"] == 0
    # recall@3: q1 {A, B, D} -> B, A found = 2/3; q2 E at rank 1 = 1; q3 0; q4 1 -> (2/3 + 1 + 0 + 1) / 4
    assert result["recall@3"] == pytest.approx((2 / 3 + 1 + 0 + 1) / 4)
    # mrr@3: q1 B at rank 1 = 1; q2 1; q3 0; q4 1/2 -> 2.5 / 4
    assert result["mrr@3"] == pytest.approx(2.5 / 4)
    # NDCG uses the grades as gains whatever the threshold: q2 is 1/1 = 1.
    assert result["ndcg@3"] == pytest.approx((Q1_NDCG + 1 + 0 + Q4_NDCG) / 4)


def test_gain_is_linear_not_exponential():
    # One query, grades 3 then 1 ranked in reverse: linear DCG = 1 + 3/log2(3), IDCG = 3 + 1/log2(3).
    # (Burges' 2^g - 1 would give (1 + 7/log2(3)) / (7 + 1/log2(3)) = 0.7175, not 0.8290.)
    result = evaluate_run({"q": {"a": 3, "b": 1}}, {"q": {"b": 2.0, "a": 1.0}})
    assert result["ndcg@10"] == pytest.approx((1 + 3 / L2_3) / (3 + 1 / L2_3))


def test_cutoff_only_counts_the_top_of_the_ranking():
    # the only relevant item at rank 11: zero at 10, found at 100
    run = {"q": {f"x{i}": 100.0 - i for i in range(10)} | {"rel": 1.0}}
    result = evaluate_run({"q": {"rel": 1}}, run)
    assert (result["ndcg@10"], result["recall@10"], result["mrr@10"]) == (0.0, 0.0, 0.0)
    assert result["recall@100"] == 1.0


def test_empty_run_counts_every_query_as_missing():
    result = evaluate_run({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": {}})
    assert result["queries_missing_from_run"] == 2
    assert result["ndcg@10"] == result["recall@100"] == result["mrr@10"] == 0.0


def test_errors_say_what_to_change():
    with pytest.raises(ValueError, match="lower relevant_grade"):
        evaluate_run({"q": {"a": 1}}, {"q": {"a": 1.0}}, relevant_grade=5)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_run({"q": {"a": 1}}, {"q": {"a": float("nan")}})
    with pytest.raises(ValueError, match="positive ints"):
        evaluate_run({"q": {"a": 1}}, {"q": {"a": 1.0}}, cutoff=0)


AUC_QRELS = {"qa": {"a1": 3, "a2": 0, "a3": 1, "a4": 2}, "qb": {"b1": 2, "b2": 0, "b3": 0}}
# a3 (grade 1) is between the thresholds and needs no score.
AUC_SCORES = {"qa": {"a1": 0.9, "a2": 0.4, "a4": 0.3}, "qb": {"b1": 0.6, "b2": 0.6, "b3": 0.1}}


def test_roc_auc_by_hand():
    result = roc_auc_judged(AUC_QRELS, AUC_SCORES, positive_min_grade=2, negative_max_grade=0)
    # positives a1 .9, a4 .3, b1 .6; negatives a2 .4, b2 .6, b3 .1; pooled over both queries.
    # AUC = (pairs positive > negative + 0.5 * ties) / (3 * 3):
    #   a1 .9 beats .4 .6 .1            -> 3
    #   a4 .3 beats .1 only             -> 1
    #   b1 .6 beats .4 .1, ties .6      -> 2.5
    #   (3 + 1 + 2.5) / 9 = 0.7222222
    assert result["auc"] == pytest.approx(6.5 / 9)
    assert (result["positives"], result["negatives"], result["left_out"], result["queries"]) == (3, 3, 1, 2)


def test_roc_auc_thresholds_move_pairs_between_classes():
    # negatives now grade <= 1: a3 (score .5) joins them; 3 x 4 pairs.
    scores = {"qa": dict(AUC_SCORES["qa"], a3=0.5), "qb": AUC_SCORES["qb"]}
    result = roc_auc_judged(AUC_QRELS, scores, positive_min_grade=2, negative_max_grade=1)
    # a1 beats all 4 -> 4; a4 .3 beats .1 -> 1; b1 .6 beats .4 .5 .1, ties .6 -> 3.5; (4 + 1 + 3.5) / 12
    assert result["auc"] == pytest.approx(8.5 / 12)
    assert result["left_out"] == 0


def test_roc_auc_refuses_missing_scores_and_bad_thresholds():
    scores = {"qa": {"a1": 0.9, "a2": 0.4}, "qb": AUC_SCORES["qb"]}
    with pytest.raises(ValueError, match=r"1 of 6 judged pairs have no score .*'qa'.*'a4'"):
        roc_auc_judged(AUC_QRELS, scores, positive_min_grade=2, negative_max_grade=0)
    with pytest.raises(ValueError, match="must be above"):
        roc_auc_judged(AUC_QRELS, AUC_SCORES, positive_min_grade=2, negative_max_grade=2)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc_judged(AUC_QRELS, AUC_SCORES, positive_min_grade=4, negative_max_grade=0)


def test_per_query_scores_average_to_the_reported_metric_and_missing_queries_score_zero():
    from coldstart.evaluation.metrics import evaluate_run

    qrels = {"a": {"x": 2, "y": 1}, "b": {"z": 1}, "c": {"k": 1}, "d": {"n": 0}}
    run = {"a": {"x": 1.0, "y": 2.0}, "b": {"w": 1.0, "z": 0.5}}
    out = evaluate_run(qrels, run, per_query=True)
    for metric, by_query in out["per_query"].items():
        assert sorted(by_query) == ["a", "b", "c"]  # d has no relevant product: not evaluated
        assert sum(by_query.values()) / 3 == pytest.approx(out[metric])
    assert out["per_query"]["ndcg@10"]["c"] == 0.0 and out["per_query"]["recall@10"]["b"] == 1.0


def test_the_paired_bootstrap_brackets_the_mean_change_and_refuses_unpaired_queries():
    import numpy as np

    from coldstart.evaluation.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    base = {f"q{n}": float(v) for n, v in enumerate(rng.uniform(0, 1, 400))}
    better = {q: min(1.0, v + 0.05 + float(rng.normal(0, 0.02))) for q, v in base.items()}
    got = paired_bootstrap(base, better, resamples=2000)
    assert got["low"] < got["delta"] < got["high"] and got["low"] > 0.03 and got["queries"] == 400
    same = paired_bootstrap(base, dict(base))
    assert same["delta"] == same["low"] == same["high"] == 0.0
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap(base, {"q0": 1.0})
