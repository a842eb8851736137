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

import threading
import argparse
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist

from .checkpoints import CheckpointError, save_model
from .data import Batches, DataError, loader_workers, skipped_note
from .datasets import build_data, labelled, labelled_names
from .masking import STRATEGIES, make_mask
from .metrics import evaluate, knn_accuracy, linear_probe_accuracy
from .model import MAEConfig, MaskedAutoencoderViT, PRESETS, preset_config
from .optim import lr_at, make_optimizer, param_groups
from .runfiles import Checkpoints, TrainingError, _git_commit
from .embed import encode


def _opt(default=None, help: str = "", **cli):
    """A ``TrainArgs`` field and its command-line option (``build_parser`` reads them): ``flag`` when it is not
    ``--field-name``, and any ``argparse`` keyword (type, choices, nargs, metavar)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainArgs:
    data: str = _opt("fashion-mnist", "fashion-mnist | fashion-mnist-subset | photos | folder:PATH")
    preset: str = _opt("mae_fmnist_tiny", choices=sorted(PRESETS))
    mask_ratio: float = _opt(0.75, "share of patches hidden in pretraining, in [0, 1)")
    mask_strategy: str = _opt("random", "how pretraining hides patches: random (the paper's default), block or grid "
                              "(Fig. 6)", choices=tuple(STRATEGIES))
    norm_pix_loss: bool = _opt(False, "per-patch normalised target", flag="--norm-pix")
    epochs: int = _opt(10)
    time_budget: Optional[float] = _opt(None, "minutes; the schedule follows wall time and may end early", type=float)
    batch_size: int = _opt(256, "per process")
    base_lr: float = _opt(1.5e-4, "lr = base_lr * global batch / 256")
    lr: Optional[float] = _opt(None, "absolute peak lr (overrides --base-lr)", type=float)
    min_lr: float = _opt(0.0)
    warmup_epochs: float = _opt(1.0)
    weight_decay: float = _opt(0.05)
    seed: int = _opt(0)
    out: str = _opt("runs/mae", "output path without extension")
    resume: bool = _opt(False, "continue from OUT.state.pt")
    precision: str = _opt("auto", choices=("auto", "fp32", "bf16", "fp16"))
    device: str = _opt("auto", "auto: a GPU when PyTorch sees one (under torchrun, one per process), else the CPU",
                       choices=("auto", "cpu", "cuda"))
    threads: Optional[int] = _opt(None, type=int)
    workers: Optional[int] = _opt(None, "data-loading processes for photos and image folders (default: 0 on the CPU, "
                                  "up to 8 on a GPU)", type=int)
    photo_samples: int = _opt(8192, "random crops per epoch for --data photos")
    eval_images: int = _opt(1000)
    log_every: int = _opt(20)
    probe_every: int = _opt(0, "score the encoder (linear probe and kNN on fixed Fashion-MNIST images) every EPOCHS "
                            "epochs and at the end; the scores go into the log and the card's history (0: never)",
                            metavar="EPOCHS")
    probe_images: tuple = _opt((10000, 5000), "images the probe fits on and scores on", type=int, nargs=2,
                               metavar=("TRAIN", "TEST"))
    keep_epochs: tuple = _opt((), "also keep these epochs' weights and card as OUT_epochN: a snapshot to compare the "
                              "final model with on the full protocol (python -m mae_core.evaluation.cards converged "
                              "OUT OUT_epochN)", type=int, nargs="+", metavar="EPOCH")
    stop_after: Optional[int] = _opt(None, "end the run after this epoch, resumable, the schedule still spanning "
                                     "--epochs: with the same flags, seed and threads, replays a finished run up to "
                                     "that epoch (with --keep-epochs, a snapshot of a run that kept none)",
                                     type=int, metavar="EPOCH")
    download: bool = _opt(False, "download Fashion-MNIST if it is not installed")
    progress: bool = _opt(True, "no progress bar", flag="--no-progress")
    overrides: dict = field(default_factory=dict, metadata={   # extra MAEConfig values
        "help": "override a model config value, e.g. --set decoder_depth=1", "flag": "--set", "action": "append",
        "metavar": "KEY=VALUE"})

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
# Setup and one step (shared by the loop below, the app's time estimate and bench/train_throughput.py)
# --------------------------------------------------------------------------------------------------

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


@dataclass
class Setup:
    """What a training step needs: the model (``net`` is it, or its DDP wrapper), optimiser, precision and the
    gradient scaler fp16 needs (None otherwise)."""
    model: MaskedAutoencoderViT
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    device: torch.device
    precision: str
    amp_dtype: Optional[torch.dtype]
    scaler: Optional[torch.amp.GradScaler]

    def wrap_ddp(self) -> None:
        self.net = torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def step(self, x: torch.Tensor, lr: Optional[float] = None, **kw) -> Optional[float]:
        if lr is not None:
            for group in self.opt.param_groups:
                group["lr"] = lr
        return train_step(self.net, self.opt, x, amp_dtype=self.amp_dtype, scaler=self.scaler, **kw)


def setup(args: TrainArgs, config: MAEConfig, device: Optional[torch.device] = None, lr: float = 1e-4) -> Setup:
    """Model, optimiser (the official recipe's AdamW groups), precision and scaler for ``args`` on ``device``."""
    device = device or pick_device(args.device)
    model = MaskedAutoencoderViT(config).to(device)
    prec, amp_dtype = _precision(args, device)
    opt = make_optimizer(param_groups(model, args.weight_decay), lr)
    scaler = torch.amp.GradScaler("cuda") if prec == "fp16" else None
    return Setup(model, model, opt, device, prec, amp_dtype, scaler)


class NonFiniteLoss(TrainingError):
    def __init__(self, value: float):
        super().__init__(f"loss became {value}")
        self.value = value


def train_step(net, opt, x: torch.Tensor, *, mask_ratio: float = 0.75, mask: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None, amp_dtype=None, scaler=None,
               check_finite: bool = True) -> Optional[float]:
    """One optimisation step on normalised images ``x``: forward under autocast, then backward and the optimiser
    step (through ``scaler`` when given: fp16). With ``check_finite`` the loss is read (a device sync) and a
    non-finite one raises ``NonFiniteLoss`` before any weight changes; returns it as a float."""
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = net(x, mask=mask, mask_ratio=mask_ratio, generator=generator).loss.float()
    value = None
    if check_finite:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLoss(value)
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return value


# --------------------------------------------------------------------------------------------------
# The loop and what it keeps: checkpoints, the metrics log, Ctrl-C
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


@contextlib.contextmanager
def _ctrl_c(active: bool):
    """The first Ctrl-C asks the loop to save and stop (``flag["set"]``); a second one interrupts at once."""
    flag = {"set": False}
    if not active:
        yield flag
        return

    def on_sigint(signum, frame):
        if flag["set"]:
            raise KeyboardInterrupt
        flag["set"] = True
    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)


