"""File formats: round trips, the protocol for sessions, and errors that name file, line and fix."""

import json

import pytest

from coldstart.evaluation.trec import (
    LeaveOneOut,
    Pair,
    Request,
    Session,
    read_pairs,
    read_qrels,
    read_requests,
    read_run,
    read_scores,
    read_sessions,
    sessions_to_leave_one_out,
    sessions_to_requests_and_qrels,
    write_run,
    write_scores,
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_requests_tsv(tmp_path):
    path = _write(tmp_path, "q.tsv", "q1\t1/2 in. copper pipe\n\nq2\tred\tshoe\n")
    assert read_requests(path) == [Request("q1", "1/2 in. copper pipe", ()), Request("q2", "red\tshoe", ())]


def test_read_requests_jsonl_detected_from_first_line(tmp_path):
    lines = [
        {"qid": "u1", "query": "drill", "clicks": ["i1"]},
        {"qid": "u2", "query": "  ", "clicks": ["i2", "i3"]},  # blank query with clicks -> None
        {"qid": 7, "clicks": ["i4"]},  # int qid is accepted as text
    ]
    path = _write(tmp_path, "q.jsonl", "\n" + "\n".join(json.dumps(x) for x in lines) + "\n")
    assert read_requests(path) == [
        Request("u1", "drill", ("i1",)),
        Request("u2", None, ("i2", "i3")),
        Request("7", None, ("i4",)),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("q1\tok\nq2 no tab\n", r"q\.txt line 2: expected 'qid<TAB>query'"),
        ("q1\tok\nq1\tagain\n", r"line 2: duplicate qid 'q1' \(first on line 1\)"),
        ("q1\t  \n", r"line 1: request 'q1' has an empty query"),
        ('{"qid": "a", "query": "x"}\n{"qid": "b", "query": \n', r"line 2: not valid JSON"),
        ('{"query": "x"}\n', r"line 1: missing or empty \"qid\""),
        ('{"qid": "a", "query": null, "clicks": []}\n', r"line 1: request 'a' has neither a query nor clicks"),
        ('{"qid": "a", "clicks": "i1"}\n', r"line 1: \"clicks\" must be a list"),
    ],
)
def test_read_requests_errors_name_file_line_and_fix(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_requests(_write(tmp_path, "q.txt", text))


def test_request_validates_itself():
    with pytest.raises(ValueError, match="neither a query nor clicks"):
        Request("q", None, ())
    with pytest.raises(ValueError, match="query=None"):
        Request("q", " ", ("i",))


def test_run_round_trip_ranks_by_score_and_keeps_tied_order(tmp_path):
    path = tmp_path / "run.trec"
    rows = [("q1", [("b", 0.5), ("a", 0.9), ("c", 0.5), ("d", 0.1 + 0.2)]), ("q2", [])]
    assert write_run(path, rows, tag="bm25") == 4
    lines = path.read_text().splitlines()
    # b and c tie at 0.5 and keep the given order; 0.1 + 0.2 is written exactly (0.30000000000000004)
    assert lines == [
        "q1 Q0 a 1 0.9 bm25",
        "q1 Q0 b 2 0.5 bm25",
        "q1 Q0 c 3 0.5 bm25",
        "q1 Q0 d 4 0.30000000000000004 bm25",
    ]
    run = read_run(path)
    assert list(run["q1"].items()) == [("a", 0.9), ("b", 0.5), ("c", 0.5), ("d", 0.1 + 0.2)]


def test_read_run_orders_by_rank_column(tmp_path):
    path = _write(tmp_path, "run", "q Q0 y 2 1.0 t\nq Q0 x 1 1.0 t\n")
    assert list(read_run(path)["q"]) == ["x", "y"]


def test_write_run_refuses_what_would_break_the_format(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "r", [("q 1", [("a", 1.0)])], tag="t")
    with pytest.raises(ValueError, match="run tag"):
        write_run(tmp_path / "r", [], tag="my tag")
    with pytest.raises(ValueError, match="twice"):
        write_run(tmp_path / "r", [("q", [("a", 1.0), ("a", 0.5)])], tag="t")
    with pytest.raises(ValueError, match="NaN"):
        write_run(tmp_path / "r", [("q", [("a", float("nan"))])], tag="t")


def test_read_run_errors(tmp_path):
    with pytest.raises(ValueError, match=r"line 1: expected 6 fields"):
        read_run(_write(tmp_path, "run", "q Q0 a 1 0.5\n"))
    with pytest.raises(ValueError, match=r"line 1: rank 'x' must be an integer"):
        read_run(_write(tmp_path, "run", "q Q0 a x 0.5 t\n"))


def test_read_qrels_tab_or_space(tmp_path):
    path = _write(tmp_path, "qrels", "q1\t0\ta\t6\nq1 0 b 0\nq2  0  c  3\n")
    assert read_qrels(path) == {"q1": {"a": 6, "b": 0}, "q2": {"c": 3}}
    with pytest.raises(ValueError, match=r"line 2: query 'q1' judges item 'a' twice"):
        read_qrels(_write(tmp_path, "dup", "q1 0 a 1\nq1 0 a 2\n"))
    with pytest.raises(ValueError, match=r"line 1: grade '2.5' must be an integer"):
        read_qrels(_write(tmp_path, "bad", "q1 0 a 2.5\n"))


def test_scores_round_trip(tmp_path):
    scores = {"q1": {"a": 0.25, "b": -1.5}, "q2": {"c": 1 / 3}}
    assert write_scores(tmp_path / "s.tsv", scores) == 3
    assert read_scores(tmp_path / "s.tsv") == scores
    with pytest.raises(ValueError, match="line 1: score 'high' is not a number"):
        read_scores(_write(tmp_path, "bad.tsv", "q\ta\thigh\n"))


def test_read_pairs(tmp_path):
    path = _write(tmp_path, "pairs.tsv", "q1\tangle bracket\t100001\nq1\tangle bracket\t100002\n")
    assert read_pairs(path) == [Pair("q1", "angle bracket", "100001"), Pair("q1", "angle bracket", "100002")]
    with pytest.raises(ValueError, match="line 1: expected 'qid<TAB>query<TAB>item_id'"):
        read_pairs(_write(tmp_path, "bad.tsv", "q1\tangle bracket\n"))


def test_sessions_to_cold_start_protocol(tmp_path):
    lines = [
        {"user_id": "u1", "items": ["a", "b", "c", "d"]},
        {"user_id": "u2", "items": ["e", "f", "e"]},  # re-buying a clicked item is not relevant
        {"user_id": "u3", "items": ["g"]},  # nothing after the first click
    ]
    path = _write(tmp_path, "s.jsonl", "\n".join(json.dumps(x) for x in lines))
    sessions = read_sessions(path)
    assert sessions[1] == Session("u2", ("e", "f", "e"))

    requests, qrels = sessions_to_requests_and_qrels(sessions, k=1)
    assert requests == [Request("u1", None, ("a",)), Request("u2", None, ("e",))]  # u3 skipped
    assert qrels == {"u1": {"b": 1, "c": 1, "d": 1}, "u2": {"f": 1}}

    requests, qrels = sessions_to_requests_and_qrels(sessions, k=3)
    assert requests == [Request("u1", None, ("a", "b", "c"))]  # u2: "e" repeats a click, so nothing is left
    assert qrels == {"u1": {"d": 1}}

    with pytest.raises(ValueError, match="positive int"):
        sessions_to_requests_and_qrels(sessions, k=0)


def test_sessions_to_leave_one_out_protocol(tmp_path):
    lines = [
        {"user_id": "u1", "items": ["a", "b", "c", "d"]},
        {"user_id": "u2", "items": ["e", "f", "e"]},  # the target was bought before: unreachable, still counted
        {"user_id": "u3", "items": ["g"]},  # no history
        {"user_id": "u4", "items": ["h", "h", "i"]},  # a repeat inside the history is kept, in time order
    ]
    sessions = read_sessions(_write(tmp_path, "s.jsonl", "\n".join(json.dumps(x) for x in lines)))

    split = sessions_to_leave_one_out(sessions)
    assert isinstance(split, LeaveOneOut)
    assert split.requests == [Request("u1", None, ("a", "b", "c")), Request("u2", None, ("e", "f")),
                              Request("u4", None, ("h", "h"))]  # u3 skipped
    assert split.qrels == {"u1": {"d": 1}, "u2": {"e": 1}, "u4": {"i": 1}}  # the last item only
    assert split.repeated == ("u2",)
    assert split.without_repeated() == {"u1": {"d": 1}, "u4": {"i": 1}}
    assert split.qrels["u2"] == {"e": 1}  # without_repeated leaves the published denominator alone


def test_leave_one_out_repeated_users_score_zero_but_stay_in_the_denominator(tmp_path):
    from coldstart.evaluation.metrics import evaluate_run

    lines = [{"user_id": "u1", "items": ["a", "b"]}, {"user_id": "u2", "items": ["c", "d", "c"]}]
    split = sessions_to_leave_one_out(read_sessions(_write(tmp_path, "s.jsonl",
                                                           "\n".join(json.dumps(x) for x in lines))))
    run = {"u1": {"b": 1.0}, "u2": {"d": 1.0}}  # u1's target first; u2's target was clicked, so never ranked
    assert evaluate_run(split.qrels, run)["recall@10"] == pytest.approx(0.5)
    assert evaluate_run(split.without_repeated(), run)["recall@10"] == pytest.approx(1.0)


def test_read_sessions_errors(tmp_path):
    with pytest.raises(ValueError, match=r"line 2: duplicate user_id 'u'"):
        read_sessions(_write(tmp_path, "s", '{"user_id": "u", "items": ["a"]}\n{"user_id": "u", "items": ["b"]}\n'))
    with pytest.raises(ValueError, match=r"line 1: user 'u': \"items\" must be a non-empty list"):
        read_sessions(_write(tmp_path, "s", '{"user_id": "u", "items": []}\n'))
