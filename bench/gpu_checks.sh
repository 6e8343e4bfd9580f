#!/usr/bin/env bash
# The GPU checks of one session, as one script: backbone and renderer speed on CUDA, the CUDA
# renderer test, then toy-GAN training runs side by side (one per R1 weight) for MINUTES each.
# Usage (repo root, a CUDA machine): OUT=dir MINUTES=7 bash bench/gpu_checks.sh
# Needs the toy unlabelled pool in data/toy-unlabelled (benchmark toy --split unlabelled --n 6000).
set -u
OUT=${OUT:-gpu-out}
MINUTES=${MINUTES:-7}
GAMMAS=${GAMMAS:-"0.1 1.0 0.025"}
DEVICE=${DEVICE:-cuda}
BENCH=${BENCH:-1}  # 0: skip the speed benches
mkdir -p "$OUT" runs
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
log="$OUT/log.txt"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python -c "import torch; print('torch', torch.__version__)"
  if [ "$BENCH" = 1 ]; then
    python bench/backbone.py --device "$DEVICE" --batch 4
    python bench/backbone.py --device "$DEVICE" --batch 4 --dtype bfloat16
    python bench/render.py --device "$DEVICE"
  fi
  python -m pytest -q -p no:cacheprovider tests/test_renderer.py -k cuda
} >>"$log" 2>&1

for gamma in $GAMMAS; do
  python -m benchmark gan train --data data/toy-unlabelled/images --run "runs/gpu-gamma$gamma" --device "$DEVICE" \
    --minutes "$MINUTES" --r1-gamma "$gamma" >"runs/gpu-gamma$gamma.log" 2>&1 &
done
wait
for gamma in $GAMMAS; do
  run="runs/gpu-gamma$gamma"
  { echo "== r1 gamma $gamma"; tail -c 600 "$run.log"; echo; } >>"$log"
  cp "$run/generator.pt" "$OUT/generator-gamma$gamma.pt"
  cp "$(ls "$run"/samples-*.png | tail -1)" "$OUT/samples-gamma$gamma.png"
done
