#!/usr/bin/env bash
# Converts the shipped ONNX models (tools/train_fashion.py) into the shipped .lowbit models,
# calibrated on 500 Fashion-MNIST *training* images (Debian's dataset-fashion-mnist), never on
# the test images the demo evaluates. Run after `npm run compile`; takes about a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
convert() { node dist/lib/cli.js convert "$@" --calib fashion-mnist-train --calib-count 500; }

convert models/fashion-binary.onnx -o models/fashion-binary.lowbit
convert models/fashion-binary-mst.onnx -o models/fashion-binary-mst.lowbit --mst
convert models/fashion-float.onnx -o models/fashion-w8a8.lowbit --bits 8
convert models/fashion-float.onnx -o models/fashion-w4a8.lowbit --bits 4
# Mixed: the budget sits between the all-INT4 (~217 KB) and all-INT8 (~427 KB) sizes, so the
# quantizer has to choose which layers keep 8 bits.
convert models/fashion-float.onnx -o models/fashion-mixed.lowbit --bits mixed --size-budget 300000
