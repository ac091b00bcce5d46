"""The serving app on a real local Ray: HTTP answers, errors, health, metrics, and index hot swaps from S3.

The app reads its index from a bucket on the session's SeaweedFS server with the *read-only* identity (passed
to the replicas through their runtime_env, as a Serve config file would); the test publishes versions with the
admin identity. The tiny random BERT keeps start-up fast; one test uses the real packaged MiniLM.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import yaml

from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.artifacts.versions import load_version
from coldstart.ranking.user_vector import ProfileConfig
from coldstart.ranking.dense import DenseRecommender, UserRequest
from coldstart.catalog.sample import make_sample_catalog
from coldstart.serving.config import ServeAppArgs
from coldstart.artifacts.store import S3Options, S3Store, open_store
from tests.fixtures.secrets import files_holding
from tests.fixtures.s3 import unique_bucket_name
from tests.fixtures.versions import corrupt, items_table, publish, publish_encoded

pytestmark = pytest.mark.ray

SERVE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "serve.yaml"
MAX_LENGTH = 32  # short, so an over-long query is cheap to send
READY_TIMEOUT_S = 240  # app start is 15–20 s on an idle 2-core machine; much more when it is shared


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(client: httpx.Client, timeout_s: float = READY_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = client.get("/healthz")
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the app did not report ready within {timeout_s} s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def serve_http(ray_local):
    """Serve on a free loopback port for this module; shut down at the end."""
    from ray import serve

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def _config_env_vars() -> dict[str, str]:
    """The replica environment deploy/serve.yaml sets, so the tests run what is deployed."""
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    return dict(config["applications"][0].get("runtime_env", {}).get("env_vars", {}))


def _start_app(base_url: str, args: ServeAppArgs, *, name: str, route_prefix: str, env_vars=None,
               wait_ready: bool = True, logging_config: dict | None = None) -> httpx.Client:
    from ray import serve

    from pipelines.serve_app import build_app

    runtime_env = {"env_vars": {**_config_env_vars(), **(env_vars or {})}}
    serve.run(build_app(args, runtime_env=runtime_env), name=name, route_prefix=route_prefix, blocking=False,
              logging_config=logging_config)
    client = httpx.Client(base_url=base_url + (route_prefix if route_prefix != "/" else ""), timeout=60,
                          trust_env=False)
    if wait_ready:
        _wait_ready(client)
    return client


@pytest.fixture(scope="module")
def tiny_encoder(tiny_model_dir):
    return Encoder(EncoderConfig(model=str(tiny_model_dir), max_length=MAX_LENGTH, num_threads=1))


@pytest.fixture(scope="module")
def catalog():
    table = make_sample_catalog()
    return SimpleNamespace(ids=table.column("item_id").to_pylist(), titles=table.column("title").to_pylist())


@pytest.fixture(scope="module")
def s3_app(serve_http, s3_server, tiny_model_dir, tiny_encoder, catalog):
    """The app serving a bucket on the real S3 server. It starts on an empty store; what it answered then is
    kept in ``before_publish``; then v1 is published and the app picks it up."""
    from ray import serve

    bucket = unique_bucket_name("serve")
    uri = s3_server.make_bucket(bucket)
    store = S3Store(f"{uri}/coldstart", S3Options(endpoint_url=s3_server.endpoint_url, region=s3_server.region,
                                                  access_key=s3_server.access_key, secret_key=s3_server.secret_key))
    readonly = s3_server.readonly_access_key is not None
    # what the replicas get: the read-only identity when the server has one, through a credentials file
    replica_env = s3_server.env(readonly=readonly)
    args = ServeAppArgs(store=store.uri, model=str(tiny_model_dir), max_length=MAX_LENGTH, poll_interval_s=0.5,
                        query_cache_size=100)
    client = _start_app(serve_http, args, name="s3app", route_prefix="/", env_vars=replica_env, wait_ready=False)
    try:
        before_publish = {"healthz": client.get("/healthz"), "items": client.get(f"/items/{catalog.ids[0]}"),
                          "recommend": client.post("/recommend", json={"query": "chair"})}
        v1 = publish_encoded(store, tiny_encoder, catalog.ids, catalog.titles).version
        _wait_ready(client)
        yield SimpleNamespace(client=client, store=store, v1=v1, args=args, before_publish=before_publish)
    finally:
        client.close()
        serve.delete("s3app")
        s3_server.delete_bucket(bucket)


def _reference(s3_app, encoder, version: str):
    """The in-process recommender on the version the service says it serves."""
    return DenseRecommender(encoder, load_version(s3_app.store, version), ProfileConfig(
        query_weight=s3_app.args.query_weight, click_decay=s3_app.args.click_decay))


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


@pytest.mark.timeout(420)
def test_real_model_ranks_nike_shoes_above_adidas_shoes(serve_http, tmp_path):
    """With the packaged all-MiniLM-L6-v2, the query "Nike" ranks the product "Nike鞋" above "Adidas鞋".

    First in the module: its app is deleted before the S3 app (module-scoped) starts, so the two never
    compete for the session's 2 CPUs."""
    from ray import serve

    table = make_sample_catalog()
    ids, titles = table.column("item_id").to_pylist(), table.column("title").to_pylist()
    encoder = Encoder(EncoderConfig(model="default", num_threads=1))
    store = open_store(tmp_path / "store")
    publish_encoded(store, encoder, ids, titles)
    args = ServeAppArgs(store=str(store.root), model="default", poll_interval_s=5)
    client = _start_app(serve_http, args, name="minilm", route_prefix="/minilm")
    try:
        response = client.post("/recommend", json={"query": "Nike", "k": 100})
        ranked = [item["title"] for item in response.json()["items"]]
        assert "Nike鞋" in ranked, ranked[:10]
        assert "Adidas鞋" not in ranked[: ranked.index("Nike鞋")], ranked[:10]
        scores = {item["title"]: item["score"] for item in response.json()["items"]}
        query_vector = encoder.encode(["nike"])[0]
        nike_vector = encoder.encode(["Nike鞋"])[0]
        assert scores["Nike鞋"] == pytest.approx(float(np.dot(query_vector, nike_vector)), abs=1e-4)
    finally:
        client.close()
        serve.delete("minilm")


