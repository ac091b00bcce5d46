"""Shared fixtures: one local Ray per session, a tiny random encoder and cross-encoder, the sample catalog.

S3 fixtures (a real SeaweedFS server with credentials) come from ``tests/fixtures/s3.py``.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures.s3"]


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` tests where torch sees no CUDA device (checked only when such tests were collected)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False); see benchmarks/gpu_check.sh")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (2 CPUs, loopback, no dashboard); shut down at the end."""
    from pipelines.ray_runtime import local_ray_env

    for key, value in local_ray_env().items():
        os.environ.setdefault(key, value)
    import ray

    from pipelines.ray_runtime import init_ray

    os.environ.pop("RAY_ADDRESS", None)
    init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny randomly initialised BERT (hidden 32, 2 layers) with the MiniLM tokenizer, saved as a HF directory."""
    from tests.fixtures.models import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory):
    """A tiny randomly initialised one-label BERT sequence classifier (a cross-encoder) with the MiniLM tokenizer."""
    from tests.fixtures.models import save_tiny_cross_encoder

    return save_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture(scope="session")
def sample_catalog_path(tmp_path_factory):
    from coldstart.catalog.sample import write_sample_catalog

    return write_sample_catalog(tmp_path_factory.mktemp("catalog") / "catalog.parquet")
