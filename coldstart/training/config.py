"""The training configuration: typed, frozen, validated when built, read from the ``[train]`` TOML table."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldstart.training.adversarial import AdversarialConfig


@dataclass(frozen=True)
class AugmentSettings:
    """Query augmentation during training; ``None``-like zeros switch a part off.

    Kept as plain numbers here (not ``coldstart.training.augment.AugmentConfig``) so the config file stays flat;
    :func:`pipelines.train` builds the augmenter from it on every worker.
    """

    synonym_prob: float = 0.0
    typo_prob: float = 0.0
    synonym_files: tuple[str, ...] = ()
    backtranslation_model: str | None = None  # a HF translation model dir pair "src->pivot,pivot->src"
    backtranslation_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("synonym_prob", "typo_prob", "backtranslation_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"train.augment.{name}={value}: use a probability in [0, 1]")

    @property
    def enabled(self) -> bool:
        return self.synonym_prob > 0 or self.typo_prob > 0 or self.backtranslation_prob > 0


@dataclass(frozen=True)
class PrivacySettings:
    """``[train.privacy]``: differentially private fine-tuning (:mod:`coldstart.training.private`), off unless
    ``noise_multiplier`` or ``target_epsilon`` is set."""

    noise_multiplier: float = 0.0  # σ: the noise's standard deviation in units of max_grad_norm
    target_epsilon: float | None = None  # derive σ so that the whole run spends this ε (at delta)
    delta: float | None = None  # None: 1 / (10 × number of training examples)
    max_grad_norm: float = 1.0  # C: every example's gradient is clipped to this L2 norm
    random_negatives: int = 3  # random catalog products per example, beside its own hard negatives

    def __post_init__(self) -> None:
        if self.noise_multiplier < 0 or self.max_grad_norm <= 0 or self.random_negatives < 0:
            raise ValueError("train.privacy: noise_multiplier and random_negatives must be ≥ 0, max_grad_norm > 0")
        if self.target_epsilon is not None and self.target_epsilon <= 0:
            raise ValueError(f"train.privacy.target_epsilon={self.target_epsilon}: must be positive")
        if self.delta is not None and not 0 < self.delta < 1:
            raise ValueError(f"train.privacy.delta={self.delta}: must be in (0, 1)")

    @property
    def enabled(self) -> bool:
        return self.noise_multiplier > 0 or self.target_epsilon is not None


OBJECTIVES = ("bi_encoder", "cross_encoder")


@dataclass(frozen=True)
class TrainConfig:
    """One fine-tuning run. Sizes are per worker; the global batch is ``batch_size * num_workers``."""

    model: str = "default"
    # "bi_encoder": the query/product encoder (InfoNCE); "cross_encoder": a re-ranker scoring (query, product)
    # pairs, trained pointwise on the grades (coldstart.training.pointwise)
    objective: str = "bi_encoder"
    pooling: str = "mean"
    max_length: int = 48
    # optimisation
    max_steps: int = 600
    batch_size: int = 32
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_steps: int = 30
    grad_clip: float = 1.0
    temperature: float = 0.05
    seed: int = 0
    # examples from graded judgments
    strong_min_grade: int = 5
    weak_min_grade: int = 4
    weak_weight: float = 0.5
    negative_max_grade: int = 2  # judged products at or below this grade are hard negatives
    relevant_min_grade: int = 3  # a product judged at or above this is never a negative for its query
    bm25_depth: int = 30  # hard negatives mined from the BM25 top-k (minus judged-relevant)
    hard_negatives: int = 1  # per example and step
    # hard negatives mined by the model being trained (its state at the start: the base model, or the previous
    # round's fine-tune), interleaved with BM25's; the top `dense_mining_skip` hits are skipped as likely unjudged
    # relevant products (near-duplicates of the positive). 0 = BM25 only.
    dense_mining_depth: int = 0
    dense_mining_skip: int = 0
    # cross-query order of judged pairs (coldstart.training.loss.graded_pair_loss); 0 = InfoNCE alone
    graded_weight: float = 0.0
    graded_partners: int = 0  # per example: lower-graded judged products of its query added to the batch
    graded_scale: float = 20.0
    # cross-encoder only: per judged pair, the chance of one random catalog product with target 0
    random_negatives: float = 0.25
    grade_max: int | None = None  # cross-encoder label = grade / grade_max; None = the highest grade in the qrels
    # resampling: probability of an example ∝ popularity(product) ** (resample_temperature - 1)
    resample_temperature: float = 1.0  # 1 = as in the data; 0 = every product equally often
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)  # DP-SGD (coldstart.training.private)
    # Ray Train
    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    threads_per_worker: int = 1
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    max_failures: int = 2
    storage_path: str = "./coldstart-store/train"  # local folder or s3://bucket/prefix
    output: str | None = None  # store URI where the exported model goes (models/<run id>); None: storage_path
    crash_at_step: int | None = None  # test hook: the last worker dies at this step on the first attempt
    crash_marker: str | None = None  # test hook: a local file that records the crash, so it happens once

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"train.objective={self.objective!r}: use one of {OBJECTIVES}")
        if not 0.0 <= self.random_negatives <= 1.0:
            raise ValueError(f"train.random_negatives={self.random_negatives}: use a probability in [0, 1]")
        if self.temperature <= 0:
            raise ValueError(f"train.temperature={self.temperature}: use a positive value such as 0.05")
        if self.max_steps < 1 or self.batch_size < 2:
            raise ValueError("train.max_steps must be ≥ 1 and train.batch_size ≥ 2 (in-batch negatives need two)")
        if not self.weak_min_grade <= self.strong_min_grade:
            raise ValueError("train.weak_min_grade must not exceed train.strong_min_grade")
        if self.negative_max_grade >= self.relevant_min_grade:
            raise ValueError("train.negative_max_grade must be below train.relevant_min_grade, or a judged-relevant "
                             "product could become a negative")
        if not 0.0 <= self.resample_temperature <= 1.0:
            raise ValueError(f"train.resample_temperature={self.resample_temperature}: use a value in [0, 1]")
        if self.num_workers < 1 or self.checkpoint_every < 1 or self.max_failures < -1:
            raise ValueError("train.num_workers and train.checkpoint_every must be ≥ 1, max_failures ≥ -1")
        if self.hard_negatives < 0 or self.bm25_depth < 0:
            raise ValueError("train.hard_negatives and train.bm25_depth must be ≥ 0")
        if self.dense_mining_depth < 0 or self.dense_mining_skip < 0:
            raise ValueError("train.dense_mining_depth and train.dense_mining_skip must be ≥ 0")
        if self.privacy.enabled:
            if self.objective != "bi_encoder":
                raise ValueError("train.privacy: DP-SGD is implemented for the bi-encoder objective only")
            if self.adversarial.method != "none":
                raise ValueError("train.privacy: use adversarial.method = 'none' with DP-SGD (an adversarial "
                                 "gradient would be a second, unclipped view of each example)")
            if self.resample_temperature != 1.0:
                raise ValueError("train.privacy: use resample_temperature = 1 with DP-SGD (resampling gives some "
                                 "examples a higher sampling rate than the accountant assumes)")
            if self.graded_weight:
                raise ValueError("train.privacy: graded_weight couples the examples of a batch; set it to 0")
        if self.graded_weight < 0 or self.graded_partners < 0 or self.graded_scale <= 0:
            raise ValueError("train.graded_weight and train.graded_partners must be ≥ 0, train.graded_scale > 0")

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train_config_from_dict(raw: dict[str, Any], *, origin: str = "config") -> TrainConfig:
    """Build from a mapping with optional ``augment`` and ``adversarial`` sub-tables; unknown keys are errors."""
    raw = dict(raw)
    sub = {"augment": AugmentSettings, "adversarial": AdversarialConfig, "privacy": PrivacySettings}
    kwargs: dict[str, Any] = {}
    for name, cls in sub.items():
        section = dict(raw.pop(name, {}) or {})
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(section) - known
        if bad:
            raise ValueError(f"{origin}: [train.{name}] has unknown keys {sorted(bad)}; known: {sorted(known)}")
        if "synonym_files" in section:
            section["synonym_files"] = tuple(section["synonym_files"])
        kwargs[name] = cls(**section)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = set(raw) - known
    if bad:
        raise ValueError(f"{origin}: [train] has unknown keys {sorted(bad)}; known: {sorted(known)}")
    return TrainConfig(**raw, **kwargs)


def load_train_config(path: str | Path, table: str = "train") -> TrainConfig:
    """Read the ``[train]`` table (or another one, e.g. ``[reranker]``) of a TOML (or JSON) file."""
    path = Path(path)
    text = path.read_text()
    raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    if table not in raw:
        raise ValueError(f"{path}: no [{table}] table (tables: {sorted(raw)})")
    return train_config_from_dict(raw[table], origin=f"{path} [{table}]")
