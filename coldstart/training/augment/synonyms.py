"""Synonym replacement from Solr / Elasticsearch synonym files.

File format (the one Solr's ``SynonymGraphFilter`` and Elasticsearch's ``synonym_graph``
filter read)::

    # comment lines start with '#'; there are no inline comments
    sofa, couch, settee
    2x4, two by four
    fridge, icebox => refrigerator
    inch, inches, " => inch, inches, in, "

* Equivalence lines ``a, b, c``: with ``expand=True`` (the default, as in Solr) every term
  maps to every other; with ``expand=False`` every term maps to the first one only.
* Explicit lines ``a, b => c, d``: ``a`` and ``b`` map to ``c`` and ``d``. Mapping a term to
  itself is allowed and simply never chosen as a replacement.
* Rules for the same term merge. ``\\`` escapes the next character (``\\,`` is a literal comma).
* Terms may have several words. Matching is case-insensitive and on token boundaries:
  text is split into runs of word characters and single punctuation marks, so ``sofa`` does
  not match inside ``sofas`` and ``"`` matches in ``12" pipe``.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

logger = logging.getLogger(__name__)

DEFAULT_SYNONYMS_RESOURCE = "synonyms_ecommerce.txt"
_TOKEN = re.compile(r"\w+|[^\w\s]")

Key = tuple[str, ...]


def term_key(text: str) -> Key:
    """Case-folded tokens of ``text``: ``'Two  by FOUR'`` -> ``('two', 'by', 'four')``."""
    return tuple(m.group().casefold() for m in _TOKEN.finditer(text))


class SynonymSource(Protocol):
    """Anything that proposes replacements for a term given as a token key."""

    @property
    def max_key_tokens(self) -> int:
        """Longest key, in tokens, worth looking up."""
        ...

    def alternatives(self, key: Key) -> Sequence[str]:
        """Replacement terms for ``key`` (never ``key`` itself); empty when unknown."""
        ...


@dataclass(frozen=True)
class SynonymTable:
    """Parsed rules: token key -> replacement terms as written in the file (order kept)."""

    rules: Mapping[Key, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        filtered = {
            key: tuple(t for t in terms if term_key(t) != key) for key, terms in self.rules.items()
        }
        object.__setattr__(self, "rules", MappingProxyType(filtered))
        longest = max((len(k) for k in filtered), default=0)
        object.__setattr__(self, "_max_key_tokens", longest)

    @property
    def max_key_tokens(self) -> int:
        return self._max_key_tokens  # type: ignore[attr-defined]

    def alternatives(self, key: Key) -> tuple[str, ...]:
        return self.rules.get(key, ())

    def __len__(self) -> int:
        return len(self.rules)


def _extend_unique(target: list[str], terms: Iterable[str]) -> None:
    seen = {term_key(t) for t in target}
    for term in terms:
        if term_key(term) not in seen:
            seen.add(term_key(term))
            target.append(term)


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside backslash escapes; escapes are kept for the next pass."""
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
        elif text.startswith(sep, i):
            parts.append("".join(current))
            current, i = [], i + len(sep)
        else:
            current.append(text[i])
            i += 1
    parts.append("".join(current))
    return parts


def _terms(side: str, where: str) -> list[str]:
    terms = []
    for raw in _split_unescaped(side, ","):
        term = " ".join(re.sub(r"\\(.)", r"\1", raw).split())
        if not term_key(term):
            raise ValueError(
                f"{where}: empty term in {side.strip()!r}; remove the stray comma, or write a "
                "literal comma as \\,"
            )
        terms.append(term)
    return terms


