#!/usr/bin/env bash
# The main job on the example the project ships: a small CNN trained on scikit-learn's
# digits (examples/digits/train.py wrote it). Installs everything, compiles the float model
# to int8 (.tflite + C + arena plan), then profiles it on the emulated Cortex-M4 board.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
[ -f examples/digits/digits.onnx ] || python3 examples/digits/train.py
edgeforge compile examples/digits/digits.onnx --calib examples/digits/calib.npz -o build/digits
edgeforge profile build/digits --target qemu://mps2-an386 --runs 10