class _Pace:
    """Images per second (over the last second or more) and the time left."""

    def __init__(self, args: TrainArgs, total_steps: int, first_step: int, elapsed_before: float):
        self.args, self.total, self.first, self.before = args, total_steps, first_step, elapsed_before
        self.t0 = self.t_since = time.time()
        self.seen, self.ips = 0, 0.0

    def elapsed(self) -> float:
        return self.before + time.time() - self.t0

    def exclude(self, seconds: float) -> None:
        """Take time spent on something other than training (scoring) off the clock."""
        self.t0 += seconds
        self.t_since, self.seen = time.time(), 0

    def progress(self, step: int) -> float:
        """Where the lr schedule stands: wall time against the budget, or steps against the total."""
        if self.args.time_budget:
            return min(1.0, self.elapsed() / (self.args.time_budget * 60))
        return step / self.total

    def tick(self, n_images: int, step: int) -> float:
        now = time.time()
        self.seen += n_images
        if now - self.t_since > 1.0:
            self.ips, self.seen, self.t_since = self.seen / (now - self.t_since), 0, now
        if self.args.time_budget:
            return max(0.0, self.args.time_budget * 60 - self.elapsed())
        return (self.total - step) * (now - self.t0) / max(1, step - self.first)

    def out_of_time(self) -> bool:
        return bool(self.args.time_budget and self.elapsed() >= self.args.time_budget * 60)


