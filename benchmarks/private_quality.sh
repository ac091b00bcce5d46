#!/usr/bin/env bash
# What differential privacy costs: the bi-encoder fine-tuned twice on Home Depot train with the same length and
# settings, once plainly and once with DP-SGD ([train.privacy] target_epsilon), each then evaluated on Home Depot
# dev (dense retrieval alone, so the encoder is what differs), beside the packaged model.
#
#   benchmarks/private_quality.sh DATA_DIR OUT_DIR [STEPS] [EPSILON]
#
# Writes OUT_DIR/summary.json (NDCG@10 per model, the run's epsilon, seconds) and the runs. Both runs use the
# settings DP-SGD admits (no adversarial training, no resampling, no graded loss; configs/train-cpu.toml's others).
# The catalog is embedded with the onnx-int8 backend for every model alike (fast on 2 cores).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 DATA_DIR OUT_DIR [STEPS] [EPSILON]" >&2
    exit 2
fi
HD=$(cd "$1" && pwd)/homedepot
mkdir -p "$2"
OUT=$(cd "$2" && pwd)
STEPS=${3:-60}
EPSILON=${4:-8.0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ ! -f "$HD/queries_train.tsv" ]; then
    echo "skipped: $HD/queries_train.tsv is not there" >&2
    exit 0
fi
COMMON=(--set "max_steps=$STEPS" --set "adversarial.method='none'" --set "augment.synonym_prob=0.0"
        --set "augment.typo_prob=0.0" --set "resample_temperature=1.0" --set "graded_weight=0.0")
train() {  # name, extra --set args...
    local name=$1; shift
    rm -rf "$OUT/train-$name"
    local t0=$(date +%s)
    python -m jobs.finetune --config configs/train-cpu.toml --queries "$HD/queries_train.tsv" \
        --qrels "$HD/qrels_train.tsv" --catalog "$HD/catalog.parquet" --out "$OUT/models" --run-id "$name" \
        --no-publish --set "storage_path='$OUT/train-$name'" "${COMMON[@]}" "$@" > "$OUT/finetune-$name.json"
    echo "$(( $(date +%s) - t0 ))" > "$OUT/seconds-$name"
}
evaluate() {  # name, model
    local name=$1 model=$2
    rm -rf "$OUT/store-$name"
    coldstart embed --catalog "$HD/catalog.parquet" --store "$OUT/store-$name" --model "$model" \
        --backend onnx-int8 > /dev/null
    coldstart search --store "$OUT/store-$name" --model "$model" --backend onnx-int8 --retriever dense \
        --requests "$HD/queries_dev.tsv" --out "$OUT/run-$name.tsv" --k 100 > /dev/null
    coldstart evaluate --qrels "$HD/qrels_dev.tsv" --run "$OUT/run-$name.tsv" --relevant-grade 5 > "$OUT/eval-$name.json"
}
train plain
train private --set "privacy.target_epsilon=$EPSILON"
evaluate packaged default
evaluate plain "$OUT/models/plain"
evaluate private "$OUT/models/private"
python - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
summary = {}
for name in ("packaged", "plain", "private"):
    summary[name] = {"eval": json.loads((out / f"eval-{name}.json").read_text())}
    if name != "packaged":
        summary[name]["train_seconds"] = int((out / f"seconds-{name}").read_text())
        summary[name]["metrics"] = json.loads((out / f"finetune-{name}.json").read_text()).get("metrics")
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2))
PY
