"""Realistic typo noise for queries: the four single-edit mistakes people make while typing.

Each whitespace-separated token that is long enough, and free of digits by default, gets at
most one of these edits, chosen with the configured per-token probabilities:

* ``swap``: two adjacent, different letters trade places (``sofa`` -> ``osfa``),
* ``drop``: a letter is left out (``drill`` -> ``dril``),
* ``duplicate``: a letter is typed twice (``couch`` -> ``coucch``),
* ``keyboard``: a letter becomes a QWERTY neighbour (``grey`` -> ``frey``).

Only letters are edited, so punctuation stays and model numbers/sizes (``2x4``, ``60w``)
are left alone. A token's Damerau-Levenshtein distance to its original is therefore at most 1.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    """Letters next to each key on a staggered QWERTY layout, same row and rows above/below."""
    out: dict[str, str] = {}
    for r, row in enumerate(_ROWS):
        for i, key in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            if r > 0:  # the row above is shifted left: keys i and i+1 touch this one
                near += [_ROWS[r - 1][j] for j in (i, i + 1) if j < len(_ROWS[r - 1])]
            if r < 2:  # the row below is shifted right: keys i-1 and i
                near += [_ROWS[r + 1][j] for j in (i - 1, i) if 0 <= j < len(_ROWS[r + 1])]
            out[key] = "".join(near)
    return out


QWERTY_NEIGHBOURS: dict[str, str] = _qwerty_neighbours()
OPERATIONS = ("swap", "drop", "duplicate", "keyboard")


@dataclass(frozen=True)
class TypoConfig:
    """Per-token probabilities of each edit; their sum is the chance a token gets a typo."""

    swap_prob: float = 0.03
    drop_prob: float = 0.03
    duplicate_prob: float = 0.02
    keyboard_prob: float = 0.04
    min_token_letters: int = 4
    skip_digits: bool = True
    max_typos: int | None = None

    def __post_init__(self) -> None:
        probs = self.probabilities
        for name, p in zip(OPERATIONS, probs, strict=True):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"TypoConfig.{name}_prob={p} must be in [0, 1]")
        if sum(probs) > 1.0 + 1e-9:
            raise ValueError(
                f"TypoConfig probabilities sum to {sum(probs):.4g}; they are per token and "
                "mutually exclusive, so keep the sum <= 1"
            )
        if self.min_token_letters < 2:
            raise ValueError("TypoConfig.min_token_letters must be >= 2 (a swap needs two letters)")
        if self.max_typos is not None and self.max_typos < 1:
            raise ValueError("TypoConfig.max_typos must be >= 1, or None for no limit")

    @property
    def probabilities(self) -> tuple[float, float, float, float]:
        return (self.swap_prob, self.drop_prob, self.duplicate_prob, self.keyboard_prob)


class TypoAugmenter:
    """Adds at most one typo per eligible token; deterministic for a given rng state."""

    def __init__(self, config: TypoConfig = TypoConfig()):
        self.config = config

    def eligible(self, token: str) -> bool:
        """Whether ``token`` may receive a typo (enough letters, no digits unless allowed)."""
        if self.config.skip_digits and any(c.isdigit() for c in token):
            return False
        return sum(c.isalpha() for c in token) >= self.config.min_token_letters

    def __call__(self, text: str, rng: random.Random) -> str:
        parts = re.split(r"(\s+)", text)
        made = 0
        for k in range(0, len(parts), 2):  # even indices are tokens, odd ones whitespace
            if self.config.max_typos is not None and made >= self.config.max_typos:
                break
            token = parts[k]
            if not token or not self.eligible(token):
                continue
            op = _pick(self.config.probabilities, rng.random())
            if op is None:
                continue
            edited = _edit(token, OPERATIONS[op], rng)
            if edited != token:
                parts[k] = edited
                made += 1
        return "".join(parts)

    def __repr__(self) -> str:
        return f"TypoAugmenter({self.config!r})"


def _pick(probs: tuple[float, ...], u: float) -> int | None:
    for i, p in enumerate(probs):
        if u < p:
            return i
        u -= p
    return None


def _edit(token: str, op: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(token) if c.isalpha()]
    if op == "swap":
        pairs = [i for i in letters if i + 1 in letters and token[i] != token[i + 1]]
        if not pairs:
            return token
        i = rng.choice(pairs)
        return token[:i] + token[i + 1] + token[i] + token[i + 2 :]
    i = rng.choice(letters)
    if op == "drop":
        return token[:i] + token[i + 1 :]
    if op == "duplicate":
        return token[: i + 1] + token[i:]
    near = QWERTY_NEIGHBOURS.get(token[i].lower())
    if not near:  # a letter outside a-z, e.g. an accented one
        return token
    new = rng.choice(near)
    return token[:i] + (new.upper() if token[i].isupper() else new) + token[i + 1 :]