def _random_sessions(path: Path, ids: list[str], users: int, rng) -> Path:
    """``users`` sessions of 3 to 8 random items as JSON Lines."""
    path.write_text("".join(json.dumps({"user_id": f"u{n}", "items": rng.sample(ids, rng.randint(3, 8))}) + "\n"
                            for n in range(users)))
    return path


def _blend_config(path: Path, head: str = "") -> Path:
    """A ``[retrieval]`` config with query and clicks blend weights (after ``head``)."""
    path.write_text(head + "[retrieval.query]\ndense = 1.0\nbm25 = 0.3\n"
                    "[retrieval.clicks]\ndense = 0.5\nbm25 = 0.5\ncovisit = 1.0\npopularity = 0.1\n")
    return path


@pytest.mark.timeout(420)
@pytest.mark.parametrize("topology", ["fused", "composed"])
def test_http_ranks_as_coldstart_search_does(serve_http, tmp_path, tiny_model_dir, tiny_encoder, catalog, topology):
    """The served ranking is the batch ranking, in both topologies: for 300 requests — queries, clicks-only users
    ranked with other users' sessions, and both — the top 10 over HTTP equals the top 10 of the RankingPipeline
    that ``coldstart search --retriever blend --sessions`` builds from the same store and config."""
    import random

    from ray import serve

    from coldstart.config import JobConfig
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.pipeline import RankingPipeline

    store = open_store(tmp_path / "store")
    publish_encoded(store, tiny_encoder, catalog.ids, catalog.titles)
    rng = random.Random(7)
    sessions = _random_sessions(tmp_path / "sessions.jsonl", catalog.ids, 300, rng)
    config = _blend_config(tmp_path / "retrieval.toml")
    args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=MAX_LENGTH, retriever="blend",
                        retrieval_config=str(config), sessions=str(sessions), query_cache_size=0, topology=topology)
    client = _start_app(serve_http, args, name="parity", route_prefix="/parity")
    try:
        job = JobConfig(store=str(store.root), encoder=EncoderConfig(model=str(tiny_model_dir), max_length=MAX_LENGTH))
        pipeline = RankingPipeline.from_store(job, load_retrieval_config(config), sessions=sessions)
        words = sorted({w.lower() for title in catalog.titles for w in title.split() if w.isalpha()})
        bodies = ([{"query": " ".join(rng.sample(words, 2))} for _ in range(100)]
                  + [{"clicks": rng.sample(catalog.ids, rng.randint(1, 3))} for _ in range(100)]
                  + [{"query": rng.choice(words), "clicks": rng.sample(catalog.ids, 2)} for _ in range(100)])
        expected = pipeline.search([UserRequest(query=b.get("query"), clicks=tuple(b.get("clicks", ())))
                                    for b in bodies], 10)
        for body, ranking in zip(bodies, expected):
            response = client.post("/recommend", json={**body, "k": 10})
            assert _ids(response) == [item_id for item_id, _ in ranking], body
            assert response.json()["signals"] == (["dense", "bm25"] if "query" in body
                                                  else ["dense", "bm25", "covisit", "popularity"])
    finally:
        client.close()
        serve.delete("parity")


