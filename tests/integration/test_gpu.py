"""GPU paths: embedding actors that ask Ray for a GPU, and FAISS indexes built and searched on it.

Skipped without CUDA (tests/conftest.py). Run them on a GPU machine with ``bash benchmarks/gpu_check.sh``.
"""

from __future__ import annotations

import numpy as np
import pytest

from coldstart.config import EmbedConfig, JobConfig
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.ranking.faiss_index import IndexConfig, VectorIndex

pytestmark = pytest.mark.gpu


def _unit(rng, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_embedding_actors_run_on_the_gpu(ray_local, tmp_path, sample_catalog_path, tiny_model_dir):
    from coldstart.artifacts.versions import load_version
    from coldstart.artifacts.store import open_store
    from pipelines.embed import run_embed_job

    assert ray_local.cluster_resources().get("GPU", 0) >= 1, "Ray sees no GPU although torch does"
    config = JobConfig(catalog=str(sample_catalog_path), store=str(tmp_path / "store"),
                       encoder=EncoderConfig(model=str(tiny_model_dir), device="auto"),
                       embed=EmbedConfig(actors=1, cpus_per_actor=0.5, gpus_per_actor=1))
    result = run_embed_job(config)
    assert result.published and result.counts["embedded"] == result.counts["rows_good"]

    version = load_version(open_store(config.store))
    cpu = Encoder(EncoderConfig(model=str(tiny_model_dir), device="cpu"))
    texts = version.items.column("text").to_pylist()
    np.testing.assert_allclose(version.index.vectors, cpu.encode(texts), atol=1e-4)


def test_encoder_resolves_auto_to_cuda(tiny_model_dir):
    encoder = Encoder(EncoderConfig(model=str(tiny_model_dir), device="auto"))
    assert encoder.device == "cuda"


def _self_hits(index: VectorIndex, ids: list[str], queries: np.ndarray) -> float:
    """Share of queries (near-copies of the first vectors) whose own product comes back first."""
    return float(np.mean([hits[0][0] == ids[i] for i, hits in enumerate(index.search(queries, 1))]))


@pytest.mark.parametrize("kind", ["flat", "ivf_sq8", "ivf_pq"])
def test_faiss_builds_and_searches_on_the_gpu(kind):
    faiss = pytest.importorskip("faiss")
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        pytest.skip("FAISS has no GPU support here: install the gpu extra (faiss-gpu-cu12) instead of faiss-cpu")
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 20_000, 64)
    ids = [f"p{i}" for i in range(len(vectors))]
    queries = vectors[:500] + 0.01 * _unit(rng, 500, 64)

    gpu = VectorIndex.build(ids, vectors, IndexConfig(kind=kind, nprobe=32))
    assert "Gpu" in type(gpu._index).__name__  # searched on the GPU
    assert "Gpu" not in type(gpu._cpu_index).__name__  # serialised from the CPU copy
    cpu = VectorIndex.build(ids, vectors, IndexConfig(kind=kind, nprobe=32, use_gpu="never"))  # the reference
    if kind == "flat":
        exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
        found = gpu.search(queries, 10)
        overlap = [len({ids[j] for j in exact[i]} & {h for h, _ in found[i]}) / 10 for i in range(len(queries))]
        assert np.mean(overlap) >= 0.99  # exact search, up to float ties
    assert _self_hits(gpu, ids, queries) >= _self_hits(cpu, ids, queries) - 0.05

    again = VectorIndex.deserialize(gpu.serialize(), ids, vectors, gpu.config)
    ranked = lambda index: [[h for h, _ in hits] for hits in index.search(queries[:20], 5)]  # noqa: E731
    assert ranked(again) == ranked(gpu)
