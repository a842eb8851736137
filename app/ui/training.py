"""The Train page's form defaults and its time estimate, shared with the server's start (ui/server.py times the
default configuration before the first visitor, so a class opening the page at once does not wait for it)."""
from __future__ import annotations

import time

from mae_core.classroom.worker import timed_estimate
from mae_core.datasets import DATASETS
from mae_core.train import TrainArgs

from .heavy import gate

PRESETS = {"mae_fmnist_micro": "Micro · 0.1M",
           "mae_fmnist_tiny": "Tiny · 3.1M",
           "mae_photo_small": "Photo · 3.2M"}
# defaults: twice the updates of batch 128 for the same compute, at a higher rate, so a 2-minute run on a busy class
# server (fewer steps) still turns blobs into garments (bench/first_run.py measures it)
MASK_RATIO, NORM_PIX, BATCH, LR = 0.75, False, 64, 3e-3
EVAL_IMAGES = 500   # held-out images evaluated at each epoch's end


def data_choices() -> dict:
    """name -> label of the datasets this server has, the form's first one its default."""
    return {name: d.label for name, d in DATASETS.items() if d.available()}


def preset_choices(data: str) -> list:
    return [p for p in PRESETS if p.startswith(DATASETS[data].presets)]


def estimate(data: str, preset: str, mask_ratio: float, norm_pix: bool, batch: int, box=None):
    """``worker.Estimate`` of this configuration: timed once on this server (in a slot of its pool of heavy work,
    ``box`` telling a visitor who waits for one) and kept."""
    args = TrainArgs(data=data, preset=preset, mask_ratio=float(mask_ratio), norm_pix_loss=bool(norm_pix),
                     batch_size=int(batch), progress=False, eval_images=EVAL_IMAGES)
    return timed_estimate(args, gate=gate("timing a few training steps", box))


def estimate_defaults() -> None:
    """Time the form's default configuration (the server's warm-up)."""
    data = next(iter(data_choices()), None)
    if data is not None and not DATASETS[data].takes_path:
        estimate(data, preset_choices(data)[0], MASK_RATIO, NORM_PIX, BATCH)


def when(timed_at: float) -> str:
    """"just now", "2 min ago", "1 h ago": when the estimate was timed."""
    s = time.time() - timed_at
    return "just now" if s < 60 else (f"{s / 60:.0f} min ago" if s < 3600 else f"{s / 3600:.0f} h ago")
