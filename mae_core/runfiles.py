"""What a training run leaves on disk, and the card that describes a model.

``ModelCard`` is the schema of the JSON beside our weights (``NAME.json``): what the model is (config), how it was
made (data, command, commit, epochs, wall time) and how good it is (held-out error, kNN / probe), with a version:
cards written before the schema (version 1) load unchanged, unknown keys kept in ``extra`` and written back.
``Checkpoints`` writes a run's files for ``--out OUT``, each atomically, rank 0 only: OUT.safetensors + OUT.json
(every epoch), OUT.state.pt (resumable: optimiser, step, RNG; tensors only), OUT.metrics.jsonl (one line a log
step); non-finite weights are never saved, and a full disk stops the run naming what was kept.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch

from .checkpoints import atomic_write, safe_torch_load, save_model
from .metrics import unpack_bools
from .model import MAEConfig

if TYPE_CHECKING:   # types only: train imports this module
    from .train import Setup, TrainArgs


class TrainingError(RuntimeError):
    """Training stopped for a reason the user must see (NaN loss, bad data, ...)."""


SCHEMA_VERSION = 2


@dataclass
class ModelCard:
    name: str = ""
    config: dict = field(default_factory=dict)          # MAEConfig.to_dict()
    format: str = "mae_explorer"
    format_version: int = 1
    schema_version: int = SCHEMA_VERSION
    # how it was made
    data: dict = field(default_factory=dict)            # {"name", "train", "eval", ["skipped", ...]}
    preset: Optional[str] = None
    mask_ratio: Optional[float] = None
    mask_strategy: str = "random"
    norm_pix_loss: Optional[bool] = None
    command: Optional[str] = None
    commit: Optional[str] = None
    train_args: dict = field(default_factory=dict)
    world_size: int = 1
    global_batch: Optional[int] = None
    peak_lr: Optional[float] = None
    precision: Optional[str] = None
    device: Optional[str] = None
    pixel_normalisation: dict = field(default_factory=dict)
    epochs: int = 0
    steps: int = 0
    wall_time_s: Optional[float] = None
    status: Optional[str] = None                        # running | stopped | finished
    weights_dtype: str = "float32"
    # how good it is
    metrics: dict = field(default_factory=dict)         # eval_*, train_loss, heldout_* (see measure)
    history: list = field(default_factory=list)         # one record per epoch end
    embedding_metrics: dict = field(default_factory=dict)  # knn_<pool>, linear_probe_<pool>, protocol
    raw_pixel_baseline: dict = field(default_factory=dict)
    finetune: dict = field(default_factory=dict)        # python -m mae_core.evaluation.finetune ... --card: probe vs tuning
    convergence: dict = field(default_factory=dict)     # python -m mae_core.evaluation.cards converged: final vs an earlier epoch
    extra: dict = field(default_factory=dict)           # keys this schema does not know (older or newer cards)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCard":
        """Any card, of any version: known keys fill fields, the rest is kept in ``extra``."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kw = {k: v for k, v in d.items() if k in known and v is not None}
        card = cls(**kw)
        card.extra = {k: v for k, v in d.items() if k not in known}
        if "schema_version" not in d:
            card.schema_version = 1
        return card

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d.update(self.extra)
        return d

    # -- what readers ask of a card ------------------------------------------------------------------
    @property
    def data_name(self) -> str:
        return (self.data or {}).get("name") or ""

    @property
    def arch_changes(self) -> dict:
        """The model-config values its training changed from the preset (``train --set KEY=VALUE``), e.g.
        ``{"decoder_depth": 4}``, sorted by key: what sets it apart from the preset's other models besides the
        recipe. The target (norm_pix_loss) is part of the recipe, not of the architecture."""
        ov = (self.train_args or {}).get("overrides") or {}
        return {k: ov[k] for k in sorted(ov) if k != "norm_pix_loss"}

    def arch_text(self, short: bool = False) -> str:
        """``arch_changes`` in words: "decoder 4 blocks" ("dec 4" when ``short``); "" when there are none."""
        words = {"decoder_depth": ("decoder {} blocks", "dec {}"), "decoder_embed_dim": ("decoder width {}", "dec w{}"),
                 "depth": ("encoder {} blocks", "enc {}"), "embed_dim": ("encoder width {}", "enc w{}")}
        return ", ".join(words[k][short].format(v) if k in words else f"{k}={v}"
                         for k, v in self.arch_changes.items())

    @property
    def label(self) -> str:
        """A human name: data, pretraining ratio and strategy, target, and what the architecture changes."""
        parts = [self.data_name or self.extra.get("format") or self.format or "model"]
        if self.mask_ratio is not None:
            parts.append(f"pretrained at {float(self.mask_ratio):.0%} masking"
                         + ("" if self.mask_strategy == "random" else f" ({self.mask_strategy})"))
        if self.norm_pix_loss:
            parts.append("norm-pix target")
        if self.arch_changes:
            parts.append(self.arch_text())
        return " · ".join(parts)

    @property
    def short_label(self) -> str:
        """What tells bundled models apart, in few characters (a closed picker in a 300 px sidebar shows about 28):
        "75% · norm-pix · 24 ep"; "75% grid · …" for another pretraining strategy; "75% dec 4 · …" for a changed
        architecture; the data first unless it is Fashion-MNIST, the bundled default
        ("Photos 75% · pixels · 12 ep")."""
        parts = []
        data = ""
        if self.data_name and self.data_name != "Fashion-MNIST":
            data = ("Photos" if "photo" in self.data_name.lower() else self.data_name.split(" (")[0][:14]) + " "
        arch = f" {self.arch_text(short=True)}" if self.arch_changes else ""   # up front: a closed picker cuts the end
        if self.mask_ratio is not None:
            parts.append(data + f"{float(self.mask_ratio):.0%}" + ("" if self.mask_strategy == "random"
                                                                  else f" {self.mask_strategy}") + arch)
        elif data or arch:
            parts.append((data + arch).strip())
        if self.norm_pix_loss is not None:
            parts.append("norm-pix" if self.norm_pix_loss else "pixels")
        if self.epochs:
            parts.append(f"{self.epochs} ep")
        return " · ".join(parts) or self.format or "model"

    @property
    def heldout_mse_pixels(self) -> Optional[float]:
        return self.metrics.get("heldout_eval_mse_pixels")

    def baseline_comparison(self) -> Optional[tuple]:
        """(model's held-out error, harmonic inpainting's on the same masks, which error) from ``measure``, the
        like-for-like pair: pixel MSEs for a pixel model, shape MSEs for a norm-pix one; None if not measured."""
        m = self.metrics
        if self.norm_pix_loss:
            pair = (m.get("heldout_eval_mse_pixels"), m.get("heldout_eval_harmonic_mse_matched"), "shape MSE")
        else:
            pair = (m.get("heldout_eval_mse_pixels"), m.get("heldout_eval_harmonic_mse"), "pixel MSE")
        return pair if pair[0] is not None and pair[1] is not None else None

    def probe(self, pool: str) -> Optional[float]:
        return self.embedding_metrics.get(f"linear_probe_{pool}")

    def knn(self, pool: str) -> Optional[float]:
        return self.embedding_metrics.get(f"knn_{pool}")

    def correct_packed(self, name: str = "linear_probe", pool: str = "both") -> Optional[tuple]:
        """(hex string, number of test images) of each test image's result for one score, or None when the card was
        measured before cards kept them."""
        em = self.embedding_metrics
        hexed, n = em.get(f"{name}_{pool}_correct_hex"), em.get("n_test")
        return (hexed, int(n)) if hexed and n else None

    def correct(self, name: str = "linear_probe", pool: str = "both"):
        """Each test image's result (bools, the 10k test split in order) for one score, or None (see correct_packed)."""
        packed = self.correct_packed(name, pool)
        return unpack_bools(*packed) if packed else None


