"""Pretraining in a background thread, observable and stoppable from a UI.

A ``TrainingJob`` runs ``train.pretrain`` in its own thread and keeps what a page needs to draw (progress,
loss curve, reconstructions of fixed held-out images over time, errors) in a plain object guarded by a lock.
It never touches a UI library; the app polls ``job.snapshot()``. A ``JobRegistry`` holds every job of the
process, so runs survive page reloads and several sessions can train and watch at once.

On a shared server a run belongs to the session that started it (its ``owner`` token): only that session,
or the operator, can stop, resume or delete it. The registry bounds runs per owner and on the whole server
(``policy``: MAE_RUNS_PER_SESSION, MAE_MAX_RUNNING); a run over the server's limit waits in a queue and says
how many runs are ahead of it. Run names are reduced to a safe stem (letters, digits, ``_`` and ``-``) and a
name already in use gets a numbered suffix, so two runs never write to the same files.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import re
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from . import policy
from ..checkpoints import CheckpointError, save_model
from ..data import DataError
from ..datasets import build_data
from ..explore import masked_view
from ..kept import Kept
from ..runfiles import run_files
from ..train import Batches, pretrain, setup, StepInfo, TrainArgs, TrainingError
from ..metrics import evaluate
from ..masking import random_mask

RECON_EVERY_S = 4.0    # refresh the reconstructions at most this often
N_RECON_IMAGES = 8
MAX_LOSS_POINTS = 4000


@dataclass
class JobState:
    id: str
    name: str
    args: dict
    status: str = "starting"        # queued | starting | running | stopped | finished | failed
    phase: str = ""                 # what a live run is doing: preparing data | training | saving
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
    notes: list = field(default_factory=list)             # things to read (e.g. images skipped)
    checkpoint: Optional[str] = None
    started: float = field(default_factory=time.time)
    finished: Optional[float] = None


def _to_uint8(x01: torch.Tensor) -> np.ndarray:
    a = (x01.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return a[:, 0].numpy() if a.shape[1] == 1 else a.permute(0, 2, 3, 1).numpy()


class RunNotAllowed(PermissionError):
    """A run action this visitor may not take (not their run, or over a limit); the message says why."""


def safe_run_name(name: str, max_len: int = 48) -> str:
    """A run name reduced to a file stem that cannot leave its folder or share files with another name:
    letters, digits, ``_`` and ``-`` only (no dots, so ``carol`` and ``carol.v2`` stay apart)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_-")[:max_len].strip("_-")
    return stem or "run"


