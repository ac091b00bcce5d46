"""BM25Retriever on a tiny catalog with known answers, checked against a brute-force BM25."""

import math
from collections import Counter

import pytest

from coldstart.ranking.bm25 import BM25Retriever, tokenize

IDS = ["p1", "p2", "p3", "p4", "p5", "p6"]
TEXTS = [
    "Red running shoe",
    "Blue running shoe",
    "Red cotton shirt",
    "Nike鞋 运动",
    "2x4 pine lumber 8 ft",
    "1/2 in. copper pipe",
]


@pytest.fixture(scope="module")
def retriever():
    return BM25Retriever(IDS, TEXTS)


def _ids(results):
    return [item_id for item_id, _ in results]


def _reference_scores(query_tokens, docs, k1=1.5, b=0.75):
    """Lucene BM25, written out: idf = ln(1 + (N - df + 0.5) / (df + 0.5)); tf part tf / (tf + k1 (1 - b + b dl/avgdl))."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    scores = []
    for doc in docs:
        tf = Counter(doc)
        score = 0.0
        for term in query_tokens:
            df = sum(term in d for d in docs)
            if tf[term]:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * tf[term] / (tf[term] + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return scores


def test_search_matches_brute_force_bm25(retriever):
    results = retriever.search(["red running shoe"], k=10)[0]
    # p1 has all three words; p2 two (running, shoe); p3 one (red)
    assert _ids(results) == ["p1", "p2", "p3"]
    from bm25s.stopwords import STOPWORDS_EN

    docs = [tokenize(t, frozenset(STOPWORDS_EN)) for t in TEXTS]  # document lengths without stopwords
    expected = _reference_scores(["red", "running", "shoe"], docs)
    assert [s for _, s in results] == pytest.approx([expected[0], expected[1], expected[2]], rel=1e-5)


def test_ties_go_to_the_earlier_catalog_row_and_k_cuts():
    retriever = BM25Retriever([f"i{n}" for n in range(6)], ["shoe"] * 5 + ["boot"])
    assert _ids(retriever.search(["shoe"], k=2)[0]) == ["i0", "i1"]
    assert _ids(retriever.search(["shoe boot"], k=1)[0]) == ["i5"]  # rarer term scores higher


def test_only_matching_items_and_empty_queries_give_empty_results(retriever):
    assert retriever.search(["", "   ", "the of and", "zzz unknown"], k=5) == [[], [], [], []]
    assert "p5" not in _ids(retriever.search(["red shoe"], k=6)[0])


def test_exclude_per_query(retriever):
    results = retriever.search(["red shoe", "red shoe"], k=3, exclude=[["p1", "not-in-catalog"], []])
    assert _ids(results[0]) == ["p2", "p3"] or _ids(results[0]) == ["p3", "p2"]
    assert "p1" not in _ids(results[0]) and _ids(results[1])[0] == "p1"
    with pytest.raises(ValueError, match="one per query"):
        retriever.search(["red"], k=3, exclude=[[], []])


def test_search_clicks_uses_clicked_texts_and_never_returns_clicks(retriever):
    # clicking the red running shoe: its text is the query; p1 itself is excluded
    results = retriever.search_clicks([["p1"], ["p1", "p2"]], k=5)
    assert _ids(results[0])[:1] == ["p2"] and "p1" not in _ids(results[0]) and "p3" in _ids(results[0])
    assert "p1" not in _ids(results[1]) and "p2" not in _ids(results[1])
    # chars=3 keeps only "Red" of p1's title: p3 (red cotton shirt) is the only other match
    assert _ids(retriever.search_clicks([["p1"]], k=5, chars=3)[0]) == ["p3"]
    assert retriever.search_clicks([["p1"]], k=5, exclude=[["p3"]], chars=3) == [[]]
    with pytest.raises(ValueError, match="'nope' is not in the BM25 catalog"):
        retriever.search_clicks([["nope"]], k=5)


def test_cjk_characters_are_tokens_of_their_own(retriever):
    import bm25s

    # bm25s' default keeps "nike鞋" as one token, so a query "鞋" would never match it
    assert bm25s.tokenize(["Nike鞋"], return_ids=False, show_progress=False) == [["nike鞋"]]
    assert tokenize("Nike鞋 运动") == ["nike", "鞋", "运", "动"]
    assert _ids(retriever.search(["鞋"], k=5)[0]) == ["p4"]
    assert _ids(retriever.search(["运动鞋"], k=5)[0]) == ["p4"]
    assert _ids(retriever.search(["nike"], k=5)[0]) == ["p4"]


def test_tokens_equal_bm25s_default_on_latin_text():
    import bm25s
    from bm25s.stopwords import STOPWORDS_EN

    texts = TEXTS[:3] + TEXTS[4:] + ["Hampton Bay 3-Light Brushed-Nickel Fan, 52 in.", "don't stop_me now ÉTÉ"]
    expected = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
    assert [tokenize(t, frozenset(STOPWORDS_EN)) for t in texts] == expected


def test_units_tokens_keep_fractions_and_single_characters():
    assert tokenize("1 1/2 in. x 5/16 pipe") == ["in", "16", "pipe"]  # bm25s default
    assert tokenize("1 1/2 in. x 5/16 pipe", tokens="units") == ["1", "1/2", "in", "x", "5/16", "pipe"]
    retriever = BM25Retriever(IDS, TEXTS, tokens="units")
    assert _ids(retriever.search(["1/2 copper"], k=5)[0]) == ["p6"]
    assert BM25Retriever(IDS, TEXTS).search(["1/2"], k=5) == [[]]
    with pytest.raises(ValueError, match="tokens must be one of"):
        tokenize("x", tokens="words")


def test_stopword_choices():
    assert _ids(BM25Retriever(IDS, TEXTS, stopwords=None).search(["in"], k=5)[0]) == ["p6"]
    assert BM25Retriever(IDS, TEXTS, stopwords=["Copper"]).search(["copper"], k=5) == [[]]
    with pytest.raises(ValueError, match="unknown stopword list"):
        BM25Retriever(IDS, TEXTS, stopwords="klingon")


def test_save_and_load_give_the_same_results(retriever, tmp_path):
    retriever.save(tmp_path / "bm25")
    loaded = BM25Retriever.load(tmp_path / "bm25")
    queries = ["red running shoe", "鞋", "copper pipe", ""]
    assert loaded.search(queries, k=4) == retriever.search(queries, k=4)
    assert loaded.search_clicks([["p1"]], k=4) == retriever.search_clicks([["p1"]], k=4)
    with pytest.raises(FileNotFoundError, match="not written by BM25Retriever.save"):
        BM25Retriever.load(tmp_path)


def test_catalog_errors_say_what_to_change():
    with pytest.raises(ValueError, match="one text per item"):
        BM25Retriever(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="'a' appears more than once"):
        BM25Retriever(["a", "b", "a"], ["x", "y", "z"])
    with pytest.raises(ValueError, match="catalog is empty"):
        BM25Retriever([], [])
    with pytest.raises(ValueError, match="no item has a token"):
        BM25Retriever(["a", "b"], ["x", "the"])
    with pytest.raises(ValueError, match="positive int"):
        BM25Retriever(["a"], ["xy"]).search(["xy"], k=0)
    with pytest.raises(TypeError, match="list of strings"):
        BM25Retriever(["a"], ["xy"]).search("xy", k=1)


def test_items_without_text_are_never_retrieved():
    retriever = BM25Retriever(["a", "b", "c"], ["red shoe", None, "the"])
    assert _ids(retriever.search(["red"], k=3)[0]) == ["a"]
