"""The Serve app's one log line per request, as structured fields: what ``pipelines/serve_app.py`` passes to the
replica's logger.

The fields travel under ``extra={"ray_serve_extra_fields": {...}}``, the key Ray Serve's own request logs use: with
Serve's ``logging_config: encoding: JSON`` its formatter writes them as top-level keys of the line's JSON object,
beside Serve's ``request_id``, ``deployment``, ``replica``, ``route`` and ``application``; with the default ``TEXT``
encoding the message itself holds the same numbers. Counts only — what a user typed and clicked is in
:func:`content_fields`, which the app logs only when ``log_request_content`` is on.
"""

from __future__ import annotations

from typing import Any, Sequence

SERVE_EXTRA = "ray_serve_extra_fields"


def request_fields(*, request_id: str, index_version: str | None, k: int, items: int, clicks: int,
                   unknown_clicks: int, cache_hit: bool | None, latency_ms: float) -> dict[str, Any]:
    """The request's id, the version that answered, its counts and its latency: no query text, no item id."""
    return {"event": "recommend", "request_id": request_id, "index_version": index_version, "k": int(k),
            "n_items": int(items), "n_clicks": int(clicks), "n_unknown_clicks": int(unknown_clicks),
            "cache_hit": cache_hit, "latency_ms": round(float(latency_ms), 2)}


def content_fields(*, request_id: str, query: str | None, clicks: Sequence[str]) -> dict[str, Any]:
    """What the user sent: only for an operator who turned ``log_request_content`` on."""
    return {"event": "recommend_content", "request_id": request_id, "query": query, "clicks": list(clicks)}
