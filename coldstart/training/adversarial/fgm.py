"""FGM: the Fast Gradient Method on the embedding matrix (Miyato et al., 2017).

One step of exactly ``epsilon`` in L2 norm along the normalised gradient of the
embedding matrix ``E`` of shape ``(vocab, hidden)``::

    r = epsilon * g / ||g||_2        # g = dL/dE from the clean backward pass
    E <- E + r

The norm is taken over the whole matrix, so the perturbation is spread over the rows of the
tokens in the batch. When ``||g||`` is 0 or not finite the matrix is left as it is.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from coldstart.training.adversarial.base import Attack

logger = logging.getLogger(__name__)


class FGM(Attack):
    """Single-step L2 attack of size ``epsilon`` on the parameters named by ``emb_name``."""

    def __init__(
        self, model: nn.Module, *, epsilon: float = 1.0, emb_name: str = "word_embeddings"
    ):
        super().__init__(model, epsilon=epsilon, emb_name=emb_name)

    def attack(self, step: int = 0) -> None:
        """Add ``epsilon * g / ||g||`` to each embedding parameter; ``step`` must be 0."""
        if step != 0:
            raise ValueError(f"FGM has a single step; got step={step}. Use PGD for several steps")
        if self._emb_backup:
            raise RuntimeError(
                "FGM.attack called twice without restore(); call restore() after each "
                "adversarial backward pass so the original weights are not lost"
            )
        self._backup_embeddings()
        with torch.no_grad():
            for name, param in self._params:
                unit = self._unit_gradient(name, param)
                if unit is not None:
                    param.add_(self.epsilon * unit)
