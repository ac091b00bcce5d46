"""Fine-tuning the bi-encoder (and the cross-encoder re-ranker) on a shop's own judgments: pure code, importable and
testable without Ray.

- ``config.py``: :class:`TrainConfig`, the typed, frozen description of a training run.
- ``pairs.py``: training examples from queries + graded qrels, with hard negatives that are never judged relevant.
- ``sampling.py``: the per-epoch example order, resampled by product popularity via ``coldstart.training.resample``.
- ``loss.py``: InfoNCE with in-batch and hard negatives, a temperature and per-example grade weights.
- ``step.py``: one optimiser step (tokenise, forward, clean + adversarial backward, clip, step).
- ``pointwise.py``: the cross-encoder's examples (every judged pair, grade / max as the label), batches with random
  negatives, and its step (binary cross-entropy, the same FGM/PGD backward).
- ``export.py``: a Hugging Face model directory plus its ``coldstart-model.json`` manifest.

The Ray Train glue is ``pipelines/train.py``; the entry point ``jobs/finetune.py``.
"""
