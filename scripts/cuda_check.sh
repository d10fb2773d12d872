#!/usr/bin/env bash
# The CUDA measurements of docs/BENCHMARKS.md, for a machine with an NVIDIA GPU:
# every generator preset at batch 1, forward pass and whole frame, fp32 and fp16 (with
# fp16's PSNR against fp32), then the unit tests that touch the frame path on CUDA.
# Usage: scripts/cuda_check.sh [OUT_DIR]   (results as JSON and text under OUT_DIR, default out/cuda)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/cuda}"
mkdir -p "$out"
py=.venv/bin/python
[ -x "$py" ] || py=python3
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
for precision in fp32 fp16; do
    "$py" run_show.py bench --models --device cuda --precision "$precision" --frames 300 \
        --json "$out/models-$precision.json" | tee "$out/models-$precision.txt"
done
"$py" run_show.py bench --device cuda --frames 300 --json "$out/scenes.json" | tee "$out/scenes.txt"