def parse_synonyms(
    lines: Iterable[str], *, source: str = "<string>", expand: bool = True
) -> SynonymTable:
    """Parse synonym rules in Solr format (see the module docstring).

    Raises:
        ValueError: naming ``source`` and the line number, for a line with two ``=>`` or an
            empty term.
    """
    rules: dict[Key, list[str]] = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{source} line {number}"
        sides = _split_unescaped(text, "=>")
        if len(sides) > 2:
            raise ValueError(f"{where}: more than one '=>'; split it into one mapping per line")
        if len(sides) == 2:
            targets = _terms(sides[1], where)
            for term in _terms(sides[0], where):
                _extend_unique(rules.setdefault(term_key(term), []), targets)
            continue
        group = _terms(sides[0], where)
        for term in group:
            _extend_unique(rules.setdefault(term_key(term), []), group if expand else group[:1])
    return SynonymTable({k: tuple(v) for k, v in rules.items()})


def load_synonyms(path: str | Path, *, expand: bool = True) -> SynonymTable:
    """Read a UTF-8 synonym file; raises FileNotFoundError with the path when missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"synonym file {path} does not exist; fix the path in the config")
    with path.open(encoding="utf-8") as handle:
        table = parse_synonyms(handle, source=str(path), expand=expand)
    logger.info("loaded %d synonym keys from %s", len(table), path)
    return table


def load_default_synonyms(*, expand: bool = True) -> SynonymTable:
    """The e-commerce list shipped in ``coldstart/resources/synonyms_ecommerce.txt``."""
    text = (
        resources.files("coldstart")
        .joinpath("resources", DEFAULT_SYNONYMS_RESOURCE)
        .read_text(encoding="utf-8")
    )
    return parse_synonyms(text.splitlines(), source=DEFAULT_SYNONYMS_RESOURCE, expand=expand)


def _match_case(replacement: str, matched: str) -> str:
    """Capitalise the replacement when the matched text starts with a capital letter."""
    if matched[:1].isupper() and replacement[:1].islower():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class SynonymAugmenter:
    """Replaces matched terms by a random alternative from the same rule.

    Terms are matched left to right, longest first, without overlaps; each match is replaced
    with probability ``prob`` (at most ``max_replacements`` per text). Sources are consulted in
    order and the first one that knows a key wins.
    """

    def __init__(
        self,
        sources: Sequence[SynonymSource],
        *,
        prob: float = 0.5,
        max_replacements: int | None = None,
    ):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"SynonymAugmenter: prob={prob} must be in [0, 1]")
        if max_replacements is not None and max_replacements < 1:
            raise ValueError("SynonymAugmenter: max_replacements must be >= 1 or None for no limit")
        self.sources = tuple(sources)
        self.prob = prob
        self.max_replacements = max_replacements
        self._max_n = max((s.max_key_tokens for s in self.sources), default=0)

    def _lookup(self, key: Key) -> Sequence[str]:
        for source in self.sources:
            found = source.alternatives(key)
            if found:
                return found
        return ()

    def __call__(self, text: str, rng: random.Random) -> str:
        tokens = list(_TOKEN.finditer(text))
        folded = [t.group().casefold() for t in tokens]
        pieces, cursor, replaced, i = [], 0, 0, 0
        while i < len(tokens):
            for n in range(min(self._max_n, len(tokens) - i), 0, -1):
                options = self._lookup(tuple(folded[i : i + n]))
                if options:
                    break
            else:
                i += 1
                continue
            start, end = tokens[i].start(), tokens[i + n - 1].end()
            limit_hit = self.max_replacements is not None and replaced >= self.max_replacements
            if rng.random() < self.prob and not limit_hit:
                new = _match_case(rng.choice(list(options)), text[start:end])
                if start > 0 and _joins(text[start - 1], new[0]):
                    new = " " + new
                if end < len(text) and _joins(new[-1], text[end]):
                    new = new + " "
                pieces += [text[cursor:start], new]
                cursor, replaced = end, replaced + 1
            i += n
        pieces.append(text[cursor:])
        return "".join(pieces)

    def __repr__(self) -> str:
        return f"SynonymAugmenter(sources={len(self.sources)}, prob={self.prob})"


def _joins(left: str, right: str) -> bool:
    """True when two characters would fuse into one token (``12`` + ``inch`` -> ``12inch``)."""
    return bool(re.match(r"\w", left) and re.match(r"\w", right))
