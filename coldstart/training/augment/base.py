"""The augmenter interface and the two ways to combine augmenters.

An augmenter is any callable ``(text, rng) -> text``. All randomness comes from the
``random.Random`` passed in, so a seeded rng gives the same output for the same input, and
workers can each own an rng without sharing global state.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)


@runtime_checkable
class Augmenter(Protocol):
    """Maps a text to a perturbed text; must draw all randomness from ``rng``."""

    def __call__(self, text: str, rng: random.Random) -> str: ...


class Identity:
    """Returns the text unchanged."""

    def __call__(self, text: str, rng: random.Random) -> str:
        return text

    def __repr__(self) -> str:
        return "Identity()"


def _checked_steps(
    steps: Sequence[tuple[Augmenter, float]], owner: str
) -> tuple[tuple[Augmenter, float], ...]:
    out = []
    for i, item in enumerate(steps):
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(
                f"{owner}: item {i} must be an (augmenter, probability) pair, got {item!r}"
            )
        augmenter, prob = item
        if not callable(augmenter):
            raise TypeError(f"{owner}: item {i} is not callable: {augmenter!r}")
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"{owner}: item {i} has probability {prob}; use a value in [0, 1]")
        out.append((augmenter, float(prob)))
    return tuple(out)


class Compose:
    """Applies each augmenter in order, each independently with its own probability.

    One ``rng.random()`` is drawn per step whatever the outcome, so the stream of random
    numbers does not depend on which steps fired.
    """

    def __init__(self, steps: Sequence[tuple[Augmenter, float]]):
        self.steps = _checked_steps(steps, "Compose")

    def __call__(self, text: str, rng: random.Random) -> str:
        for augmenter, prob in self.steps:
            if rng.random() < prob:
                text = augmenter(text, rng)
        return text

    def __repr__(self) -> str:
        return f"Compose({list(self.steps)!r})"


class RandomChoice:
    """Applies at most one augmenter: option ``i`` with probability ``p_i``, none otherwise."""

    def __init__(self, options: Sequence[tuple[Augmenter, float]]):
        self.options = _checked_steps(options, "RandomChoice")
        total = sum(p for _, p in self.options)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"RandomChoice: probabilities sum to {total:.4g} > 1; scale them down so the "
                "remainder is the chance of leaving the text unchanged"
            )

    def __call__(self, text: str, rng: random.Random) -> str:
        u = rng.random()
        for augmenter, prob in self.options:
            if u < prob:
                return augmenter(text, rng)
            u -= prob
        return text

    def __repr__(self) -> str:
        return f"RandomChoice({list(self.options)!r})"
