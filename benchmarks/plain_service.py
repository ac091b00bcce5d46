"""The baseline for the serving benchmark: one FastAPI process that encodes each query and searches FAISS.

What the Ray e-commerce reference templates do, and what a team would write first: the model and the index are
loaded once at start-up, and every request runs its own forward pass (no batching, no cache) and its own FAISS
search. Same model, same index version, same response shape as the Serve app's ``/recommend`` (query only).

    python -m benchmarks.plain_service --store /work/bench-store/homedepot --port 8100

Listens on 127.0.0.1 only. A benchmark fixture, not part of the product.
"""

from __future__ import annotations

import argparse
import logging
import time

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)


class PlainRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4096)
    k: int = Field(10, ge=1, le=100)


def build_app(store_uri: str, *, model: str, threads: int, backend: str = "torch") -> FastAPI:
    from coldstart.encoders.encoder import Encoder, EncoderConfig
    from coldstart.artifacts.versions import load_version
    from coldstart.artifacts.store import open_store

    from coldstart.ranking.faiss_index import import_faiss

    encoder = Encoder(EncoderConfig(model=model, num_threads=threads, backend=backend))
    import_faiss().omp_set_num_threads(threads)
    version = load_version(open_store(store_uri), expect=encoder.info())
    titles = version.items.column("title").to_pylist()
    index = version.index
    app = FastAPI(title="plain baseline")

    # A plain `def`: FastAPI runs it in its thread pool, the usual way to serve a blocking model call.
    @app.post("/recommend")
    def recommend(body: PlainRequest) -> dict:
        started = time.perf_counter()
        vector = encoder.encode([body.query])
        [hits] = index.search(vector, body.k)
        return {
            "index_version": version.version,
            "items": [{"item_id": i, "title": titles[index.row_of[i]], "score": s} for i, s in hits],
            "timing_ms": {"total_ms": (time.perf_counter() - started) * 1000},
        }

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "index_version": version.version, "items": len(index)}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="store holding the published index version")
    parser.add_argument("--model", default="default")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--threads", type=int, default=2, help="torch and FAISS threads (default: 2 = the cores)")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"],
                        help="the encoder runtime (onnx-int8: the Serve app's, so what Serve itself adds shows)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(args.store, model=args.model, threads=args.threads, backend=args.backend)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