@dataclass
class Run:
    """Everything a run has prepared before its first step (``_prepare``)."""
    args: TrainArgs
    s: Setup
    config: MAEConfig
    batches: Batches
    eval_images: torch.Tensor
    augment: Callable
    gens: tuple                 # (masks, augmentation) generators, saved with the state
    ckpt: "Checkpoints"
    pace: "_Pace"
    rank: int
    world: int
    main: bool
    step: int
    start_epoch: int
    total_steps: int
    warmup_frac: float
    peak_lr: float
    probe: Optional[ProbeSet] = None


def _prepare(args: TrainArgs, callback) -> Run:
    """Device and processes, seeds, model and optimiser, data, checkpoints (resumed when asked)."""
    try:  # fail now, not after the whole budget, when the output folder cannot be made
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainingError(f"cannot create the output folder {Path(args.out).parent} ({e.strerror or e})") from None
    rank, world, device = init_distributed(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + rank)
    np.random.seed(args.seed + rank)
    config = args.model_config()
    global_batch = args.batch_size * world
    peak_lr = args.lr if args.lr is not None else args.base_lr * global_batch / 256
    s = setup(args, config, device, peak_lr)  # the model's init draws from the seeded RNG first
    train_src, eval_images, augment, data_desc = build_data(args, config)
    batches = Batches(train_src, args.batch_size, rank, world, args.seed, workers=loader_workers(args.workers, device))
    gens = (torch.Generator().manual_seed(args.seed * 7919 + rank),      # masks
            torch.Generator().manual_seed(args.seed * 104729 + rank))    # augmentation
    ckpt = Checkpoints(args, s, _card_base(args, config, data_desc, world, global_batch, peak_lr, s), is_main(rank))
    step, start_epoch, elapsed_before = ckpt.resume(config, gens) if args.resume else (0, 0, 0.0)
    if world > 1:
        s.wrap_ddp()
    total_steps = batches.steps_per_epoch * args.epochs
    if data_desc.get("skipped"):
        ckpt.log({"event": "skipped_images", "count": data_desc["skipped"], "examples": data_desc["skipped_examples"]})
        if callback is not None:
            callback(StepInfo(step, total_steps, start_epoch, float("nan"), 0.0, 0.0, 0.0, 0.0,
                              note=skipped_note(data_desc)))
    probe = ProbeSet(args) if args.probe_every > 0 and is_main(rank) else None
    if probe is not None:  # the card says how its history's probe scores were measured
        ckpt.card_base.setdefault("extra", {})["probe_protocol"] = \
            f"every {args.probe_every} epochs and at the end: {probe.note}"
    return Run(args, s, config, batches, eval_images, augment, gens, ckpt,
               _Pace(args, total_steps, step, elapsed_before), rank, world, is_main(rank), step, start_epoch,
               total_steps, min(0.5, args.warmup_epochs / max(1, args.epochs)), peak_lr, probe)


