"""model = "multilingual" (the packaged USE v3): Chinese queries find Chinese and English products of the same kind.

Known answers on a small bilingual catalog with no brand names and no shared characters between languages, so a
match can only come from meaning.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coldstart.config import JobConfig
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.publish import embed_in_process, publish_catalog
from coldstart.ranking.config import RetrievalConfig
from coldstart.ranking.dense import UserRequest
from coldstart.ranking.pipeline import RankingPipeline, load_recommender

CATALOG = {
    "shoe-zh": "轻便跑步鞋", "shoe-en": "lightweight running shoes",
    "chair-zh": "户外折叠椅", "chair-en": "folding garden chair",
    "drill-zh": "无刷电钻", "drill-en": "cordless power drill",
    "lamp-zh": "护眼台灯", "lamp-en": "LED desk lamp",
    "fridge-zh": "双开门冰箱", "fridge-en": "french door refrigerator",
}
KINDS = {"跑鞋": "shoe", "花园椅子": "chair", "电钻": "drill", "台灯": "lamp", "冰箱": "fridge",
         "running shoes": "shoe", "desk lamp": "lamp"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("multilingual")
    pq.write_table(pa.table({"item_id": list(CATALOG), "title": list(CATALOG.values())}), root / "catalog.parquet")
    job = JobConfig(catalog=str(root / "catalog.parquet"), store=str(root / "store"),
                    encoder=EncoderConfig(model="multilingual"))
    assert publish_catalog(job, embed=embed_in_process).published
    return RankingPipeline(load_recommender(job), RetrievalConfig(), retriever="dense")


@pytest.mark.parametrize("query", sorted(KINDS))
def test_a_query_finds_both_languages_products_of_its_kind_first(pipeline, query):
    top2 = {item for item, _ in pipeline.search([UserRequest(query=query)], k=2)[0]}
    assert top2 == {f"{KINDS[query]}-zh", f"{KINDS[query]}-en"}


def test_clicks_in_one_language_recommend_the_same_kind_in_the_other(pipeline):
    top = pipeline.search([UserRequest(clicks=("drill-zh",))], k=1)[0]
    assert top[0][0] == "drill-en"


def test_the_vectors_are_512_d_unit_vectors_and_the_version_records_their_engine(pipeline):
    info = pipeline.recommender.encoder.info()
    assert (info.dim, info.backend) == (512, "numpy")
    assert pipeline.recommender.version.manifest.encoder.fingerprint == info.fingerprint
    vectors = pipeline.recommender.encoder.encode(["跑鞋", "running shoes"])
    assert vectors.shape == (2, 512) and abs(float((vectors[0] ** 2).sum()) - 1) < 1e-5


def test_what_needs_a_hugging_face_model_says_so():
    from coldstart.encoders.model_source import resolve_model_dir

    with pytest.raises(ValueError, match="not a Hugging Face directory"):
        resolve_model_dir("multilingual")  # fine-tuning and the re-ranker load through this
    with pytest.raises(ValueError, match="own numpy engine"):
        EncoderConfig(model="multilingual", backend="onnx-int8")
    assert not Encoder(EncoderConfig(model="multilingual")).lowercases  # the query cache keeps case
