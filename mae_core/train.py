"""MAE pretraining: one readable loop, the official recipe, runnable alone or under torchrun.

    python -m mae_core.train --data fashion-mnist --preset mae_fmnist_tiny --mask-ratio 0.75 --epochs 10 \\
        --out checkpoints/my_model
    torchrun --nproc_per_node=4 -m mae_core.train ...      # DistributedDataParallel, same flags

Recipe (He et al., Table 8 / official main_pretrain.py): AdamW betas (0.9, 0.95), weight decay 0.05 except on
biases and 1-D parameters, lr = base_lr * global_batch / 256, per-iteration linear warmup then half-cycle
cosine, mixed precision on GPU. ``--batch-size`` is per process, as in the official code.

Files written (rank 0 only, each atomically): OUT.safetensors + OUT.json (model card, every epoch),
OUT.state.pt (resumable training state: optimizer, step, RNG; tensors only), OUT.metrics.jsonl.
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import policy
from .checkpoints import atomic_write, safe_torch_load, save_model, CheckpointError
from .data import (DataError, ImageFolderDataset, PHOTO_HELDOUT, PHOTO_TRAIN, RandomCropPhotos,
                   find_fashion_mnist, load_fashion_mnist, load_fashion_mnist_subset, photo_eval_set)
from .masking import STRATEGIES, make_mask, random_mask
from .model import MAEConfig, MaskedAutoencoderViT, PRESETS, preset_config


class TrainingError(RuntimeError):
    """Training stopped for a reason the user must see (NaN loss, bad data, ...)."""


@dataclass
class TrainArgs:
    data: str = "fashion-mnist"          # fashion-mnist | fashion-mnist-subset | photos | folder:PATH
    preset: str = "mae_fmnist_tiny"
    mask_ratio: float = 0.75
    mask_strategy: str = "random"        # random | block | grid: how pretraining masks are drawn (paper Fig. 6)
    norm_pix_loss: bool = False
    epochs: int = 10
    time_budget: Optional[float] = None  # minutes; when set, the schedule runs on wall time and may end early
    batch_size: int = 256                # per process
    base_lr: float = 1.5e-4              # lr = base_lr * global_batch / 256
    lr: Optional[float] = None           # absolute lr, overrides base_lr
    min_lr: float = 0.0
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    seed: int = 0
    out: str = "runs/mae"
    resume: bool = False
    precision: str = "auto"              # auto | fp32 | bf16 | fp16
    device: str = "auto"                 # auto (a GPU when PyTorch sees one) | cpu | cuda
    threads: Optional[int] = None
    workers: Optional[int] = None        # data-loading processes; None: 0 on the CPU, up to 8 on a GPU
    photo_samples: int = 8192            # random crops per epoch for --data photos
    eval_images: int = 1000
    log_every: int = 20
    download: bool = False
    progress: bool = True
    overrides: dict = field(default_factory=dict)  # extra MAEConfig values

    def model_config(self) -> MAEConfig:
        return preset_config(self.preset, norm_pix_loss=self.norm_pix_loss, **self.overrides)


# --------------------------------------------------------------------------------------------------
# Distributed helpers (torchrun sets RANK / WORLD_SIZE / LOCAL_RANK)
# --------------------------------------------------------------------------------------------------

def pick_device(device: str = "auto") -> torch.device:
    """``device``: auto (CUDA when PyTorch sees a GPU, else CPU), cpu, or cuda (an error without a GPU)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {device!r}")
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise TrainingError("--device cuda: PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False); "
                            "use --device cpu or auto")
    return torch.device("cuda" if cuda and device != "cpu" else "cpu")


