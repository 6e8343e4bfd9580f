#!/usr/bin/env bash
# The GPU checks of one session, as one script: the label factory's speed at the StyleGAN1 car setting (random
# weights, 384x512 labels, 10 members; labelled pairs per second end to end beside synthesis alone), then the
# toy GAN trained on for MINUTES from its committed state (checkpoints/toy-gan-training-bf16.pt), its new
# generator and compact state copied to OUT to bring back.
# Usage (repo root, a CUDA machine): OUT=dir MINUTES=8 bash bench/gpu_checks.sh
set -u
OUT=${OUT:-gpu-out}
MINUTES=${MINUTES:-8}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT" runs
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
log="$OUT/log.txt"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python -c "import torch; print('torch', torch.__version__)"
  python bench/factory.py --device "$DEVICE" --settings car --stages synthesis end-to-end --repeats 3
} >>"$log" 2>&1
python -m benchmark toy --split unlabelled --n 6000 --out data/toy-unlabelled >>"$log" 2>&1
python -m benchmark gan train --data data/toy-unlabelled --run runs/toy-gan-gpu --device "$DEVICE" \
  --minutes "$MINUTES" --iterations 1000000 --anchors 512 --anchor-weight 50 --anchor-warmup 2000 \
  --resume-from checkpoints/toy-gan-training-bf16.pt >>"$log" 2>&1
cp runs/toy-gan-gpu/generator.pt runs/toy-gan-gpu/training-bf16.pt runs/toy-gan-gpu/log.json "$OUT"/ 2>>"$log"
tail -n 5 "$log"
