"""The contrastive loss against hand-computed values."""

import math

import pytest
import torch

from coldstart.training.loss import contrastive_loss, graded_pair_loss

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


def test_graded_pair_loss_hand_computed_across_queries():
    # pair 0: query 0 · cand 0 = 1.0, grade 6; pair 1: query 1 · cand 2 = 0.8, grade 2; pair 2: query 1 · cand 1 = 1.0,
    # grade 2. Ordered pairs (a above b): (0, 1), (0, 2) → log(1 + e^{s(0.8 − 1)} + e^{s(1 − 1)})
    cands = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    index = torch.tensor([[0, 0], [1, 2], [1, 1]])
    grades = torch.tensor([6.0, 2.0, 2.0])
    loss = graded_pair_loss(Q, cands, index, grades, scale=5.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(5 * (0.8 - 1.0)) + math.exp(0.0)), abs=1e-6)


def test_graded_pair_loss_falls_when_the_higher_grade_scores_higher():
    cands = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    index = torch.tensor([[0, 0], [1, 1]])
    right = graded_pair_loss(Q, cands, index, torch.tensor([6.0, 1.0]))
    queries = torch.tensor([[1.0, 0.0], [0.6, 0.8]])  # query 1's judged-low pair now scores 0.8, still below 1.0
    assert graded_pair_loss(queries, cands, index, torch.tensor([6.0, 1.0])) < graded_pair_loss(
        queries, cands, index, torch.tensor([1.0, 6.0]))
    assert right.item() == pytest.approx(math.log(1 + math.exp(20 * (1.0 - 1.0))), abs=1e-6)


def test_graded_pair_loss_is_zero_without_an_ordered_pair_and_keeps_gradients():
    q = Q.clone().requires_grad_(True)
    same = graded_pair_loss(q, Q, torch.tensor([[0, 0], [1, 1]]), torch.tensor([5.0, 5.0]))
    assert same.item() == 0.0
    same.backward()
    assert q.grad is not None
    assert graded_pair_loss(Q, Q, torch.zeros((0, 2), dtype=torch.long), torch.zeros(0)).item() == 0.0
