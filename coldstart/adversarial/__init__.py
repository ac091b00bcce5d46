"""Adversarial training on the word-embedding matrix: FGM and PGD behind one interface.

See ``base.py`` for the protocol and ``step.py`` for the DDP-aware training step.
"""

from coldstart.adversarial.base import (
    AdversarialConfig,
    Attack,
    NoAttack,
    find_embedding_parameters,
    make_attack,
)
from coldstart.adversarial.fgm import FGM
from coldstart.adversarial.pgd import PGD
from coldstart.adversarial.step import NonFiniteLossError, adversarial_backward

__all__ = [
    "FGM",
    "PGD",
    "AdversarialConfig",
    "Attack",
    "NoAttack",
    "NonFiniteLossError",
    "adversarial_backward",
    "find_embedding_parameters",
    "make_attack",
]
