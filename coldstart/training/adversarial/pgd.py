"""PGD: Projected Gradient Descent on the embedding matrix (Madry et al., 2018).

``K = steps`` steps of size ``alpha`` along the normalised gradient, each followed by a
projection back into the L2 ball of radius ``epsilon`` around the original matrix ``E0``::

    E <- E + alpha * g_k / ||g_k||_2
    r = E - E0;  if ||r|| > epsilon: E <- E0 + epsilon * r / ||r||

The gradient ``g_k`` for step ``k > 0`` comes from a backward pass on the perturbed weights.
Those intermediate passes must not end up in the training gradient, so the clean gradients of
*all* parameters are saved before the attack (:meth:`PGD.backup_grad`), the gradients are zeroed
before each intermediate pass, and the clean ones are put back (:meth:`PGD.restore_grad`)
before the last adversarial backward, which then accumulates on top of them. The final
gradient is therefore ``clean + adversarial(E0 + r_K)``, as in the usual recipe.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from coldstart.training.adversarial.base import Attack

logger = logging.getLogger(__name__)


class PGD(Attack):
    """``steps``-step L2 attack of step size ``alpha`` inside the ``epsilon`` ball."""

    def __init__(
        self,
        model: nn.Module,
        *,
        epsilon: float = 1.0,
        alpha: float = 0.3,
        steps: int = 3,
        emb_name: str = "word_embeddings",
    ):
        super().__init__(model, epsilon=epsilon, emb_name=emb_name)
        if steps < 1:
            raise ValueError(f"PGD needs steps >= 1, got {steps}; use FGM for a single step")
        if not (math.isfinite(alpha) and 0 < alpha):
            raise ValueError(f"PGD: alpha={alpha} must be a finite number > 0")
        self.alpha = float(alpha)
        self.steps = int(steps)
        self._grad_backup: dict[str, torch.Tensor | None] = {}

    @property
    def num_steps(self) -> int:
        return self.steps

    def attack(self, step: int = 0) -> None:
        """Take PGD step ``step`` (0-based); step 0 also saves the original weights."""
        if step == 0:
            if self._emb_backup:
                raise RuntimeError(
                    "PGD.attack(0) called again before restore(); call restore() at the end of "
                    "each adversarial training step so the original weights are not lost"
                )
            self._backup_embeddings()
        elif not self._emb_backup:
            raise RuntimeError(f"PGD.attack({step}) called before attack(0); start at step 0")
        with torch.no_grad():
            for name, param in self._params:
                unit = self._unit_gradient(name, param)
                if unit is None:
                    continue
                param.add_(self.alpha * unit)
                self._project_(name, param)

    def _project_(self, name: str, param: nn.Parameter) -> None:
        """Pull ``param`` back into the ``epsilon`` ball around its backup, in place."""
        origin = self._emb_backup[name]
        delta = param - origin
        norm = torch.linalg.vector_norm(delta)
        # Only rewrite when outside: rewriting E0 + (E - E0) could change E by one ulp.
        if norm > self.epsilon:
            param.copy_(origin + delta * (self.epsilon / norm))

    def backup_grad(self) -> None:
        """Save the current (clean) gradient of every parameter of the model."""
        self._grad_backup = {
            name: (None if p.grad is None else p.grad.detach().clone())
            for name, p in self.model.named_parameters()
            if p.requires_grad
        }

    def restore_grad(self) -> None:
        """Put back the gradients saved by :meth:`backup_grad`.

        Existing gradient tensors are overwritten in place rather than replaced, so DDP's
        ``gradient_as_bucket_view`` buffers stay attached.
        """
        if not self._grad_backup:
            raise RuntimeError("PGD.restore_grad called without backup_grad(); call it first")
        for name, param in self.model.named_parameters():
            if name not in self._grad_backup:
                continue
            saved = self._grad_backup[name]
            if saved is None:
                param.grad = None
            elif param.grad is None:
                param.grad = saved
            else:
                param.grad.copy_(saved)
        self._grad_backup = {}
