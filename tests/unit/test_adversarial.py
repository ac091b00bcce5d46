"""FGM / PGD on the word-embedding matrix of a tiny random BERT, incl. a 2-process DDP check."""

from __future__ import annotations

import copy
import socket
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel

from coldstart.training.adversarial import (
    FGM,
    PGD,
    AdversarialConfig,
    NoAttack,
    NonFiniteLossError,
    adversarial_backward,
    make_attack,
)

EMB = "bert.embeddings.word_embeddings.weight"


class TinyClassifier(nn.Module):
    """A 2-layer, 32-wide random BERT with a 3-way linear head on the first token."""

    def __init__(self) -> None:
        super().__init__()
        config = BertConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=32,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        self.bert = BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(32, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden[:, 0])  # (batch, 3)


def make_model(seed: int = 0) -> TinyClassifier:
    torch.manual_seed(seed)
    return TinyClassifier().eval()


def make_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (4, 10), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    labels = torch.randint(0, 3, (4,), generator=gen)
    return ids, mask, labels


def loss_fn(model: nn.Module, batch) -> torch.Tensor:
    ids, mask, labels = batch
    return F.cross_entropy(model(ids, mask), labels)


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: (torch.zeros_like(p) if p.grad is None else p.grad.detach().clone())
        for n, p in model.named_parameters()
    }


def grads_by_hand(model: nn.Module, batch, emb_delta: torch.Tensor | None = None):
    """Gradients of the loss on a copy of ``model`` whose embedding matrix is ``E + emb_delta``."""
    m = copy.deepcopy(model)
    m.zero_grad(set_to_none=True)
    if emb_delta is not None:
        with torch.no_grad():
            dict(m.named_parameters())[EMB].add_(emb_delta)
    loss_fn(m, batch).backward()
    return grads(m)


def unit(g: torch.Tensor) -> torch.Tensor:
    return g / torch.linalg.vector_norm(g)


def assert_grads_close(actual, expected, atol=1e-6, rtol=1e-5):
    assert actual.keys() == expected.keys()
    for name in actual:
        torch.testing.assert_close(actual[name], expected[name], atol=atol, rtol=rtol, msg=name)


# --- config and factory -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"method": "fgsm"}, "use one of"),
        ({"method": "fgm", "epsilon": 0.0}, "epsilon"),
        ({"method": "fgm", "epsilon": float("nan")}, "epsilon"),
        ({"method": "pgd", "alpha": -1.0}, "alpha"),
        ({"method": "pgd", "steps": 0}, "steps"),
        ({"method": "pgd", "epsilon": 0.1, "alpha": 0.5}, "alpha <= epsilon"),
        ({"method": "fgm", "emb_name": ""}, "emb_name"),
    ],
)
def test_config_rejects_bad_values_with_a_fix(kwargs, fix):
    with pytest.raises(ValueError, match=fix):
        AdversarialConfig(**kwargs)


def test_config_is_frozen():
    config = AdversarialConfig(method="fgm")
    with pytest.raises(AttributeError):
        config.epsilon = 2.0  # type: ignore[misc]


def test_make_attack_builds_each_method():
    model = make_model()
    assert isinstance(make_attack(model, AdversarialConfig()), NoAttack)
    fgm = make_attack(model, AdversarialConfig(method="fgm", epsilon=0.5))
    assert isinstance(fgm, FGM) and fgm.epsilon == 0.5 and fgm.parameter_names == [EMB]
    pgd = make_attack(model, AdversarialConfig(method="pgd", epsilon=1.0, alpha=0.4, steps=5))
    assert isinstance(pgd, PGD) and pgd.num_steps == 5 and pgd.alpha == 0.4


def test_unknown_embedding_name_lists_candidates():
    with pytest.raises(ValueError, match="word_embeddings"):
        FGM(make_model(), epsilon=1.0, emb_name="tok_emb")


def test_attack_without_clean_gradient_says_what_to_do():
    with pytest.raises(RuntimeError, match="backward"):
        FGM(make_model(), epsilon=1.0).attack()


# --- restore, norms, equivalences ---------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        AdversarialConfig(method="fgm", epsilon=1.0),
        AdversarialConfig(method="pgd", epsilon=1.0, alpha=0.4, steps=3),
    ],
    ids=["fgm", "pgd"],
)
def test_restore_is_bit_exact(config):
    model = make_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = make_batch(1)
    adversarial_backward(model, make_attack(model, config), lambda: loss_fn(model, batch))
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_fgm_perturbation_norm_is_exactly_epsilon():
    model = make_model()
    emb = dict(model.named_parameters())[EMB]
    original = emb.detach().clone()
    loss_fn(model, make_batch(2)).backward()
    fgm = FGM(model, epsilon=0.7)
    fgm.attack()
    norm = torch.linalg.vector_norm(emb.detach() - original).item()
    assert norm == pytest.approx(0.7, rel=1e-5)
    fgm.restore()
    assert torch.equal(emb, original)


