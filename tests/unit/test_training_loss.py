"""The contrastive loss against hand-computed values."""

import math

import pytest
import torch

from coldstart.training.loss import contrastive_loss

Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def test_in_batch_negatives_hand_computed():
    loss = contrastive_loss(Q, Q.clone(), temperature=1.0)
    # each query: logits (1, 0) with the target first → -log(e / (e + 1))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


def test_hard_negative_and_temperature():
    cands = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # third row: a hard negative
    loss = contrastive_loss(Q, cands, temperature=0.5)
    l0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(1.2)))
    l1 = -math.log(math.exp(2) / (math.exp(0) + math.exp(2) + math.exp(1.6)))
    assert loss.item() == pytest.approx((l0 + l1) / 2, abs=1e-6)


def test_grade_weights_average():
    cands = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    per = [contrastive_loss(Q[i:i + 1], torch.cat([cands[i:i + 1], cands[[j for j in range(3) if j != i]]]),
                            temperature=0.5).item() for i in range(2)]
    weighted = contrastive_loss(Q, cands, temperature=0.5, weights=torch.tensor([1.0, 0.5]))
    assert weighted.item() == pytest.approx((per[0] + 0.5 * per[1]) / 1.5, abs=1e-6)


def test_mask_removes_relevant_candidates_but_never_the_target():
    mask = torch.tensor([[True, True], [False, False]])  # query 0: candidate 1 is relevant too
    loss = contrastive_loss(Q, Q.clone(), temperature=1.0, mask=mask)
    # query 0 has only its target left → loss 0; query 1 unchanged
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)) / 2, abs=1e-6)


def test_gradient_flows_to_both_sides():
    q = Q.clone().requires_grad_(True)
    c = Q.clone().requires_grad_(True)
    contrastive_loss(q, c, temperature=0.1).backward()
    assert q.grad.abs().sum() > 0 and c.grad.abs().sum() > 0
