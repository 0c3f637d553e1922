#!/usr/bin/env bash
# Train a single-plane network's fold runs on a GPU for a fixed time, then score the learning curve out of fold.
#
#   bash scripts/gpu_train.sh CORPUS RUNS MINUTES METHOD [RESULTS] [-- TRAIN ARGS]
#
# CORPUS is the folder scripts/build_corpus.py writes; RUNS the scripts/train_folds.py output folder (runs there
# are resumed); METHOD analysis-synthesis or care. The fold runs and the run on every series train at once on
# the GPU (--steps $STEPS, default 100000, a snapshot every $SNAPSHOT_EVERY steps, default 1000) until MINUTES
# have passed; then every kept step is scored and the curve printed. RESULTS, if given, receives the curve
# (METHOD_curve.json, METHOD_curve.md) and each run's weights and card (METHOD_FOLD.pt, METHOD_FOLD.json), flat,
# so that a machine lent for one command can send them back. It needs python3 with PyTorch and CUDA, numpy,
# scipy and tifffile; the package itself is taken from src/ when it is not installed. DEVICE=cpu runs it
# without a GPU (for a check).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 4 ]; then sed -n 2,13p "$0" >&2; exit 2; fi
corpus=$1 runs=$2 minutes=$3 method=$4
shift 4
results=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then results=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
python=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
"$python" -c "import numpy, scipy, tifffile, torch" || { echo "gpu_train.sh: $python lacks a package above" >&2; exit 1; }
[ -d "$corpus" ] || { echo "gpu_train.sh: no corpus folder $corpus" >&2; exit 1; }

common=("$corpus" "$runs" --method "$method" --steps "${STEPS:-100000}" --snapshot-every "${SNAPSHOT_EVERY:-1000}")
setsid "$python" scripts/train_folds.py "${common[@]}" --device "${DEVICE:-cuda}" --jobs 3 -- "$@" &
trainer=$!
end=$(( $(date +%s) + 60 * minutes ))
while kill -0 "$trainer" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 5; done
if kill -0 "$trainer" 2>/dev/null; then  # time is up: stop the runs (each resumes from its last checkpoint)
    kill -TERM -- "-$trainer" 2>/dev/null || true
fi
wait "$trainer" || true
"$python" scripts/train_folds.py "${common[@]}" --curve-only | tee "$runs/${method}_curve.md"

if [ -n "$results" ]; then
    mkdir -p "$results"
    cp "$runs/${method}_curve.json" "$runs/${method}_curve.md" "$results/"
    for fold in A B all; do
        if [ -f "$runs/${method}_$fold/weights.pt" ]; then
            cp "$runs/${method}_$fold/weights.pt" "$results/${method}_$fold.pt"
            cp "$runs/${method}_$fold/card.json" "$results/${method}_$fold.json"
        fi
    done
fi
