"""One adversarial training step's backward pass, correct with and without DDP.

:func:`adversarial_backward` runs the clean forward/backward, lets the attack perturb the
embedding matrix, runs the adversarial forward/backward pass(es) so their gradients add to
the clean ones, and puts the embeddings back. The caller then clips, steps the optimiser
and zeroes the gradients as usual.

Why the ``no_sync`` argument: under ``DistributedDataParallel`` every backward pass
all-reduces gradients. The attack must use the *local* gradient of each worker's own batch,
and the summed gradient should be averaged across workers exactly once. So the clean pass and
the intermediate PGD passes run inside ``ddp_model.no_sync()`` (forward *and* backward, as
DDP requires) and only the last adversarial pass runs outside, where DDP all-reduces the
accumulated ``clean + adversarial`` gradient. The result equals the mean over workers of
each worker's ``clean + adversarial`` gradient.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import nn

from coldstart.training.adversarial.base import Attack

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A loss in the adversarial step was NaN or infinite."""


def _checked(loss: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(
            f"compute_loss must return a scalar tensor, got {shape}; reduce it with .mean()"
        )
    if not torch.isfinite(loss.detach()):
        raise NonFiniteLossError(
            f"{what} loss is {loss.item()}; lower the learning rate or the attack's epsilon/alpha, "
            "check the batch for empty or corrupt inputs, and zero the gradients before retrying"
        )
    return loss


def adversarial_backward(
    model: nn.Module,
    attack: Attack,
    compute_loss: Callable[[], torch.Tensor],
    *,
    no_sync: Callable[[], AbstractContextManager[None]] | None = None,
    backward: Callable[[torch.Tensor], None] | None = None,
) -> dict[str, float]:
    """Accumulate ``clean + adversarial`` gradients for one batch into ``.grad``.

    Args:
        model: the module being trained (the DDP wrapper under DDP); its gradients are zeroed
            in place between intermediate PGD passes.
        attack: from :func:`make_attack`; a ``NoAttack`` gives a plain backward pass.
        compute_loss: runs the forward pass on the current batch and returns a scalar loss.
            It is called ``1 + attack.num_steps`` times, so it must not advance the data.
        no_sync: ``ddp_model.no_sync`` under DDP, else None. Passes before the last one run
            inside it so gradients are all-reduced once.
        backward: how to backpropagate a loss; defaults to ``loss.backward()``. For fp16 AMP
            pass ``lambda loss: scaler.scale(loss).backward()``: the attacks use ``g / ||g||``,
            which the loss scale does not change, and skip steps whose gradient overflowed.

    Returns:
        ``{"loss_clean": float}`` plus ``"loss_adv"`` (the last adversarial loss) when the
        attack has steps.

    Raises:
        NonFiniteLossError: a loss was NaN/inf (checked before each backward). The embedding
            weights are restored; gradients are partial and should be zeroed. Under DDP the
            other workers will block in all-reduce until the process group times out, so let
            the error end the job.
    """
    sync_off = no_sync if no_sync is not None else contextlib.nullcontext
    run_backward = backward if backward is not None else torch.Tensor.backward
    steps = attack.num_steps

    # With no adversarial pass the clean backward is the last one and must sync.
    with sync_off() if steps > 0 else contextlib.nullcontext():
        clean = _checked(compute_loss(), "clean")
        run_backward(clean)
    result = {"loss_clean": clean.item()}
    if steps == 0:
        return result

    attack.backup_grad()
    try:
        for step in range(steps):
            attack.attack(step)
            last = step == steps - 1
            if last:
                attack.restore_grad()
            else:
                model.zero_grad(set_to_none=False)
            with contextlib.nullcontext() if last else sync_off():
                adv = _checked(compute_loss(), f"adversarial (step {step + 1}/{steps})")
                run_backward(adv)
            result["loss_adv"] = adv.item()
    finally:
        attack.restore()
    return result