def _git_commit() -> Optional[str]:
    try:
        here = Path(__file__).resolve().parent
        r = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=here, capture_output=True, text=True,
                           timeout=5)
        return r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _disk_full(e: BaseException) -> bool:
    """A write that failed for lack of space: ENOSPC and kin, or torch.save's own wording for a short write."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return "unexpected pos" in str(e) or "No space left" in str(e)


RUN_FILE_SUFFIXES = (".safetensors", ".json", ".state.pt", ".metrics.jsonl")


def run_files(out) -> list[Path]:
    """The files a run writes for ``--out OUT``: weights, card, resumable state, metrics log (in this order)."""
    return [Path(out).with_suffix(suffix) for suffix in RUN_FILE_SUFFIXES]


def snapshot_path(out, epoch: int) -> Path:
    """Where ``--keep-epochs`` keeps epoch ``epoch``'s weights and card: OUT_epochN (.safetensors, .json)."""
    out = Path(out)
    return out.with_name(f"{out.name}_epoch{epoch}")


class Checkpoints:
    """OUT.safetensors + OUT.json (the card), OUT.state.pt (resumable) and OUT.metrics.jsonl, written by rank 0.
    Non-finite weights are never saved, and a full disk stops the run naming what was kept."""

    def __init__(self, args: TrainArgs, s: Setup, card_base: dict, main: bool):
        self.out = Path(args.out)
        self.state_path, self.metrics_path = run_files(self.out)[2:]
        self.s, self.card_base, self.main = s, card_base, main
        self.history: list = []

    def resume(self, config: MAEConfig, gens: tuple) -> tuple:
        """Load the state of an earlier run; returns (step, epoch, elapsed). The log loses the lines written
        after that state (they are made again), so no step repeats."""
        if not self.state_path.is_file():
            raise TrainingError(f"--resume: no training state at {self.state_path}")
        st = safe_torch_load(self.state_path)
        if st.get("config") != json.dumps(config.to_dict(), sort_keys=True):
            raise TrainingError(f"--resume: {self.state_path} was written for another model config")
        self.s.model.load_state_dict(st["model"])
        self.s.opt.load_state_dict(st["optimizer"])
        if self.s.scaler is not None and st.get("scaler"):
            self.s.scaler.load_state_dict(st["scaler"])
        self.history = json.loads(st.get("history", "[]"))
        torch.set_rng_state(st["rng_cpu"])
        gens[0].set_state(st["rng_mask"])
        gens[1].set_state(st["rng_aug"])
        if self.main:
            _trim_metrics(self.metrics_path, int(st["step"]))
        return int(st["step"]), int(st["epoch"]), float(st["elapsed"])

    def last_good(self) -> str:
        h = self.history
        return (f"{self.out}.safetensors (epoch {h[-1]['epoch']}, step {h[-1]['step']})" if h
                else "none (no epoch had finished)")

    def check_finite(self, step: int, where: str, metrics: dict) -> None:
        """Non-finite weights (or held-out loss) after any update stop the run before they are saved, so the
        checkpoint on disk stays the last good one."""
        bad = [n for n, p_ in self.s.model.named_parameters() if not torch.isfinite(p_).all()]
        ev = metrics.get("eval_loss")
        if bad or (ev is not None and not math.isfinite(ev)):
            what = f"weights became non-finite ({bad[0]}{' and others' if len(bad) > 1 else ''})" if bad else \
                f"the held-out loss became {ev}"
            raise TrainingError(f"{what} by step {step} ({where}); training stopped. Last good checkpoint: "
                                f"{self.last_good()}. Try a lower --lr/--base-lr.")

    def log(self, rec: dict) -> None:
        if not self.main:
            return
        try:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        except OSError as e:
            if not _disk_full(e):
                raise  # a full disk is reported by the next checkpoint; the log line is lost

    def save(self, step: int, epoch_done: int, elapsed: float, metrics: dict, status: str, gens: tuple,
             keep: bool = False) -> dict:
        """Write this epoch's files; with ``keep``, also its snapshot (OUT_epochN, ``--keep-epochs``)."""
        card = ModelCard(**self.card_base, epochs=epoch_done, steps=step, wall_time_s=round(elapsed, 1),
                         status=status, metrics=metrics, history=self.history).to_dict()
        if not self.main:
            return card
        s = self.s
        state = {"model": s.model.state_dict(), "optimizer": s.opt.state_dict(), "step": step,
                 "epoch": epoch_done, "elapsed": elapsed, "rng_cpu": torch.get_rng_state(),
                 "rng_mask": gens[0].get_state(), "rng_aug": gens[1].get_state(),
                 "config": json.dumps(s.model.config.to_dict(), sort_keys=True), "history": json.dumps(self.history),
                 "scaler": s.scaler.state_dict() if s.scaler is not None else {}}
        try:  # each file is written to a temporary name and renamed: a failed write leaves the previous one.
            # The resumable state goes first: when it cannot be written, nothing of this epoch is.
            atomic_write(self.state_path, lambda f: torch.save(state, f))
            save_model(s.model, self.out, card)
            if keep:
                snap = snapshot_path(self.out, epoch_done)
                save_model(s.model, snap, {**card, "name": snap.name})
        except (OSError, RuntimeError) as e:
            if not _disk_full(e):
                raise
            kept = [f.name for f in run_files(self.out)[:3] if f.is_file()]
            raise TrainingError(f"disk full at step {step} while saving; training stopped. Kept (each complete): "
                                f"{', '.join(kept) if kept else 'no files (no epoch had been saved)'}. Free some "
                                f"space, then resume.") from None
        return card


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
        if int(rec.get("step", 0)) <= step:
            keep.append(line)
    atomic_write(path, lambda f: f.write("".join(line + "\n" for line in keep)), mode="w")
