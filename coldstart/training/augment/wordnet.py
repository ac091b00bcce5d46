"""WordNet as an optional synonym source, read straight from the WordNet database files.

Debian's ``wordnet-base`` package installs the Princeton WordNet 3.0 database under
``/usr/share/wordnet`` (``index.noun``, ``data.noun``, ... for noun, verb, adj, adv). We read
those files directly, without nltk:

* ``index.<pos>`` lines: ``lemma pos synset_cnt p_cnt [ptr]*p_cnt sense_cnt tagsense_cnt
  offset*synset_cnt``, senses ordered most frequent first; lines starting with a space are
  the licence header.
* ``data.<pos>`` lines start at byte ``offset``: ``offset lex_filenum ss_type w_cnt(hex)
  [word lex_id]*w_cnt p_cnt [symbol offset pos source_target]*p_cnt ...``; words use ``_``
  for spaces, adjectives may carry a marker such as ``(p)``.

The synonyms of a term are the other words in the synsets of its first ``max_senses`` senses
per part of speech (default 1: rarer senses make poor query paraphrases). Instance senses
(people and places, marked by an ``@i`` pointer, e.g. the author Zane Grey for "grey") are
skipped: queries are about products, and WordNet lists senses without frequency data in no
useful order, so they would often come first. Nothing is read until the first lookup;
the index files then take about a second to parse.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from coldstart.training.augment.synonyms import Key, term_key

logger = logging.getLogger(__name__)

DEFAULT_WORDNET_DIR = "/usr/share/wordnet"
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


class WordNetSynonyms:
    """A :class:`~coldstart.training.augment.synonyms.SynonymSource` backed by WordNet database files."""

    #: WordNet lemmas longer than this many tokens are not looked up (they are rare in queries).
    max_key_tokens = 4

    def __init__(
        self,
        root: str | Path = DEFAULT_WORDNET_DIR,
        *,
        parts_of_speech: Sequence[str] = PARTS_OF_SPEECH,
        max_senses: int = 1,
    ):
        unknown = set(parts_of_speech) - set(PARTS_OF_SPEECH)
        if unknown:
            raise ValueError(
                f"unknown WordNet parts of speech {sorted(unknown)}; use {PARTS_OF_SPEECH}"
            )
        if max_senses < 1:
            raise ValueError(f"max_senses={max_senses} must be >= 1")
        self.root = Path(root)
        self.parts_of_speech = tuple(parts_of_speech)
        self.max_senses = max_senses
        missing = [p for p in self._files() if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"WordNet files missing: {[str(p) for p in missing]}; install them with "
                "`apt-get install wordnet-base` or point the config at a WordNet 3.0 'dict' folder"
            )
        self._index: dict[Key, list[tuple[str, tuple[int, ...]]]] | None = None
        self._data: dict[str, bytes] = {}
        self._cache: dict[Key, tuple[str, ...]] = {}

    @classmethod
    def load_if_available(
        cls, root: str | Path = DEFAULT_WORDNET_DIR, **kwargs
    ) -> WordNetSynonyms | None:
        """The source, or None (logged) when the WordNet files are not installed under ``root``."""
        try:
            return cls(root, **kwargs)
        except FileNotFoundError as err:
            logger.info("WordNet synonyms disabled: %s", err)
            return None

    def _files(self) -> list[Path]:
        return [
            self.root / f"{kind}.{pos}"
            for pos in self.parts_of_speech
            for kind in ("index", "data")
        ]

    def _load_index(self) -> dict[Key, list[tuple[str, tuple[int, ...]]]]:
        index: dict[Key, list[tuple[str, tuple[int, ...]]]] = {}
        for pos in self.parts_of_speech:
            with (self.root / f"index.{pos}").open(encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith(" "):
                        continue
                    fields = line.split()
                    synset_cnt, p_cnt = int(fields[2]), int(fields[3])
                    offsets = fields[6 + p_cnt : 6 + p_cnt + synset_cnt]
                    key = term_key(fields[0].replace("_", " "))
                    if 0 < len(key) <= self.max_key_tokens:
                        index.setdefault(key, []).append((pos, tuple(int(o) for o in offsets)))
            self._data[pos] = (self.root / f"data.{pos}").read_bytes()
        logger.info("loaded WordNet index from %s: %d lemmas", self.root, len(index))
        return index

    def _synset(self, pos: str, offset: int) -> tuple[list[str], bool]:
        """The words of the synset at ``offset`` and whether it is an instance (a proper noun)."""
        data = self._data[pos]
        end = data.index(b"\n", offset)
        fields = data[offset:end].decode("utf-8").split()
        if int(fields[0]) != offset:
            raise ValueError(
                f"{self.root}/data.{pos}: no synset at byte {offset}; the index and data files "
                "come from different WordNet versions, reinstall them together"
            )
        count = int(fields[3], 16)
        words = [_ADJ_MARKER.sub("", w).replace("_", " ") for w in fields[4 : 4 + 2 * count : 2]]
        p_start = 4 + 2 * count
        pointers = fields[p_start + 1 : p_start + 1 + 4 * int(fields[p_start]) : 4]
        return words, "@i" in pointers

    def alternatives(self, key: Key) -> tuple[str, ...]:
        """Words sharing a synset with ``key`` in its first non-instance senses; never ``key``."""
        if key in self._cache:
            return self._cache[key]
        if self._index is None:
            self._index = self._load_index()
        found: list[str] = []
        seen = {key}
        for pos, offsets in self._index.get(key, ()):
            used = 0
            for offset in offsets:
                if used == self.max_senses:
                    break
                words, is_instance = self._synset(pos, offset)
                if is_instance:
                    continue
                used += 1
                for word in words:
                    if term_key(word) not in seen:
                        seen.add(term_key(word))
                        found.append(word)
        self._cache[key] = tuple(found)
        return self._cache[key]
