"""The HTTP API's request and response models (pydantic): what /docs shows, and what bad input is told.

Limits are part of the contract and appear in the OpenAPI schema: ``k`` in ``1..MAX_K``, at most ``MAX_CLICKS``
clicks and ``MAX_EXCLUDE`` excluded ids, a query of at most ``MAX_QUERY_CHARS`` characters (longer queries are
refused; queries longer than the encoder reads — 128 tokens for MiniLM — are truncated and the response says so).

:func:`explain_validation_errors` turns pydantic's error list into one sentence a client developer can act on
("k: must be at most 100 — send k between 1 and 100"), used by the ingress for every 4xx.
"""

from __future__ import annotations

from typing import Annotated, Any, Iterable

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

MAX_K = 100
MAX_CLICKS = 50
MAX_EXCLUDE = 500
MAX_QUERY_CHARS = 4096
MAX_ID_CHARS = 256

ItemId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
# A character that is not whitespace. Under Python's `re`, `\s` is exactly what `str.strip()` removes, so the schema
# and `_needs_signal` agree; ECMA-262 regexes differ only on U+001C–U+001F, U+0085 and U+FEFF.
NON_BLANK = r"\S"


def _json_integer(value: Any) -> Any:
    if isinstance(value, (bool, str)):
        raise ValueError(f"must be a JSON number with no fraction, not {type(value).__name__} {value!r}")
    return value


# An integer as JSON Schema defines one: 10 and 10.0 (a number with a zero fraction), not 10.5, "10" or true.
JsonInt = Annotated[int, BeforeValidator(_json_integer), Field(strict=False)]

EXAMPLE_REQUEST = {"query": "office chair", "clicks": ["SKU00042", "SKU00107"], "k": 10, "diversity": 0.3}


