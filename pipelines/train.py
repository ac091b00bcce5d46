"""Ray Train glue: fine-tune the bi-encoder (or, with ``objective = "cross_encoder"``, the re-ranker) with DDP on CPU
or GPU workers, checkpointing into the store.

The logic lives in :mod:`coldstart.training`; this module only places it on Ray:

- ``TorchTrainer`` with ``ScalingConfig`` from :class:`TrainConfig` (2 CPU workers here, GPU workers on a cluster);
- the model wrapped by ``ray.train.torch.prepare_model`` (DDP; gloo on CPU, NCCL on GPU);
- data: the examples travel in the loop config; each worker draws its own slice of a seeded, resampled order,
  so a worker that restarts at step s sees exactly the batches it would have seen (resume continues, not repeats);
- a checkpoint (model, optimiser, scheduler, step) every ``checkpoint_every`` steps to ``storage_path`` (a local
  folder or ``s3://`` via pyarrow's S3FileSystem: endpoint and region from the environment, keys from the
  driver's credential chain, never in a runtime_env), ``FailureConfig`` so a killed
  worker group restarts from the last checkpoint;
- at the end, rank 0 writes the Hugging Face model directory into the last checkpoint; :func:`run_training`
  downloads it, writes ``coldstart-model.json`` and publishes it to ``models/<run id>`` of the output store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from coldstart.training.config import TrainConfig
from coldstart.training.pairs import Example
from coldstart.training.worker import item_of, load_trainable
from pipelines.ray_runtime import worker_env

logger = logging.getLogger(__name__)

_STATE_FILE = "state.pt"
_MODEL_SUBDIR = "model"


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path  # local HF directory with coldstart-model.json
    model_uri: str | None  # where it was published (None when not published)
    metrics: dict[str, Any]
    checkpoint_path: str
    seconds: float


def _storage(path: str):
    """(storage_path, filesystem) for RunConfig: s3:// via an explicit pyarrow S3FileSystem (endpoint and region
    from the environment, keys from the driver's credential chain)."""
    if not path.startswith("s3://"):
        return str(Path(path).expanduser().resolve()), None
    import pyarrow.fs as pafs

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host or endpoint, scheme=scheme if host else "https")
    # Static keys (environment or credentials file) are resolved from the driver's chain here, because Ray Train's
    # controller runs in a process that may predate them (a long-lived local Ray); the filesystem object carries
    # them pickled to the controller and the workers, never in a runtime_env or a log. Role credentials expire:
    # those are left to each process's own (refreshing) chain.
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is not None and credentials.method in ("env", "shared-credentials-file", "config-file"):
        frozen = credentials.get_frozen_credentials()
        kwargs.update(access_key=frozen.access_key, secret_key=frozen.secret_key)
        if frozen.token:
            kwargs["session_token"] = frozen.token
    kwargs["region"] = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    return path[len("s3://"):], pafs.S3FileSystem(**kwargs)