class ProbeSet:
    """Fixed labelled images for scoring the encoder during training: a seeded draw of the Fashion-MNIST train
    split to fit on, and of the test split to score on (the same draw at every epoch and on resume)."""

    def __init__(self, args: TrainArgs):
        n_train, n_test = args.probe_images
        if args.data not in labelled_names():
            raise TrainingError(f"--probe-every needs labelled data: --data {' or '.join(labelled_names())}")
        train, test = labelled(args.data)
        if test is train:   # one labelled set (the bundled subset), split in two
            n_train, n_test = min(n_train, len(train) // 2), min(n_test, len(train) // 2)
        rng = np.random.default_rng(1234)
        tr = rng.choice(len(train), min(n_train, len(train)), replace=False)
        te = rng.choice(len(test), min(n_test, len(test)), replace=False) if test is not train else \
            np.setdiff1d(np.arange(len(train)), tr)[:n_test]
        self.x_train, self.y_train = train.images[tr], train.labels.numpy()[tr]
        self.x_test, self.y_test = test.images[te], test.labels.numpy()[te]
        self.note = (f"{len(tr):,} {train.name} images to fit, {len(te):,} {test.name} images to score; "
                     "linear probe (C chosen on held-out train) and kNN (k=20) on cls+mean features")

    def score(self, model) -> dict:
        was_training = model.training
        ftr, fte = encode(model, self.x_train, "both"), encode(model, self.x_test, "both")
        model.train(was_training)
        d = model.config.embed_dim
        return {"probe_both": linear_probe_accuracy(ftr, self.y_train, fte, self.y_test),
                "probe_mean": linear_probe_accuracy(ftr[:, d:], self.y_train, fte[:, d:], self.y_test),
                "knn_both": knn_accuracy(ftr, self.y_train, fte, self.y_test)}


def _end_of_epoch(r: Run, epoch: int, epoch_done: int, loss: float, stopped: bool) -> dict:
    """Evaluate on held-out images, refuse non-finite weights, log and checkpoint; returns the card."""
    elapsed = r.pace.elapsed()
    metrics = evaluate(r.s.model, r.eval_images, 0.75) if r.main else {}
    r.ckpt.check_finite(r.step, f"end of epoch {epoch + 1}", metrics)
    metrics["train_loss"] = loss
    last = epoch_done >= r.args.epochs or stopped or r.pace.out_of_time()
    if r.main and r.probe is not None and epoch_done > 0 and (epoch_done % r.args.probe_every == 0 or last):
        t = time.time()
        metrics.update(r.probe.score(r.s.model))
        r.pace.exclude(time.time() - t)  # scoring is not training: keep it off the clock and the schedule
    rec = {"step": r.step, "epoch": epoch_done, "elapsed_s": round(elapsed, 1), **metrics}
    r.ckpt.history.append(rec)
    r.ckpt.log({"event": "epoch_end", **rec})
    stopped = stopped or (r.args.stop_after is not None and epoch_done >= r.args.stop_after)
    status = "stopped" if stopped else ("finished" if epoch_done >= r.args.epochs or r.pace.out_of_time()
                                        else "running")
    # a snapshot only of weights exactly at an epoch's end (a stop part-way counts the epochs finished before it)
    exact = r.step == epoch_done * r.batches.steps_per_epoch
    return r.ckpt.save(r.step, epoch_done, elapsed, metrics, status, r.gens,
                       keep=exact and epoch_done in r.args.keep_epochs)


def pretrain(args: TrainArgs, callback: Optional[Callable[[StepInfo], None]] = None,
             should_stop: Optional[Callable[[], bool]] = None, callback_every: int = 10) -> dict:
    """Run pretraining as ``args`` says. ``callback(StepInfo)`` is called every ``callback_every`` steps and at
    each epoch end (eta 0), in the training thread, between steps; ``should_stop()`` is polled each step and ends
    the run cleanly with a checkpoint. Returns the final model card. Raises TrainingError on NaN/inf loss."""
    r = _prepare(args, callback)
    s, batches, pace = r.s, r.batches, r.pace
    bar = None
    if r.main and args.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=r.total_steps, initial=r.step, unit="it", dynamic_ncols=True, desc="pretrain")
    card, loss, lr = None, float("nan"), 0.0
    s.model.train()
    with _ctrl_c(r.main and threading_main()) as ctrl_c:
        stop = lambda: ctrl_c["set"] or (should_stop is not None and should_stop())  # noqa: E731
        try:
            for epoch in range(r.start_epoch, args.epochs):
                if r.step >= r.total_steps:
                    break
                skip = r.step - epoch * batches.steps_per_epoch  # > 0 when resuming a run stopped mid-epoch
                i = skip - 1
                for i, x01 in enumerate(batches.epoch(epoch, start=skip), start=skip):
                    lr = lr_at(pace.progress(r.step), r.warmup_frac, r.peak_lr, args.min_lr)
                    x = s.model.normalize(r.augment(x01, r.gens[1]).to(s.device, non_blocking=True))
                    mask = None if args.mask_strategy == "random" else make_mask(
                        args.mask_strategy, x.shape[0], r.config.grid_size, args.mask_ratio, seed=r.gens[0])
                    try:
                        loss = s.step(x, lr, mask_ratio=args.mask_ratio, generator=r.gens[0],
                                      mask=None if mask is None else mask.to(s.device))
                    except NonFiniteLoss as e:
                        raise TrainingError(f"loss became {e.value} at step {r.step} (epoch {epoch + 1}); training "
                                            f"stopped. Last good checkpoint: {r.ckpt.last_good()}. Try a lower "
                                            f"--lr/--base-lr.") from None
                    r.step += 1
                    eta = pace.tick(x.shape[0] * r.world, r.step)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{pace.ips:.0f}")
                    if r.step % args.log_every == 0:
                        r.ckpt.log({"step": r.step, "epoch": epoch + (i + 1) / batches.steps_per_epoch, "loss": loss,
                                    "lr": lr, "images_per_s": round(pace.ips, 1), "elapsed_s": round(pace.elapsed(), 2)})
                    if callback is not None and r.step % callback_every == 0:
                        callback(StepInfo(r.step, r.total_steps, epoch, loss, lr, pace.ips, pace.elapsed(), eta,
                                          s.model))
                    if stop() or pace.out_of_time():
                        break
                epoch_done = epoch + 1 if i + 1 >= batches.steps_per_epoch else epoch
                card = _end_of_epoch(r, epoch, epoch_done, loss, stop())
                if callback is not None:
                    callback(StepInfo(r.step, r.total_steps, epoch_done, loss, lr, pace.ips, pace.elapsed(), 0.0,
                                      s.model))
                if card["status"] == "stopped" or pace.out_of_time():
                    break
        finally:
            if bar is not None:
                bar.close()
    if r.world > 1:
        dist.barrier()
    if card is not None and card["status"] == "running":
        card["status"] = "finished"
        if r.main:
            save_model(s.model, r.ckpt.out, card)
    return card or {}


