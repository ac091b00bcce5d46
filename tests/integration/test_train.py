"""CI smoke test of distributed fine-tuning: tiny model, two Ray Train workers, FGM and PGD, checkpoints in the
real SeaweedFS bucket, one worker killed and the run resumed from its last checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from coldstart.training.adversarial import AdversarialConfig
from coldstart.training.config import TrainConfig
from coldstart.training.pairs import build_examples

pytestmark = [pytest.mark.ray, pytest.mark.s3]

COLOURS = ["red", "blue", "green", "black", "white", "grey"]
THINGS = ["drill", "hammer", "screw", "faucet", "lamp", "saw"]


def tiny_data():
    texts, queries, qrels = {}, {}, {}
    for c in COLOURS:
        for t in THINGS:
            texts[f"{c}-{t}"] = f"{c} {t} for the home"
    for n, t in enumerate(THINGS):
        for m, c in enumerate(COLOURS[:3]):
            qid = f"q{n}{m}"
            queries[qid] = f"{c} {t}"
            qrels[qid] = {f"{c}-{t}": 6, f"{COLOURS[m + 3]}-{t}": 4, f"{c}-{THINGS[n - 1]}": 1}
    return texts, build_examples(queries, qrels, mined={q: list(texts)[:5] for q in queries})


def _config(model_dir, storage, **changes) -> TrainConfig:
    base = TrainConfig(model=str(model_dir), max_length=16, max_steps=5, batch_size=4, warmup_steps=1,
                       checkpoint_every=2, num_workers=2, cpus_per_worker=0.5, storage_path=f"{storage}/train", output=storage,
                       max_failures=2)
    return base.replace(**changes)


@pytest.mark.timeout(240)
def test_fgm_run_survives_a_killed_worker_and_resumes_from_s3(ray_local, tiny_model_dir, s3_bucket, tmp_path):
    from coldstart.encoders.encoder import Encoder, EncoderConfig
    from coldstart.artifacts.store import open_store
    from pipelines.train import run_training

    texts, examples = tiny_data()
    config = _config(tiny_model_dir, s3_bucket, adversarial=AdversarialConfig(method="fgm", epsilon=0.5),
                     crash_at_step=3, crash_marker=str(tmp_path / "crashed"))
    result = run_training(config, examples, texts, run_id="smoke-fgm", out_dir=tmp_path)

    assert result.metrics["step"] == 5
    assert (tmp_path / "crashed").exists()  # the worker really died once
    # the worker died at step 3 on the first attempt; the group restarted from the step-2 checkpoint, not step 0
    assert result.metrics["resumed_from"] == 2
    keys = open_store(s3_bucket).list("train/smoke-fgm")
    assert any(k.endswith("state.pt") for k in keys)
    assert result.model_uri == f"{s3_bucket}/models/smoke-fgm"
    vectors = Encoder(EncoderConfig(model=result.model_uri, max_length=16)).encode(["red drill"])
    assert vectors.shape == (1, 32)


@pytest.mark.timeout(180)
def test_pgd_run_checkpoints_and_exports(ray_local, tiny_model_dir, s3_bucket, tmp_path):
    from coldstart.training.export import read_model_manifest
    from pipelines.train import run_training

    texts, examples = tiny_data()
    config = _config(tiny_model_dir, s3_bucket, max_steps=2,
                     adversarial=AdversarialConfig(method="pgd", epsilon=0.5, alpha=0.2, steps=2))
    result = run_training(config, examples, texts, run_id="smoke-pgd", out_dir=tmp_path)
    assert result.metrics["step"] == 2 and result.metrics["resumed_from"] == 0
    assert result.metrics["loss_adv"] is not None
    manifest = read_model_manifest(result.model_dir)
    assert manifest["config"]["adversarial"]["method"] == "pgd"
    assert manifest["base_model"] == str(tiny_model_dir)


@pytest.mark.timeout(180)
def test_cross_encoder_run_trains_on_two_workers_with_fgm_and_exports_a_reranker(ray_local, tiny_cross_encoder_dir,
                                                                                  s3_bucket, tmp_path):
    from coldstart.ranking.rerank import CrossEncoder, RerankerConfig
    from coldstart.artifacts.store import open_store
    from coldstart.training.export import read_model_manifest
    from coldstart.training.pointwise import pointwise_examples
    from pipelines.train import run_training

    texts, bi_examples = tiny_data()
    queries = {e.qid: e.query for e in bi_examples}
    qrels = {e.qid: dict(e.judged) for e in bi_examples}
    examples = pointwise_examples(queries, qrels)
    config = _config(tiny_cross_encoder_dir, s3_bucket, objective="cross_encoder", max_steps=3, max_length=32,
                     random_negatives=0.5, adversarial=AdversarialConfig(method="fgm", epsilon=0.5))
    result = run_training(config, examples, texts, run_id="smoke-rerank", out_dir=tmp_path)

    assert result.metrics["step"] == 3 and result.metrics["loss_adv"] is not None
    assert read_model_manifest(result.model_dir)["config"]["objective"] == "cross_encoder"
    assert any(k.endswith("state.pt") for k in open_store(s3_bucket).list("train/smoke-rerank"))
    scores = CrossEncoder(RerankerConfig(model=result.model_uri)).score(["red drill"] * 2,
                                                                        [texts["red-drill"], texts["blue-saw"]])
    assert scores.shape == (2,) and np.isfinite(scores).all()


@pytest.mark.timeout(180)
def test_a_private_run_on_two_workers_reports_the_epsilon_it_spent(ray_local, tiny_model_dir, s3_bucket, tmp_path):
    """DP-SGD through Ray Train: σ derived from target_epsilon for the run's length, the run trains on two workers
    (clipped sums all-reduced, the same noise on both), and ε at δ lands in the metrics and the model manifest."""
    from coldstart.training.config import PrivacySettings
    from coldstart.training.export import read_model_manifest
    from pipelines.train import run_training

    texts, examples = tiny_data()
    config = _config(tiny_model_dir, s3_bucket, max_steps=3, privacy=PrivacySettings(target_epsilon=50.0))
    result = run_training(config, examples, texts, run_id="smoke-dp", out_dir=tmp_path)
    privacy = result.metrics["privacy"]
    assert 40.0 <= privacy["epsilon"] <= 50.0 and privacy["noise_multiplier"] > 0 and privacy["steps"] == 3
    assert privacy["sample_rate"] == pytest.approx(8 / len(examples))  # 4 per worker x 2 workers
    assert np.isfinite(result.metrics["loss"])
    manifest = read_model_manifest(result.model_dir)
    assert manifest["metrics"]["privacy"]["epsilon"] == privacy["epsilon"]
    assert manifest["config"]["privacy"]["noise_multiplier"] == privacy["noise_multiplier"]