class TrainingJob:
    def __init__(self, args: TrainArgs, name: Optional[str] = None, owner: Optional[str] = None, on_done=None,
                 max_minutes: Optional[float] = None):
        self.args = args
        self.owner = owner
        self.max_minutes = max_minutes   # the server's limit: the run is stopped (and saved) when it has trained so long
        self._on_done = on_done
        self._started = False
        self._done = False
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
        self._started = True
        self._thread.start()
        return self

    def stop(self):
        with self._lock:
            if self._state.status == "queued":  # never started: nothing to save
                self._state.status = "stopped"
                self._state.finished = time.time()
                self._done = True
            elif self._state.status in ("starting", "running"):
                # the loop stops after its current step; the page says so at once, and "saving" until the
                # checkpoint is on disk
                self._state.status, self._state.phase = "stopped", "saving"
        self._stop.set()

    @property
    def occupies_slot(self) -> bool:
        """Started and not yet ended: counts against the server's running limit."""
        return self._started and not self._done

    @property
    def pending(self) -> bool:
        """Queued or training."""
        return not self._done

    def join(self, timeout: Optional[float] = None):
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> JobState:
        """A consistent copy of the state, safe to read while training goes on."""
        with self._lock:
            s = copy.copy(self._state)
            s.losses, s.evals, s.notes = list(s.losses), list(s.evals), list(s.notes)
            s.recon_steps, s.recons = list(s.recon_steps), list(s.recons)
            return s

    def continue_from(self, old: "TrainingJob") -> None:
        """Take over a stopped run's id and what it showed (loss curve, evaluations, reconstruction snapshots,
        notes), so a resumed run is the same run on the page, its curve whole from step 0."""
        prev = old.snapshot()
        with self._lock:
            s = self._state
            self.id = s.id = old.id
            s.losses, s.evals, s.notes = prev.losses + s.losses, prev.evals + s.evals, prev.notes + s.notes
            s.recon_steps, s.recons = prev.recon_steps + s.recon_steps, prev.recons + s.recons
            if s.originals is None:
                s.originals, s.masked = prev.originals, prev.masked
            s.step, s.started = max(s.step, prev.step), prev.started

    # -- the thread --------------------------------------------------------------------------------
    def _run(self):
        torch.set_grad_enabled(True)  # the app's script thread turns grads off; this thread trains
        try:
            with self._lock:
                if self._state.status != "stopped":
                    self._state.status, self._state.phase = "running", "preparing data"
            card = pretrain(self.args, callback=self._on_step, should_stop=self._stop.is_set, callback_every=1)
            with self._lock:
                self._state.status = "stopped" if card.get("status") == "stopped" else "finished"
                self._state.phase = ""
                self._state.checkpoint = str(Path(self.args.out).with_suffix(".safetensors"))
        except (TrainingError, DataError, CheckpointError, ValueError, OSError, RuntimeError) as e:
            self._fail(e)
        except Exception as e:  # noqa: BLE001 - a worker must report, never die silently
            self._fail(e, unexpected=True)
        finally:
            with self._lock:
                self._state.finished = time.time()
            self._done = True
            if self._on_done is not None:
                self._on_done()

    def _fail(self, e: BaseException, unexpected: bool = False):
        msg = str(e)
        if isinstance(e, RuntimeError) and re.search(r"out of memory|can't allocate|DefaultCPUAllocator", msg):
            msg = f"out of memory: {msg.splitlines()[0][:200]}. Try a smaller batch size or preset."
        if unexpected:
            msg = f"{type(e).__name__}: {msg}\n" + "".join(traceback.format_exception(e)[-3:])
        out = Path(self.args.out).with_suffix(".safetensors")
        with self._lock:
            self._state.status, self._state.phase = "failed", ""
            self._state.error = msg
            self._state.checkpoint = str(out) if out.is_file() else None

    def _on_step(self, info: StepInfo):
        if info.note:
            with self._lock:
                self._state.notes.append(info.note)
            return
        if self.max_minutes and info.elapsed > 60 * self.max_minutes and not self._stop.is_set():
            with self._lock:
                self._state.notes.append(f"Stopped at this server's limit of {self.max_minutes:g} minutes a run "
                                         f"(MAE_MAX_RUN_MINUTES); the checkpoint is saved.")
            self.stop()
        with self._lock:
            s = self._state
            s.step, s.total_steps, s.epoch = info.step, info.total_steps, info.epoch
            s.images_per_s, s.elapsed, s.eta = info.images_per_s, info.elapsed, info.eta
            if s.phase == "preparing data":
                s.phase = "training"
            if not s.losses or s.losses[-1][0] != info.step:  # (an epoch's end reports its last step again)
                s.losses.append((info.step, info.loss))
            if len(s.losses) > MAX_LOSS_POINTS:  # bounded on long runs: thin out the older half
                half = len(s.losses) // 2
                s.losses[:half] = s.losses[:half:2]
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
        masked = masked_view(x01, pix)
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
    """Every training job of this process; thread-safe. ``max_running`` and ``per_owner`` default to the
    server's policy (read when a run starts)."""

    def __init__(self, max_running: Optional[int] = None, per_owner: Optional[int] = None):
        self._jobs: dict[str, TrainingJob] = {}
        self._queue: list[TrainingJob] = []
        self._borrowed: dict[object, Optional[str]] = {}   # slots held by work in a caller's thread -> owner
        self._lock = threading.RLock()
        self._max_running = max_running
        self._per_owner = per_owner

    @property
    def max_running(self) -> int:
        return self._max_running or policy.current().max_running

    @property
    def per_owner(self) -> int:
        return self._per_owner or policy.current().runs_per_session

    def unique_name(self, name: str, folder: Path) -> str:
        """``safe_run_name(name)``, with ``_2``, ``_3``... when a run or its files already use it."""
        stem = safe_run_name(name)
        with self._lock:
            taken = {Path(j.args.out).resolve() for j in self._jobs.values()}
        candidate, k = stem, 1
        while (folder / candidate).resolve() in taken or any(f.exists() for f in run_files(folder / candidate)):
            k += 1
            candidate = f"{stem[:44]}_{k}"
        return candidate

    def start(self, args: TrainArgs, name: Optional[str] = None, owner: Optional[str] = None) -> TrainingJob:
        """Start a run now, or queue it when the server's running limit is reached (its snapshot then says
        ``queued``; ``queue_position`` says how many runs are ahead). Raises ``RunNotAllowed`` when the owner
        already has their limit of runs, or when another pending run writes to the same files."""
        policy.require_writable("training")
        limit = policy.current().max_run_minutes
        if args.time_budget and args.time_budget > limit:
            raise RunNotAllowed(f"a run on this server lasts at most {limit:g} minutes (MAE_MAX_RUN_MINUTES); "
                                f"ask for {limit:g} or fewer")
        with self._lock:
            if owner is not None:
                mine = self._owned(owner)
                if mine >= self.per_owner:
                    raise RunNotAllowed(f"you already have {mine} run(s) training or waiting (the limit per "
                                        f"visitor is {self.per_owner}); stop one first")
            if any(j.pending and Path(j.args.out).resolve() == Path(args.out).resolve() for j in self._jobs.values()):
                raise RunNotAllowed(f"a run writing to {Path(args.out).name} is already training")
            job = TrainingJob(args, name, owner=owner, on_done=self._dispatch, max_minutes=limit)
            job._state.status = "queued"
            self._jobs[job.id] = job
            self._queue.append(job)
        self._dispatch()
        return job

    def _owned(self, owner: str) -> int:
        """Runs (queued or training) and borrowed slots this owner holds."""
        return (sum(j.owner == owner and j.pending for j in self._jobs.values())
                + sum(o == owner for o in self._borrowed.values()))

    def _running(self) -> int:
        return sum(j.occupies_slot for j in self._jobs.values()) + len(self._borrowed)

    @contextlib.contextmanager
    def slot(self, owner: Optional[str], what: str = "this"):
        """Hold one of the server's running slots for heavy work done in the caller's thread (the in-app
        fine-tune): it counts against MAE_MAX_RUNNING and the visitor's run limit like a training run, and queued
        runs start when it is released. Raises ``RunNotAllowed`` at once (it does not wait) when the server has
        no free slot, runs are waiting in the queue, or the visitor already has their limit of runs."""
        policy.require_writable(what if what != "this" else "training")  # read-only: no training of any kind
        token = object()
        with self._lock:
            if owner is not None and self._owned(owner) >= self.per_owner:
                raise RunNotAllowed(f"you already have a run training or waiting (the limit per visitor is "
                                    f"{self.per_owner}); {what} can start when it ends")
            running, waiting = self._running(), sum(j.snapshot().status == "queued" for j in self._queue)
            if running >= self.max_running or waiting:
                raise RunNotAllowed(f"the server is busy: {running} of its {self.max_running} training slot(s) in "
                                    f"use" + (f" and {waiting} run(s) waiting" if waiting else "")
                                    + f"; try {what} again when one ends")
            self._borrowed[token] = owner
        try:
            yield
        finally:
            with self._lock:
                self._borrowed.pop(token, None)
            self._dispatch()

    def _dispatch(self):
        """Start queued runs while the server has free slots (called on start and when a run or a slot ends)."""
        with self._lock:
            self._queue = [j for j in self._queue if j.snapshot().status == "queued"]
            running = self._running()
            while self._queue and running < self.max_running:
                job = self._queue.pop(0)
                with job._lock:
                    job._state.status = "starting"
                job.start()
                running += 1

    def queue_position(self, job_id: str) -> Optional[int]:
        """How many queued runs are ahead of this one (0 = next), or None when it is not queued."""
        with self._lock:
            ids = [j.id for j in self._queue if j.snapshot().status == "queued"]
            return ids.index(job_id) if job_id in ids else None

    def get(self, job_id: str) -> Optional[TrainingJob]:
        with self._lock:
            return self._jobs.get(job_id)

    def can_control(self, job: TrainingJob, requester: Optional[str], operator: bool = False) -> bool:
        return operator or (job.owner is None) or (requester is not None and job.owner == requester)

    def _controlled(self, job_id: str, requester: Optional[str], operator: bool, action: str) -> TrainingJob:
        job = self.get(job_id)
        if job is None:
            raise RunNotAllowed("no such run")
        if not self.can_control(job, requester, operator):
            raise RunNotAllowed(f"only the visitor who started this run (or the operator) can {action} it")
        return job

    def stop(self, job_id: str, requester: Optional[str] = None, operator: bool = False) -> None:
        self._controlled(job_id, requester, operator, "stop").stop()
        self._dispatch()

    def resume(self, job_id: str, requester: Optional[str] = None, operator: bool = False) -> TrainingJob:
        old = self._controlled(job_id, requester, operator, "resume")
        s = old.snapshot()
        if old.pending:
            raise RunNotAllowed("this run is still training")
        args = dataclasses.replace(old.args, resume=True)
        new = self.start(args, name=s.name, owner=old.owner if operator else requester)
        with self._lock:   # one run is one card: the resumed job takes the old one's place, id and history
            self._jobs.pop(new.id, None)
            new.continue_from(old)
            self._jobs = {(new.id if k == old.id else k): (new if k == old.id else j) for k, j in self._jobs.items()}
        return new

    def delete(self, job_id: str, requester: Optional[str] = None, operator: bool = False) -> list[Path]:
        """Remove a run that has ended, with its files. Returns the files removed."""
        policy.require_writable("deleting runs")
        job = self._controlled(job_id, requester, operator, "delete")
        if job.pending:
            raise RunNotAllowed("stop this run before deleting it")
        removed = []
        for f in run_files(job.args.out):
            if f.is_file():
                f.unlink()
                removed.append(f)
        with self._lock:
            self._jobs.pop(job_id, None)
        return removed

    def jobs(self, viewer: Optional[str] = None, show_all: Optional[bool] = None,
             operator: bool = False) -> list[TrainingJob]:
        """Runs newest first: all of them, or (when the policy hides other visitors' runs) the viewer's."""
        show_all = policy.current().show_all_runs if show_all is None else show_all
        with self._lock:
            jobs = list(self._jobs.values())
        if not (show_all or operator):
            jobs = [j for j in jobs if j.owner is None or j.owner == viewer]
        return sorted(jobs, key=lambda j: j.snapshot().started, reverse=True)