class RecommendRequest(BaseModel):
    """A new user's request: what they typed and/or the products they clicked so far (oldest first)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [EXAMPLE_REQUEST, {"query": "cordless drill"}, {"clicks": ["SKU00042"], "k": 5}],
        # what `_needs_signal` checks, in the schema too, so that clients and fuzzers see it
        "anyOf": [
            {"required": ["query"], "properties": {"query": {"type": "string", "pattern": NON_BLANK}}},
            {"required": ["clicks"], "properties": {"clicks": {"minItems": 1}}},
        ],
    })

    query: str | None = Field(
        None, max_length=MAX_QUERY_CHARS,
        description="What the user typed. Optional when `clicks` is given. Matching ignores case and repeated "
        "whitespace. Text beyond the encoder's maximum length (128 tokens) is ignored and the response says so.",
        examples=["office chair"],
    )
    clicks: list[ItemId] = Field(
        default_factory=list, max_length=MAX_CLICKS,
        description="Item ids the user clicked, oldest first; recent clicks weigh more. Clicked items are never "
        "recommended. Ids not in the index are ignored and listed in `unknown_clicks`.",
        examples=[["SKU00042", "SKU00107"]],
    )
    k: JsonInt = Field(10, ge=1, le=MAX_K, description="How many products to return.", examples=[10])
    exclude: list[ItemId] = Field(
        default_factory=list, max_length=MAX_EXCLUDE,
        description="Item ids never to return (e.g. already in the basket).", examples=[["SKU00999"]],
    )
    diversity: float = Field(
        0.0, ge=0.0, le=1.0,
        description="MMR λ: 0 ranks by relevance only; higher values spread the results over different kinds of "
        "product (0.3 is a good start) so 'chair' shows office, dining and garden chairs.",
        examples=[0.3],
    )

    @model_validator(mode="after")
    def _needs_signal(self) -> "RecommendRequest":
        if not (self.query and self.query.strip()) and not self.clicks:
            raise ValueError("send a non-empty `query` or at least one item id in `clicks` (the query was "
                             f"{'empty or only whitespace' if self.query is not None else 'missing'} and there "
                             "were no clicks)")
        return self


class RecommendedItem(BaseModel):
    item_id: str = Field(description="The product's id in the catalog.", examples=["SKU00042"])
    title: str = Field(description="The product's title.", examples=["Steelcase adjustable mesh desk chair"])
    score: float = Field(description="The ranking's score (higher is better): the cosine to the user's profile for "
                         "dense ranking, the blend of z-scored signals otherwise.", examples=[0.71])


class Timing(BaseModel):
    total_ms: float = Field(description="Time in the service, from request parsed to response built.")
    encode_ms: float = Field(description="Query encoding, including batching wait; 0 without a query.")
    retrieve_ms: float = Field(description="Profile, search and MMR re-ranking in the retriever.")
    rerank_ms: float = Field(0.0, description="The cross-encoder re-ranker, including batching wait; 0 without one.")


class RecommendResponse(BaseModel):
    request_id: str = Field(description="Echoes the X-Request-ID header, or a new id; also in the logs.")
    index_version: str = Field(description="The published index version that answered.",
                               examples=["20261130T071500123Z-3f9a1c2e"])
    items: list[RecommendedItem] = Field(description="Best first. Empty only when nothing usable was sent.")
    unknown_clicks: list[str] = Field(description="Clicked ids not in this index version (ignored).")
    query_truncated: bool = Field(description="The query was longer than the encoder reads and was cut.")
    cache_hit: bool | None = Field(description="The query's embedding came from the cache (null: no query).")
    warnings: list[str] = Field(description="Things the client may want to fix; the request still succeeded.")
    timing_ms: Timing
    signals_version: str | None = Field(None, description="The published session signals that ranked it (with "
                                        "the app's `session_signals`), or null.")
    signals: list[str] = Field(default_factory=list, description=(
        "What ranked the answer: `dense` (the encoder's cosine), `bm25`, `covisit`, `popularity`, `category`, "
        "`brand` (other users' sessions), `neighbours`, `mmr` (diversity), `reranker` (the cross-encoder), "
        "`ranker` (the learned ranker ordered the candidates)."),
        examples=[["dense", "bm25"]])


class ErrorResponse(BaseModel):
    error: str = Field(min_length=1, description="What was wrong and what to change.")
    details: list[dict[str, Any]] = Field(default_factory=list, description="Per-field errors, when any.")


class Item(BaseModel):
    item_id: str
    title: str
    text: str = Field(description="The text that was embedded for this product.")
    index_version: str


class ReplicaHealth(BaseModel):
    replica: str = Field(description="Deployment and replica id, e.g. `Ingress#a1b2c3`.")
    healthy: bool = Field(description="False when the store has a version this replica could not load; Serve "
                          "replaces such a replica.")
    problem: str | None = None
    ready: bool
    index_version: str | None
    items: int | None
    swaps: int = 0
    rejected_versions: dict[str, str] = Field(default_factory=dict)
    last_error: str | None = None
    signals_version: str | None = None
    rejected_signals: dict[str, str] = Field(default_factory=dict)
    reported_at: float = Field(description="Unix time of the replica's last report (every poll interval).")


class Health(BaseModel):
    status: str = Field(description="`ok` once an index version is loaded, `loading` before.")
    index_version: str | None
    items: int | None = Field(description="Products in the loaded version.")
    last_error: str | None = Field(description="The last refused version or load failure, if any.")
    rejected_versions: dict[str, str] = Field(description="Versions refused since start, with the reason.")
    signals_version: str | None = Field(None, description="The published session signals blended for clicks "
                                        "(with `session_signals`), or null.")
    rejected_signals: dict[str, str] = Field(default_factory=dict, description="Session signals refused, with "
                                             "the reason (another catalog, a bad checksum).")
    replicas: list[ReplicaHealth] = Field(default_factory=list, description=(
        "Every serving replica's version and health (each reports every poll interval); during a swap they "
        "differ for up to one poll interval."))


def _field(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) if parts else "body"


_HINTS = {
    "json_invalid": "send a JSON object, e.g. " + '{"query": "office chair", "k": 10}',
    "missing": "send a JSON object with a `query` and/or `clicks`, e.g. " + '{"query": "office chair"}',
    "model_attributes_type": "the body must be a JSON object, e.g. " + '{"query": "office chair"}',
    "extra_forbidden": "known fields are query, clicks, k, exclude, diversity",
}


def explain_validation_errors(errors: list[dict[str, Any]]) -> tuple[int, ErrorResponse]:
    """(HTTP status, error body) for pydantic/FastAPI validation errors: one sentence plus per-field details.

    400 when the body is not JSON at all, 422 when it is JSON with wrong fields.
    """
    status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
    messages = []
    details = [{"field": _field(e.get("loc", ())), "type": e.get("type", ""),
                "message": str(e.get("msg", "")).removeprefix("Value error, ")} for e in errors]
    for e in errors:
        kind = e.get("type", "")
        where = _field(e.get("loc", ()))
        msg = str(e.get("msg", "invalid value"))
        msg = msg.removeprefix("Value error, ")
        if kind == "json_invalid":
            ctx = e.get("ctx") or {}
            messages.append(f"the body is not valid JSON ({ctx.get('error', msg)}): {_HINTS[kind]}")
        elif kind == "missing" and where == "body":
            messages.append(f"the request has no body: {_HINTS['missing']}")
        elif kind == "extra_forbidden":
            messages.append(f"unknown field `{where}`: {_HINTS[kind]}")
        elif kind == "model_attributes_type":
            messages.append(_HINTS[kind])
        elif where in ("body", ""):
            messages.append(msg)
        else:
            messages.append(f"{where}: {msg}")
    return status, ErrorResponse(error="; ".join(messages) or "invalid request", details=details)
