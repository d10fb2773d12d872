#!/usr/bin/env bash
# The CUDA measurements of docs/BENCHMARKS.md, for a machine with an NVIDIA GPU, in one run:
#  1. the unit tests of the GPU frame path (CUDA graphs, no hidden host sync, fp16);
#  2. every generator preset at batch 1, forward pass and whole frame, fp32 and fp16 (with fp16's
#     PSNR against fp32), fp16 again without CUDA graphs (what the graph saves);
#  3. the shipped scenes' frame times on CUDA;
#  4. the `gpu` preset of the shipped image models trained on the GPU, both at once
#     (deepfield at 512 px, tissue at 256 px), each ending with its eval report;
#  5. a 10 s headless show of each of them on CUDA (fps, p99, late frames).
# Each step runs under its own time limit and the rest go on if one fails.
# Usage: [CUDA_CHECK_BATCH=N] scripts/cuda_check.sh [OUT_DIR] [TRAIN_MINUTES]   (default out/cuda, 3)
# On the device tool, files come back at most 16 MiB each and 8 in all: copy the two model files
# out one by one and tar the rest without the trained/ folder's PNGs and reports.
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-out/cuda}")"
minutes="${2:-3}"
device="${CUDA_CHECK_DEVICE:-cuda}"  # cpu: a dry run of the script itself on a machine with no GPU
# Images per training step; the default 8 was launch-bound on an H200 (31-92 img/s), a larger
# batch should cost little more per step there.
batch=(${CUDA_CHECK_BATCH:+--batch "$CUDA_CHECK_BATCH"})
mkdir -p "$out"
py=.venv/bin/python
[ -x "$py" ] || py=python3
export PYTHONUNBUFFERED=1 SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy

step() {  # step NAME SECONDS COMMAND...: the command's output into $out/NAME.txt, its status into steps.txt
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$out/$name.txt" 2>&1
    local rc=$?
    echo "$name rc=$rc $((SECONDS - t0))s" | tee -a "$out/steps.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$py" -c "import torch, sys; print(sys.version); print('torch', torch.__version__, torch.cuda.is_available())"
} >"$out/gpu.txt" 2>&1
step tests 120 "$py" -m pytest -q -p no:cacheprovider tests/test_cuda_path.py tests/test_precision.py
for precision in fp32 fp16; do
    step "models-$precision" 120 "$py" run_show.py bench --models --device "$device" --precision "$precision" \
        --frames 300 --json "$out/models-$precision.json"
done
step models-fp16-nograph 120 "$py" run_show.py bench --models --device "$device" --precision fp16 --cuda-graph off \
    --frames 300 --json "$out/models-fp16-nograph.json"
step scenes 120 "$py" run_show.py bench --device "$device" --frames 300 --json "$out/scenes.json"

# Both trainings share the GPU (each is far from filling it); the budget is wall time.
mkdir -p "$out/trained"
limit=$(( ${minutes%.*} * 60 + 150 ))
step train-deepfield "$limit" "$py" run_show.py train gan --data pictures/deepfield --out "$out/trained/deepfield_gpu" \
    --preset gpu --device "$device" --minutes "$minutes" --seed 1 "${batch[@]}" &
step train-tissue "$limit" "$py" run_show.py train gan --data pictures/tissue --out "$out/trained/tissue_gpu" \
    --preset gpu --size 256 --device "$device" --minutes "$minutes" --seed 1 "${batch[@]}" &
wait

for name in deepfield_gpu tissue_gpu; do
    model="$out/trained/$name.safetensors"
    [ -f "$model" ] || continue
    printf 'name = "%s (gpu preset)"\nmodel = "%s"\nseed = 7\n\n[path]\nkind = "keyframes"\nseconds_per_key = 3.0\nkeys = 8\n' \
        "$name" "$model" >"$out/$name.toml"
    step "show-$name" 60 "$py" run_show.py show --headless --seconds 10 --scene "$out/$name.toml" --device "$device" \
        --no-audio --stats "$out/show-$name.json"
done
rm -f "$out"/trained/*.state.safetensors  # the resume state: large, and not shipped