def test_fgm_skips_zero_and_non_finite_gradients():
    model = make_model()
    emb = dict(model.named_parameters())[EMB]
    original = emb.detach().clone()
    fgm = FGM(model, epsilon=1.0)
    for bad in (torch.zeros_like(emb), torch.full_like(emb, float("inf"))):
        emb.grad = bad
        fgm.attack()
        assert torch.equal(emb, original)
        fgm.restore()


def test_pgd_stays_inside_the_epsilon_ball_after_every_step():
    model = make_model()
    emb = dict(model.named_parameters())[EMB]
    original = emb.detach().clone()
    batch = make_batch(3)
    eps = 0.5
    pgd = PGD(model, epsilon=eps, alpha=0.3, steps=4)
    loss_fn(model, batch).backward()
    pgd.backup_grad()
    norms = []
    for step in range(pgd.num_steps):
        pgd.attack(step)
        norms.append(torch.linalg.vector_norm(emb.detach() - original).item())
        assert norms[-1] <= eps + 1e-6, (step, norms)
        model.zero_grad(set_to_none=False)
        loss_fn(model, batch).backward()
    pgd.restore_grad()
    pgd.restore()
    assert norms[0] == pytest.approx(0.3, rel=1e-5)
    assert norms[-1] == pytest.approx(eps, rel=1e-5), "projection never reached the ball's edge"
    assert torch.equal(emb, original)


def test_pgd_with_one_step_of_size_epsilon_equals_fgm():
    batch = make_batch(4)
    fgm_model, pgd_model = make_model(), make_model()
    fgm_out = adversarial_backward(
        fgm_model, FGM(fgm_model, epsilon=0.8), lambda: loss_fn(fgm_model, batch)
    )
    pgd_out = adversarial_backward(
        pgd_model,
        PGD(pgd_model, epsilon=0.8, alpha=0.8, steps=1),
        lambda: loss_fn(pgd_model, batch),
    )
    assert fgm_out == pytest.approx(pgd_out, rel=1e-6)
    assert_grads_close(grads(pgd_model), grads(fgm_model))


# --- the full step against gradients computed by hand -------------------------------------


def test_fgm_step_gradient_is_clean_plus_adversarial():
    model, batch = make_model(), make_batch(5)
    clean = grads_by_hand(model, batch)
    adv = grads_by_hand(model, batch, emb_delta=0.6 * unit(clean[EMB]))
    out = adversarial_backward(model, FGM(model, epsilon=0.6), lambda: loss_fn(model, batch))
    assert_grads_close(grads(model), {n: clean[n] + adv[n] for n in clean})
    assert set(out) == {"loss_clean", "loss_adv"}
    assert out["loss_adv"] > out["loss_clean"], "the attack should increase the loss"


def test_pgd_step_gradient_is_clean_plus_final_adversarial():
    model, batch = make_model(), make_batch(6)
    eps, alpha = 0.5, 0.4

    def project(delta):
        norm = torch.linalg.vector_norm(delta)
        return delta * (eps / norm) if norm > eps else delta

    clean = grads_by_hand(model, batch)
    delta = project(alpha * unit(clean[EMB]))
    step1 = grads_by_hand(model, batch, emb_delta=delta)
    delta = project(delta + alpha * unit(step1[EMB]))
    final = grads_by_hand(model, batch, emb_delta=delta)

    pgd = PGD(model, epsilon=eps, alpha=alpha, steps=2)
    adversarial_backward(model, pgd, lambda: loss_fn(model, batch))
    assert_grads_close(grads(model), {n: clean[n] + final[n] for n in clean})


def test_no_attack_is_a_plain_backward():
    model, batch = make_model(), make_batch(7)
    clean = grads_by_hand(model, batch)
    out = adversarial_backward(model, NoAttack(model), lambda: loss_fn(model, batch))
    assert set(out) == {"loss_clean"}
    assert_grads_close(grads(model), clean, atol=0, rtol=0)


def test_custom_backward_is_used_for_every_pass():
    """A loss-scaling backward (as with AMP's GradScaler) scales the summed gradient only."""
    batch = make_batch(10)
    plain, scaled = make_model(), make_model()
    config = AdversarialConfig(method="pgd", epsilon=0.5, alpha=0.3, steps=2)
    adversarial_backward(plain, make_attack(plain, config), lambda: loss_fn(plain, batch))
    adversarial_backward(
        scaled,
        make_attack(scaled, config),
        lambda: loss_fn(scaled, batch),
        backward=lambda loss: (loss * 8.0).backward(),
    )
    assert_grads_close(grads(scaled), {n: 8.0 * g for n, g in grads(plain).items()}, atol=1e-5)