@pytest.mark.timeout(420)
def test_beyond_max_pending_a_replica_answers_503_with_retry_after_at_once(serve_http, tmp_path, tiny_model_dir,
                                                                           tiny_encoder, catalog):
    """Overload: 60 requests at once against a replica that holds at most 2. The excess is refused at once
    (503, Retry-After, a JSON error), the rest answered; no 500, no timeout."""
    from ray import serve

    store = open_store(tmp_path / "store")
    publish_encoded(store, tiny_encoder, catalog.ids, catalog.titles)
    args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=MAX_LENGTH, max_pending=2,
                        ingress_batch_max_size=1, query_cache_size=0)
    client = _start_app(serve_http, args, name="overload", route_prefix="/overload")

    async def burst():
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=60, trust_env=False) as c:
            return await asyncio.gather(*(c.post("/recommend", json={"query": f"chair {n}"}) for n in range(60)))

    try:
        responses = asyncio.run(burst())
        statuses = sorted({r.status_code for r in responses})
        refused = [r for r in responses if r.status_code == 503]
        assert statuses == [200, 503], statuses
        assert all(r.headers["retry-after"] == "1" and "overloaded" in r.json()["error"] for r in refused)
        metrics = client.get("/metrics").text
        assert f"coldstart_overload_rejections_total {float(len(refused))}" in metrics
    finally:
        client.close()
        serve.delete("overload")


@pytest.mark.timeout(420)
def test_reranker_reorders_the_top_of_query_requests_and_leaves_clicks_only_ones(serve_http, tmp_path,
                                                                                tiny_model_dir,
                                                                                tiny_cross_encoder_dir):
    """With ``reranker=`` the answer to a query is the retriever's top ``rerank_depth`` re-scored by the
    cross-encoder, exactly as :func:`coldstart.ranking.rerank.rerank_hits` does in-process; a clicks-only request keeps the
    retriever's order. Before the S3 app starts, for the same reason as the test above."""
    from ray import serve

    from coldstart.ranking.rerank import CrossEncoder, RerankerConfig, rerank_hits

    table = make_sample_catalog()
    ids, titles = table.column("item_id").to_pylist(), table.column("title").to_pylist()
    encoder = Encoder(EncoderConfig(model=str(tiny_model_dir), max_length=MAX_LENGTH, num_threads=1))
    store = open_store(tmp_path / "store")
    version = publish_encoded(store, encoder, ids, titles).version
    args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=MAX_LENGTH,
                        reranker=str(tiny_cross_encoder_dir), rerank_depth=8, rerank_first_weight=0.5)
    client = _start_app(serve_http, args, name="reranked", route_prefix="/reranked")
    try:
        loaded = load_version(store, version)
        recommender = DenseRecommender(encoder, loaded, ProfileConfig(query_weight=args.query_weight,
                                                                      click_decay=args.click_decay))
        texts = dict(zip(loaded.items.column("item_id").to_pylist(), loaded.items.column("text").to_pylist()))
        [first] = recommender.recommend_batch([UserRequest(query="office chair")], 8)
        [expected] = rerank_hits(CrossEncoder(args.reranker_config()), ["office chair"], [first.items],
                                 [[texts[i] for i, _ in first.items]], depth=8, first_weight=0.5)

        response = client.post("/recommend", json={"query": "office chair", "k": 5})
        assert _ids(response) == [i for i, _ in expected[:5]]
        assert [item["score"] for item in response.json()["items"]] == pytest.approx(
            [s for _, s in expected[:5]], abs=1e-3)
        assert response.json()["timing_ms"]["rerank_ms"] > 0

        [clicks_only] = recommender.recommend_batch([UserRequest(clicks=(ids[0], ids[1]))], 5)
        response = client.post("/recommend", json={"clicks": [ids[0], ids[1]], "k": 5})
        assert _ids(response) == [i for i, _ in clicks_only.items]
    finally:
        client.close()
        serve.delete("reranked")


