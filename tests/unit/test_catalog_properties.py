"""Property-based tests of the catalog reader (hypothesis): whatever a file holds, every row is indexed or
quarantined with a reason, and rows_read = rows_good + rows_quarantined."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldstart.catalog.reader import CatalogError, CatalogSchema, validate_catalog

SCHEMA = CatalogSchema(text_cols=("title", "brand"))
# Text that stresses a CSV parser: delimiters, quotes, both newlines, a BOM, CJK, surrogate-free unicode.
FIELD = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\t;\ufeff鞋椅é/1x')), max_size=12)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _accounted(result, written: int | None = None) -> None:
    assert result.rows_read == result.rows_good + result.rows_quarantined
    if written is not None:
        assert result.rows_read == written
    assert all(q.get("reason") for q in result.quarantine)


@SETTINGS
@given(rows=st.lists(st.tuples(FIELD, FIELD), min_size=1, max_size=8), bom=st.booleans())
def test_csv_quoted_fields_round_trip_and_every_row_is_accounted_for(tmp_path_factory, rows, bom):
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["item_id", "title", "brand"])
    for n, (title, brand) in enumerate(rows):
        writer.writerow([f"id{n}", title, brand])
    path = tmp_path_factory.mktemp("csv") / "catalog.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8"))
    result = validate_catalog(str(path), SCHEMA)
    _accounted(result, written=len(rows))
    good = dict(zip(result.good.column("item_id").to_pylist(), result.good.column("title").to_pylist()))
    for n, (title, brand) in enumerate(rows):
        if f"id{n}" in good:  # a good row keeps its title whole: commas, quotes and newlines included
            assert good[f"id{n}"] == title.strip() or not title.strip()  # (no title: the text stands in)
        else:
            assert not (title.strip() or brand.strip())  # only a row without any text is quarantined


@SETTINGS
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["csv", "jsonl"]))
def test_random_bytes_are_quarantined_row_by_row_never_a_crash(tmp_path_factory, data, fmt):
    path = tmp_path_factory.mktemp("bytes") / f"catalog.{fmt}"
    path.write_bytes(b"item_id,title,brand\n" + data if fmt == "csv" else data)
    try:
        result = validate_catalog(str(path), SCHEMA)
    except CatalogError:
        return  # a file that is not a catalog at all (e.g. no header) is one clear error
    _accounted(result)


@SETTINGS
@given(records=st.lists(st.dictionaries(st.sampled_from(["item_id", "title", "brand", "extra"]),
                                        st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), FIELD,
                                                  st.lists(FIELD, max_size=3), st.booleans()),
                                        max_size=4), max_size=8))
def test_json_lines_of_mixed_types_nan_and_missing_ids(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("jsonl") / "catalog.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    try:
        result = validate_catalog(str(path), SCHEMA)
    except CatalogError:
        return
    _accounted(result, written=len(records))


@SETTINGS
@given(rows=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["a", "b", " ", ""]), st.text(max_size=4)),
                               st.one_of(st.none(), FIELD), st.one_of(st.none(), st.floats(allow_nan=True))),
                     max_size=10),
       required=st.sampled_from([(), ("title",)]))
def test_parquet_with_nulls_nan_duplicates_and_required_columns(tmp_path_factory, rows, required):
    """Typed columns as a warehouse export writes them: null and duplicate ids, null titles, a NaN-able number
    among the text columns. Every row is accounted for; a good row has a unique id, text that never says "nan",
    and, with ``required = ["title"]``, a title."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("parquet") / "catalog.parquet"
    ids, titles, sizes = (list(c) for c in zip(*rows)) if rows else ([], [], [])
    pq.write_table(pa.table({"item_id": pa.array(ids, pa.string()), "title": pa.array(titles, pa.string()),
                             "size": pa.array(sizes, pa.float64())}), path)
    schema = CatalogSchema(text_cols=("title", "size"), required=required)
    try:
        result = validate_catalog(str(path), schema)
    except CatalogError:
        assert not rows  # only an empty file is refused as a whole
        return
    _accounted(result, written=len(rows))
    good_ids = result.good.column("item_id").to_pylist()
    assert len(good_ids) == len(set(good_ids))
    if not any("nan" in (t or "").lower() for t in titles):
        assert not any("nan" in text.lower() for text in result.good.column("text").to_pylist())
    if required:
        titled = {i.strip() for i, t, _ in rows if i is not None and t is not None and t.strip()}
        assert set(good_ids) <= titled


def test_a_quoted_title_with_a_newline_is_one_product(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text('item_id,title,brand\n1,"Garden hose,\n50 ft green",Acme\n2,Drill,Volt\n')
    result = validate_catalog(str(path), SCHEMA)
    assert result.rows_read == 2 and result.rows_quarantined == 0
    assert result.good.column("title").to_pylist() == ["Garden hose,\n50 ft green", "Drill"]


def test_huge_rows_are_quarantined_for_their_size(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text(f"item_id,title,brand\n1,{'x' * 20_000},Acme\n2,Drill,Volt\n")
    result = validate_catalog(str(path), SCHEMA)
    assert result.good.column("item_id").to_pylist() == ["2"]
    assert "over max_chars" in result.quarantine[0]["reason"]