def train_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import ray.train
    import ray.train.torch
    import torch
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from coldstart.training.adversarial import make_attack
    from coldstart.encoders.model_source import resolve_model_dir
    from coldstart.training.sampling import epoch_order, item_indices
    from coldstart.training.worker import batch_indices, make_augmenter_for, run_step
    from coldstart.logs import setup_worker_logging
    from coldstart.progress import Progress

    setup_worker_logging()  # the driver's log format; INFO lines reach the driver
    config: TrainConfig = loop_config["config"]
    examples: list[Example] = loop_config["examples"]
    texts: dict[str, str] = loop_config["texts"]
    torch.set_num_threads(config.threads_per_worker)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(config.seed)

    model_dir = resolve_model_dir(config.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_trainable(model_dir, config.objective)
    model = ray.train.torch.prepare_model(model)
    inner = getattr(model, "module", model)
    device = next(inner.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    attack = make_attack(model, config.adversarial)
    augment = make_augmenter_for(config)

    start = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = torch.load(Path(d) / _STATE_FILE, map_location=device, weights_only=False)
        inner.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["step"])
        logger.info("rank %d resumed at step %d", rank, start)

    items = item_indices([item_of(e) for e in examples])
    catalog_ids = list(texts)
    orders: dict[int, Any] = {}

    def order_for(epoch: int):
        if epoch not in orders:
            orders[epoch] = epoch_order(items, temperature=config.resample_temperature, seed=config.seed, epoch=epoch)
        return orders[epoch]

    global_batch = config.batch_size * world
    no_sync = getattr(model, "no_sync", None)
    t0, done_since, pairs_since = time.perf_counter(), 0, 0
    # rank 0 speaks for the group: a bar the driver draws (tqdm_ray) on a terminal, else a line every 30 s
    progress = Progress(config.max_steps, desc=f"fine-tune ({config.objective})", unit="steps", initial=start,
                        remote=True) if rank == 0 else None
    for step in range(start, config.max_steps):
        if config.crash_at_step is not None and step == config.crash_at_step and rank == world - 1 \
                and _first_crash(config, resumed=checkpoint is not None):
            logger.warning("crash_at_step=%d: worker %d exits on purpose (test hook)", step, rank)
            # Ray Train's controller registers reported checkpoints asynchronously; a crash in the same instant
            # as the report can lose it (seen under load: a restart from step 0). A real crash comes later.
            time.sleep(10)
            os._exit(1)
        rng = random.Random(config.seed * 1_000_003 + step * 101 + rank)
        idx = batch_indices(order_for, step, global_batch, len(examples), rank, world)
        chosen = [examples[i] for i in idx]
        out, n_pairs = run_step(config, model, tokenizer, chosen, texts, rng=rng, catalog_ids=catalog_ids,
                                attack=attack, optimizer=optimizer, scheduler=scheduler, device=device,
                                augment=augment, no_sync=no_sync, step=step, world=world)
        done_since += 1
        pairs_since += n_pairs
        if progress is not None:
            progress.update(1)
        last = step + 1 == config.max_steps
        if (step + 1) % config.checkpoint_every == 0 or last:
            if world > 1:
                pairs_since = _sum_over_workers(pairs_since)  # every worker reaches this step: no one waits alone
            elapsed = time.perf_counter() - t0
            metrics = {"step": step + 1, "loss": out["loss_clean"], "loss_adv": out.get("loss_adv"),
                       "pairs_per_s": pairs_since / elapsed, "s_per_step": elapsed / done_since,
                       "resumed_from": start}
            with tempfile.TemporaryDirectory() as tmp:
                ckpt = None
                if rank == 0:
                    torch.save({"model": inner.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(), "step": step + 1}, Path(tmp) / _STATE_FILE)
                    if last:
                        inner.save_pretrained(Path(tmp) / _MODEL_SUBDIR)
                        tokenizer.save_pretrained(Path(tmp) / _MODEL_SUBDIR)
                    ckpt = ray.train.Checkpoint.from_directory(tmp)
                ray.train.report(metrics, checkpoint=ckpt)
            if world > 1:
                # every worker waits until rank 0's checkpoint is persisted: a worker that dies right after a
                # checkpoint step must not be able to outrun it (seen on a loaded machine: restart from step 0)
                torch.distributed.barrier()
            t0, done_since, pairs_since = time.perf_counter(), 0, 0
            if rank == 0:
                logger.info("step %d/%d loss %.4f %.1f pairs/s", step + 1, config.max_steps, out["loss_clean"],
                            metrics["pairs_per_s"], extra={"step": step + 1, "max_steps": config.max_steps,
                                                           "loss": out["loss_clean"],
                                                           "pairs_per_s": metrics["pairs_per_s"]})
    if progress is not None:
        progress.close()


def _sum_over_workers(count: int) -> int:
    import torch

    total = torch.tensor([count], dtype=torch.long)
    torch.distributed.all_reduce(total)
    return int(total.item())


def _first_crash(config: TrainConfig, *, resumed: bool) -> bool:
    """Test hook: true the first time only (a marker file created atomically, else 'not resumed yet')."""
    if config.crash_marker is None:
        return not resumed
    try:
        os.close(os.open(config.crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def run_training(
    config: TrainConfig,
    examples: Sequence[Example],
    texts: Mapping[str, str],
    *,
    run_id: str,
    out_dir: Path,
    data_fingerprint: str = "",
    publish: bool = True,
) -> TrainResult:
    """Train on Ray (joins ``RAY_ADDRESS`` or starts a local Ray); returns the exported model.

    Re-running with the same ``run_id`` and ``storage_path`` resumes from the run's last checkpoint.
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    from coldstart.artifacts.store import open_store
    from coldstart.logs import log_env
    from coldstart.progress import progress_env
    from coldstart.training.export import publish_model, write_model_manifest
    from pipelines.ray_runtime import init_ray

    if not examples:
        raise ValueError("no training examples; check the qrels/sessions files and the grade thresholds")
    missing = {item_of(e) for e in examples} - set(texts)
    if missing:
        raise ValueError(f"{len(missing)} positives have no text (e.g. {next(iter(missing))!r}); use the catalog "
                         "the judgments refer to")
    budget = None
    if config.privacy.enabled:  # σ for this run (derived from target_epsilon if asked) and the ε it spends
        from coldstart.training.private import describe, plan_budget

        budget = plan_budget(config.privacy, n_examples=len(examples),
                             global_batch=config.batch_size * config.num_workers, steps=config.max_steps)
        config = config.replace(privacy=dataclasses.replace(config.privacy, noise_multiplier=budget.noise_multiplier))
        logger.info("%s", describe(budget))
    init_ray()
    storage_path, fs = _storage(config.storage_path)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"config": config, "examples": list(examples), "texts": dict(texts)},
        scaling_config=ray.train.ScalingConfig(
            num_workers=config.num_workers, use_gpu=config.use_gpu,
            resources_per_worker={"CPU": config.cpus_per_worker, **({"GPU": 1} if config.use_gpu else {})}),
        run_config=ray.train.RunConfig(
            name=run_id, storage_path=storage_path, storage_filesystem=fs,
            failure_config=ray.train.FailureConfig(max_failures=config.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=config.keep_checkpoints),
            # workers may have started before the S3 settings were set (a long-lived local Ray); no secrets in it
            # (and the driver's log format and progress mode: a bar it draws, or plain lines for a log)
            worker_runtime_env={"env_vars": {**worker_env(), **log_env(), **progress_env()}}),
    )
    t0 = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - t0
    if result.error is not None:
        raise result.error
    model_dir = Path(out_dir) / run_id
    if model_dir.exists():
        shutil.rmtree(model_dir)
    with result.checkpoint.as_directory() as d:
        shutil.copytree(Path(d) / _MODEL_SUBDIR, model_dir)
    metrics = dict(result.metrics or {})
    metrics["train_seconds"] = seconds
    if budget is not None:
        metrics["privacy"] = dataclasses.asdict(budget)
    write_model_manifest(model_dir, base_model=config.model, data=data_fingerprint, config=config.to_dict(),
                         metrics=metrics, run_id=run_id)
    uri = publish_model(model_dir, open_store(config.output or config.storage_path), run_id) if publish else None
    return TrainResult(model_dir=model_dir, model_uri=uri, metrics=metrics, checkpoint_path=result.checkpoint.path,
                       seconds=seconds)


def export_checkpoint(checkpoint_dir: str | Path, out_dir: Path, config: TrainConfig, *, run_id: str,
                      data_fingerprint: str = "") -> Path:
    """A Hugging Face model directory (+ manifest) from any training checkpoint, e.g. one of a stopped run."""
    import torch
    from transformers import AutoTokenizer

    from coldstart.encoders.model_source import resolve_model_dir
    from coldstart.training.export import write_model_manifest

    state = torch.load(Path(checkpoint_dir) / _STATE_FILE, map_location="cpu", weights_only=False)
    base = resolve_model_dir(config.model)
    model = load_trainable(base, config.objective)
    model.load_state_dict(state["model"])
    out = Path(out_dir)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    write_model_manifest(out, base_model=config.model, data=data_fingerprint, config=config.to_dict(),
                         metrics={"step": int(state["step"]), "exported_from": str(checkpoint_dir)}, run_id=run_id)
    return out
