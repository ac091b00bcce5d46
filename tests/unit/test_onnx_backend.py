"""The ONNX backends of the encoder against the torch one, the export cache, and what a version records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coldstart.encoders.encoder import Encoder, EncoderConfig

TEXTS = ["cordless drill 18v", "garden hose, 50 ft green", "a", "led ceiling light fixture with a pull chain",
         "Nike鞋"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLDSTART_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_onnx_fp32_gives_the_torch_vectors_and_int8_close_ones(tiny_model_dir, cache):
    config = EncoderConfig(model=str(tiny_model_dir), device="cpu", batch_size=2)
    torch_vectors = Encoder(config).encode(TEXTS)
    fp32 = Encoder(dataclasses.replace(config, backend="onnx")).encode(TEXTS)
    int8 = Encoder(dataclasses.replace(config, backend="onnx-int8")).encode(TEXTS)
    assert fp32.shape == int8.shape == torch_vectors.shape and fp32.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, rtol=1e-4)
    assert (fp32 * torch_vectors).sum(axis=1).min() > 0.9999
    assert (int8 * torch_vectors).sum(axis=1).min() > 0.9  # a random tiny BERT; the real model: BENCHMARKS.md


def test_cls_pooling_is_exported_too(tiny_model_dir, cache):
    config = EncoderConfig(model=str(tiny_model_dir), device="cpu", pooling="cls")
    cos = (Encoder(config).encode(TEXTS) * Encoder(dataclasses.replace(config, backend="onnx")).encode(TEXTS))
    assert cos.sum(axis=1).min() > 0.9999


def test_the_export_is_cached_per_fingerprint_not_per_process(tiny_model_dir, cache):
    config = EncoderConfig(model=str(tiny_model_dir), device="cpu", backend="onnx-int8")
    first = Encoder(config)
    files = sorted(cache.rglob("*.onnx"))
    assert [f.name for f in files] == ["model-int8-per-channel.onnx", "model.onnx"]
    stamps = [f.stat().st_mtime_ns for f in files]
    second = Encoder(config)
    assert [f.stat().st_mtime_ns for f in sorted(cache.rglob("*.onnx"))] == stamps  # loaded, not re-exported
    np.testing.assert_array_equal(first.encode(TEXTS), second.encode(TEXTS))
    other = Encoder(dataclasses.replace(config, max_length=16))  # another fingerprint: its own export
    assert other.fingerprint != first.fingerprint and len(list(cache.rglob("model-int8-*.onnx"))) == 2


def test_the_backend_is_part_of_the_encoder_info_not_of_its_space(tiny_model_dir, cache):
    config = EncoderConfig(model=str(tiny_model_dir), device="cpu")
    torch_info = Encoder(config).info()
    int8_info = Encoder(dataclasses.replace(config, backend="onnx-int8")).info()
    assert int8_info.backend == "onnx-int8" and torch_info.backend == "torch"
    assert int8_info.fingerprint == torch_info.fingerprint


def test_an_unknown_backend_or_onnx_on_a_gpu_is_refused():
    with pytest.raises(ValueError, match="use one of"):
        EncoderConfig(backend="tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU"):
        EncoderConfig(backend="onnx", device="cuda")


def test_a_version_records_its_backend_and_a_backend_change_re_embeds_everything(tmp_path, tiny_model_dir,
                                                                                    sample_catalog_path, cache):
    from coldstart.artifacts.manifest import latest_version, read_manifest
    from coldstart.artifacts.store import open_store
    from coldstart.config import JobConfig
    from coldstart.publish import embed_in_process, publish_catalog

    job = JobConfig(catalog=str(sample_catalog_path), store=str(tmp_path / "store"),
                    encoder=EncoderConfig(model=str(tiny_model_dir), device="cpu"))
    publish_catalog(job, embed=embed_in_process)
    int8 = job.replace(encoder__backend="onnx-int8")
    result = publish_catalog(int8, embed=embed_in_process)
    assert result.published and result.full_reembed and result.counts["carried_over"] == 0
    store = open_store(job.store)
    assert read_manifest(store, latest_version(store)).encoder.backend == "onnx-int8"
    assert not publish_catalog(int8, embed=embed_in_process).published  # same backend again: nothing to do


def test_a_reader_refuses_item_vectors_its_backend_may_not_search(tmp_path, tiny_model_dir, sample_catalog_path,
                                                                   cache, monkeypatch):
    from coldstart.artifacts import manifest
    from coldstart.artifacts.manifest import VersionRejected
    from coldstart.artifacts.store import open_store
    from coldstart.artifacts.versions import load_version
    from coldstart.config import JobConfig
    from coldstart.publish import embed_in_process, publish_catalog

    job = JobConfig(catalog=str(sample_catalog_path), store=str(tmp_path / "store"),
                    encoder=EncoderConfig(model=str(tiny_model_dir), device="cpu", backend="onnx-int8"))
    publish_catalog(job, embed=embed_in_process)
    torch_info = dataclasses.replace(Encoder(job.encoder).info(), backend="torch")
    assert load_version(open_store(job.store), expect=torch_info).version  # accepted by today's table
    monkeypatch.setitem(manifest.COMPATIBLE_BACKENDS, "torch", frozenset({"torch", "onnx"}))
    with pytest.raises(VersionRejected, match="re-embed the catalog with `--backend torch`"):
        load_version(open_store(job.store), expect=torch_info)


def test_a_pruned_student_has_fewer_layers_and_learns_the_teachers_vectors(tmp_path):
    from transformers import AutoConfig

    from coldstart.training.prune import PruneConfig, prune_and_distil
    from tests.fixtures.models import save_tiny_bert

    teacher = save_tiny_bert(tmp_path / "teacher", layers=4, initializer_range=0.3)  # layers that matter
    texts = [f"{a} {b}" for a in ("red", "blue", "green", "steel", "oak") for b in ("chair", "lamp", "drill", "hose")]
    summary = prune_and_distil(teacher, texts, tmp_path / "student",
                               PruneConfig(keep=(0, 2), steps=60, batch_size=8, lr=1e-3, max_length=16))
    assert AutoConfig.from_pretrained(tmp_path / "student").num_hidden_layers == 2
    assert summary["probe_loss_before"] > 0.01  # dropping two of four layers moved the vectors
    assert summary["probe_loss_after"] < summary["probe_loss_before"] / 2
    student = Encoder(EncoderConfig(model=str(tmp_path / "student"), device="cpu", max_length=16))
    assert student.encode(texts).shape == (len(texts), 32)  # an ordinary model directory: it encodes
    with pytest.raises(ValueError, match="cannot keep"):
        prune_and_distil(teacher, texts, tmp_path / "x", PruneConfig(keep=(0, 5), steps=0))
