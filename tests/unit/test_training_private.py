"""DP-SGD (coldstart.training.private): per-example clipping, the noise, agreement between workers, the budget."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch

from coldstart.training.config import PrivacySettings, train_config_from_dict
from coldstart.training.pairs import Example
from coldstart.training.private import example_candidates, plan_budget, private_step

TEXTS = {f"p{i}": t for i, t in enumerate(["red garden chair", "blue garden chair", "cordless drill 18v",
                                             "drill bit set", "green desk lamp", "garden hose 50 ft",
                                             "kitchen table", "paint brush"])}
EXAMPLES = [Example(qid=f"q{i}", query=q, positive=pos, weight=1.0, negatives=negs, relevant=frozenset({pos}))
            for i, (q, pos, negs) in enumerate([("garden chair", "p0", ("p4", "p6")), ("drill", "p2", ("p3", "p7")),
                                                ("desk lamp", "p4", ("p0", "p1")), ("hose", "p5", ("p2", "p6"))])]


@pytest.fixture
def model_and_tokenizer(tiny_model_dir):
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(0)
    return AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False), \
        AutoTokenizer.from_pretrained(tiny_model_dir)


def _step(model, tokenizer, *, sigma: float, clip: float, seed: int = 7) -> float:
    """Run one private step with plain SGD at lr 1 (no dropout) and return the L2 norm of the update."""
    model.eval()  # dropout off, so only the mechanism under test differs between runs
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model.train = lambda mode=True: model  # keep eval mode through private_step's model.train()
    private_step(model, tokenizer, EXAMPLES, TEXTS, noise_multiplier=sigma, max_grad_norm=clip,
                 global_batch=len(EXAMPLES), noise_seed=seed, catalog_ids=list(TEXTS), hard_negatives=1,
                 random_negatives=2, rng=random.Random(0), optimizer=optimizer, temperature=0.05)
    return math.sqrt(sum(float(((p.detach() - b) ** 2).sum()) for p, b in zip(model.parameters(), before)))


def test_each_example_is_clipped_so_no_step_moves_further_than_the_clip(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    loose = _step(copy.deepcopy(model), tokenizer, sigma=0.0, clip=1e6)  # effectively unclipped
    tight = _step(copy.deepcopy(model), tokenizer, sigma=0.0, clip=1e-3)
    assert loose > 1e-2  # the examples really push the model
    assert tight <= 1e-3 * (1 + 1e-4)  # the mean of vectors of norm ≤ C has norm ≤ C


def test_the_noise_has_the_scale_sigma_times_clip_and_is_the_same_on_every_worker(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    n_params = sum(p.numel() for p in model.parameters())
    noisy = _step(copy.deepcopy(model), tokenizer, sigma=50.0, clip=1e-3)
    expected = 50.0 * 1e-3 * math.sqrt(n_params) / len(EXAMPLES)  # the clipped signal is ≤ 1e-3: negligible
    assert noisy == pytest.approx(expected, rel=0.05)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    _step(a, tokenizer, sigma=1.0, clip=1.0, seed=11)
    _step(b, tokenizer, sigma=1.0, clip=1.0, seed=11)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))  # workers stay identical
    c = copy.deepcopy(model)
    _step(c, tokenizer, sigma=1.0, clip=1.0, seed=12)
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))  # fresh noise each step


def test_the_budget_meets_a_target_epsilon_and_grows_with_steps():
    settings = PrivacySettings(target_epsilon=8.0)
    planned = plan_budget(settings, n_examples=20_000, global_batch=32, steps=300)
    assert 7.0 <= planned.epsilon <= 8.0 and planned.noise_multiplier > 0
    assert planned.delta == pytest.approx(1 / 200_000) and planned.sample_rate == pytest.approx(32 / 20_000)
    fixed = PrivacySettings(noise_multiplier=planned.noise_multiplier)
    shorter = plan_budget(fixed, n_examples=20_000, global_batch=32, steps=100)
    longer = plan_budget(fixed, n_examples=20_000, global_batch=32, steps=1000)
    assert shorter.epsilon < planned.epsilon < longer.epsilon
    more_noise = plan_budget(PrivacySettings(noise_multiplier=2 * planned.noise_multiplier), n_examples=20_000,
                             global_batch=32, steps=300)
    assert more_noise.epsilon < planned.epsilon


def test_an_example_sees_only_its_own_candidates_and_never_a_relevant_one_as_negative():
    example = Example(qid="q", query="garden chair", positive="p0", weight=1.0, negatives=("p4",),
                      relevant=frozenset({"p0", "p1"}))
    for seed in range(20):
        chosen = example_candidates(example, hard_negatives=1, random_negatives=3, catalog_ids=list(TEXTS),
                                    rng=random.Random(seed))
        assert chosen[0] == "p0" and chosen[1] == "p4" and len(chosen) == len(set(chosen)) == 5
        assert "p1" not in chosen


@pytest.mark.parametrize("extra, message", [({"adversarial": {"method": "fgm"}}, "adversarial"),
                                            ({"resample_temperature": 0.5}, "resample_temperature"),
                                            ({"objective": "cross_encoder"}, "bi-encoder"),
                                            ({"graded_weight": 0.5}, "graded_weight")])
def test_settings_that_would_void_the_guarantee_are_refused(extra, message):
    with pytest.raises(ValueError, match=message):
        train_config_from_dict({"privacy": {"noise_multiplier": 1.0}, **extra})
    train_config_from_dict(extra)  # each is fine without DP