def describe_device(args: "TrainArgs") -> str:
    """Where and how a run with ``args`` would train, in words: "NVIDIA H200 (bf16)", "the CPU (2 threads, fp32)"."""
    device = pick_device(args.device)
    prec, _ = _precision(args, device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({prec})"
    n = args.threads or torch.get_num_threads()
    return f"the CPU ({n} thread{'s' if n != 1 else ''}, {prec})"


def init_distributed(device: str = "auto"):
    """(rank, world size, torch.device) for this process; starts the process group under torchrun.
    ``device``: as pick_device; under torchrun each process takes the GPU of its local rank."""
    chosen = pick_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, chosen
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if chosen.type == "cuda":
        n_gpu = torch.cuda.device_count()
        if local_rank >= n_gpu:
            raise TrainingError(f"process {local_rank} of this node has no GPU of its own (this node has {n_gpu}); "
                                f"start torchrun with --nproc_per_node={n_gpu}, or train on the CPU with --device cpu")
        torch.cuda.set_device(local_rank)
        device_, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device_, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), device_


def is_main(rank: int) -> bool:
    return rank == 0


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------

def fmnist_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A mild random crop for 28 px garments: scale 0.85-1.0, shift up to 2 px, horizontal flip; batched."""
    n = x.shape[0]
    scale = 0.85 + 0.15 * torch.rand(n, generator=generator)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def photo_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x  # crops and flips are drawn by RandomCropPhotos itself


def build_data(args: TrainArgs, config: MAEConfig):
    """Returns (train source, eval images (N, C, H, W) in [0, 1], augment fn, description dict)."""
    if args.data in ("fashion-mnist", "fashion-mnist-subset"):
        if config.in_chans != 1 or config.img_size != 28:
            raise DataError(f"Fashion-MNIST is 28x28 greyscale; preset {args.preset} expects "
                            f"{config.img_size}px with {config.in_chans} channel(s)")
        if args.data == "fashion-mnist" and (find_fashion_mnist() or args.download):
            train = load_fashion_mnist("train", download=args.download)
            test = load_fashion_mnist("test")
            desc = {"name": "Fashion-MNIST", "train": "train split (60,000)", "eval": "test split"}
        else:
            if args.data == "fashion-mnist":
                raise DataError(_missing_fmnist_message())
            sub = load_fashion_mnist_subset()
            train, test = sub.subset(range(0, 1600)), sub.subset(range(1600, 2000))
            desc = {"name": "Fashion-MNIST subset", "train": "bundled subset 0-1599", "eval": "bundled subset 1600-1999"}
        g = torch.Generator().manual_seed(1234)
        idx = torch.randperm(len(test), generator=g)[:args.eval_images]
        return train.images, test.images[idx], fmnist_augment, desc
    if args.data == "photos":
        ds = RandomCropPhotos(PHOTO_TRAIN, config.img_size, config.in_chans, length=args.photo_samples,
                              seed=args.seed)
        ev = photo_eval_set(config.img_size, config.in_chans)
        desc = {"name": "scikit-image photos", "train": "random resized crops of " + ", ".join(PHOTO_TRAIN),
                "eval": "fixed crops of held-out " + ", ".join(PHOTO_HELDOUT)}
        return ds, ev, photo_augment, desc
    if args.data.startswith("folder:"):
        root = args.data.split(":", 1)[1]
        ds = ImageFolderDataset(root, config.img_size, config.in_chans)
        skipped = ds.drop_unreadable()  # a corrupt file is skipped, not the run's end
        g = torch.Generator().manual_seed(1234)
        perm = torch.randperm(len(ds), generator=g)
        n_eval = min(args.eval_images, max(1, len(ds) // 10))
        ev = torch.stack([ds[int(i)][0] for i in perm[:n_eval]])
        desc = {"name": f"image folder {root}", "train": f"{len(ds)} images", "eval": f"{n_eval} images of it"}
        if skipped:
            desc.update(skipped=len(skipped), skipped_examples=[Path(f).name for f in skipped[:3]])
            if args.progress:
                print(_skipped_note(desc), file=sys.stderr)
        return ds, ev, _folder_augment, desc
    raise DataError(f"unknown --data {args.data!r}: use fashion-mnist, fashion-mnist-subset, photos or folder:PATH")


def _folder_augment(x, g):
    flip = torch.rand(x.shape[0], generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _missing_fmnist_message():
    from .data import fashion_mnist_search_paths
    return ("Fashion-MNIST was not found (looked in: " + ", ".join(map(str, fashion_mnist_search_paths())) +
            "). Install it with 'apt-get install dataset-fashion-mnist', pass --download where a network exists, "
            "or train on the bundled subset with --data fashion-mnist-subset.")


def _stack_images(items):
    return torch.stack([x for x, _ in items])


class Batches:
    """Index batches over a tensor or a Dataset, sharded per rank (DistributedSampler semantics). With
    ``workers`` > 0 a Dataset's items (decoding, random crops) are made in that many loader processes; the
    batches are the same as without, since every item depends on (seed, epoch, index) only."""

    def __init__(self, source, batch_size: int, rank: int, world: int, seed: int, workers: int = 0):
        self.source, self.batch_size, self.rank, self.world, self.seed = source, batch_size, rank, world, seed
        self.workers = workers  # used for Datasets only: a tensor is indexed in place
        n = len(source)
        self.per_rank = n // world
        if self.per_rank < 1:
            raise DataError(f"only {n} training images for {world} processes")
        self.steps_per_epoch = max(1, self.per_rank // batch_size)

    def epoch(self, epoch: int, start: int = 0):
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        perm = torch.randperm(len(self.source), generator=g)[: self.per_rank * self.world]
        mine = perm[self.rank::self.world]
        if hasattr(self.source, "set_epoch"):
            self.source.set_epoch(epoch)
        index_batches = [mine[s * self.batch_size:(s + 1) * self.batch_size].tolist()
                         for s in range(start, self.steps_per_epoch)]
        if isinstance(self.source, torch.Tensor):
            for idx in index_batches:
                yield self.source[idx]
        elif self.workers == 0:
            for idx in index_batches:
                yield _stack_images([self.source[i] for i in idx])
        else:
            loader = torch.utils.data.DataLoader(self.source, batch_sampler=index_batches, num_workers=self.workers,
                                                 collate_fn=_stack_images, pin_memory=torch.cuda.is_available())
            try:
                yield from loader
            except DataError as e:  # re-raised from a worker with its traceback in the text: keep the message
                last = str(e).strip().splitlines()[-1]
                raise DataError(last.split("DataError: ", 1)[-1]) from None


def loader_workers(requested: Optional[int], device: torch.device) -> int:
    """Loader processes: as asked, else 0 on the CPU (the cores are busy training) and up to 8 on a GPU, where
    decoding in the training process would leave it waiting. Never from a thread other than the main one
    (the app trains in a thread of a server process, which must not fork)."""
    if requested is not None:
        if requested < 0:
            raise ValueError(f"--workers must be >= 0, got {requested}")
        return requested
    if device.type != "cuda" or not threading_main():
        return 0
    return max(0, min(8, (os.cpu_count() or 1) // max(1, torch.cuda.device_count()) - 1))


# --------------------------------------------------------------------------------------------------
# Optimiser and schedule
# --------------------------------------------------------------------------------------------------

def param_groups(model: torch.nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def make_optimizer(params, lr: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW, fused into one kernel where this torch can (CPU and CUDA): on 2 CPU cores the fused step is about
    5x faster than the per-tensor one (7M parameters: 12 ms against 66 ms), the same update up to rounding."""
    try:
        return torch.optim.AdamW(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch, or a device without the fused kernel
        return torch.optim.AdamW(params, lr=lr, betas=betas)


def lr_at(progress: float, warmup: float, peak: float, minimum: float) -> float:
    """Linear warmup over the first ``warmup`` fraction, then half-cycle cosine to ``minimum``."""
    if progress < warmup:
        return peak * progress / warmup
    t = (progress - warmup) / max(1e-12, 1 - warmup)
    return minimum + (peak - minimum) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model: MaskedAutoencoderViT, images01: torch.Tensor, mask_ratio: float = 0.75, seed: int = 0,
             batch_size: int = 500) -> dict:
    """Masked-patch error on held-out images with fixed random masks: in the model's target space (the loss)
    and in [0, 1] pixel units (comparable across models, norm-pix ones re-scaled with true patch statistics)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    tot_loss = tot_pix = tot_n = 0.0
    for i in range(0, len(images01), batch_size):
        x01 = images01[i:i + batch_size].to(device)
        mask = random_mask(len(x01), model.config.grid_size, mask_ratio, seed=g).to(device)
        out, _, per_patch = model.reconstruct_pixels(x01, mask)
        m = out.mask
        tot_loss += float(out.loss) * float(m.sum())
        tot_pix += float((per_patch * m).sum())
        tot_n += float(m.sum())
    model.train(was_training)
    return {"eval_loss": tot_loss / tot_n, "eval_mse_pixels": tot_pix / tot_n, "eval_mask_ratio": mask_ratio}


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------

@dataclass
class StepInfo:
    step: int
    total_steps: int
    epoch: int
    loss: float
    lr: float
    images_per_s: float
    elapsed: float
    eta: float
    model: Optional[MaskedAutoencoderViT] = None
    note: Optional[str] = None          # something the user should read (e.g. images skipped), sent once


def _git_commit() -> Optional[str]:
    try:
        here = Path(__file__).resolve().parent
        r = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=here, capture_output=True, text=True,
                           timeout=5)
        return r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _precision(args: TrainArgs, device: torch.device):
    p = args.precision
    if p == "auto":
        if device.type == "cuda":
            p = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            p = "fp32"  # CPU bf16 autocast was 3-4x slower than fp32 on the 2-core dev machine
    if p not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"--precision must be auto, fp32, bf16 or fp16, got {p!r}")
    if p == "fp16" and device.type != "cuda":
        raise ValueError("fp16 mixed precision needs a GPU; use bf16 or fp32 on the CPU")
    return p, {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p)


def pretrain(args: TrainArgs, callback: Optional[Callable[[StepInfo], None]] = None,
             should_stop: Optional[Callable[[], bool]] = None, callback_every: int = 10) -> dict:
    """Run pretraining as ``args`` says. ``callback(StepInfo)`` is called every ``callback_every`` steps and at
    each epoch end (eta 0), in the training thread, between steps; ``should_stop()`` is polled each step and ends the run cleanly with a
    checkpoint. Returns the final model card. Raises TrainingError on NaN/inf loss."""
    policy.require_writable("training")
    try:  # fail now, not after the whole budget, when the output folder cannot be made
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainingError(f"cannot create the output folder {Path(args.out).parent} ({e.strerror or e})") from None
    rank, world, device = init_distributed(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + rank)
    np.random.seed(args.seed + rank)
    out = Path(args.out)
    state_path = out.with_suffix(".state.pt")
    metrics_path = out.with_suffix(".metrics.jsonl")

    config = args.model_config()
    model = MaskedAutoencoderViT(config).to(device)
    train_src, eval_images, augment, data_desc = build_data(args, config)
    batches = Batches(train_src, args.batch_size, rank, world, args.seed,
                      workers=loader_workers(args.workers, device))
    global_batch = args.batch_size * world
    peak_lr = args.lr if args.lr is not None else args.base_lr * global_batch / 256
    total_steps = batches.steps_per_epoch * args.epochs
    warmup_frac = min(0.5, args.warmup_epochs / max(1, args.epochs))

    opt = make_optimizer(param_groups(model, args.weight_decay), peak_lr)
    prec, amp_dtype = _precision(args, device)
    scaler = torch.amp.GradScaler("cuda") if prec == "fp16" else None

    step, start_epoch, elapsed_before, history = 0, 0, 0.0, []
    if args.resume:
        if not state_path.is_file():
            raise TrainingError(f"--resume: no training state at {state_path}")
        st = safe_torch_load(state_path)
        if st.get("config") != json.dumps(config.to_dict(), sort_keys=True):
            raise TrainingError(f"--resume: {state_path} was written for another model config")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        if scaler is not None and st.get("scaler"):
            scaler.load_state_dict(st["scaler"])
        step, start_epoch, elapsed_before = int(st["step"]), int(st["epoch"]), float(st["elapsed"])
        history = json.loads(st.get("history", "[]"))
        torch.set_rng_state(st["rng_cpu"])
    mask_gen = torch.Generator(device="cpu").manual_seed(args.seed * 7919 + rank)
    aug_gen = torch.Generator(device="cpu").manual_seed(args.seed * 104729 + rank)
    if args.resume:
        mask_gen.set_state(st["rng_mask"])
        aug_gen.set_state(st["rng_aug"])

    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    main = is_main(rank)
    card_base = {
        "name": out.name, "data": data_desc, "preset": args.preset, "mask_ratio": args.mask_ratio,
        "mask_strategy": args.mask_strategy,
        "norm_pix_loss": config.norm_pix_loss, "command": getattr(args, "_command", None),
        "commit": _git_commit(), "train_args": {k: v for k, v in dataclasses.asdict(args).items()
                                                 if k not in ("progress",)},
        "world_size": world, "global_batch": global_batch, "peak_lr": peak_lr, "precision": prec,
        "device": str(device.type), "pixel_normalisation": {"mean": list(config.pixel_mean),
                                                             "std": list(config.pixel_std)},
    }

    def last_good() -> str:
        return (f"{out}.safetensors (epoch {history[-1]['epoch']}, step {history[-1]['step']})"
                if history else "none (no epoch had finished)")

    def check_finite(where: str, metrics: Optional[dict] = None):
        """Non-finite weights (or a non-finite held-out loss) after any update stop the run before they are saved,
        so the checkpoint on disk stays the last good one."""
        bad = [n for n, p_ in model.named_parameters() if not torch.isfinite(p_).all()]
        ev = (metrics or {}).get("eval_loss")
        if bad or (ev is not None and not math.isfinite(ev)):
            what = f"weights became non-finite ({bad[0]}{' and others' if len(bad) > 1 else ''})" if bad else \
                f"the held-out loss became {ev}"
            raise TrainingError(f"{what} by step {step} ({where}); training stopped. Last good checkpoint: "
                                f"{last_good()}. Try a lower --lr/--base-lr.")

    def save(epoch_done: int, elapsed: float, final_metrics: dict, status: str) -> dict:
        card = {**card_base, "epochs": epoch_done, "steps": step, "wall_time_s": round(elapsed, 1),
                "status": status, "metrics": final_metrics, "history": history}
        if not main:
            return card
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                 "epoch": epoch_done, "elapsed": elapsed, "rng_cpu": torch.get_rng_state(),
                 "rng_mask": mask_gen.get_state(), "rng_aug": aug_gen.get_state(),
                 "config": json.dumps(config.to_dict(), sort_keys=True), "history": json.dumps(history),
                 "scaler": scaler.state_dict() if scaler is not None else {}}
        try:  # each file is written to a temporary name and renamed: a failed write leaves the previous one.
            # The resumable state goes first: when it cannot be written, nothing of this epoch is.
            atomic_write(state_path, lambda f: torch.save(state, f))
            save_model(model, out, card)
        except (OSError, RuntimeError) as e:
            if not _disk_full(e):
                raise
            kept = [f.name for f in (out.with_suffix(".safetensors"), out.with_suffix(".json"), state_path)
                    if f.is_file()]
            raise TrainingError(f"disk full at step {step} while saving; training stopped. Kept (each complete): "
                                f"{', '.join(kept) if kept else 'no files (no epoch had been saved)'}. Free some "
                                f"space, then resume.") from None
        return card

    def log(rec: dict):
        if main:
            try:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            except OSError as e:
                if not _disk_full(e):
                    raise  # a full disk is reported by the next checkpoint; the log line is lost

    if main and args.resume:
        _trim_metrics(metrics_path, step)  # the lines logged after the checkpoint we resume from are redone
    if main and data_desc.get("skipped"):
        log({"event": "skipped_images", "count": data_desc["skipped"], "examples": data_desc["skipped_examples"]})
        if callback is not None:
            callback(StepInfo(step, total_steps, start_epoch, float("nan"), 0.0, 0.0, 0.0, 0.0,
                              note=_skipped_note(data_desc)))

    bar = None
    if main and args.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps, initial=step, unit="it", dynamic_ncols=True, desc="pretrain")

    interrupted = {"flag": False}
    old_handler = None
    if main and threading_main():
        def on_sigint(signum, frame):
            if interrupted["flag"]:
                raise KeyboardInterrupt
            interrupted["flag"] = True
        old_handler = signal.signal(signal.SIGINT, on_sigint)

    t0 = time.time()
    last_card, epoch, status = None, start_epoch, "finished"
    model.train()
    seen_since, t_since = 0, time.time()
    first_step = step
    ips, loss_value, lr = 0.0, float("nan"), 0.0
    try:
        for epoch in range(start_epoch, args.epochs):
            if step >= total_steps:
                break
            skip = step - epoch * batches.steps_per_epoch  # > 0 when resuming a run stopped mid-epoch
            i = skip - 1
            for i, x01 in enumerate(batches.epoch(epoch, start=skip), start=skip):
                elapsed = elapsed_before + time.time() - t0
                if args.time_budget:
                    progress = min(1.0, elapsed / (args.time_budget * 60))
                else:
                    progress = step / total_steps
                lr = lr_at(progress, warmup_frac, peak_lr, args.min_lr)
                for gparam in opt.param_groups:
                    gparam["lr"] = lr
                x01 = augment(x01, aug_gen).to(device, non_blocking=True)
                x = model.normalize(x01)
                mask = None if args.mask_strategy == "random" else make_mask(
                    args.mask_strategy, x.shape[0], config.grid_size, args.mask_ratio, seed=mask_gen).to(device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    outp = ddp_model(x, mask=mask, mask_ratio=args.mask_ratio, generator=mask_gen)
                loss = outp.loss.float()
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise TrainingError(f"loss became {loss_value} at step {step} (epoch {epoch + 1}); training "
                                        f"stopped. Last good checkpoint: {last_good()}. Try a lower --lr/--base-lr.")
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                step += 1
                seen_since += x.shape[0] * world
                now = time.time()
                if now - t_since > 1.0:
                    ips = seen_since / (now - t_since)
                    seen_since, t_since = 0, now
                elapsed = elapsed_before + now - t0
                if args.time_budget:
                    eta = max(0.0, args.time_budget * 60 - elapsed)
                else:
                    eta = (total_steps - step) * (now - t0) / max(1, step - first_step)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", img_s=f"{ips:.0f}")
                if step % args.log_every == 0:
                    log({"step": step, "epoch": epoch + (i + 1) / batches.steps_per_epoch, "loss": loss_value,
                         "lr": lr, "images_per_s": round(ips, 1), "elapsed_s": round(elapsed, 2)})
                if callback is not None and step % callback_every == 0:
                    callback(StepInfo(step, total_steps, epoch, loss_value, lr, ips, elapsed, eta, model=model))
                stop_now = interrupted["flag"] or (should_stop is not None and should_stop())
                out_of_time = args.time_budget and elapsed >= args.time_budget * 60
                if stop_now or out_of_time:
                    break
            # end of an epoch (or an early stop): evaluate and checkpoint
            epoch_done = epoch + 1 if i + 1 >= batches.steps_per_epoch else epoch
            elapsed = elapsed_before + time.time() - t0
            metrics = evaluate(model, eval_images, 0.75) if main else {}
            check_finite(f"end of epoch {epoch + 1}", metrics)
            metrics["train_loss"] = loss_value
            rec = {"step": step, "epoch": epoch_done, "elapsed_s": round(elapsed, 1), **metrics}
            history.append(rec)
            log({"event": "epoch_end", **rec})
            stopped = interrupted["flag"] or (should_stop is not None and should_stop())
            out_of_time = bool(args.time_budget and elapsed >= args.time_budget * 60)
            status = "stopped" if stopped else ("finished" if (epoch_done >= args.epochs or out_of_time)
                                                else "running")
            last_card = save(epoch_done, elapsed, metrics, status)
            if callback is not None:
                callback(StepInfo(step, total_steps, epoch_done, loss_value, lr, ips, elapsed, 0.0, model=model))
            if stopped or out_of_time:
                break
    finally:
        if bar is not None:
            bar.close()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    if world > 1:
        dist.barrier()
    if last_card is not None and last_card["status"] == "running":
        last_card["status"] = "finished"
        if main:
            save_model(model, out, last_card)
    return last_card or {}


def _disk_full(e: BaseException) -> bool:
    """A write that failed for lack of space: ENOSPC and kin, or torch.save's own wording for a short write."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return "unexpected pos" in str(e) or "No space left" in str(e)