def estimate_seconds_per_epoch(args: TrainArgs, steps: int = 3, with_steps: bool = False):
    """Time a few training steps of this configuration as the run would make them (its device, precision and
    scaler through ``train.setup``/``train_step``, loading its data in this thread as the app's runs do), scale to
    one epoch, and add what each epoch's end costs (evaluating ``args.eval_images`` held-out images, writing the
    checkpoint). Returns seconds per epoch, or (seconds, steps per epoch) with ``with_steps``."""
    config = args.model_config()
    torch.manual_seed(0)
    s = setup(args, config)
    src, eval_images, augment, _ = build_data(args, config)
    batches = Batches(src, args.batch_size, 0, 1, 0)
    g = torch.Generator().manual_seed(0)

    def cycle():   # a small folder has fewer batches in an epoch than the steps timed here
        for e in itertools.count():
            yield from batches.epoch(e)
    it = cycle()
    times = []
    with torch.enable_grad():
        for i in range(steps + 1):
            t = time.perf_counter()
            s.step(s.model.normalize(augment(next(it), g).to(s.device)), mask_ratio=args.mask_ratio)
            if s.device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up
                times.append(time.perf_counter() - t)
    t = time.perf_counter()
    evaluate(s.model, eval_images, 0.75)
    with tempfile.TemporaryDirectory() as d:
        save_model(s.model, Path(d) / "m")
        torch.save({"model": s.model.state_dict(), "optimizer": s.opt.state_dict()}, Path(d) / "state.pt")
    per_epoch = float(np.median(times)) * batches.steps_per_epoch + time.perf_counter() - t
    return (per_epoch, batches.steps_per_epoch) if with_steps else per_epoch


@dataclass(frozen=True)
class Estimate:
    seconds_per_epoch: float
    steps_per_epoch: int
    timed_at: float        # time.time() when it was timed


ESTIMATES_KEPT = 32
_estimates = Kept(lambda: ESTIMATES_KEPT)   # configuration -> Estimate


def _estimate_key(args: TrainArgs) -> tuple:
    return (args.data, args.preset, float(args.mask_ratio), bool(args.norm_pix_loss), int(args.batch_size),
            int(args.eval_images), args.device, args.precision, args.threads)


def timed_estimate(args: TrainArgs, gate=contextlib.nullcontext) -> Estimate:
    """``estimate_seconds_per_epoch`` timed once per configuration for the whole process and kept (the server's
    start times the Train page's default one before any visitor): visitors asking for the same configuration at
    once wait for the one timing rather than each timing it; the timing runs inside ``gate()`` (a slot of the
    server's pool of heavy work). The estimate carries when it was timed, for the page to say so."""
    def timed() -> Estimate:
        with gate():
            sec, steps = estimate_seconds_per_epoch(args, with_steps=True)
        return Estimate(sec, steps, time.time())
    return _estimates.get_or_make(_estimate_key(args), timed)
