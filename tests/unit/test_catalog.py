import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coldstart.catalog.reader import CatalogError, CatalogSchema, compose_text, validate_catalog

SCHEMA = CatalogSchema(text_cols=("title", "brand"))


def _check_counts(result):
    assert result.rows_read == result.rows_good + result.rows_quarantined


def test_jsonl_bad_rows_are_quarantined_with_reasons(tmp_path):
    path = tmp_path / "cat.jsonl"
    lines = [
        json.dumps({"item_id": "a", "title": "Drill", "brand": "DeWalt"}).encode(),
        json.dumps({"item_id": "a", "title": "Again"}).encode(),  # duplicate
        json.dumps({"title": "No id"}).encode(),  # missing id
        json.dumps({"item_id": "c", "title": "  ", "brand": ""}).encode(),  # empty text
        b'{"item_id": "d", "title": "bad \xff byte"}',  # invalid UTF-8
        json.dumps({"item_id": "e", "title": "x" * 20_001}).encode(),  # absurdly long
        json.dumps({"item_id": ["f"], "title": "list id"}).encode(),  # wrong id type
        json.dumps({"item_id": "g", "title": {"nested": [1, 2]}}).encode(),  # wrong text type
        b"{not json",
        json.dumps({"item_id": 7, "title": "Saw", "brand": None}).encode(),  # integer id is fine
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = validate_catalog(str(path), CatalogSchema(text_cols=("title", "brand"), max_chars=20_000))
    _check_counts(result)
    assert result.good.column("item_id").to_pylist() == ["a", "7"]
    assert result.good.column("text").to_pylist() == ["Drill. DeWalt", "Saw"]
    reasons = {q["row"]: q["reason"] for q in result.quarantine}
    assert "duplicate id (first seen at" in reasons[2] and ":1)" in reasons[2]
    assert "missing id" in reasons[3]
    assert "empty text" in reasons[4]
    assert "invalid UTF-8" in reasons[5]
    assert "over max_chars" in reasons[6]
    assert "must be a string or an integer" in reasons[7]
    assert "wrong type" in reasons[8]
    assert "not valid JSON" in reasons[9]
    assert all(q["source"] == str(path) for q in result.quarantine)
    assert len(result.quarantine_jsonl().splitlines()) == 8


def test_csv_invalid_utf8_costs_one_row(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_bytes(b"item_id,title,brand\n1,Hammer,Stanley\n2,Bad \xfe,X\n3,\"Saw, hand\",Irwin\n4,only two\n")
    result = validate_catalog(str(path), SCHEMA)
    _check_counts(result)
    assert result.good.column("item_id").to_pylist() == ["1", "3"]
    assert result.good.column("text").to_pylist()[1] == "Saw, hand. Irwin"
    assert [q["row"] for q in result.quarantine] == [2, 3 + 1]


def test_parquet_lists_and_template(tmp_path):
    path = tmp_path / "cat.parquet"
    pq.write_table(pa.table({"sku": ["s1", "s2"], "title": ["Chair", "Sofa"], "cats": [["Furniture", "Chairs"], []]}),
                   path)
    schema = CatalogSchema(id_col="sku", text_cols=("title", "cats"), template="{title}. {cats}")
    result = validate_catalog(str(path), schema)
    assert result.good.column("text").to_pylist() == ["Chair. Furniture, Chairs", "Sofa"]
    assert result.good.column("title").to_pylist() == ["Chair", "Sofa"]


def test_folder_of_files_and_fingerprint_is_order_free(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"item_id": "1", "title": "A"}) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"item_id": "2", "title": "B"}) + "\n")
    one = validate_catalog(str(tmp_path), CatalogSchema())
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.jsonl").write_text(json.dumps({"item_id": "2", "title": "B"}) + "\n"
                                   + json.dumps({"item_id": "1", "title": "A"}) + "\n")
    assert one.rows_good == 2 and one.fingerprint() == validate_catalog(str(other), CatalogSchema()).fingerprint()


def test_zero_good_rows_is_an_error_after_quarantine(tmp_path):
    path = tmp_path / "cat.jsonl"
    path.write_text(json.dumps({"item_id": "1", "title": ""}) + "\n")
    result = validate_catalog(str(path), CatalogSchema())
    assert result.rows_quarantined == 1
    with pytest.raises(CatalogError, match="none of its 1 rows is usable"):
        result.require_rows()


def test_wrong_columns_say_what_to_change(tmp_path):
    path = tmp_path / "cat.jsonl"
    path.write_text(json.dumps({"id": "1", "name": "A"}) + "\n")
    with pytest.raises(CatalogError, match="--id-col"):
        validate_catalog(str(path), CatalogSchema())


def test_missing_catalog_and_bad_template():
    with pytest.raises(CatalogError, match="does not exist"):
        validate_catalog("/nonexistent/catalog.parquet")
    with pytest.raises(ValueError, match="not in text_cols"):
        CatalogSchema(text_cols=("title",), template="{title} {brand}")


def test_template_tidies_empty_fields():
    schema = CatalogSchema(text_cols=("title", "brand", "cats"), template="{title}. {brand}. {cats}")
    assert compose_text({"title": "Chair", "brand": "", "cats": "Furniture"}, schema) == "Chair. Furniture"


def test_a_required_column_that_is_empty_quarantines_the_row_whatever_else_it_has(tmp_path):
    """`title=""` with a category has text to embed, but no title to show: with `required = ["title"]` it is
    quarantined, as are a missing, whitespace-only and NaN title (what pandas writes for a missing value)."""
    path = tmp_path / "cat.parquet"
    pq.write_table(pa.table({
        "item_id": ["a", "b", "c", "d", "e"],
        "title": ["Drill", "", "   ", None, "Saw"],
        "category": ["tools", "tools", "tools", "tools", "tools"],
        "price": [1.0, 2.0, 3.0, 4.0, float("nan")],
    }), path)
    lenient = validate_catalog(str(path), CatalogSchema(text_cols=("title", "category")))
    assert lenient.good.column("item_id").to_pylist() == ["a", "b", "c", "d", "e"]  # the old behaviour, by default

    strict = validate_catalog(str(path), CatalogSchema(text_cols=("title", "category"), required=("title",)))
    _check_counts(strict)
    assert strict.good.column("item_id").to_pylist() == ["a", "e"]
    assert {q["item_id"]: q["reason"] for q in strict.quarantine} == {
        i: "required column 'title' is empty" for i in ("b", "c", "d")}
    priced = validate_catalog(str(path), CatalogSchema(text_cols=("title",), required=("title", "price")))
    assert priced.good.column("item_id").to_pylist() == ["a"]  # NaN price: empty
    assert [q["reason"] for q in priced.quarantine if q["item_id"] == "e"] == ["required column 'price' is empty"]


def test_a_nan_text_value_is_empty_not_the_word_nan(tmp_path):
    path = tmp_path / "cat.parquet"
    pq.write_table(pa.table({"item_id": ["a", "b"], "title": ["Drill", "Saw"], "brand": [float("nan"), 3.5]}), path)
    result = validate_catalog(str(path), CatalogSchema(text_cols=("title", "brand")))
    assert result.good.column("text").to_pylist() == ["Drill", "Saw. 3.5"]


def test_required_columns_come_from_the_config_file_and_the_flag(tmp_path):
    import argparse

    from coldstart.config import config_from_dict, config_from_flags

    assert config_from_dict({"schema": {"required": ["title"]}}).schema.required == ("title",)
    args = argparse.Namespace(required_cols="title, brand")
    assert config_from_flags(args).schema.required == ("title", "brand")
