"""The catalog embedding job on Ray Data: the library's steps (:mod:`coldstart.publish`) with a Ray actor pool as
the embedding step.

The texts are sorted by token length and cut into blocks, so every batch pads to about its own length, and mapped
through an actor pool that loads the model once per actor (fractional CPUs or whole GPUs per actor, from config).
Everything else — validation, the incremental plan, staging, publishing, retention — is the library's.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import pyarrow as pa

from coldstart.config import JobConfig
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.encoders.model_source import resolve_model_dir
from coldstart.encoders.multilingual import is_multilingual
from coldstart.publish import EmbedResult, publish_catalog

logger = logging.getLogger(__name__)

class EmbedActor:
    """Ray Data actor: loads the encoder once, maps ``{item_id, text}`` batches to ``{item_id, vector}``."""

    def __init__(self, encoder_config: EncoderConfig):
        self.encoder = Encoder(encoder_config)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.encoder.encode([str(t) for t in batch["text"]])
        return {"item_id": batch["item_id"], "vector": vectors}


def _length_sorted_blocks(table: pa.Table, config: EncoderConfig, rows_per_block: int) -> list[pa.Table]:
    """Cut ``item_id, text`` into blocks of similar token length, longest first."""
    texts = table.column("text").to_pylist()
    if is_multilingual(config.model):  # no Hugging Face tokenizer: characters are a fair proxy for its pieces
        lengths = [len(t) for t in texts]
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(config.model))
        lengths = [min(len(ids), config.max_length) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    order = np.argsort(-np.asarray(lengths), kind="stable")
    ordered = table.select(["item_id", "text"]).take(pa.array(order))
    return [ordered.slice(start, rows_per_block) for start in range(0, ordered.num_rows, rows_per_block)]


def embed_with_ray(table: pa.Table, config: JobConfig) -> np.ndarray:
    """``(n, d) float32`` vectors for ``table`` (``item_id, text``), in table order, computed by a Ray actor pool."""
    import ray

    from coldstart.progress import Progress
    from pipelines.ray_runtime import init_ray, worker_env

    init_ray()
    if table.num_rows == 0:
        return np.empty((0, 0), dtype=np.float32)
    blocks = _length_sorted_blocks(table, config.encoder, config.embed.rows_per_block)
    actors = max(1, min(config.embed.actors, len(blocks)))
    encoder_config = EncoderConfig(**{**asdict(config.encoder), "num_threads": config.embed.threads_per_actor})
    # Actors that fetch the model from S3 need the driver's S3 settings when they are not the cluster's own; the
    # keys reach them through the credential chain, never through the runtime_env (Ray logs it).
    aws_env = worker_env()
    ds = ray.data.from_arrow(blocks).map_batches(
        EmbedActor,
        fn_constructor_kwargs={"encoder_config": encoder_config},
        batch_size=config.encoder.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=config.embed.cpus_per_actor,
        num_gpus=config.embed.gpus_per_actor,
        runtime_env={"env_vars": aws_env} if aws_env else None,
    )
    row_of = {item_id: i for i, item_id in enumerate(table.column("item_id").to_pylist())}
    out: np.ndarray | None = None
    seen = np.zeros(table.num_rows, dtype=bool)
    with Progress(table.num_rows, desc="embed (Ray Data)", unit="titles") as progress:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            vectors = np.asarray(batch["vector"], dtype=np.float32)
            if out is None:
                out = np.empty((table.num_rows, vectors.shape[1]), dtype=np.float32)
            rows = np.fromiter((row_of[str(i)] for i in batch["item_id"]), dtype=np.int64, count=len(vectors))
            if seen[rows].any():
                raise RuntimeError("Ray Data returned an item twice; refusing to publish")
            seen[rows] = True
            out[rows] = vectors
            progress.update(len(rows))
    if out is None or not seen.all():
        raise RuntimeError(f"Ray Data returned {int(seen.sum())} of {table.num_rows} vectors; refusing to publish")
    return out


def run_embed_job(config: JobConfig) -> EmbedResult:
    """The whole job with the Ray Data embedding step (see :func:`coldstart.publish.publish_catalog`)."""
    return publish_catalog(config, embed=embed_with_ray)
