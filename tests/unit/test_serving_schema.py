"""The HTTP schema: what is accepted, what is refused, and that refusals say what to change."""

import pytest
from pydantic import ValidationError

from coldstart.serving.schema import MAX_K, RecommendRequest, explain_validation_errors


def _errors(**body):
    with pytest.raises(ValidationError) as info:
        RecommendRequest.model_validate(body)
    return explain_validation_errors(info.value.errors())


def test_accepts_query_clicks_or_both():
    assert RecommendRequest(query="chair").k == 10
    assert RecommendRequest(clicks=["SKU1"]).query is None
    both = RecommendRequest(query="chair", clicks=["SKU1"], k=3, exclude=["SKU2"], diversity=0.3)
    assert (both.k, both.diversity, both.exclude) == (3, 0.3, ["SKU2"])


@pytest.mark.parametrize("body", [{}, {"query": ""}, {"query": "   \t"}, {"query": None, "clicks": []}])
def test_no_signal_is_422_with_the_fix(body):
    status, error = _errors(**body)
    assert status == 422 and "send a non-empty `query` or at least one item id in `clicks`" in error.error


def test_field_errors_name_the_field():
    status, error = _errors(query="chair", k=MAX_K + 1)
    assert status == 422 and error.error.startswith("k: ") and str(MAX_K) in error.error
    assert error.details[0]["field"] == "k"
    assert "diversity" in _errors(query="chair", diversity=2)[1].error
    assert "clicks.0" in _errors(clicks=[""])[1].error
    assert "unknown field `querry`" in _errors(querry="chair")[1].error
    assert "query: " in _errors(query="x" * 5000)[1].error


@pytest.mark.parametrize("field, value", [("diversity", False), ("k", True), ("k", "10"), ("k", 2.5),
                                          ("query", 5), ("clicks", "SKU1"), ("exclude", [3])])
def test_no_coercion_a_wrong_type_is_a_422_naming_the_field(field, value):
    """Strict: `false` is not a diversity of 0 and "10" is not k = 10; a client bug is reported, not guessed."""
    body = {"query": "chair", field: value} if field != "query" else {field: value}
    status, error = _errors(**body)
    assert status == 422 and error.error.startswith(field), error.error
    assert RecommendRequest.model_validate({"query": "chair", "diversity": 1, "k": 5}).diversity == 1.0  # ints are numbers


def test_malformed_json_is_400():
    with pytest.raises(ValidationError) as info:
        RecommendRequest.model_validate_json(b'{"query": "chair",')
    status, error = explain_validation_errors(info.value.errors())
    assert status == 400 and "not valid JSON" in error.error and '{"query"' in error.error


def test_openapi_schema_documents_the_api():
    """The schema /docs renders: every request field described, with examples, and the error model."""
    from pipelines.serve_app import app

    spec = app.openapi()
    post = spec["paths"]["/recommend"]["post"]
    assert {"200", "400", "422", "503"} <= set(post["responses"])
    request = spec["components"]["schemas"]["RecommendRequest"]
    for name in ("query", "clicks", "k", "exclude", "diversity"):
        assert request["properties"][name].get("description"), name
    assert request["properties"]["k"]["maximum"] == MAX_K
    assert request.get("examples")
    assert {"/healthz", "/metrics", "/items/{item_id}"} <= set(spec["paths"])


def test_the_schema_says_query_or_clicks_and_agrees_with_the_model():
    """What `_needs_signal` refuses the schema refuses too (checked with a JSON Schema validator), and a JSON
    integer is one with or without a zero fraction, as JSON Schema defines it."""
    import jsonschema

    from pipelines.serve_app import app

    spec = app.openapi()
    schema = {**spec["components"]["schemas"]["RecommendRequest"], "$defs": spec["components"]["schemas"]}
    validator = jsonschema.Draft202012Validator(schema)
    cases = [{}, {"query": "   "}, {"query": None}, {"clicks": []}, {"query": "\t", "clicks": []},
             {"query": "chair"}, {"clicks": ["SKU1"]}, {"query": " ", "clicks": ["SKU1"]}, {"query": "chair", "k": 10.0}]
    for body in cases:
        by_schema = validator.is_valid(body)
        try:
            RecommendRequest.model_validate(body)
            by_model = True
        except ValidationError:
            by_model = False
        assert by_schema == by_model, (body, by_schema, by_model)
    assert RecommendRequest.model_validate({"query": "chair", "k": 10.0}).k == 10