def _card_base(args: TrainArgs, config: MAEConfig, data_desc: dict, world: int, global_batch: int, peak_lr: float,
               s: Setup) -> dict:
    return {
        "name": Path(args.out).name, "data": data_desc, "preset": args.preset, "mask_ratio": args.mask_ratio,
        "mask_strategy": args.mask_strategy, "norm_pix_loss": config.norm_pix_loss,
        "command": getattr(args, "_command", None), "commit": _git_commit(),
        "train_args": {k: v for k, v in dataclasses.asdict(args).items() if k not in ("progress",)},
        "world_size": world, "global_batch": global_batch, "peak_lr": peak_lr, "precision": s.precision,
        "device": str(s.device.type), "pixel_normalisation": {"mean": list(config.pixel_mean),
                                                                "std": list(config.pixel_std)},
    }


def threading_main() -> bool:
    return threading.current_thread() is threading.main_thread()


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The command line, one option per ``TrainArgs`` field (its help, type and choices from the field)."""
    p = argparse.ArgumentParser(prog="python -m mae_core.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(TrainArgs):
        kw = dict(f.metadata)
        kw["help"] = kw.get("help") or "default: %(default)s"
        flag = kw.pop("flag", "--" + f.name.replace("_", "-"))
        if f.name == "overrides":
            p.add_argument(flag, dest="set", default=[], **kw)
            continue
        if isinstance(f.default, bool):
            kw["action"] = "store_false" if f.default else "store_true"
        else:
            kw.setdefault("type", type(f.default))
            kw["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
        p.add_argument(flag, dest=f.name, **kw)
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
    bad = [e for e in kw["keep_epochs"] if not 1 <= e <= kw["epochs"]]
    if bad:
        p.error(f"--keep-epochs takes epochs from 1 to --epochs ({kw['epochs']}); got {bad[0]}")
    kw["keep_epochs"] = tuple(sorted(set(kw["keep_epochs"])))
    if kw["stop_after"] is not None and not 1 <= kw["stop_after"] <= kw["epochs"]:
        p.error(f"--stop-after takes an epoch from 1 to --epochs ({kw['epochs']}); got {kw['stop_after']}")
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
