"""ONNX Runtime's dynamic int8 options on one encoder: how close each variant's vectors stay to the fp32 graph's.

The fp32 graph is the library's own export (``coldstart.encoders.onnx_backend.export_onnx``, cached per model
fingerprint as every backend uses it); each variant is ``onnxruntime.quantization.quantize_dynamic`` with other
options, run by the library's ``OnnxRunner``. Printed per variant: the mean and 1st-percentile cosine of the
``--titles`` first Home Depot titles to fp32, the file size and titles/s in this process.

    python -m benchmarks.int8_variants --data ../shared/data [--model default] [--titles 3000]

A benchmark, not a test; skips when the data is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "per-channel, every op (the shipped one)": {},
    "per-channel, MatMul only (embeddings fp32)": {"op_types_to_quantize": ["MatMul"]},
    "per-channel, MatMul only, reduce_range": {"op_types_to_quantize": ["MatMul"], "reduce_range": True},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--titles", type=int, default=3000)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args(argv)
    catalog = args.data / "homedepot" / "catalog.parquet"
    if not catalog.is_file():
        print(f"skipped: no Home Depot catalog under {args.data}")
        return 0
    import pyarrow.parquet as pq
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    from coldstart.encoders.encoder import EncoderConfig, describe_encoder
    from coldstart.encoders.model_source import resolve_model_dir
    from coldstart.encoders.onnx_backend import OnnxRunner, onnx_model_path

    model_dir = resolve_model_dir(args.model)
    config = EncoderConfig(model=args.model, max_length=args.max_length, backend="onnx")
    fp32 = onnx_model_path(model_dir, fingerprint=describe_encoder(config).fingerprint, backend="onnx",
                           pooling=config.pooling, max_length=config.max_length)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    titles = pq.read_table(catalog, columns=["title"]).column("title").to_pylist()[: args.titles]

    def encode(path: Path) -> tuple[np.ndarray, float]:
        runner, out = OnnxRunner(path, num_threads=2), []
        started = time.perf_counter()
        for i in range(0, len(titles), 64):
            batch = tokenizer(titles[i:i + 64], padding=True, truncation=True, max_length=args.max_length,
                              return_tensors="np", return_token_type_ids=True)
            out.append(runner(dict(batch)))
        return np.concatenate(out), len(titles) / (time.perf_counter() - started)

    reference, _ = encode(fp32)
    print(f"{args.model}: {len(titles)} Home Depot titles, cosine to the fp32 ONNX graph ({fp32})")
    print("| dynamic int8 variant | mean cosine | 1st percentile | file MB | titles/s |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="int8-variants-") as tmp:
        for n, (name, options) in enumerate(VARIANTS.items()):
            out = Path(tmp) / f"variant-{n}.onnx"
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True, **options)
            vectors, rate = encode(out)
            cosine = (vectors * reference).sum(axis=1)
            print(f"| {name} | {cosine.mean():.4f} | {np.percentile(cosine, 1):.4f} | "
                  f"{out.stat().st_size / 1e6:.1f} | {rate:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
