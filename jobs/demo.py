"""The main job end to end on embedded defaults: a local Ray, a local folder as the object store, the packaged model.

1. write the sample catalog (English and Chinese products) to ``<workdir>/catalog.parquet``;
2. embed it with the Ray Data job and publish an index version to ``<workdir>/store``;
3. answer new-user requests — a query; a query plus two clicks; clicks only — and print the products.

Run it as ``coldstart demo`` or ``python -m jobs.demo``; ``--model multilingual`` (the packaged USE v3) shows the
Chinese query finding Chinese and English running shoes by meaning. ``--serve`` then runs the Serve app on the
demo's store (``http://127.0.0.1:8000/``: the try-it page, the API under it) until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from coldstart.catalog.reader import CatalogSchema
from coldstart.config import JobConfig
from coldstart.encoders.encoder import EncoderConfig

logger = logging.getLogger(__name__)

DEMO_SCHEMA = CatalogSchema(
    id_col="item_id",
    text_cols=("title", "brand", "categories"),
    template="{title}. {brand}. {categories}",
    title_col="title",
)


def _ids_in_category(items, category: str, n: int) -> list[str]:
    texts = items.column("text").to_pylist()
    ids = items.column("item_id").to_pylist()
    return [i for i, t in zip(ids, texts) if category in t][:n]


def run_demo(workdir: Path, *, model: str = "default", out=sys.stdout) -> dict:
    from coldstart.encoders.encoder import Encoder
    from coldstart.artifacts.versions import load_version
    from coldstart.ranking.dense import DenseRecommender, UserRequest
    from coldstart.catalog.sample import write_sample_catalog
    from coldstart.artifacts.store import open_store
    from pipelines.embed import run_embed_job

    workdir = workdir.resolve()
    catalog = write_sample_catalog(workdir / "catalog.parquet")
    config = JobConfig(catalog=str(catalog), store=str(workdir / "store"), schema=DEMO_SCHEMA,
                       encoder=EncoderConfig(model=model))
    result = run_embed_job(config)
    counts = result.counts
    print(f"\ncatalog {catalog}: {counts['rows_read']} rows read, {counts['rows_good']} embedded or carried over, "
          f"{counts['rows_quarantined']} quarantined", file=out)
    print(f"index version {result.version} in {result.store} "
          f"({'published' if result.published else 'unchanged, already published'})", file=out)

    encoder = Encoder(config.encoder)
    version = load_version(open_store(config.store), expect=encoder.info())
    recommender = DenseRecommender(encoder, version, config.profile)
    garden = _ids_in_category(version.items, "Garden chairs", 2)
    running = _ids_in_category(version.items, "Running shoes", 2)
    requests = {
        "query 'Nike'": UserRequest(query="Nike"),
        "query 'chair' + clicked two garden chairs": UserRequest(query="chair", clicks=tuple(garden)),
        "clicks only: two running shoes": UserRequest(clicks=tuple(running)),
        "query 'Nike鞋'": UserRequest(query="Nike鞋"),
        # no brand, no Latin letter: only an encoder that reads Chinese (--model multilingual) ranks by meaning
        "query '跑步鞋' (running shoes, in Chinese)": UserRequest(query="跑步鞋"),
    }
    answers = {}
    for label, request in requests.items():
        rec = recommender.recommend(request, k=5)
        answers[label] = rec.items
        print(f"\n== new user: {label}", file=out)
        for clicked in request.clicks:
            print(f"   clicked: {version.item(clicked)['title']}", file=out)
        for rank, (item_id, score) in enumerate(rec.items, start=1):
            print(f"   {rank}. {score:.3f}  {item_id}  {version.item(item_id)['title']}", file=out)
    return {"result": result, "answers": answers}


def demo_app_args(workdir: Path, *, model: str = "default"):
    """The Serve app's arguments for the demo's store: the ranking ``deploy/serve.yaml`` serves (the dense + BM25
    blend), with the encoder the demo embedded with."""
    from coldstart.serving.config import ServeAppArgs

    return ServeAppArgs(store=str(Path(workdir).resolve() / "store"), model=model, retriever="blend")


def serve_demo(workdir: Path, *, model: str = "default", port: int = 8000, out=sys.stdout) -> None:
    """Serve the demo's store on ``http://127.0.0.1:<port>/`` until Ctrl-C or SIGTERM (run :func:`run_demo` first)."""
    from pipelines.serve_local import serve_until_stopped

    serve_until_stopped(demo_app_args(workdir, model=model), port=port, out=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="coldstart-demo")
    parser.add_argument("--model", default="default")
    parser.add_argument("--serve", action="store_true", help="then serve the store and the try-it page until Ctrl-C")
    parser.add_argument("--port", type=int, default=8000, help="with --serve: the port on 127.0.0.1")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    from coldstart.logs import setup_logging

    setup_logging(args.verbose)
    run_demo(Path(args.workdir), model=args.model)
    if args.serve:
        serve_demo(Path(args.workdir), model=args.model, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