@pytest.mark.s3
@pytest.mark.timeout(420)
def test_not_ready_until_a_version_is_published_then_picked_up(s3_app):
    early = s3_app.before_publish
    assert early["healthz"].status_code == 503 and early["healthz"].json()["status"] == "loading"
    for name in ("recommend", "items"):
        assert early[name].status_code == 503 and early[name].headers["retry-after"]
        assert "no index version is loaded yet" in early[name].json()["error"]
    health = s3_app.client.get("/healthz").json()
    assert health["status"] == "ok" and health["index_version"] == s3_app.v1


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_recommend_for_query_clicks_and_both(s3_app, tiny_encoder, catalog):
    client = s3_app.client
    version = client.get("/healthz").json()["index_version"]
    reference = _reference(s3_app, tiny_encoder, version)

    first = client.post("/recommend", json={"query": "office chair", "k": 5})
    body = first.json()
    assert body["index_version"] == version and body["cache_hit"] is False and not body["query_truncated"]
    assert _ids(first) == [i for i, _ in reference.recommend(UserRequest(query="office chair"), k=5).items]
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True) and all(item["title"] for item in body["items"])
    assert set(body["timing_ms"]) == {"total_ms", "encode_ms", "retrieve_ms", "rerank_ms"}
    assert body["timing_ms"]["rerank_ms"] == 0  # no re-ranker in this app

    again = client.post("/recommend", json={"query": "  Office   CHAIR ", "k": 5})  # same normalised text
    assert again.json()["cache_hit"] is True and _ids(again) == _ids(first)

    clicks = catalog.ids[:3]
    by_clicks = client.post("/recommend", json={"clicks": clicks, "k": 10})
    assert _ids(by_clicks) == [i for i, _ in reference.recommend(UserRequest(clicks=tuple(clicks)), k=10).items]
    assert by_clicks.json()["cache_hit"] is None and not set(_ids(by_clicks)) & set(clicks)

    both = client.post("/recommend", json={"query": "Nike", "clicks": [clicks[0], "NOT-A-SKU"], "k": 8,
                                           "exclude": [catalog.ids[5]]})
    expected = reference.recommend(UserRequest(query="nike", clicks=(clicks[0], "NOT-A-SKU"),
                                               exclude=(catalog.ids[5],)), k=8)
    assert _ids(both) == [i for i, _ in expected.items]
    assert both.json()["unknown_clicks"] == ["NOT-A-SKU"] and "ignored" in both.json()["warnings"][0]
    assert clicks[0] not in _ids(both) and catalog.ids[5] not in _ids(both)

    diverse = client.post("/recommend", json={"query": "office chair", "k": 5, "diversity": 0.7})
    assert len(_ids(diverse)) == 5 and _ids(diverse)[0] == _ids(first)[0]


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_users_sent_on_together_each_get_their_own_answer(s3_app, tiny_encoder, catalog):
    """Concurrent users share ingress batches (one encoder and one retriever call per group); no answer may leak
    into another user's response."""
    version = s3_app.client.get("/healthz").json()["index_version"]
    reference = _reference(s3_app, tiny_encoder, version)
    bodies = [{"query": f"{word} {n}", "k": 5} for n, word in enumerate(["chair", "drill", "lamp", "rug"] * 4)]
    bodies += [{"clicks": [catalog.ids[n]], "k": 5} for n in range(8)]
    bodies += [{"query": "garden hose", "clicks": [catalog.ids[9]], "k": 3, "exclude": [catalog.ids[10]]}]

    async def send_all():
        async with httpx.AsyncClient(base_url=str(s3_app.client.base_url), timeout=60) as client:
            return await asyncio.gather(*(client.post("/recommend", json=b) for b in bodies))

    responses = asyncio.run(send_all())
    for body, response in zip(bodies, responses):
        request = UserRequest(query=body.get("query"), clicks=tuple(body.get("clicks", ())),
                              exclude=tuple(body.get("exclude", ())))
        assert _ids(response) == [i for i, _ in reference.recommend(request, k=body["k"]).items], body
        assert response.json()["index_version"] == version

    from prometheus_client.parser import text_string_to_metric_families

    batches = {s.name: s.value for f in text_string_to_metric_families(s3_app.client.get("/metrics").text)
               for s in f.samples if s.name.startswith("coldstart_ingress_batch_size")}
    assert batches["coldstart_ingress_batch_size_count"] >= 1
    assert batches["coldstart_ingress_batch_size_sum"] >= len(bodies)


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_bad_input_is_a_4xx_that_says_what_to_change(s3_app, catalog):
    client = s3_app.client
    cases = [
        ({"json": {}}, 422, "send a non-empty `query`"),
        ({"json": {"query": "   "}}, 422, "empty or only whitespace"),
        ({"json": {"query": "chair", "k": 0}}, 422, "k: "),
        ({"json": {"query": "chair", "k": 1000}}, 422, "k: "),
        ({"json": {"query": "chair", "diversity": -1}}, 422, "diversity: "),
        ({"json": {"clicks": "SKU00001"}}, 422, "clicks: "),
        ({"json": {"querry": "chair"}}, 422, "unknown field `querry`"),
        ({"json": {"query": "x" * 5000}}, 422, "query: "),
        ({"json": ["chair"]}, 422, "JSON object"),
        ({"content": b'{"query": "chair",', "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({}, 422, "no body"),
    ]
    for kwargs, status, message in cases:
        response = client.post("/recommend", **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        assert message in response.json()["error"], (kwargs, response.json())

    long = client.post("/recommend", json={"query": "garden chair " * 40, "k": 3})  # 80 words > 32 tokens
    assert long.status_code == 200 and long.json()["query_truncated"] is True
    assert any("tokens" in w for w in long.json()["warnings"]) and len(_ids(long)) == 3

    gone = client.post("/recommend", json={"clicks": ["GONE-1", "GONE-2"]})
    assert gone.status_code == 200 and gone.json()["items"] == []
    assert gone.json()["unknown_clicks"] == ["GONE-1", "GONE-2"]
    assert any("nothing to recommend" in w for w in gone.json()["warnings"])


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_the_replicas_credentials_are_in_no_ray_log_or_runtime_env(s3_app, s3_server):
    """The app serves from S3 with keys from a credentials file: no key is in Ray's session files (the
    runtime_env agent's log among them), and a runtime_env that carries one is refused."""
    import ray

    from pipelines.serve_app import build_app

    assert s3_app.client.get("/healthz").status_code == 200
    session = Path(ray.get_runtime_context().get_temp_dir()) / ray.get_runtime_context().get_session_name()
    assert session.is_dir() and any(session.rglob("runtime_env*.log"))
    secrets = [s for s in (s3_server.secret_key, s3_server.readonly_secret_key) if s]
    assert {s: files_holding(s, session) for s in secrets} == {s: [] for s in secrets}
    with pytest.raises(ValueError, match="AWS_SECRET_ACCESS_KEY"):
        build_app(s3_app.args, runtime_env={"env_vars": {"AWS_SECRET_ACCESS_KEY": "x"}})


@pytest.mark.timeout(420)
def test_no_query_text_or_click_ids_in_any_log_unless_the_operator_asks(serve_http, tmp_path, tiny_model_dir,
                                                                        tiny_encoder, catalog):
    """Privacy: what a user typed and clicked is in no file of Ray's session (replica, proxy, controller logs)
    after it was answered — and is there once the operator turns on ``log_request_content``.

    The first app logs as JSON (Serve's ``logging_config: encoding: JSON``, where the request line's structured
    fields are written out): its request line is one JSON object with the id, version, counts and latency."""
    import ray
    from ray import serve

    ids = [f"PRIVATE-SKU-{n:03d}" for n in range(len(catalog.ids))]
    store = open_store(tmp_path / "store")
    published = publish_encoded(store, tiny_encoder, ids, catalog.titles).version
    session = Path(ray.get_runtime_context().get_temp_dir()) / ray.get_runtime_context().get_session_name()
    for logged in (False, True):
        name = "private-on" if logged else "private"
        query, clicks = f"zebra quokka {name} 7391", [ids[4], ids[9]]
        request_id = f"req-{name}-5417"
        args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=MAX_LENGTH,
                            log_request_content=logged)
        # JSON: Serve's replica log file; its buffer (1000 lines in deploy/serve.yaml) is written at once here
        client = _start_app(serve_http, args, name=name, route_prefix=f"/{name}",
                            env_vars=None if logged else {"RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1"},
                            logging_config=None if logged else {"encoding": "JSON", "enable_access_log": False})
        try:
            assert client.post("/recommend", json={"query": query, "clicks": clicks},
                               headers={"X-Request-ID": request_id}).status_code == 200
            assert client.post("/recommend", json={"query": query, "k": 0}).status_code == 422  # rejected too
        finally:
            client.close()
            serve.delete(name)  # the replica flushes its buffered request logs as it stops
        found = {needle: files_holding(needle, session) for needle in (query, *clicks)}
        if logged:  # the same search finds them when they are logged: the check above can fail
            assert all(found.values()), found
        else:
            assert found == {needle: [] for needle in found}, found
            replica_logs = [p for p in files_holding(request_id, session / "logs" / "serve")
                            if Path(p).name.startswith("replica_")]  # the proxy's log is Serve's global TEXT one
            lines = [json.loads(line) for path in replica_logs for line in Path(path).read_text().splitlines()
                     if request_id in line]
            (line,) = [entry for entry in lines if entry.get("event") == "recommend"]
            assert line["request_id"] == request_id and line["index_version"] == published
            assert (line["k"], line["n_items"], line["n_clicks"], line["n_unknown_clicks"]) == (10, 10, 2, 0)
            assert line["latency_ms"] > 0 and line["levelname"] == "INFO" and line["application"] == name
            assert line["deployment"].endswith("Ingress") and "query" not in line and "clicks" not in line


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_healthz_items_metrics_and_docs(s3_app, catalog):
    from prometheus_client.parser import text_string_to_metric_families

    client = s3_app.client
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["items"] == len(catalog.ids)
    [replica] = health["replicas"]  # the fused app: one replica, on the board with its version
    assert replica["replica"].startswith("Ingress#") and replica["healthy"] and replica["ready"]
    assert replica["index_version"] == health["index_version"] and replica["items"] == len(catalog.ids)

    item = client.get(f"/items/{catalog.ids[0]}")
    assert item.status_code == 200 and item.json()["title"] == catalog.titles[0]
    missing = client.get("/items/NOT-A-SKU")
    assert missing.status_code == 404 and "not in index version" in missing.json()["error"]

    client.post("/recommend", json={"query": "drill"})
    client.post("/recommend", json={"query": "drill"})
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(metrics.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert samples[("coldstart_requests_total", (("endpoint", "/recommend"), ("status", "200")))] >= 2
    assert samples[("coldstart_request_latency_seconds_count", (("endpoint", "/recommend"),))] >= 2
    assert samples[("coldstart_query_batch_size_count", ())] >= 1
    assert samples[("coldstart_query_cache_lookups_total", (("result", "hit"),))] >= 1
    assert 0 < samples[("coldstart_query_cache_hit_ratio", ())] < 1
    assert samples[("coldstart_index_version_info", (("version", health["index_version"]),))] == 1
    assert client.get("/docs").status_code == 200
    assert "/recommend" in client.get("/openapi.json").json()["paths"]


class SteadyClient:
    """Sends /recommend requests from a few concurrent workers until stopped; records every outcome."""

    def __init__(self, base_url: str, bodies: list[dict], *, concurrency: int = 4):
        self.base_url, self.bodies, self.concurrency = base_url, bodies, concurrency
        self.outcomes: list[tuple[float, int, str | None]] = []  # (finished at, status or -1, version)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _worker(self, client: httpx.AsyncClient, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            body = self.bodies[i % len(self.bodies)]
            i += self.concurrency
            try:
                response = await client.post("/recommend", json=body)
                version = response.json().get("index_version") if response.status_code == 200 else None
                self.outcomes.append((time.monotonic(), response.status_code, version))
            except httpx.HTTPError as err:
                self.outcomes.append((time.monotonic(), -1, repr(err)))

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30, trust_env=False) as client:
            await asyncio.gather(*(self._worker(client, i) for i in range(self.concurrency)))

    def __enter__(self) -> "SteadyClient":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def versions_seen(self) -> list[str]:
        return [v for _, status, v in self.outcomes if status == 200]

    def wait_for(self, predicate, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not reached while the client kept sending")
            time.sleep(0.1)


@pytest.mark.s3
@pytest.mark.timeout(300)
def test_hot_swap_under_load_and_a_corrupt_version_is_refused(s3_app, tiny_encoder, catalog):
    client, store = s3_app.client, s3_app.store
    old = client.get("/healthz").json()["index_version"]
    bodies = [{"query": q, "k": 5} for q in ("office chair", "drill", "Nike", "sofa", "coffee maker")]
    bodies += [{"clicks": catalog.ids[i:i + 2], "k": 5} for i in range(0, 10, 2)]

    with SteadyClient(str(client.base_url), bodies) as steady:
        steady.wait_for(lambda: len(steady.versions_seen()) >= 20, 60)
        # v2: the catalog plus new products, embedded by the same encoder
        new_ids = [f"NEW{i:03d}" for i in range(20)]
        new_titles = [f"new season garden chair model {i}" for i in range(20)]
        new = publish_encoded(store, tiny_encoder, catalog.ids + new_ids, catalog.titles + new_titles).version
        steady.wait_for(lambda: steady.versions_seen()[-1] == new, 60)
        answered_by_new = len(steady.versions_seen())
        steady.wait_for(lambda: len(steady.versions_seen()) >= answered_by_new + 20, 60)

        # v3: published, then one byte of its items file flipped: the checksum refuses it
        vectors = tiny_encoder.encode(catalog.titles)
        bad = publish(store, items_table(catalog.ids, catalog.titles), vectors, tiny_encoder.info()).version
        corrupt(store, bad)
        steady.wait_for(lambda: bad in client.get("/healthz").json()["rejected_versions"], 60)
        after_refusal = len(steady.versions_seen())
        steady.wait_for(lambda: len(steady.versions_seen()) >= after_refusal + 20, 60)

    statuses = [status for _, status, _ in steady.outcomes]
    failures = [o for o in steady.outcomes if o[1] != 200]
    assert not failures, failures[:5]
    assert len(statuses) >= 60
    seen = steady.versions_seen()
    assert seen[0] == old and set(seen) == {old, new}  # the corrupt version never answered
    first_new = seen.index(new)
    # after the swap, only requests already in flight may still finish on the old version
    assert seen[first_new:].count(old) <= steady.concurrency
    assert all(v == new for v in seen[after_refusal:])
    health = client.get("/healthz").json()
    assert health["index_version"] == new and "checksum" in health["rejected_versions"][bad]
    steady.wait_for(lambda: all(r["index_version"] == new and bad in r["rejected_versions"]
                                for r in client.get("/healthz").json()["replicas"]), 30)
    assert health["items"] == len(catalog.ids) + 20
    assert client.get("/items/NEW000").json()["title"] == new_titles[0]


@pytest.mark.timeout(420)
def test_published_session_signals_rank_clicks_and_swap_with_the_index(serve_http, tmp_path, tiny_model_dir,
                                                                       tiny_encoder, catalog):
    """With ``session_signals``, clicks-only users are ranked by the signals published beside the live version —
    the same ranking as the batch pipeline over those signals. Newer signals for the same version swap in under
    load; a new version moves with its own signals; signals of another catalog are refused and shown in
    /healthz while the last good ones keep serving. No request fails throughout."""
    import random

    from ray import serve

    from coldstart.artifacts.versions import stage_version
    from coldstart.ranking.config import RetrievalConfig
    from coldstart.ranking.faiss_index import IndexConfig
    from coldstart.ranking.pipeline import RankingPipeline
    from coldstart.signals.artifact import load_signals, publish_signals
    from coldstart.signals.sessions import SessionSignals

    store = open_store(tmp_path / "store")
    v1 = publish_encoded(store, tiny_encoder, catalog.ids, catalog.titles).version
    rng = random.Random(11)

    def fitted(ids, seed):
        r = random.Random(seed)
        return SessionSignals(ids, [r.sample(ids, r.randint(3, 8)) for _ in range(300)])

    s1 = publish_signals(store, v1, fitted(catalog.ids, 1), source="seed 1").signals_id
    args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=MAX_LENGTH, retriever="blend",
                        session_signals=True, poll_interval_s=0.5, query_cache_size=0)
    client = _start_app(serve_http, args, name="signals", route_prefix="/signals")
    clicks = [rng.sample(catalog.ids, 2) for _ in range(20)]

    def expected(version, ids_of_version, signals_id):
        loaded = load_version(store, version)
        signals, _ = load_signals(store, version, ids_of_version, signals_id)
        pipeline = RankingPipeline(DenseRecommender(None, loaded, args.profile_config()), RetrievalConfig(),
                                   retriever="blend", sessions=signals)
        return [[i for i, _ in r] for r in pipeline.search([UserRequest(clicks=tuple(c)) for c in clicks], 10)]

    def served():
        out = [client.post("/recommend", json={"clicks": c, "k": 10}) for c in clicks]
        return [_ids(r) for r in out], {r.json()["signals_version"] for r in out}

    try:
        ranked, ids_seen = served()
        assert ids_seen == {s1} and ranked == expected(v1, catalog.ids, s1)
        bodies = [{"clicks": c, "k": 5} for c in clicks] + [{"query": "office chair", "k": 5}]
        with SteadyClient(str(client.base_url), bodies) as steady:
            steady.wait_for(lambda: len(steady.versions_seen()) >= 20, 60)
            s2 = publish_signals(store, v1, fitted(catalog.ids, 2), source="seed 2").signals_id
            steady.wait_for(lambda: client.get("/healthz").json()["signals_version"] == s2, 60)
            # v2: new products; the nightly job publishes its signals before LATEST moves
            new_ids = catalog.ids + [f"NEW{i:03d}" for i in range(10)]
            titles = catalog.titles + [f"new garden chair {i}" for i in range(10)]
            staged = stage_version(store, items=items_table(new_ids, titles), vectors=tiny_encoder.encode(titles),
                                   encoder=tiny_encoder.info(), index_config=IndexConfig(), catalog={})
            s3 = publish_signals(store, staged.version, fitted(new_ids, 3), source="seed 3").signals_id
            v2 = staged.publish().version
            steady.wait_for(lambda: client.get("/healthz").json()["index_version"] == v2, 60)
            # signals fitted over v1's items, written under v2: another catalog, refused
            bad = publish_signals(store, v2, fitted(catalog.ids, 4), source="wrong catalog").signals_id
            steady.wait_for(lambda: bad in client.get("/healthz").json()["rejected_signals"], 60)
            after = len(steady.outcomes)
            steady.wait_for(lambda: len(steady.outcomes) >= after + 20, 60)
        failures = [o for o in steady.outcomes if o[1] != 200]
        assert not failures, failures[:5]
        health = client.get("/healthz").json()
        assert health["index_version"] == v2 and health["signals_version"] == s3
        assert "another item list" in health["rejected_signals"][bad]
        assert all(r["signals_version"] == s3 for r in health["replicas"])
        ranked, ids_seen = served()
        assert ids_seen == {s3} and ranked == expected(v2, new_ids, s3)
        query_only = client.post("/recommend", json={"query": "office chair"}).json()
        assert query_only["signals"] == ["dense", "bm25"] and query_only["signals_version"] is None
    finally:
        client.close()
        serve.delete("signals")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("topology", ["fused", "composed"])
def test_the_learned_ranker_serves_the_same_top_10_as_coldstart_search(serve_http, tmp_path, tiny_model_dir,
                                                                         tiny_encoder, tiny_cross_encoder_dir,
                                                                         catalog, topology):
    """A ranker with a query model (reading the cross-encoder's logit) and a clicks model (reading the session
    signals), trained and published into the store: over HTTP the top 10 of queries and of clicks-only users are
    those of the pipeline ``coldstart search --ranker latest --reranker ... --sessions ...`` builds, and the
    answer says the ranker ranked it. The cross-encoder runs inside the ranking stage, not again after it."""
    import random

    from ray import serve

    from coldstart.config import JobConfig
    from coldstart.evaluation.trec import Request, read_sessions
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.ltr import RankerParams, fit_model
    from coldstart.ranking.pipeline import RankingPipeline
    from coldstart.ranking.ranker_artifact import publish_ranker
    from coldstart.ranking.ranker_training import click_table_out_of_fold, query_table

    store = open_store(tmp_path / "store")
    publish_encoded(store, tiny_encoder, catalog.ids, catalog.titles)
    rng = random.Random(5)
    sessions = _random_sessions(tmp_path / "sessions.jsonl", catalog.ids, 200, rng)
    config_path = _blend_config(tmp_path / "retrieval.toml", "[retrieval]\nrerank_depth = 10\n")
    config = load_retrieval_config(config_path)
    job = JobConfig(store=str(store.root), encoder=EncoderConfig(model=str(tiny_model_dir), max_length=MAX_LENGTH))
    words = sorted({w.lower() for title in catalog.titles for w in title.split() if w.isalpha()})
    train = [Request(qid=f"q{n}", query=" ".join(rng.sample(words, 2))) for n in range(80)]
    qrels = {r.qid: {item: 2 if set(r.query.split()) <= set(title.lower().split()) else 1
                     for item, title in zip(catalog.ids, catalog.titles)
                     if set(r.query.split()) & set(title.lower().split())} for r in train}
    params = RankerParams(min_data_in_leaf=5, num_leaves=7, max_rounds=40, early_stopping=10, threads=1)
    trainer = RankingPipeline.from_store(job, config, sessions=sessions, reranker=str(tiny_cross_encoder_dir))
    queries = query_table(trainer, train, qrels, depth=30)
    clicks = click_table_out_of_fold(trainer.recommender, config, read_sessions(sessions), folds=3, depth=30)
    models = {kind: (booster, {**info, "features": table.names}) for kind, table in
              (("query", queries), ("clicks", clicks)) for booster, info in [fit_model(table, params)]}
    publish_ranker(store, models, version=trainer.recommender.version, depth=30, cross_depth=10,
                   cross_encoder=str(tiny_cross_encoder_dir))

    args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=MAX_LENGTH, retriever="blend",
                        retrieval_config=str(config_path), sessions=str(sessions), reranker=str(tiny_cross_encoder_dir),
                        ranker="latest", query_cache_size=0, topology=topology)
    assert "Reranker" not in args.deployments()
    client = _start_app(serve_http, args, name="ranker", route_prefix="/ranker")
    try:
        pipeline = RankingPipeline.from_store(job, config, sessions=sessions, reranker=str(tiny_cross_encoder_dir),
                                              ranker="latest")
        bodies = ([{"query": " ".join(rng.sample(words, 2))} for _ in range(40)]
                  + [{"clicks": rng.sample(catalog.ids, rng.randint(1, 3))} for _ in range(40)])
        expected = pipeline.search([UserRequest(query=b.get("query"), clicks=tuple(b.get("clicks", ())))
                                    for b in bodies], 10)
        for body, ranking in zip(bodies, expected):
            response = client.post("/recommend", json={**body, "k": 10})
            assert _ids(response) == [item_id for item_id, _ in ranking], body
            assert response.json()["signals"][-1] == "ranker"
            assert ("reranker" in response.json()["signals"]) == ("query" in body)
    finally:
        client.close()
        serve.delete("ranker")
