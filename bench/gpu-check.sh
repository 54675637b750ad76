#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the GPU backend (tfjs-node's binding against PyPI's
# tensorflow[and-cuda], whose NVIDIA wheels bring CUDA and cuDNN), checks that a task given GPU 0
# trains on it ("tensorflow 2.21.0 gpu"), and runs the train benchmark's CNN on one GPU, op by op and
# compiled (runtime/compiled-step.ts), beside Keras on the same GPU and TensorFlow. Offline machines:
# SPARKRING_WHEELHOUSE=DIR holds the wheels (pip download 'tensorflow[and-cuda]==2.21.0'
# ml_dtypes==0.5.4 -d DIR, elsewhere).
#   bench/gpu-check.sh            prints each mode's ratio to each Keras row; exits non-zero on any failure
set -euo pipefail
cd "$(dirname "$0")/.."
TF_SPEC='tensorflow[and-cuda]==2.21.0'
VENV=.venv-gpu

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "gpu-check: no nvidia-smi"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
if ! "$VENV/bin/python" -c 'import importlib.util,sys; sys.exit(importlib.util.find_spec("tensorflow") is None)'; then
  if [ -n "${SPARKRING_WHEELHOUSE:-}" ]; then
    "$VENV/bin/pip" install --quiet --no-index --find-links "$SPARKRING_WHEELHOUSE" "$TF_SPEC" ml_dtypes==0.5.4
  else
    "$VENV/bin/pip" install --quiet "$TF_SPEC" ml_dtypes==0.5.4
  fi
fi
[ -d node_modules/@tensorflow/tfjs-node ] || npm install --no-audit --no-fund --ignore-scripts
[ -f dist/src/runtime/backend.js ] || npx tsc -p tsconfig.json
node scripts/build-tf-binding.mjs --python "$VENV/bin/python"

TF_DIR=$("$VENV/bin/python" -c 'import importlib.util,os; print(os.path.dirname(importlib.util.find_spec("tensorflow").origin))')
NVIDIA=$(ls -d "$(dirname "$TF_DIR")"/nvidia/*/lib 2>/dev/null | paste -sd: -)
export LD_LIBRARY_PATH="$TF_DIR${NVIDIA:+:$NVIDIA}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}" TF_CPP_MIN_LOG_LEVEL=1

echo "gpu-check: sparkring (tfjs-node over $TF_DIR), CNN, batch 128, one GPU"
ours=$(node bench/solo-train.mjs cnn 0 '{"modes":["eager","compiled"]}' | tail -1)
echo "$ours"
echo "gpu-check: Keras on the same GPU and TensorFlow (eager and tf.function)"
keras=$("$VENV/bin/python" bench/keras_train.py cnn 5 50 128 0 | tail -1)
echo "$keras"
OURS="$ours" KERAS="$keras" "$VENV/bin/python" - <<'PY'
import json, os, sys
ours, keras = json.loads(os.environ["OURS"]), json.loads(os.environ["KERAS"])
if not ours["backend"].endswith(" gpu"):
    sys.exit(f"gpu-check: sparkring trained on {ours['backend']}, not a GPU")
for row in (r for r in ours["rows"] if r["model"] == "cnn"):
    if "error" in row:
        sys.exit(f"gpu-check: sparkring's {row.get('mode')} steps failed: {row['error']}")
    for k in keras:
        print(f"gpu-check: sparkring {row['mode']} {row['samples_per_s']:.0f} samples/s vs {k['impl']} {k['samples_per_s']:.0f}: {row['samples_per_s'] / k['samples_per_s']:.2f}x"
              + (f" (ran eagerly: {row['eager_because']})" if row.get("eager_because") else ""))
PY
