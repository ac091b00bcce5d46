"""The Serve app's request log line as structured fields (coldstart/serving/request_log.py): counts and ids only,
written as one JSON object by Ray Serve's JSON encoding (the formatter its ``logging_config: encoding: JSON`` uses)."""

from __future__ import annotations

import json
import logging

from coldstart.logs import JsonFormatter
from coldstart.serving.request_log import SERVE_EXTRA, content_fields, request_fields

FIELDS = dict(request_id="r-1", index_version="20261202T000000000Z-abc", k=10, items=10, clicks=2, unknown_clicks=1,
              cache_hit=False, latency_ms=12.3456)


def _record(extra: dict) -> logging.LogRecord:
    return logging.getLogger("ray.serve.coldstart").makeRecord(
        "ray.serve.coldstart", logging.INFO, "serve_app.py", 1, "recommend request_id=%s", ("r-1",), None, extra=extra)


def test_the_request_fields_are_counts_and_ids_never_what_the_user_sent():
    fields = request_fields(**FIELDS)
    assert fields == {"event": "recommend", "request_id": "r-1", "index_version": "20261202T000000000Z-abc", "k": 10,
                      "n_items": 10, "n_clicks": 2, "n_unknown_clicks": 1, "cache_hit": False, "latency_ms": 12.35}
    assert content_fields(request_id="r-1", query="office chair", clicks=("SKU1",))["clicks"] == ["SKU1"]


def test_serves_json_encoding_writes_them_as_top_level_keys_of_one_object():
    from ray._common.formatters import JSONFormatter  # what Serve's replica file handler uses with encoding JSON

    line = JSONFormatter().format(_record({SERVE_EXTRA: request_fields(**FIELDS)}))
    assert "\n" not in line
    out = json.loads(line)
    assert out["message"] == "recommend request_id=r-1" and out["levelname"] == "INFO"
    assert {k: out[k] for k in ("request_id", "index_version", "n_clicks", "latency_ms")} == {
        "request_id": "r-1", "index_version": "20261202T000000000Z-abc", "n_clicks": 2, "latency_ms": 12.35}
    assert SERVE_EXTRA not in out


def test_our_json_formatter_flattens_them_the_same_way():
    out = json.loads(JsonFormatter().format(_record({SERVE_EXTRA: request_fields(**FIELDS)})))
    assert out["logger"] == "ray.serve.coldstart" and out["n_items"] == 10 and SERVE_EXTRA not in out
