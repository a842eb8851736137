#!/usr/bin/env bash
# The GPU checks, in one short run on a machine with one CUDA GPU (not CI: CI has none). Writes its log and
# results under ${OUT:-/tmp/cuda_check}. Needs torch, timm, safetensors, scikit-image, tqdm and pytest there
# (transformers for the Hugging Face comparison); the app's packages are not needed.
#   bash bench/cuda_check.sh
set -u
OUT=${OUT:-/tmp/cuda_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MAE_CACHE_DIR=/tmp/mae_cache
PY=${PYTHON:-python3}
fail=0
step() { echo; echo "=== $1 ($(date +%T))"; }

step "machine"
nvidia-smi -L
$PY -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__, torch.cuda.get_device_name())"

step "unit tests with the GPU visible (training runs on CUDA, bf16 autocast)"
$PY -m pytest -q -x tests/test_train.py tests/test_model.py tests/test_masking.py tests/test_checkpoints.py \
    tests/test_worker.py tests/test_explore.py tests/test_sweep.py tests/test_embed.py \
    -p no:cacheprovider 2>&1 | tail -15 || fail=1

step "CLI: 3 epochs on photos, then --resume to 4"
$PY -m mae_core.train --data photos --preset mae_photo_small --epochs 3 --out "$OUT/photo" --no-progress || fail=1
$PY -m mae_core.train --data photos --preset mae_photo_small --epochs 4 --out "$OUT/photo" --no-progress --resume || fail=1
$PY - "$OUT/photo.json" <<'PY' || fail=1
import json, sys
card = json.load(open(sys.argv[1]))
h = card["history"]
print({k: card[k] for k in ("device", "precision", "epochs", "steps", "wall_time_s", "status")})
print("held-out masked MSE per epoch:", [round(e["eval_loss"], 4) for e in h],
      "train loss:", [round(e["train_loss"], 4) for e in h])
assert card["device"] == "cuda" and card["precision"] == "bf16" and card["epochs"] == 4
assert h[-1]["eval_loss"] < h[0]["eval_loss"], "held-out loss did not fall"
PY

step "fp16 with a gradient scaler (what GPUs without bf16 get), 2 epochs then --resume to 3"
$PY -m mae_core.train --data fashion-mnist-subset --preset mae_fmnist_micro --precision fp16 --epochs 2 \
    --out "$OUT/f16" --no-progress || fail=1
$PY -m mae_core.train --data fashion-mnist-subset --preset mae_fmnist_micro --precision fp16 --epochs 3 \
    --out "$OUT/f16" --no-progress --resume || fail=1
$PY -c "import json; c = json.load(open('$OUT/f16.json')); print(c['precision'], c['epochs'], \
[round(e['eval_loss'], 4) for e in c['history']]); assert c['precision'] == 'fp16' and c['epochs'] == 3" || fail=1

step "torchrun, 1 process per GPU (nccl)"
$PY -m torch.distributed.run --standalone --nproc_per_node=1 -m mae_core.train --data fashion-mnist-subset \
    --preset mae_fmnist_micro --epochs 1 --out "$OUT/ddp" --no-progress || fail=1
step "torchrun, more processes than GPUs: a message, not a traceback"
$PY -m torch.distributed.run --standalone --nproc_per_node=2 -m mae_core.train --data fashion-mnist-subset \
    --preset mae_fmnist_micro --epochs 1 --out "$OUT/ddp2" --no-progress > "$OUT/ddp2.log" 2>&1
grep -m2 "error:" "$OUT/ddp2.log"; grep -c Traceback "$OUT/ddp2.log"

step "inference: CPU and CUDA agree; ViT-B/L stroke latency"
$PY bench/cuda_check.py || fail=1

step "training throughput, bf16, official sizes at 224 px"
$PY bench/train_throughput.py --device cuda --precision bf16 --configs vit_base_224 vit_large_224 \
    --repeats 5 --batch 64 --tag _cuda || fail=1
cp bench/results/train_throughput_cuda.json "$OUT/" 2>/dev/null

echo; echo "=== done, fail=$fail ($(date +%T))"
exit $fail
