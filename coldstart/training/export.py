"""The result of training: a Hugging Face model directory plus ``coldstart-model.json`` describing it.

The directory loads with ``AutoModel.from_pretrained`` (so :class:`coldstart.encoders.encoder.Encoder`, the embedding job
and the serving app take it by URI: a local path or ``s3://…/models/<id>`` via :mod:`coldstart.encoders.model_source`).
The manifest says where it came from: base model, a fingerprint of the training data, the full config, the
metrics at the end of training.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterable

from coldstart.artifacts.store import ArtifactStore

logger = logging.getLogger(__name__)

MANIFEST_NAME = "coldstart-model.json"
FORMAT = 1


def data_fingerprint(rows: Iterable[str]) -> str:
    """sha256 over the training examples' identifying strings, in order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(row.encode())
        h.update(b"\n")
    return h.hexdigest()


def write_model_manifest(model_dir: Path, *, base_model: str, data: str, config: dict[str, Any],
                         metrics: dict[str, Any], run_id: str) -> dict[str, Any]:
    manifest = {
        "format": FORMAT,
        "run_id": run_id,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "base_model": base_model,
        "data_fingerprint": data,
        "pooling": config.get("pooling", "mean"),
        "max_length": config.get("max_length"),
        "config": config,
        "metrics": metrics,
    }
    (Path(model_dir) / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return manifest


def read_model_manifest(model_dir: Path) -> dict[str, Any] | None:
    path = Path(model_dir) / MANIFEST_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def publish_model(model_dir: Path, store: ArtifactStore, run_id: str) -> str:
    """Upload the directory to ``models/<run_id>`` of the store; returns the model URI to pass as ``--model``."""
    if not (Path(model_dir) / "config.json").is_file() or not (Path(model_dir) / MANIFEST_NAME).is_file():
        raise FileNotFoundError(f"{model_dir} is not an exported model (config.json and {MANIFEST_NAME} needed)")
    prefix = f"models/{run_id}"
    store.upload_dir(Path(model_dir), prefix)
    uri = f"{store.uri.rstrip('/')}/{prefix}"
    logger.info("published model %s", uri)
    return uri
