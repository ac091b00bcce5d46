"""Differentially private fine-tuning of the bi-encoder: DP-SGD with per-example clipping, Gaussian noise, and the
privacy spent (ε at δ) from Opacus's RDP accountant.

``[train.privacy] noise_multiplier = σ`` (or ``target_epsilon = ε``, from which σ is derived for the run's length)
switches it on. One step, on each worker:

1. every example — a query, its judged positive, ``hard_negatives`` of its own and ``random_negatives`` random
   catalog products — is a separate forward and backward: its gradient depends on that example only. (The plain
   step's in-batch negatives couple the examples of a batch, so no per-example bound would hold.)
2. each example's gradient is clipped to L2 norm ``max_grad_norm`` = C and added to the step's sum;
3. the workers add their sums (all-reduce), and every worker adds the same N(0, σ²C²) noise (a generator seeded
   with the run's seed and the step), so the model stays identical on every worker;
4. the noisy sum divided by the global batch is the gradient AdamW steps on (post-processing keeps the guarantee).

Why not Opacus's ``PrivacyEngine``: its per-sample gradients are per *row* of each layer's input, and one example
here spans several encoder rows (the query and its candidates); the clipping unit must be the example. Opacus
still does the part that is easy to get wrong — the accounting.

What ε means here: the unit is one training example (one judged query–product pair); a user or a query with many
judgments is protected less than ε. ε is computed as for Poisson sampling at rate ``global batch / examples``, the
usual approximation for shuffled fixed-size batches; resampling by popularity is refused in this mode because it
would give some examples a higher rate. The noise comes from torch's generator, not a cryptographically secure one.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Callable, ContextManager, Sequence

import torch

from coldstart.training.config import PrivacySettings
from coldstart.training.loss import contrastive_loss
from coldstart.training.pairs import Example


@dataclass(frozen=True)
class PrivacyBudget:
    """What a private run spends, reported with its metrics and in the exported model's manifest."""

    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    accountant: str = "rdp (opacus)"
    unit: str = "one training example (a judged query-product pair)"


# Rényi orders searched for the tightest ε: Opacus's defaults, extended upwards (small σ needs large orders)
ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 512))


def _delta(settings: PrivacySettings, n_examples: int) -> float:
    return settings.delta if settings.delta is not None else 1.0 / (10 * max(1, n_examples))


def plan_budget(settings: PrivacySettings, *, n_examples: int, global_batch: int, steps: int) -> PrivacyBudget:
    """σ for the run (given, or derived from ``target_epsilon``) and the ε it spends over ``steps`` steps."""
    try:
        from opacus.accountants import RDPAccountant
        from opacus.accountants.utils import get_noise_multiplier
    except ImportError as err:
        raise RuntimeError("[train.privacy] needs Opacus for the privacy accounting: pip install -e '.[privacy]' "
                           "(it is in the dev extra too)") from err

    rate = min(1.0, global_batch / max(1, n_examples))
    delta = _delta(settings, n_examples)
    sigma = settings.noise_multiplier
    if settings.target_epsilon is not None:
        sigma = float(get_noise_multiplier(target_epsilon=settings.target_epsilon, target_delta=delta,
                                           sample_rate=rate, steps=steps, accountant="rdp", alphas=ALPHAS))
    accountant = RDPAccountant()
    accountant.history = [(sigma, rate, steps)]  # the accountant's own record: (σ, q, number of steps)
    epsilon = float(accountant.get_epsilon(delta, alphas=ALPHAS)) if sigma > 0 else float("inf")
    return PrivacyBudget(epsilon=epsilon, delta=delta, noise_multiplier=sigma,
                         max_grad_norm=settings.max_grad_norm, sample_rate=rate, steps=steps)


def example_candidates(example: Example, *, hard_negatives: int, random_negatives: int, catalog_ids: Sequence[str],
                       rng: random.Random) -> list[str]:
    """The example's positive, then its own hard negatives and random catalog products (never judged-relevant)."""
    pool = list(example.negatives[: max(hard_negatives * 4, hard_negatives)])
    chosen = rng.sample(pool, min(hard_negatives, len(pool)))
    taken = {example.positive, *chosen}
    for _ in range(random_negatives * 4):
        if len(chosen) >= hard_negatives + random_negatives or not catalog_ids:
            break
        item = catalog_ids[rng.randrange(len(catalog_ids))]
        if item not in taken and item not in example.relevant:
            chosen.append(item)
            taken.add(item)
    return [example.positive, *chosen]


def private_step(
    model,
    tokenizer,
    examples: Sequence[Example],
    texts,
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    global_batch: int,
    noise_seed: int,
    catalog_ids: Sequence[str],
    hard_negatives: int,
    random_negatives: int,
    rng: random.Random,
    optimizer: torch.optim.Optimizer,
    scheduler=None,
    temperature: float,
    pooling: str = "mean",
    max_length: int = 48,
    device: torch.device | str = "cpu",
    augment: Callable[[str, random.Random], str] | None = None,
    no_sync: Callable[[], ContextManager[None]] | None = None,
) -> dict[str, float]:
    """One DP-SGD step on this worker's ``examples`` (see the module docstring); returns the step's numbers."""
    from coldstart.training.step import embed

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    summed = [torch.zeros_like(p) for p in params]
    losses, norms = [], []
    sync = no_sync if no_sync is not None else contextlib.nullcontext
    for example in examples:
        candidates = example_candidates(example, hard_negatives=hard_negatives, random_negatives=random_negatives,
                                        catalog_ids=catalog_ids, rng=rng)
        query = augment(example.query, rng) if augment is not None else example.query
        encoded = {k: v.to(device) for k, v in tokenizer([query, *(texts[c] for c in candidates)], padding=True,
                                                         truncation=True, max_length=max_length,
                                                         return_tensors="pt").items()}
        for p in params:
            p.grad = None
        with sync():  # the per-example backward must not all-reduce; the clipped sums are reduced once below
            vectors = embed(model, encoded, pooling)
            loss = contrastive_loss(vectors[:1], vectors[1:], temperature=temperature,
                                    weights=torch.tensor([example.weight], device=vectors.device))
            loss.backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        norm = float(torch.sqrt(sum(torch.sum(g.float() ** 2) for g in grads)))
        scale = min(1.0, max_grad_norm / (norm + 1e-6))
        for acc, g in zip(summed, grads):
            acc.add_(g, alpha=scale)
        losses.append(loss.item())
        norms.append(norm)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for acc in summed:
            torch.distributed.all_reduce(acc)
    generator = torch.Generator(device="cpu").manual_seed(noise_seed)  # the same noise on every worker
    std = noise_multiplier * max_grad_norm
    for p, acc in zip(params, summed):
        noise = torch.normal(0.0, std, size=acc.shape, generator=generator).to(acc.device) if std else 0.0
        p.grad = (acc + noise) / global_batch
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    for p in params:
        p.grad = None
    return {"loss_clean": sum(losses) / max(1, len(losses)), "grad_norm": sum(norms) / max(1, len(norms)),
            "clipped_share": sum(n > max_grad_norm for n in norms) / max(1, len(norms))}


def describe(budget: PrivacyBudget) -> str:
    return (f"DP-SGD: ε = {budget.epsilon:.2f} at δ = {budget.delta:.1e} (σ = {budget.noise_multiplier:.3f}, "
            f"C = {budget.max_grad_norm}, q = {budget.sample_rate:.4f}, {budget.steps} steps)")

