"""BM25 over product text: the baseline a shop has today (Elasticsearch / OpenSearch out of the box).

Built on ``bm25s`` (Lucene's BM25 variant). The index is built once; each query is scored against the whole
catalog, so exclusions (clicked items) are exact rather than "retrieve more and filter".

Tokenisation equals bm25s' default (lowercase, ``\\b\\w\\w+\\b``, stopword removal) on text without CJK, so
the numbers match the ``bm25`` row of BENCHMARK.md. Chinese and Japanese are written without spaces, so
the default would make ``Nike鞋`` one token that the query ``鞋`` never matches; here every CJK character
is a token of its own (unigrams, which also lets a one-character query match).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

_CJK = (
    "\u3040-\u309f"  # hiragana
    "\u30a0-\u30ff"  # katakana
    "\u3400-\u4dbf"  # CJK unified ideographs extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # extensions B to G
)
_CJK_CHAR = re.compile(f"([{_CJK}])")
_TOKENS = {
    # bm25s' default (scikit-learn's CountVectorizer): words of two or more characters.
    "bm25s": re.compile(rf"[{_CJK}]|\b\w\w+\b"),
    # Also fractions ("1/2", "5/16") as one token and one-character words ("1", "x"): product titles are full
    # of sizes. On Home Depot (bm25s defaults otherwise) NDCG@10 0.343 -> 0.359 on dev, 0.337 -> 0.352 on train.
    "units": re.compile(rf"[{_CJK}]|\d+/\d+|\b\w+\b"),
}
_MANIFEST = "coldstart_bm25.json"
_FORMAT = 1


def _stopword_list(stopwords: str | Iterable[str] | None) -> frozenset[str]:
    """``"en"``/``"english"``, another bm25s language name, an iterable of words, or None for no stopwords."""
    if stopwords is None:
        return frozenset()
    if isinstance(stopwords, str):
        from bm25s import stopwords as lists

        names = {"en": "EN", "english": "EN", "de": "GERMAN", "german": "GERMAN", "fr": "FRENCH",
                 "french": "FRENCH", "es": "SPANISH", "spanish": "SPANISH", "zh": "CHINESE", "chinese": "CHINESE"}
        if stopwords.lower() not in names:
            raise ValueError(f"unknown stopword list {stopwords!r}; use one of {sorted(names)}, a list of words, "
                             "or None")
        return frozenset(getattr(lists, "STOPWORDS_" + names[stopwords.lower()]))
    return frozenset(word.lower() for word in stopwords)


def tokenize(text: str, stopwords: frozenset[str] = frozenset(), tokens: str = "bm25s") -> list[str]:
    """Lowercased tokens with every CJK character alone and stopwords removed.

    ``tokens="bm25s"``: words of two or more characters (bm25s' default); ``"units"``: also fractions such as
    ``1/2`` and one-character words.
    """
    if tokens not in _TOKENS:
        raise ValueError(f"tokens must be one of {sorted(_TOKENS)}, got {tokens!r}")
    text = _CJK_CHAR.sub(r" \1 ", text.lower())
    return [token for token in _TOKENS[tokens].findall(text) if token not in stopwords]


class BM25Retriever:
    """BM25 retrieval over a fixed catalog.

    Args:
        ids: item ids, unique, aligned with ``texts``.
        texts: one text per item (e.g. the title).
        k1, b: BM25 term-frequency saturation and length normalisation.
        stopwords: a stopword list name (``"en"``, ``"zh"``, ...), an iterable of words, or None.
        tokens: ``"bm25s"`` (default; the BENCHMARK.md baseline) or ``"units"`` (keeps ``1/2`` and one-character
            words; better on product titles), see ``tokenize``.
    """

    def __init__(self, ids: Sequence[str], texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75,
                 stopwords: str | Iterable[str] | None = "en", tokens: str = "bm25s") -> None:
        self._set_catalog(ids, texts, k1=k1, b=b, stopwords=stopwords, tokens=tokens)
        self._index = self._build()

    def _set_catalog(self, ids: Sequence[str], texts: Sequence[str], *, k1: float, b: float,
                     stopwords: str | Iterable[str] | None, tokens: str) -> None:
        if len(ids) != len(texts):
            raise ValueError(f"got {len(ids)} ids and {len(texts)} texts; pass one text per item")
        if not len(ids):
            raise ValueError("the catalog is empty; pass at least one item")
        if not (k1 >= 0 and 0 <= b <= 1):
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if tokens not in _TOKENS:
            raise ValueError(f"tokens must be one of {sorted(_TOKENS)}, got {tokens!r}")
        self.tokens = tokens
        self.ids = [str(i) for i in ids]
        self.texts = [t if isinstance(t, str) else "" for t in texts]  # a missing title (None, NaN) matches nothing
        self._row = {item_id: row for row, item_id in enumerate(self.ids)}
        if len(self._row) != len(self.ids):
            duplicate = next(i for n, i in enumerate(self.ids) if self._row[i] != n)
            raise ValueError(f"item id {duplicate!r} appears more than once; deduplicate the catalog first")
        self.k1, self.b = float(k1), float(b)
        self._stopwords_spec = stopwords if stopwords is None or isinstance(stopwords, str) else sorted(stopwords)
        self._stopwords = _stopword_list(stopwords)

    def _build(self):
        import bm25s

        corpus = [self.tokenize(text) for text in self.texts]
        empty = sum(1 for tokens in corpus if not tokens)
        if empty == len(corpus):
            raise ValueError(f"no item has a token to index (e.g. {self.texts[0][:50]!r}); check that the text "
                             "column was passed, or use tokens='units' to keep one-character words")
        if empty:
            logger.info("%d of %d items have no indexable token; they are never retrieved", empty, len(corpus))
        index = bm25s.BM25(k1=self.k1, b=self.b)
        index.index(corpus, show_progress=False)
        logger.info("BM25 index: %d items, %d terms", len(corpus), len(index.vocab_dict))
        return index

    def tokenize(self, text: str) -> list[str]:
        """``text`` as this index tokenises it (its token rule and stopwords)."""
        return tokenize(text, self._stopwords, self.tokens)

    @property
    def row_of(self) -> Mapping[str, int]:
        """Item id → its position in :meth:`scores`' output (the catalog order)."""
        return self._row

    def scores(self, query: str) -> np.ndarray:
        """(n_items,) float32 BM25 scores of ``query``; all zero when no query token is in the catalog."""
        tokens = [t for t in self.tokenize(query) if t in self._index.vocab_dict]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return self._index.get_scores(tokens)

    def _top(self, scores: np.ndarray, k: int, exclude: Iterable[str]) -> list[tuple[str, float]]:
        """The k best items with a positive score; ties go to the earlier catalog row."""
        rows = [self._row[i] for i in exclude if i in self._row]
        if rows:
            scores = scores.copy()
            scores[rows] = 0.0
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            # Keep every item tied with the k-th best, then sort exactly; cheaper than sorting all hits.
            kth = np.partition(scores[hits], len(hits) - k)[len(hits) - k]
            hits = hits[scores[hits] >= kth]
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return [(self.ids[row], float(scores[row])) for row in order]

    def search(self, queries: Sequence[str], k: int, *,
               exclude: Sequence[Iterable[str]] | None = None) -> list[list[tuple[str, float]]]:
        """Top ``k`` ``(item_id, score)`` per query, best first; only items sharing a token with the query.

        ``exclude[i]`` lists item ids never returned for query i (unknown ids are ignored). An empty query,
        or one with no token in the catalog, gives an empty list.
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query in a list")
        if exclude is not None and len(exclude) != len(queries):
            raise ValueError(f"got {len(exclude)} exclude lists for {len(queries)} queries; pass one per query")
        results = []
        for n, query in enumerate(queries):
            skip = exclude[n] if exclude is not None else ()
            results.append(self._top(self.scores(query), k, skip) if query and query.strip() else [])
        return results

    def search_clicks(self, click_ids: Sequence[Sequence[str]], k: int, chars: int = 200, *,
                      exclude: Sequence[Iterable[str]] | None = None) -> list[list[tuple[str, float]]]:
        """Top ``k`` for clicks-only users: the query is the clicked items' texts (first ``chars`` each).

        Clicked items are never returned. A clicked id that is not in the catalog is an error, since its
        text is unknown.
        """
        if exclude is not None and len(exclude) != len(click_ids):
            raise ValueError(f"got {len(exclude)} exclude lists for {len(click_ids)} users; pass one per user")
        queries, skips = [], []
        for n, clicks in enumerate(click_ids):
            unknown = [c for c in clicks if c not in self._row]
            if unknown:
                raise ValueError(f"request {n}: clicked item {unknown[0]!r} is not in the BM25 catalog; drop it "
                                 "or rebuild the index with a catalog that has it")
            queries.append(" ".join(self.texts[self._row[c]][:chars] for c in clicks))
            skips.append(list(clicks) + (list(exclude[n]) if exclude is not None else []))
        return self.search(queries, k, exclude=skips)

    def save(self, directory: str | os.PathLike) -> None:
        """Writes the bm25s index plus a manifest (parameters, tokeniser, ids and texts) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._index.save(str(directory), show_progress=False)
        manifest = {"format": _FORMAT, "k1": self.k1, "b": self.b, "stopwords": self._stopwords_spec,
                    "tokens": self.tokens, "ids": self.ids, "texts": self.texts}
        with open(directory / _MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> BM25Retriever:
        """Reads what ``save`` wrote; refuses a directory without a coldstart manifest of a known format."""
        import bm25s

        path = Path(directory) / _MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; {directory} was not written by BM25Retriever.save")
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("format") != _FORMAT:
            raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {_FORMAT}; rebuild the index")
        index = bm25s.BM25.load(str(directory), show_progress=False)
        if index.scores["num_docs"] != len(manifest["ids"]):
            raise ValueError(f"{directory}: index has {index.scores['num_docs']} items, manifest "
                             f"{len(manifest['ids'])}; the directory is inconsistent, rebuild it")
        retriever = cls.__new__(cls)
        retriever._set_catalog(manifest["ids"], manifest["texts"], k1=manifest["k1"], b=manifest["b"],
                               stopwords=manifest["stopwords"], tokens=manifest["tokens"])
        retriever._index = index
        return retriever
