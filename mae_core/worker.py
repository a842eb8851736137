"""Pretraining in a background thread, observable and stoppable from a UI.

A ``TrainingJob`` runs ``train.pretrain`` in its own thread and keeps what a page needs to draw (progress,
loss curve, reconstructions of fixed held-out images over time, errors) in a plain object guarded by a lock.
It never touches a UI library; the app polls ``job.snapshot()``. A ``JobRegistry`` holds every job of the
process, so runs survive page reloads and several sessions can train and watch at once.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .checkpoints import CheckpointError
from .data import DataError
from .train import StepInfo, TrainArgs, TrainingError, build_data, pretrain

RECON_EVERY_S = 4.0    # refresh the reconstructions at most this often
N_RECON_IMAGES = 8


@dataclass
class JobState:
    id: str
    name: str
    args: dict
    status: str = "starting"        # starting | running | stopping | stopped | finished | failed
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    images_per_s: float = 0.0
    elapsed: float = 0.0
    eta: float = 0.0
    losses: list = field(default_factory=list)           # (step, loss)
    evals: list = field(default_factory=list)            # (step, held-out masked MSE in pixels)
    recon_steps: list = field(default_factory=list)      # step of each reconstruction snapshot
    recons: list = field(default_factory=list)           # (N, H, W[, 3]) uint8 per snapshot
    originals: Optional[np.ndarray] = None               # (N, H, W[, 3]) uint8
    masked: Optional[np.ndarray] = None
    error: Optional[str] = None
    checkpoint: Optional[str] = None
    started: float = field(default_factory=time.time)
    finished: Optional[float] = None


def _to_uint8(x01: torch.Tensor) -> np.ndarray:
    a = (x01.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return a[:, 0].numpy() if a.shape[1] == 1 else a.permute(0, 2, 3, 1).numpy()


class TrainingJob:
    def __init__(self, args: TrainArgs, name: Optional[str] = None):
        self.args = args
        self.id = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = JobState(id=self.id, name=name or Path(args.out).name,
                               args={k: v for k, v in dataclasses.asdict(args).items() if k != "overrides"})
        self._thread = threading.Thread(target=self._run, name=f"mae-train-{self.id}", daemon=True)
        self._last_recon = 0.0
        self._fixed = None  # (normalised images, mask) for the reconstruction strip

    # -- control -----------------------------------------------------------------------------------
    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def stop(self):
        with self._lock:
            if self._state.status in ("starting", "running"):
                self._state.status = "stopping"
        self._stop.set()

    def join(self, timeout: Optional[float] = None):
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> JobState:
        """A consistent copy of the state, safe to read while training goes on."""
        with self._lock:
            s = copy.copy(self._state)
            s.losses, s.evals = list(s.losses), list(s.evals)
            s.recon_steps, s.recons = list(s.recon_steps), list(s.recons)
            return s

    # -- the thread --------------------------------------------------------------------------------
    def _run(self):
        torch.set_grad_enabled(True)  # the app's script thread turns grads off; this thread trains
        try:
            with self._lock:
                self._state.status = "running"
            card = pretrain(self.args, callback=self._on_step, should_stop=self._stop.is_set, callback_every=5)
            with self._lock:
                self._state.status = "stopped" if card.get("status") == "stopped" else "finished"
                self._state.checkpoint = str(Path(self.args.out).with_suffix(".safetensors"))
        except (TrainingError, DataError, CheckpointError, ValueError, OSError, RuntimeError) as e:
            self._fail(e)
        except Exception as e:  # noqa: BLE001 - a worker must report, never die silently
            self._fail(e, unexpected=True)
        finally:
            with self._lock:
                self._state.finished = time.time()

    def _fail(self, e: BaseException, unexpected: bool = False):
        msg = str(e)
        if isinstance(e, RuntimeError) and re.search(r"out of memory|can't allocate|DefaultCPUAllocator", msg):
            msg = f"out of memory: {msg.splitlines()[0][:200]}. Try a smaller batch size or preset."
        if unexpected:
            msg = f"{type(e).__name__}: {msg}\n" + "".join(traceback.format_exception(e)[-3:])
        out = Path(self.args.out).with_suffix(".safetensors")
        with self._lock:
            self._state.status = "failed"
            self._state.error = msg
            self._state.checkpoint = str(out) if out.is_file() else None

    def _on_step(self, info: StepInfo):
        with self._lock:
            s = self._state
            s.step, s.total_steps, s.epoch = info.step, info.total_steps, info.epoch
            s.images_per_s, s.elapsed, s.eta = info.images_per_s, info.elapsed, info.eta
            s.losses.append((info.step, info.loss))
        if info.model is not None and (time.time() - self._last_recon > RECON_EVERY_S or info.eta == 0.0):
            self._snapshot_reconstructions(info)

    @torch.no_grad()
    def _snapshot_reconstructions(self, info: StepInfo):
        model = info.model
        was_training = model.training
        model.eval()
        if self._fixed is None:
            _, eval_images, _, _ = build_data(dataclasses.replace(self.args, eval_images=N_RECON_IMAGES),
                                              model.config)
            x01 = eval_images[:N_RECON_IMAGES]
            from .masking import random_mask
            mask = random_mask(len(x01), model.config.grid_size, self.args.mask_ratio, seed=0)
            self._fixed = (x01, mask)
            with self._lock:
                self._state.originals = _to_uint8(x01)
        x01, mask = self._fixed
        device = next(model.parameters()).device
        x01 = x01.to(device)
        out, rec, _ = model.reconstruct_pixels(x01, mask.to(device))
        pix = model.mask_to_pixels(out.mask)
        pasted = torch.where(pix, rec, x01)
        masked = torch.where(pix, torch.full_like(x01, 0.5), x01)
        model.train(was_training)
        self._last_recon = time.time()
        with self._lock:
            s = self._state
            if s.masked is None:
                s.masked = _to_uint8(masked)
            s.recon_steps.append(info.step)
            s.recons.append(_to_uint8(pasted))
            if len(s.recons) > 60:  # keep memory bounded on long runs: thin out the middle
                del s.recon_steps[1:-30:2], s.recons[1:-30:2]


class JobRegistry:
    """Every training job of this process; thread-safe."""

    def __init__(self, max_running: int = 2):
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()
        self.max_running = max_running

    def start(self, args: TrainArgs, name: Optional[str] = None) -> TrainingJob:
        with self._lock:
            running = [j for j in self._jobs.values() if j.alive]
            if len(running) >= self.max_running:
                raise RuntimeError(f"{len(running)} runs are already training on this server; stop one first")
            if any(j.alive and Path(j.args.out) == Path(args.out) for j in self._jobs.values()):
                raise RuntimeError(f"a run writing to {args.out} is already training")
            job = TrainingJob(args, name)
            self._jobs[job.id] = job
        return job.start()

    def get(self, job_id: str) -> Optional[TrainingJob]:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[TrainingJob]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.snapshot().started, reverse=True)


def estimate_seconds_per_epoch(args: TrainArgs, steps: int = 3) -> float:
    """Time a few training steps of this configuration as the run would make them (its device and precision,
    loading its data in this thread as the app's runs do) and scale to one epoch."""
    from .model import MaskedAutoencoderViT
    from .train import Batches, _precision, make_optimizer, param_groups, pick_device
    config = args.model_config()
    device = pick_device(args.device)
    _, amp_dtype = _precision(args, device)
    torch.manual_seed(0)
    model = MaskedAutoencoderViT(config).to(device)
    src, _, augment, _ = build_data(dataclasses.replace(args, eval_images=8), config)
    batches = Batches(src, args.batch_size, 0, 1, 0)
    opt = make_optimizer(param_groups(model, 0.05), 1e-4)
    g = torch.Generator().manual_seed(0)
    it = batches.epoch(0)
    times = []
    with torch.enable_grad():
        for i in range(steps + 1):
            t = time.perf_counter()
            x = model.normalize(augment(next(it), g).to(device))
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = model(x, mask_ratio=args.mask_ratio).loss
            opt.zero_grad()
            loss.float().backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up
                times.append(time.perf_counter() - t)
    return float(np.median(times)) * batches.steps_per_epoch
