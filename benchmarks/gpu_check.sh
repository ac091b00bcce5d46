#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU, from the repository root, in under 5 minutes:
#   1. make sure FAISS has GPU support (the `gpu` extra: faiss-gpu-cu12 replaces faiss-cpu) and torch sees CUDA;
#   2. run the gpu-marked tests (embedding actors with gpus_per_actor=1, FAISS built and searched on the GPU);
#   3. run a short embedding benchmark on the GPU: in-process encoder, FAISS search, the Ray Data job.
#
#   bash benchmarks/gpu_check.sh          # results also go to $OUT (default bench-out/) as text and JSON
#
# Exits non-zero when a step fails; each failure prints one `error:` line saying which and why.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench-out}"
mkdir -p "$out"
fail() { echo "error: $*" >&2; exit 1; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt" \
    || fail "nvidia-smi failed: no NVIDIA GPU or driver on this machine"

if ! python -c "import faiss, sys; sys.exit(0 if hasattr(faiss, 'StandardGpuResources') else 1)" 2>/dev/null; then
    echo "installing the gpu extra (faiss-gpu-cu12; faiss-cpu must go: both provide the faiss module)"
    python -m pip uninstall -y -q faiss-cpu >/dev/null 2>&1
    timeout 150 python -m pip install -q -e ".[gpu,dev]" \
        || fail "pip install -e '.[gpu,dev]' failed (no package index reachable? set PIP_FIND_LINKS to a wheelhouse)"
fi
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || fail "torch $(python -c 'import torch; print(torch.__version__)') sees no CUDA: install a CUDA build of torch"
python -c "import faiss; print('faiss', faiss.__version__, 'GPUs seen by FAISS:', faiss.get_num_gpus())" | tee -a "$out/gpu.txt"

export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export RAY_TMPDIR="${RAY_TMPDIR:-$(mktemp -d /tmp/ray-gpu-XXXX)}" HF_HUB_OFFLINE=1

status=0
timeout 150 python -m pytest -m gpu -q -rs -p no:cacheprovider 2>&1 | tee "$out/gpu-tests.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "error: gpu tests failed (see $out/gpu-tests.txt)" >&2; status=1; }
if grep -q "skipped" "$out/gpu-tests.txt" && ! grep -q "passed" "$out/gpu-tests.txt"; then
    echo "error: every gpu test was skipped: nothing was checked" >&2; status=1
fi

timeout 120 python -m benchmarks.gpu_embed --device cuda --limit 50000 --batch-size 256 \
    --ray --actors 1 --gpus-per-actor 1 > "$out/gpu-bench.json" \
    || { echo "error: the GPU embedding benchmark failed" >&2; status=1; }
cat "$out/gpu-bench.json"
exit $status