def _trim_metrics(path: Path, step: int) -> None:
    """Drop the log lines written after ``step`` (a run killed after its last checkpoint logged steps that the
    resumed run makes again), so the log never repeats a step."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if int(rec.get("step", 0)) <= step and not (rec.get("event") == "epoch_end" and rec.get("step", 0) > step):
            keep.append(line)
    atomic_write(path, lambda f: f.write("".join(l + "\n" for l in keep)), mode="w")


def _skipped_note(desc: dict) -> str:
    n, ex = desc["skipped"], desc["skipped_examples"]
    return (f"{n} unreadable image{'s' if n != 1 else ''} skipped (e.g. {', '.join(ex)}); training on the "
            f"{desc['train']}.")


def threading_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    d = TrainArgs()
    p = argparse.ArgumentParser(prog="python -m mae_core.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=d.data, help="fashion-mnist | fashion-mnist-subset | photos | folder:PATH")
    p.add_argument("--preset", default=d.preset, choices=sorted(PRESETS))
    p.add_argument("--mask-ratio", type=float, default=d.mask_ratio)
    p.add_argument("--mask-strategy", choices=STRATEGIES, default=d.mask_strategy,
                   help="how pretraining hides patches: random (the paper's default), block or grid (Fig. 6)")
    p.add_argument("--norm-pix", dest="norm_pix_loss", action="store_true", help="per-patch normalised target")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--time-budget", type=float, default=None, help="minutes; schedule follows wall time")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="per process")
    p.add_argument("--base-lr", type=float, default=d.base_lr, help="lr = base_lr * global batch / 256")
    p.add_argument("--lr", type=float, default=None, help="absolute peak lr (overrides --base-lr)")
    p.add_argument("--min-lr", type=float, default=d.min_lr)
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out, help="output path without extension")
    p.add_argument("--resume", action="store_true", help="continue from OUT.state.pt")
    p.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"],
                   help="auto: a GPU when PyTorch sees one (under torchrun, one per process), else the CPU")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workers", type=int, default=None,
                   help="data-loading processes for photos and image folders (default: 0 on the CPU, up to 8 on a "
                        "GPU)")
    p.add_argument("--photo-samples", type=int, default=d.photo_samples)
    p.add_argument("--eval-images", type=int, default=d.eval_images)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--download", action="store_true", help="download Fashion-MNIST if it is not installed")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model config value, e.g. --set decoder_depth=1")
    return p


def parse_args(argv=None) -> TrainArgs:
    p = build_parser()
    ns = p.parse_args(argv)
    overrides = {}
    for item in ns.set:
        if "=" not in item:
            p.error(f"--set needs KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        if k not in {f.name for f in dataclasses.fields(MAEConfig)}:
            p.error(f"--set: unknown config key {k!r}")
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    kw = {k: v for k, v in vars(ns).items() if k != "set"}
    if not 0 <= kw["mask_ratio"] < 1:
        p.error(f"--mask-ratio must be in [0, 1), got {kw['mask_ratio']}")
    if kw["epochs"] < 1 or kw["batch_size"] < 1:
        p.error("--epochs and --batch-size must be positive")
    args = TrainArgs(**kw, overrides=overrides)
    args._command = "python -m mae_core.train " + " ".join(argv if argv is not None else sys.argv[1:])
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        card = pretrain(args)
    except (TrainingError, DataError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if card:
        m = card.get("metrics", {})
        print(f"{card['status']}: {card['epochs']} epoch(s), {card['steps']} steps in {card['wall_time_s']} s; "
              f"held-out masked MSE {m.get('eval_loss', float('nan')):.4f} -> {args.out}.safetensors")
        if card["status"] == "stopped":
            print(f"resume with: {card['command'] or 'python -m mae_core.train ...'} --resume")
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
