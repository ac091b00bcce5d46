"""Adversarial training on the word-embedding matrix: FGM and PGD behind one interface.

See ``base.py`` for the protocol, ``factory.py`` for ``make_attack`` and ``backward.py`` for the DDP-aware
backward pass.
"""

from coldstart.training.adversarial.base import (
    AdversarialConfig,
    Attack,
    NoAttack,
    find_embedding_parameters,
)
from coldstart.training.adversarial.factory import make_attack
from coldstart.training.adversarial.fgm import FGM
from coldstart.training.adversarial.pgd import PGD
from coldstart.training.adversarial.backward import NonFiniteLossError, adversarial_backward

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
