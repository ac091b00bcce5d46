"""What one fine-tuning worker does, without Ray: load the model it trains, draw its slice of each step's batch,
build the augmenter, and run one step of the configured objective. ``pipelines/train.py`` places it on Ray Train
(DDP, checkpoints, reports, restarts)."""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from coldstart.training.config import TrainConfig


def batch_indices(order_for, step: int, global_batch: int, n: int, rank: int, world: int) -> list[int]:
    """This worker's example indices at ``step``: global positions [step*B, (step+1)*B), rank-strided."""
    out = []
    for pos in range(step * global_batch + rank, (step + 1) * global_batch, world):
        epoch, offset = divmod(pos, n)
        out.append(int(order_for(epoch)[offset]))
    return out


def item_of(example) -> str:
    """The product of a training example: a bi-encoder Example's positive or a cross-encoder pair's item."""
    return example.item if hasattr(example, "item") else example.positive


def load_trainable(model_dir, objective: str):
    """The Hugging Face model a run trains: the bare encoder, or a one-label sequence classifier."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    if objective == "cross_encoder":
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
    try:
        return AutoModel.from_pretrained(model_dir, add_pooling_layer=False)  # unused pooler breaks DDP
    except TypeError:
        return AutoModel.from_pretrained(model_dir)


def make_augmenter_for(config: TrainConfig):
    """The query augmenter on this worker, or None. Built from :mod:`coldstart.training.augment` (synonyms, typos, BT)."""
    settings = config.augment
    if not settings.enabled:
        return None
    from coldstart.training.augment.config import AugmentConfig, SynonymConfig, make_augmenter
    from coldstart.training.augment.typos import TypoConfig

    bt = None
    if settings.backtranslation_model and settings.backtranslation_prob > 0:
        from coldstart.training.augment.backtranslate import BackTranslationConfig

        forward, _, backward = settings.backtranslation_model.partition(",")
        bt = BackTranslationConfig(forward_model=forward.strip(), backward_model=backward.strip())
    return make_augmenter(AugmentConfig(
        synonyms=SynonymConfig(files=settings.synonym_files) if settings.synonym_prob > 0 else None,
        synonym_prob=settings.synonym_prob,
        typos=TypoConfig() if settings.typo_prob > 0 else None,
        typo_prob=settings.typo_prob,
        backtranslation=bt,
        backtranslation_prob=settings.backtranslation_prob,
    ))


def run_step(config: TrainConfig, model, tokenizer, chosen: Sequence, texts: dict[str, str], *, rng: random.Random,
             catalog_ids: Sequence[str], attack, optimizer, scheduler, device, augment=None,
             no_sync: Callable | None = None, step: int = 0, world: int = 1) -> tuple[dict[str, Any], int]:
    """One optimiser step on ``chosen`` (this worker's examples): the cross-encoder's pointwise step, the
    bi-encoder's contrastive step, or its DP-SGD step (``config.privacy``), as the config says. Returns the step's
    numbers and the pairs it saw."""
    from coldstart.training.pointwise import make_pair_batch, pointwise_step
    from coldstart.training.step import make_batch, train_step

    if config.privacy.enabled:
        from coldstart.training.private import private_step

        out = private_step(model, tokenizer, chosen, texts, noise_multiplier=config.privacy.noise_multiplier,
                           max_grad_norm=config.privacy.max_grad_norm, global_batch=config.batch_size * world,
                           noise_seed=config.seed * 1_000_003 + step, catalog_ids=catalog_ids,
                           hard_negatives=config.hard_negatives, random_negatives=config.privacy.random_negatives,
                           rng=rng, optimizer=optimizer, scheduler=scheduler, temperature=config.temperature,
                           pooling=config.pooling, max_length=config.max_length, device=device, augment=augment,
                           no_sync=no_sync)
        return out, len(chosen)

    if config.objective == "cross_encoder":
        pairs = make_pair_batch(chosen, texts, rng=rng, item_ids=catalog_ids,
                                random_negatives=config.random_negatives, augment=augment)
        out = pointwise_step(model, tokenizer, pairs, attack=attack, optimizer=optimizer, scheduler=scheduler,
                             max_length=config.max_length, grad_clip=config.grad_clip, device=device,
                             no_sync=no_sync)
        return out, len(pairs.queries)
    batch = make_batch(chosen, texts, hard_negatives=config.hard_negatives, rng=rng, augment=augment,
                       graded_partners=config.graded_partners)
    out = train_step(model, tokenizer, batch, attack=attack, optimizer=optimizer, scheduler=scheduler,
                     temperature=config.temperature, graded_weight=config.graded_weight,
                     graded_scale=config.graded_scale, pooling=config.pooling, max_length=config.max_length,
                     grad_clip=config.grad_clip, device=device, no_sync=no_sync)
    return out, len(chosen)
