"""Query / title augmentation behind one interface: ``augmenter(text, rng) -> text``.

Modules: ``base`` (interface, Compose, RandomChoice), ``synonyms`` (Solr-format lists),
``wordnet`` (optional WordNet source), ``typos``, ``backtranslate``, ``config`` (factory).
"""

from coldstart.training.augment.backtranslate import BackTranslationConfig, BackTranslator, ParaphraseTable
from coldstart.training.augment.base import Augmenter, Compose, Identity, RandomChoice
from coldstart.training.augment.config import (
    AugmentConfig,
    SynonymConfig,
    make_augmenter,
    make_synonym_augmenter,
)
from coldstart.training.augment.synonyms import (
    SynonymAugmenter,
    SynonymTable,
    load_default_synonyms,
    load_synonyms,
    parse_synonyms,
)
from coldstart.training.augment.typos import TypoAugmenter, TypoConfig
from coldstart.training.augment.wordnet import WordNetSynonyms

__all__ = [
    "AugmentConfig",
    "Augmenter",
    "BackTranslationConfig",
    "BackTranslator",
    "Compose",
    "Identity",
    "ParaphraseTable",
    "RandomChoice",
    "SynonymAugmenter",
    "SynonymConfig",
    "SynonymTable",
    "TypoAugmenter",
    "TypoConfig",
    "WordNetSynonyms",
    "load_default_synonyms",
    "load_synonyms",
    "make_augmenter",
    "make_synonym_augmenter",
    "parse_synonyms",
]
