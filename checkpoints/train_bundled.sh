#!/usr/bin/env bash
# Reproduces every bundled checkpoint on a CPU (2 cores here): trains, stores the weights in float16
# (6 MB instead of 12), then measures the model card's held-out and embedding metrics.
# Usage: bash checkpoints/train_bundled.sh [NAME ...]   (no names: all of them, in this order)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
COMMON="--data fashion-mnist --preset mae_fmnist_tiny --epochs 3 --batch-size 256 --lr 1e-3 --warmup-epochs 0.3 --threads 2 --no-progress"
run() {
  name=$1; shift
  echo "== $name: $*"
  $PY -m mae_core.train "$@" --out "checkpoints/$name"
  rm -f "checkpoints/$name.state.pt"   # the resumable state is not shipped
  $PY -m mae_core.checkpoints half "checkpoints/$name"
  $PY -m mae_core.cards measure "checkpoints/$name"
}
SELECTED="$*"
all=(fmnist_r75 photo64_r75 fmnist_r90 fmnist_r50 fmnist_r25 fmnist_r75_normpix)
for name in "${all[@]}"; do
  if [ -n "$SELECTED" ] && [[ " $SELECTED " != *" $name "* ]]; then continue; fi
  case $name in
    fmnist_r25) run $name $COMMON --mask-ratio 0.25 ;;
    fmnist_r50) run $name $COMMON --mask-ratio 0.50 ;;
    fmnist_r75) run $name $COMMON --mask-ratio 0.75 ;;
    fmnist_r90) run $name $COMMON --mask-ratio 0.90 ;;
    fmnist_r75_normpix) run $name --data fashion-mnist --preset mae_fmnist_tiny --epochs 16 --batch-size 256 --lr 1e-3 \
                          --warmup-epochs 1 --threads 2 --no-progress --mask-ratio 0.75 --norm-pix ;;
    photo64_r75) run $name --data photos --preset mae_photo_small --mask-ratio 0.75 --epochs 12 --photo-samples 8192 \
                   --batch-size 128 --lr 1e-3 --warmup-epochs 1 --threads 2 --no-progress ;;
  esac
done
