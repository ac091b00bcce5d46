"""The factory that turns an :class:`AdversarialConfig` into an attack (its own module: the methods import the base,
and the base imports none of them)."""

from __future__ import annotations

from torch import nn

from coldstart.training.adversarial.base import AdversarialConfig, Attack, NoAttack
from coldstart.training.adversarial.fgm import FGM
from coldstart.training.adversarial.pgd import PGD


def make_attack(model: nn.Module, config: AdversarialConfig) -> Attack:
    """Build the attack named by ``config.method`` for ``model`` (``NoAttack`` for "none")."""
    if config.method == "none":
        return NoAttack(model)
    if config.method == "fgm":
        return FGM(model, epsilon=config.epsilon, emb_name=config.emb_name)
    return PGD(
        model,
        epsilon=config.epsilon,
        alpha=config.alpha,
        steps=config.steps,
        emb_name=config.emb_name,
    )
