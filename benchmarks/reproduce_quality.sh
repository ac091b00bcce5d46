#!/usr/bin/env bash
# Reproduce the best numbers of BENCHMARKS.md from scratch with the default configuration.
#
#   benchmarks/reproduce_quality.sh DATA_DIR OUT_DIR
#
# DATA_DIR has the layout of ../shared/data. Trains only on homedepot/*_train.tsv and
# amazon_scientific/sessions_train.jsonl. The judged train queries are split by a hash of their id: 80 % fine-tune
# the encoder, then the cross-encoder re-ranker of the config's [reranker] table (if it has one); the other 20 %
# train the learned ranker (LightGBM LambdaRank) on those models' scores, which never saw them. The clicks ranker
# trains on sessions_train with co-visitation fitted out of fold. Then it writes, for every other split:
#   homedepot/queries_<split>.tsv          -> OUT_DIR/homedepot-<split>.run (+ .scores for qrels_<split>.tsv pairs)
#   amazon_scientific/sessions_<split>.jsonl -> OUT_DIR/scientific-<split>-k1.run and -k3.run
# CONFIG=... overrides the configuration (default configs/train-cpu.toml); RANKER=0 trains no ranker (the encoders
# then see every train query, as before the ranker existed).
# Progress: each stage says when it starts; inside, bars with rate and ETA on a terminal, else a plain line every
# 30 s (COLDSTART_PROGRESS=bar|log|off overrides; COLDSTART_LOG_FORMAT=json makes every log line a JSON object).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 DATA_DIR OUT_DIR" >&2
    exit 2
fi
DATA_DIR=$(cd "$1" && pwd)
mkdir -p "$2"
OUT_DIR=$(cd "$2" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIG=${CONFIG:-$ROOT/configs/train-cpu.toml}
WORK=$OUT_DIR/.work
HD=$DATA_DIR/homedepot

cd "$ROOT"
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
stage() { echo "reproduce [$(( $(date +%s) - start )) s]: $*" >&2; }
rm -rf "$WORK/train"   # a fresh run: the same run id would otherwise resume an old checkpoint
mkdir -p "$WORK"
MODEL=default
RERANK=()
RANKER_ARGS=()
QUERIES=$HD/queries_train.tsv
QRELS=$HD/qrels_train.tsv
if [ "${RANKER:-1}" != 0 ]; then
    RANKER_ARGS=(--ranker)
    if [ -f "$HD/queries_train.tsv" ]; then
        python -m benchmarks.quality split --queries "$QUERIES" --qrels "$QRELS" --fraction 0.2 --out "$WORK/split" >&2
        QUERIES=$WORK/split/queries_encoders.tsv
        QRELS=$WORK/split/qrels_encoders.tsv
        RANKER_ARGS+=(--ranker-queries "$WORK/split/queries_ranker.tsv" --encoder-queries "$QUERIES")
    fi
fi
if [ -f "$HD/queries_train.tsv" ]; then
    stage "1/3 fine-tuning the encoder (the longest stage: ~22 min on 2 cores)"
    python -m jobs.finetune --config "$CONFIG" \
        --queries "$QUERIES" --qrels "$QRELS" --catalog "$HD/catalog.parquet" \
        --out "$WORK/models" --run-id reproduce --no-publish --set "storage_path='$WORK/train'" \
        > "$WORK/finetune.json"
    MODEL=$WORK/models/reproduce
    echo "encoder trained after $(( $(date +%s) - start )) s" >&2
    if grep -q '^\[reranker\]' "$CONFIG"; then
        stage "2/3 fine-tuning the cross-encoder re-ranker (~18 min on 2 cores)"
        python -m jobs.finetune --config "$CONFIG" --table reranker \
            --queries "$QUERIES" --qrels "$QRELS" --catalog "$HD/catalog.parquet" \
            --out "$WORK/models" --run-id reproduce-reranker --no-publish --set "storage_path='$WORK/train'" \
            > "$WORK/finetune-reranker.json"
        RERANK=(--reranker "$WORK/models/reproduce-reranker")
    fi
fi
echo "training done after $(( $(date +%s) - start )) s" >&2
stage "3/3 embedding the catalogs, training the ranker and writing the runs"
python -m benchmarks.quality reproduce --data "$DATA_DIR" --out "$OUT_DIR" --model "$MODEL" \
    --config "$CONFIG" --cache "$WORK/cache" "${RERANK[@]}" "${RANKER_ARGS[@]}"
echo "all done after $(( $(date +%s) - start )) s" >&2
