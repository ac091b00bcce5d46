"""The Ray Data embedding job on a real local Ray, against in-process encoding."""

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from coldstart.catalog.reader import CatalogError, CatalogSchema, validate_catalog
from coldstart.config import EmbedConfig, JobConfig
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.artifacts.versions import load_version
from coldstart.artifacts.manifest import latest_version, read_manifest, version_prefix
from coldstart.artifacts.store import LocalStore
from pipelines.embed import run_embed_job

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

SCHEMA = CatalogSchema(text_cols=("title", "brand", "categories"), template="{title}. {brand}. {categories}")


def _config(catalog, store, model, **embed):
    return JobConfig(catalog=str(catalog), store=str(store), schema=SCHEMA,
                     encoder=EncoderConfig(model=str(model), batch_size=16),
                     embed=EmbedConfig(rows_per_block=40, **embed))


def test_ray_vectors_equal_in_process_vectors(ray_local, sample_catalog_path, tiny_model_dir, tmp_path):
    result = run_embed_job(_config(sample_catalog_path, tmp_path / "store", tiny_model_dir))
    assert result.published and result.counts["rows_quarantined"] == 0

    encoder = Encoder(EncoderConfig(model=str(tiny_model_dir)))
    version = load_version(LocalStore(tmp_path / "store"), expect=encoder.info())
    catalog = validate_catalog(str(sample_catalog_path), SCHEMA)
    ids = catalog.good.column("item_id").to_pylist()
    assert sorted(version.index.ids) == sorted(ids) and len(set(version.index.ids)) == len(ids)  # each id once
    expected = encoder.encode(catalog.good.column("text").to_pylist())
    rows = [version.index.row_of[i] for i in ids]
    np.testing.assert_allclose(version.index.vectors[rows], expected, atol=1e-4)


def test_bad_rows_end_in_quarantine_and_counts_add_up(ray_local, tiny_model_dir, tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    rows = [json.dumps({"item_id": f"p{i}", "title": f"product {i}", "brand": "B", "categories": ["C"]}).encode()
            for i in range(30)]
    rows += [
        json.dumps({"item_id": "p1", "title": "duplicate"}).encode(),
        json.dumps({"title": "no id"}).encode(),
        json.dumps({"item_id": "e", "title": "", "brand": "", "categories": []}).encode(),
        b'{"item_id": "u", "title": "\xc3\x28 broken"}',
        json.dumps({"item_id": "long", "title": "y" * 20_000}).encode(),
        json.dumps({"item_id": {"x": 1}, "title": "dict id"}).encode(),
    ]
    catalog.write_bytes(b"\n".join(rows) + b"\n")
    store = LocalStore(tmp_path / "store")
    result = run_embed_job(_config(catalog, store.root, tiny_model_dir))
    c = result.counts
    assert (c["rows_read"], c["rows_good"], c["rows_quarantined"], c["embedded"]) == (36, 30, 6, 30)
    assert c["rows_read"] == c["embedded"] + c["carried_over"] + c["rows_quarantined"]
    quarantine = store.read_bytes(f"{version_prefix(result.version)}/quarantine.jsonl").decode().splitlines()
    reasons = [json.loads(line)["reason"] for line in quarantine]
    assert len(reasons) == 6
    for expected in ("duplicate id", "missing id", "empty text", "invalid UTF-8", "over max_chars", "string or an integer"):
        assert any(expected in r for r in reasons), expected
    report = json.loads(store.read_bytes(f"{version_prefix(result.version)}/report.json"))
    assert report["counts"]["rows_quarantined"] == 6
    table = pq.read_table(io.BytesIO(store.read_bytes(f"{version_prefix(result.version)}/items.parquet")))
    assert table.num_rows == 30


def test_zero_good_rows_fails_and_keeps_the_quarantine(ray_local, tiny_model_dir, tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(json.dumps({"item_id": "1", "title": ""}) + "\n")
    store = LocalStore(tmp_path / "store")
    with pytest.raises(CatalogError, match="none of its 1 rows is usable"):
        run_embed_job(_config(catalog, store.root, tiny_model_dir))
    assert latest_version(store) is None
    saved = [k for k in store.list("rejected") if k.endswith("quarantine.jsonl")]
    assert len(saved) == 1 and b"empty text" in store.read_bytes(saved[0])


def test_unchanged_catalog_publishes_nothing(ray_local, sample_catalog_path, tiny_model_dir, tmp_path):
    config = _config(sample_catalog_path, tmp_path / "store", tiny_model_dir)
    first = run_embed_job(config)
    second = run_embed_job(config)
    assert not second.published and second.version == first.version
    assert second.counts["embedded"] == 0 and second.counts["unchanged"] == first.counts["rows_good"]
    manifest = read_manifest(LocalStore(tmp_path / "store"), first.version)
    assert manifest.rows == first.counts["rows_good"]
