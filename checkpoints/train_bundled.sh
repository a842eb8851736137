#!/usr/bin/env bash
# Reproduces every bundled checkpoint on a CPU (2 cores here): trains, stores the weights in float16
# (6 MB instead of 12), then measures the model card's held-out and embedding metrics.
# Usage: bash checkpoints/train_bundled.sh [NAME ...]   (no names: all of them, in this order)
# The Fashion-MNIST models share one budget (SERIES: 24 epochs, same lr and schedule) so that the pretraining
# ratio (paper Fig. 5) and strategy (Fig. 6) comparisons differ in one setting only; each run scores its encoder
# every 2 epochs (--probe-every) so its card shows the probe against epochs, and keeps its epoch-18 weights (the start
# of the last quarter, --keep-epochs) for the paired full-protocol convergence check (cards converged) that the card
# then carries; the snapshot stays in runs/bundled/, not shipped. A run stopped part-way continues with
# RESUME=1 (it adds --resume where a stopped run left its state; a name with none starts afresh). THREADS=1 trains
# with one thread, for two runs side by side on 2 cores (1.18x the images/s of one 2-thread run in total:
# python bench/thread_split.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
KEEP=18   # the snapshot epoch: the start of the last quarter of the 24-epoch budget
SERIES="--data fashion-mnist --preset mae_fmnist_tiny --epochs 24 --batch-size 256 --lr 1e-3 --warmup-epochs 1 --threads ${THREADS:-2} --no-progress --probe-every 2 --keep-epochs $KEEP"
run() {
  name=$1; shift
  echo "== $name: $*"
  # trained in runs/bundled/ and moved into checkpoints/ once finished, so the shipped model stays usable meanwhile
  stage="runs/bundled/$name"
  mkdir -p runs/bundled
  resume=""
  if [ -n "${RESUME:-}" ]; then   # continue where a stopped run left off; nothing to continue: start it
    if [ -f "$stage.state.pt" ]; then resume=--resume; else echo "   (no $stage.state.pt to resume: starting afresh)"; fi
  fi
  $PY -m mae_core.train "$@" --out "$stage" $resume
  rm -f "$stage.state.pt"   # the resumable state is not shipped
  # the card's measure keeps to the run's thread count too: beside a second run, a 2-thread measure on 2 cores
  # slows both several times over (OpenMP threads waiting on each other)
  OMP_NUM_THREADS=${THREADS:-2} $PY -m mae_core.checkpoints half "$stage"
  OMP_NUM_THREADS=${THREADS:-2} $PY -m mae_core.evaluation.cards measure "$stage"
  if [ -f "${stage}_epoch$KEEP.safetensors" ]; then   # the series keeps epoch $KEEP: halved like the model, then paired
    OMP_NUM_THREADS=${THREADS:-2} $PY -m mae_core.checkpoints half "${stage}_epoch$KEEP"
    OMP_NUM_THREADS=${THREADS:-2} $PY -m mae_core.evaluation.cards converged "$stage" "${stage}_epoch$KEEP"
  fi
  for ext in safetensors json metrics.jsonl; do mv "$stage.$ext" "checkpoints/$name.$ext"; done
  # the pages' default results of the new weights (keyed by their hash: the old ones no longer match)
  OMP_NUM_THREADS=${THREADS:-2} $PY -m mae_core.evaluation.precompute "$name"
}
SELECTED="$*"
all=(fmnist_r75_normpix fmnist_r90 fmnist_r25 fmnist_r50 fmnist_r60 fmnist_r85 fmnist_block75 fmnist_grid75 fmnist_r75 fmnist_r75_dec4 photo64_r75)
for name in "${all[@]}"; do
  if [ -n "$SELECTED" ] && [[ " $SELECTED " != *" $name "* ]]; then continue; fi
  case $name in
    fmnist_r25) run $name $SERIES --norm-pix --mask-ratio 0.25 ;;
    fmnist_r50) run $name $SERIES --norm-pix --mask-ratio 0.50 ;;
    fmnist_r60) run $name $SERIES --norm-pix --mask-ratio 0.60 ;;
    fmnist_r85) run $name $SERIES --norm-pix --mask-ratio 0.85 ;;
    fmnist_r75_normpix) run $name $SERIES --norm-pix --mask-ratio 0.75 ;;
    fmnist_r90) run $name $SERIES --norm-pix --mask-ratio 0.90 ;;
    fmnist_block75) run $name $SERIES --norm-pix --mask-ratio 0.75 --mask-strategy block ;;
    fmnist_grid75) run $name $SERIES --norm-pix --mask-ratio 0.75 --mask-strategy grid ;;
    fmnist_r75) run $name $SERIES --mask-ratio 0.75 ;;   # pixel target: the reconstruction views' model
    # decoder depth 4 instead of the preset's 2, else the norm-pix 75% model: the paper's Table 1a (a deeper decoder
    # leaves the encoder's last blocks more abstract, which a linear probe rewards)
    fmnist_r75_dec4) run $name $SERIES --norm-pix --mask-ratio 0.75 --set decoder_depth=4 ;;
    photo64_r75) run $name --data photos --preset mae_photo_small --mask-ratio 0.75 --epochs 12 --photo-samples 8192 \
                   --batch-size 128 --lr 1e-3 --warmup-epochs 1 --threads 2 --no-progress ;;
  esac
done
