"""The augmentation config and the factory that turns it into one augmenter."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from coldstart.training.augment.backtranslate import BackTranslationConfig, BackTranslator
from coldstart.training.augment.base import Augmenter, Compose, Identity, RandomChoice
from coldstart.training.augment.synonyms import (
    SynonymAugmenter,
    SynonymSource,
    load_default_synonyms,
    load_synonyms,
)
from coldstart.training.augment.typos import TypoAugmenter, TypoConfig
from coldstart.training.augment.wordnet import DEFAULT_WORDNET_DIR, WordNetSynonyms

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynonymConfig:
    """Which synonym sources to use and how often a matched term is replaced.

    Sources are consulted in order: the user's files, the shipped e-commerce list, then
    WordNet, so a term in your file overrides the defaults.
    """

    files: tuple[str, ...] = ()
    use_default: bool = True
    expand: bool = True
    use_wordnet: bool = False
    wordnet_dir: str = DEFAULT_WORDNET_DIR
    wordnet_parts_of_speech: tuple[str, ...] = ("noun",)
    wordnet_max_senses: int = 1
    replace_prob: float = 0.5
    max_replacements: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.files, str):
            raise TypeError(
                "SynonymConfig.files must be a tuple of paths, e.g. ('my_synonyms.txt',)"
            )
        if not 0.0 <= self.replace_prob <= 1.0:
            raise ValueError(f"SynonymConfig.replace_prob={self.replace_prob} must be in [0, 1]")
        if not (self.files or self.use_default or self.use_wordnet):
            raise ValueError(
                "SynonymConfig has no source: give files, keep use_default=True or set use_wordnet"
            )


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmenters run, each with the probability it is applied to a text.

    ``mode="compose"`` applies every enabled augmenter independently, in the order synonyms,
    back-translation, typos (typos last, since they would stop synonyms matching).
    ``mode="choice"`` applies at most one, picked with those probabilities (sum <= 1).
    A sub-config of None disables that augmenter.
    """

    mode: Literal["compose", "choice"] = "compose"
    synonyms: SynonymConfig | None = field(default_factory=SynonymConfig)
    synonym_prob: float = 0.5
    backtranslation: BackTranslationConfig | None = None
    backtranslation_prob: float = 0.2
    typos: TypoConfig | None = field(default_factory=TypoConfig)
    typo_prob: float = 0.3

    def __post_init__(self) -> None:
        if self.mode not in ("compose", "choice"):
            raise ValueError(f"AugmentConfig.mode={self.mode!r}; use 'compose' or 'choice'")
        for name in ("synonym_prob", "backtranslation_prob", "typo_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentConfig.{name}={value} must be in [0, 1]")
        if self.mode == "choice":
            total = sum(p for _, p in self._enabled())
            if total > 1.0 + 1e-9:
                raise ValueError(
                    f"AugmentConfig: mode='choice' needs the enabled probabilities to sum to <= 1, "
                    f"got {total:.4g}; lower them or use mode='compose'"
                )

    def _enabled(self) -> list[tuple[str, float]]:
        pairs = [
            ("synonyms", self.synonym_prob),
            ("backtranslation", self.backtranslation_prob),
            ("typos", self.typo_prob),
        ]
        return [(name, p) for name, p in pairs if getattr(self, name) is not None]


def make_synonym_augmenter(config: SynonymConfig) -> SynonymAugmenter:
    """Load the configured synonym sources (files, default list, WordNet when installed)."""
    sources: list[SynonymSource] = [load_synonyms(p, expand=config.expand) for p in config.files]
    if config.use_default:
        sources.append(load_default_synonyms(expand=config.expand))
    if config.use_wordnet:
        wordnet = WordNetSynonyms.load_if_available(
            config.wordnet_dir,
            parts_of_speech=config.wordnet_parts_of_speech,
            max_senses=config.wordnet_max_senses,
        )
        if wordnet is not None:
            sources.append(wordnet)
    return SynonymAugmenter(
        sources, prob=config.replace_prob, max_replacements=config.max_replacements
    )


def make_augmenter(config: AugmentConfig) -> Augmenter:
    """Build the augmenter described by ``config``; loads files and models it names."""
    steps: list[tuple[Augmenter, float]] = []
    if config.synonyms is not None:
        steps.append((make_synonym_augmenter(config.synonyms), config.synonym_prob))
    if config.backtranslation is not None:
        steps.append((BackTranslator(config.backtranslation), config.backtranslation_prob))
    if config.typos is not None:
        steps.append((TypoAugmenter(config.typos), config.typo_prob))
    if not steps:
        return Identity()
    return Compose(steps) if config.mode == "compose" else RandomChoice(steps)
