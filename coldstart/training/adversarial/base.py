"""The attack interface, its config and the factory.

Adversarial training here perturbs the *word-embedding matrix* of an encoder (not the input
ids, which are discrete): after the clean backward pass the matrix is pushed along its own
gradient, a second forward/backward runs on the perturbed weights, and the original weights
are put back. Every attack follows the same protocol, which :func:`adversarial_backward`
(`step.py`) drives::

    loss.backward()               # clean gradients, incl. the embedding matrix
    attack.backup_grad()          # PGD only: keep the clean gradients of all parameters
    for step in range(attack.num_steps):
        attack.attack(step)       # perturb the embedding matrix in place
        ...forward/backward on the perturbed weights...
    attack.restore()              # bit-exact original embedding weights

Only the parameters whose name contains ``emb_name`` are perturbed (for a Hugging Face
``BertModel`` that is ``embeddings.word_embeddings.weight``).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

logger = logging.getLogger(__name__)

AttackMethod = Literal["none", "fgm", "pgd"]
_METHODS: tuple[str, ...] = ("none", "fgm", "pgd")


@dataclass(frozen=True)
class AdversarialConfig:
    """How to perturb the embedding matrix during training.

    Attributes:
        method: ``"none"`` (plain training), ``"fgm"`` (one step of size ``epsilon``) or
            ``"pgd"`` (``steps`` steps of size ``alpha`` projected into the ``epsilon`` ball).
        epsilon: L2 radius of the perturbation of the whole embedding matrix. FGM steps exactly
            this far; PGD never leaves the ball.
        alpha: PGD step size (ignored by FGM).
        steps: number of PGD steps, i.e. adversarial forward/backward passes (ignored by FGM).
        emb_name: substring of the parameter name(s) to perturb.
    """

    method: AttackMethod = "none"
    epsilon: float = 1.0
    alpha: float = 0.3
    steps: int = 3
    emb_name: str = "word_embeddings"

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(
                f"AdversarialConfig.method={self.method!r} is unknown; use one of {_METHODS}"
            )
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(
                f"AdversarialConfig.epsilon={self.epsilon} must be a finite number > 0 "
                "(typical values are 0.1-1.0 for BERT-sized embeddings)"
            )
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(
                f"AdversarialConfig.alpha={self.alpha} must be a finite number > 0 "
                "(a common choice is epsilon / steps)"
            )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(
                f"AdversarialConfig.steps={self.steps!r} must be an int >= 1; "
                "use method='fgm' for a single step"
            )
        if self.method == "pgd" and self.alpha > self.epsilon:
            raise ValueError(
                f"AdversarialConfig.alpha={self.alpha} is larger than epsilon={self.epsilon}: "
                "every PGD step would be cut back by the projection; set alpha <= epsilon"
            )
        if not self.emb_name:
            raise ValueError(
                "AdversarialConfig.emb_name is empty; set it to a substring of the embedding "
                "parameter name, e.g. 'word_embeddings' for BERT"
            )


def find_embedding_parameters(model: nn.Module, emb_name: str) -> list[tuple[str, nn.Parameter]]:
    """Trainable parameters of ``model`` whose name contains ``emb_name``, in model order.

    Raises:
        ValueError: when nothing matches; the message lists the names that look like embeddings.
    """
    found = [(n, p) for n, p in model.named_parameters() if emb_name in n and p.requires_grad]
    if not found:
        candidates = [n for n, _ in model.named_parameters() if "emb" in n.lower()]
        raise ValueError(
            f"no trainable parameter name contains emb_name={emb_name!r}; set "
            f"AdversarialConfig.emb_name to one of (or a substring of) {candidates[:10]} "
            "and check that the embedding is not frozen"
        )
    return found


class Attack(ABC):
    """Perturbs the embedding matrix of ``model`` in place and puts it back.

    Subclasses implement :meth:`attack` and :meth:`restore`. The gradient hooks
    :meth:`backup_grad` / :meth:`restore_grad` are no-ops here; PGD overrides them because
    its intermediate backward passes must not leak into the final gradients.
    """

    def __init__(self, model: nn.Module, *, epsilon: float, emb_name: str = "word_embeddings"):
        if not (math.isfinite(epsilon) and epsilon > 0):
            raise ValueError(
                f"{type(self).__name__}: epsilon={epsilon} must be a finite number > 0"
            )
        self.model = model
        self.epsilon = float(epsilon)
        self.emb_name = emb_name
        self._params = find_embedding_parameters(model, emb_name)
        self._emb_backup: dict[str, torch.Tensor] = {}

    @property
    def num_steps(self) -> int:
        """Number of adversarial forward/backward passes per training step."""
        return 1

    @property
    def parameter_names(self) -> list[str]:
        """Names of the perturbed parameters."""
        return [n for n, _ in self._params]

    @abstractmethod
    def attack(self, step: int = 0) -> None:
        """Perturb the embedding matrix along its current ``.grad``; ``step`` counts from 0."""

    def restore(self) -> None:
        """Put the original embedding weights back, bit for bit, and forget the backup."""
        with torch.no_grad():
            for name, param in self._params:
                if name in self._emb_backup:
                    param.copy_(self._emb_backup[name])
        self._emb_backup = {}

    def backup_grad(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Save the clean gradients before the attack (no-op unless the attack needs it)."""

    def restore_grad(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Bring back the gradients saved by :meth:`backup_grad` (no-op unless needed)."""

    def _backup_embeddings(self) -> None:
        with torch.no_grad():
            self._emb_backup = {name: p.detach().clone() for name, p in self._params}

    def _unit_gradient(self, name: str, param: nn.Parameter) -> torch.Tensor | None:
        """``g / ||g||`` for the parameter's gradient, or None when the norm is 0 or not finite.

        The norm is over the whole matrix, shape ``(vocab, hidden)``; rows of tokens absent
        from the batch have zero gradient and so are not perturbed.
        """
        if param.grad is None:
            raise RuntimeError(
                f"{type(self).__name__}.attack needs the gradient of {name!r}: run the clean "
                "loss.backward() first (adversarial_backward does this) and make sure the "
                "forward pass uses this embedding"
            )
        grad = param.grad.detach()
        norm = torch.linalg.vector_norm(grad)
        if not torch.isfinite(norm) or norm == 0:
            logger.debug("skipping perturbation of %s: gradient norm is %s", name, norm.item())
            return None
        return grad / norm


class NoAttack(Attack):
    """The ``method="none"`` attack: zero adversarial passes, nothing to perturb."""

    def __init__(self, model: nn.Module | None = None):  # noqa: D107 - nothing to look up
        self.model = model
        self.epsilon = 0.0
        self.emb_name = ""
        self._params = []
        self._emb_backup = {}

    @property
    def num_steps(self) -> int:
        return 0

    def attack(self, step: int = 0) -> None:
        return None