@pytest.mark.parametrize("bad_call", [1, 2, 3], ids=["clean", "pgd-step-1", "pgd-step-2"])
def test_non_finite_loss_raises_and_restores_embeddings(bad_call):
    model, batch = make_model(), make_batch(8)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    calls = []

    def compute_loss():
        calls.append(1)
        loss = loss_fn(model, batch)
        return loss * float("nan") if len(calls) == bad_call else loss

    pgd = PGD(model, epsilon=1.0, alpha=0.5, steps=2)
    with pytest.raises(NonFiniteLossError, match="nan"):
        adversarial_backward(model, pgd, compute_loss)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_non_scalar_loss_is_rejected():
    model, batch = make_model(), make_batch(9)
    with pytest.raises(ValueError, match="scalar"):
        adversarial_backward(
            model,
            FGM(model, epsilon=1.0),
            lambda: F.cross_entropy(model(*batch[:2]), batch[2], reduction="none"),
        )


# --- DDP: two gloo workers on CPU ---------------------------------------------------------

DDP_CONFIGS = {
    "fgm": AdversarialConfig(method="fgm", epsilon=1.0),
    "pgd": AdversarialConfig(method="pgd", epsilon=1.0, alpha=0.5, steps=2),
}


def _mark(progress: str, rank: int, stage: str) -> None:
    """Append a stage to the worker's progress file, so a timeout says where it stuck."""
    with open(f"{progress}/rank{rank}.txt", "a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%H:%M:%S')} {stage}\n")


def _ddp_worker(rank: int, world_size: int, port: int, progress: str) -> None:
    """Checks DDP gradients against the mean of per-worker gradients computed without DDP."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    _mark(progress, rank, "started")
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=180),
    )
    _mark(progress, rank, "process group up")
    try:
        batches = [make_batch(100 + r) for r in range(world_size)]
        for method, config in DDP_CONFIGS.items():
            _mark(progress, rank, f"{method}: reference")
            per_worker = []
            for batch in batches:
                m = make_model()
                adversarial_backward(m, make_attack(m, config), lambda m=m, b=batch: loss_fn(m, b))
                per_worker.append(grads(m))
            expected = {n: sum(g[n] for g in per_worker) / world_size for n in per_worker[0]}

            for bucket_view in (False, True):
                _mark(progress, rank, f"{method}: ddp bucket_view={bucket_view}")
                model = make_model()
                ddp = DDP(model, gradient_as_bucket_view=bucket_view)
                attack = make_attack(model, config)
                batch = batches[rank]
                adversarial_backward(
                    ddp, attack, lambda d=ddp, b=batch: loss_fn(d, b), no_sync=ddp.no_sync
                )
                for name, got in grads(model).items():
                    torch.testing.assert_close(
                        got,
                        expected[name],
                        atol=1e-6,
                        rtol=1e-5,
                        msg=f"{method} bucket_view={bucket_view} {name}",
                    )

            _mark(progress, rank, f"{method}: control")
            # Control: without no_sync the attack sees the averaged clean gradient, so the
            # result differs; this shows the comparison above can fail.
            model = make_model()
            ddp = DDP(model)
            adversarial_backward(
                ddp, make_attack(model, config), lambda d=ddp: loss_fn(d, batches[rank])
            )
            diff = (grads(model)[EMB] - expected[EMB]).abs().max().item()
            assert diff > 1e-5, f"{method}: syncing every backward went unnoticed ({diff})"
    except BaseException:
        # Skip the collective teardown: the other rank may never reach it. Exiting is enough.
        _mark(progress, rank, "failed")
        raise
    # Both ranks must be done communicating before either tears down, else teardown can hang.
    _mark(progress, rank, "checks passed")
    dist.barrier()
    dist.destroy_process_group()
    _mark(progress, rank, "process group destroyed")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_gradients_are_the_mean_of_per_worker_adversarial_gradients(tmp_path):
    world_size, timeout_s = 2, 300  # generous: a guard against hangs on a loaded machine
    args = (world_size, _free_port(), str(tmp_path))
    context = mp.spawn(_ddp_worker, args=args, nprocs=world_size, join=False)
    deadline = time.monotonic() + timeout_s
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            progress = {p.name: p.read_text() for p in sorted(tmp_path.glob("rank*.txt"))}
            pytest.fail(f"DDP workers did not finish within {timeout_s} s; progress: {progress}")
