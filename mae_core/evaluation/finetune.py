"""Fine-tuning against linear probing, small: the paper's headline that MAE features shine when fine-tuned (its
Table 1 and the partial fine-tuning figure, Fig. 9), at the scale of a laptop.

Every mode trains the same classifier (the MAE's encoder on all patches, the mean of its patch tokens, a
LayerNorm, a linear head) on the same labelled images, for the same number of epochs, with the same schedule. The
head starts as the logistic regression fitted on that mode's frozen features (linear probing then fine-tuning,
LP-FT: a budget of minutes then improves on the best linear head instead of first catching up with it; the
official recipe's near-zero head, ``--head-init small``, needs the paper's 100 epochs):

    logreg     the encoder frozen, a logistic regression on its mean-pooled features with the L2 penalty chosen on
               a validation part (the model cards' probe protocol on these images): the best a linear head can do
    probe      the encoder frozen: only the head learns (a linear probe, trained by SGD like the others)
    last-K     the last K encoder blocks (and the final norm) fine-tuned, the rest frozen (partial fine-tuning)
    full       every encoder weight fine-tuned
    scratch    the same ViT with fresh random weights, all trained: what the pretraining is worth

    python -m mae_core.evaluation.finetune checkpoints/fmnist_r75_normpix --modes logreg,last-1,last-2,full,scratch \\
        --out bench/results/finetune_fmnist_r75_normpix.json --card

Accuracy is measured on the Fashion-MNIST test split (or the bundled subset's held-out half), with a 95% bootstrap
interval over its images.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn as nn

from .readings import finetune_reading, mode_label
from ..model import build_model
from ..data import DataError, fmnist_augment
from ..datasets import get_dataset, labelled, labelled_names
from ..metrics import bootstrap_ci, linear_probe_accuracy
from ..embed import encode
from ..checkpoints import _stem, atomic_write_json, CheckpointError, load_model, resolve
from .cards import read
from .comparisons import last_quarter_gain
from ..optim import lr_at, make_optimizer, param_groups

MODES_HELP = "logreg, probe, last-K (K = 1..depth), full, scratch"


class FinetuneError(ValueError):
    """A request that cannot be run (unknown mode, no labelled data, ...), said plainly."""


@dataclass
class FinetuneArgs:
    checkpoint: str = "fmnist_r75_normpix"
    modes: tuple = ("logreg", "last-1", "full", "scratch")
    data: str = "fashion-mnist"          # fashion-mnist | fashion-mnist-subset
    train_images: int = 5000
    test_images: int = 10000
    epochs: int = 4
    batch_size: int = 128
    lr: Optional[float] = None           # peak, AdamW, warm-up then cosine; None: the official 5e-4 x batch / 256
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    augment: bool = False                # pretraining's crop/flip: at a few epochs it cost 2.5 points (see main)
    head_init: str = "logreg"            # logreg: start from the best linear head (LP-FT) | small: trunc-normal 2e-5
    seed: int = 0
    threads: Optional[int] = None
    score_every: int = 0                 # score on the test images every N epochs too (the curve); 0: at the end only
    out: Optional[str] = None
    extra: dict = field(default_factory=dict)


class Classifier(nn.Module):
    """An MAE encoder (all patches visible) -> mean of patch tokens -> LayerNorm -> linear head, as the official
    fine-tuning recipe (global pool + fc_norm)."""

    def __init__(self, mae, n_classes: int):
        super().__init__()
        self.mae = mae
        d = mae.config.embed_dim
        self.fc_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_classes)
        nn.init.trunc_normal_(self.head.weight, std=2e-5)  # as the official fine-tuning code
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc_norm(self.mae.features(x, pool="mean")))   # not encode(): that one has no grad


def parse_mode(mode: str, depth: int) -> tuple:
    """'probe' | 'last-K' | 'full' | 'scratch' -> (trainable encoder blocks (list of indices), fresh weights?)."""
    if mode in ("probe", "logreg"):
        return [], False
    if mode == "full":
        return list(range(depth)), False
    if mode == "scratch":
        return list(range(depth)), True
    if mode.startswith("last-"):
        try:
            k = int(mode.split("-", 1)[1])
        except ValueError:
            k = 0
        if not 1 <= k <= depth:
            raise FinetuneError(f"{mode}: K must be 1..{depth} for this {depth}-block encoder")
        return list(range(depth - k, depth)), False
    raise FinetuneError(f"unknown mode {mode!r}; modes are {MODES_HELP}")


def _prepare(mae, mode: str, n_classes: int) -> Classifier:
    blocks, fresh = parse_mode(mode, mae.config.depth)
    enc = copy.deepcopy(mae)
    enc.decoder_blocks = nn.ModuleList()      # the decoder plays no part in classification
    if fresh:
        enc = build_model(mae.config)
        enc.decoder_blocks = nn.ModuleList()
    for p in enc.parameters():
        p.requires_grad_(False)
    for i in blocks:
        for p in enc.blocks[i].parameters():
            p.requires_grad_(True)
    if blocks:                                   # the final norm belongs to whatever is tuned
        for p in enc.norm.parameters():
            p.requires_grad_(True)
    if mode in ("full", "scratch"):
        for p in (enc.patch_embed.parameters()):
            p.requires_grad_(True)
        enc.cls_token.requires_grad_(True)
    return Classifier(enc, n_classes)


def labelled_split(args: FinetuneArgs):
    """(x_train, y_train, x_test, y_test, description): a seeded class-mixed draw of ``train_images`` labelled
    training images and the test images."""
    rng = np.random.default_rng(args.seed)
    try:
        if args.data not in labelled_names():
            raise FinetuneError(f"--data must be {' or '.join(labelled_names())}, got {args.data!r}")
        train, test = labelled(args.data)
        if test is not train:
            tr = rng.choice(len(train), min(args.train_images, len(train)), replace=False)
            te = np.arange(min(args.test_images, len(test)))
            title = get_dataset(args.data).label.split(" (")[0]   # "Fashion-MNIST"
            desc = f"{len(tr):,} labelled {title} training images; scored on {len(te):,} test images"
        else:   # one labelled set (the bundled subset), split in two
            perm = rng.permutation(len(train))
            half = len(train) // 2
            tr, te = perm[:min(args.train_images, half)], perm[half:half + min(args.test_images, half)]
            desc = f"{len(tr):,} images of {train.name}; scored on {len(te):,} others"
    except DataError as e:
        raise FinetuneError(str(e)) from None
    return (train.images[tr], train.labels[tr], test.images[te], test.labels[te], desc)


def _accuracy(clf: Classifier, x01: torch.Tensor, y: torch.Tensor, batch: int = 500) -> np.ndarray:
    clf.eval()
    hits = []
    with torch.no_grad():
        for i in range(0, len(x01), batch):
            logits = clf(clf.mae.normalize(x01[i:i + batch]))
            hits.append((logits.argmax(1) == y[i:i + batch]).numpy())
    return np.concatenate(hits)


def train_mode(mae, mode: str, data: tuple, args: FinetuneArgs,
               progress: Optional[Callable[[str, float], None]] = None) -> dict:
    """Train one mode on ``data`` (from ``labelled_split``) and score it. Returns a result row; with
    ``args.score_every`` N, also the test accuracy after every N epochs (``curve``) and its rise over the last
    quarter of the epochs (``last_quarter_gain``, points: the fine-tuning has stopped improving when it is small)."""
    x_tr, y_tr, x_te, y_te, _ = data
    n_classes = int(max(y_tr.max(), y_te.max())) + 1
    if mode == "logreg":
        row = _logreg_row(mae, data, n_classes)
        if progress is not None:
            progress(mode, 1.0)
        return row
    peak = peak_lr(args)
    torch.manual_seed(args.seed)
    clf = _prepare(mae, mode, n_classes)
    if args.head_init == "logreg":
        _head_from_logreg(clf, x_tr, y_tr)
    opt = make_optimizer(param_groups(clf, args.weight_decay), peak, betas=(0.9, 0.999))
    g = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = max(1, math.ceil(len(x_tr) / args.batch_size))
    total = steps_per_epoch * args.epochs
    warm = max(1, int(args.warmup_epochs * steps_per_epoch))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    t0, step, loss, curve = time.time(), 0, float("nan"), []
    for epoch in range(1, args.epochs + 1):
        clf.train()
        order = torch.randperm(len(x_tr), generator=g)
        for i in range(0, len(x_tr), args.batch_size):
            idx = order[i:i + args.batch_size]
            for group in opt.param_groups:
                group["lr"] = lr_at((step + 1) / total, warm / total, peak, 0.0)
            x = clf.mae.normalize(fmnist_augment(x_tr[idx], g) if args.augment else x_tr[idx])
            out = loss_fn(clf(x), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            out.backward()
            opt.step()
            loss, step = float(out.detach()), step + 1
            if progress is not None:
                progress(mode, step / total)
        if args.score_every and (epoch % args.score_every == 0 or epoch == args.epochs):
            curve.append([epoch, float(_accuracy(clf, x_te, y_te).mean())])
            clf.train()
    hits = _accuracy(clf, x_te, y_te)
    lo, hi = bootstrap_ci(hits)
    row = {"mode": mode, "accuracy": float(hits.mean()), "ci95": [round(lo, 4), round(hi, 4)],
           "trainable_params": int(sum(p.numel() for p in clf.parameters() if p.requires_grad)),
           "epochs": args.epochs, "train_s": round(time.time() - t0, 1), "final_loss": round(loss, 4)}
    if curve:
        row["curve"] = [[e, round(a, 4)] for e, a in curve]
        gain = last_quarter_gain(curve)
        row["last_quarter_gain"] = None if gain is None else round(100 * gain, 2)
    return row


def peak_lr(args: FinetuneArgs) -> float:
    """The given lr, or the official fine-tuning recipe's: base lr 5e-4 scaled by batch / 256."""
    return float(args.lr) if args.lr is not None else 5e-4 * args.batch_size / 256


def _head_from_logreg(clf: Classifier, x01: torch.Tensor, y: torch.Tensor) -> None:
    """Linear probing, then fine-tuning (LP-FT, Kumar et al. 2022): set the head to the logistic regression fitted
    on the classifier's own frozen features (after its LayerNorm), so every mode starts from the best linear head
    of its encoder and a few minutes of tuning improve on it rather than first catching up with it."""
    clf.eval()
    with torch.no_grad():
        z = clf.fc_norm(torch.from_numpy(encode(clf.mae, x01, pool="mean"))).numpy()
    det: dict = {}
    linear_probe_accuracy(z, y.numpy(), z[:1], y[:1].numpy(), details=det)
    w, b = det["linear"]
    with torch.no_grad():
        clf.head.weight.copy_(w.T)
        clf.head.bias.copy_(b)


def _logreg_row(mae, data: tuple, n_classes: int) -> dict:
    """The frozen encoder's mean-pooled features of the same images, scored by the cards' linear probe."""
    x_tr, y_tr, x_te, y_te, _ = data
    t0 = time.time()
    det: dict = {}
    acc = linear_probe_accuracy(encode(mae, x_tr, pool="mean"), y_tr.numpy(), encode(mae, x_te, pool="mean"),
                                y_te.numpy(), details=det)
    lo, hi = bootstrap_ci(det["correct"])
    return {"mode": "logreg", "accuracy": acc, "ci95": [round(lo, 4), round(hi, 4)],
            "trainable_params": int(mae.config.embed_dim * n_classes + n_classes), "epochs": None,
            "train_s": round(time.time() - t0, 1), "final_loss": None, "C": det["C"]}


def run(args: FinetuneArgs, progress: Optional[Callable[[str, float], None]] = None, log=print) -> dict:
    """Every requested mode on one labelled split; returns {"protocol", "checkpoint", "rows": [...]}."""
    if args.threads:
        torch.set_num_threads(args.threads)
    mae, card = load_model(args.checkpoint)
    if mae.config.in_chans != 1 or mae.config.img_size != 28:
        raise FinetuneError("fine-tuning here uses labelled Fashion-MNIST: pick a 28 px greyscale model")
    for m in args.modes:
        parse_mode(m, mae.config.depth)           # every mode checked before minutes are spent
    if args.head_init not in ("logreg", "small"):
        raise FinetuneError(f"head_init must be logreg or small, got {args.head_init!r}")
    data = labelled_split(args)
    rows = []
    for m in args.modes:
        row = train_mode(mae, m, data, args, progress)
        rows.append(row)
        log(f"  {mode_label(m):40s} accuracy {row['accuracy']:.4f} [{row['ci95'][0]:.4f}, {row['ci95'][1]:.4f}]  "
            f"({row['trainable_params']:,} trainable, {row['train_s']:.0f} s)")
    return {"checkpoint": card.get("name") or str(args.checkpoint),
            "protocol": f"{data[4]}; logreg: logistic regression on the frozen encoder's mean-pooled features, "
                        "its L2 penalty chosen on 10% of these training images; every trained mode: "
                        f"{args.epochs} epochs, batch {args.batch_size}, AdamW lr "
                        f"{peak_lr(args):.2g} (warm-up {args.warmup_epochs:g} epoch, cosine), weight decay "
                        f"{args.weight_decay:g}, label smoothing 0.1, "
                        + ("mild crop/flip augmentation" if args.augment else "no augmentation") + "; classifier: "
                        "mean of patch tokens, LayerNorm, linear head"
                        + ("; the head starts as the logistic regression on that mode's frozen features (linear "
                           "probing, then fine-tuning)" if args.head_init == "logreg" else
                           "; the head starts from small random weights")
                        + "; [lo, hi]: 95% bootstrap interval over the test images",
            "args": {k: v for k, v in asdict(args).items() if k not in ("out", "extra")}, "rows": rows,
            "reading": finetune_reading(rows)}


def main(argv=None) -> int:
    d = FinetuneArgs()
    p = argparse.ArgumentParser(prog="python -m mae_core.evaluation.finetune", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", nargs="?", default=d.checkpoint, help="a bundled name or a checkpoint path")
    p.add_argument("--modes", default=",".join(d.modes), help=MODES_HELP)
    p.add_argument("--data", default=d.data, choices=labelled_names())
    p.add_argument("--train-images", type=int, default=d.train_images)
    p.add_argument("--test-images", type=int, default=d.test_images)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default: 5e-4 x batch / 256, the "
                                                             "official fine-tuning recipe's scaling)")
    p.add_argument("--augment", action="store_true",
                   help="pretraining's mild crop/flip on the labelled images (at 2 epochs on 2,000 images it cost "
                        "2.5 points: 81.8%% against 84.3%% without, tuning the last block)")
    p.add_argument("--head-init", default=d.head_init, choices=["logreg", "small"],
                   help="logreg: every mode starts from the best linear head of its frozen features (LP-FT); "
                        "small: the official recipe's trunc-normal(2e-5) head, which needs a long schedule")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--score-every", type=int, default=d.score_every,
                   help="also score on the test images every N epochs: the card shows the curve and its rise over "
                        "the last quarter (0: at the end only)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--merge", action="store_true",
                   help="keep the other modes' rows already in --out (and the card's entry) when they were run with "
                        "the same settings: the modes of one protocol can be run one at a time, in separate sessions")
    p.add_argument("--card", action="store_true",
                   help="also store the results in the checkpoint's model card (its 'finetune' entry), where the "
                        "Embeddings page shows them; our own checkpoints only")
    p.add_argument("--longer", action="store_true",
                   help="with --card: store this run as a longer run of the card's table (a convergence check: the "
                        "same settings but more epochs, scored with --score-every), keeping the table; the pages "
                        "say what it found beside the table")
    p.add_argument("--from-json", default=None, metavar="PATH",
                   help="run nothing: take the results from PATH (an earlier run's --out) for --card")
    a = p.parse_args(argv)
    if a.epochs < 1 or a.train_images < 10 or a.batch_size < 1 or (a.lr is not None and not a.lr > 0) \
            or a.score_every < 0:
        p.error("--epochs, --batch-size and --lr must be positive, --score-every at least 0 and --train-images at "
                "least 10")
    args = FinetuneArgs(checkpoint=a.checkpoint, modes=tuple(m.strip() for m in a.modes.split(",") if m.strip()),
                        data=a.data, train_images=a.train_images, test_images=a.test_images, epochs=a.epochs,
                        batch_size=a.batch_size, lr=a.lr, augment=a.augment, head_init=a.head_init, seed=a.seed,
                        threads=a.threads, score_every=a.score_every, out=a.out)
    if (a.longer or a.from_json) and not a.card:
        p.error("--longer and --from-json store results in a model card: add --card")
    try:
        card_path = own_card_path(args.checkpoint) if a.card else None
        res = read_results(a.from_json) if a.from_json else run(args)
        name = read(card_path).name if a.from_json else None
        if name and res.get("checkpoint") != name:
            raise FinetuneError(f"{a.from_json} holds results for {res.get('checkpoint')}, not for {name}")
        if a.longer:
            store_longer(card_path, res)
            print("->", card_path, "(the longer run)")
            return 0
    except (FinetuneError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out and not a.from_json:
        if a.merge and Path(args.out).is_file():
            res = merge(json.loads(Path(args.out).read_text()), res)
        atomic_write_json(args.out, res)
        print("->", args.out)
    if card_path is not None:
        store_in_card(card_path, res, merge_rows=a.merge)
        print("->", card_path)
    return 0


def own_card_path(checkpoint: str):
    """The model card (``.json`` beside the ``.safetensors``) of one of our own checkpoints, or FinetuneError."""
    path = resolve(checkpoint)
    card = _stem(path).with_suffix(".json")
    if path.is_dir() or not _stem(path).with_suffix(".safetensors").exists() or not card.exists():
        raise FinetuneError(f"--card needs one of our own checkpoints (a .safetensors file with its .json card); "
                            f"{checkpoint} is not one")
    return card


def store_in_card(card_path, res: dict, merge_rows: bool = False) -> None:
    """Write a ``run`` result into the card's ``finetune`` entry (atomically; the rest of the card kept); with
    ``merge_rows``, the entry's other modes stay when they were run with the same settings (``merge``)."""
    card = read(card_path)
    longer = card.finetune.get("longer")
    card.finetune = merge(card.finetune, res) if merge_rows else res
    if longer and not _not_longer(longer, card.finetune):   # the table run again: its check still holds
        card.finetune = _with_longer(card.finetune, longer)
    atomic_write_json(card_path, card.to_dict())


def read_results(path) -> dict:
    """A ``run`` result written by ``--out``, or FinetuneError saying what is wrong with the file."""
    try:
        res = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise FinetuneError(f"cannot read fine-tuning results from {path}: {e}") from None
    if not isinstance(res, dict) or not isinstance(res.get("rows"), list) or not isinstance(res.get("args"), dict):
        raise FinetuneError(f"{path} is not a fine-tuning result (python -m mae_core.evaluation.finetune ... --out)")
    return res


def store_longer(card_path, res: dict) -> None:
    """Store ``res`` as the card's table run longer (``finetune["longer"]``): the same checkpoint and settings but
    more epochs, every row scored along the way; the table kept, its reading made again with it. FinetuneError
    when it is not that."""
    card = read(card_path)
    if not card.finetune.get("rows"):
        raise FinetuneError(f"{card_path} has no fine-tuning table to check: store the table first (--card)")
    why = _not_longer(res, card.finetune)
    if why:
        raise FinetuneError(why)
    card.finetune = _with_longer(card.finetune, {"checkpoint": res["checkpoint"], "protocol": res.get("protocol", ""),
                                                 "args": res["args"], "rows": res["rows"]})
    atomic_write_json(card_path, card.to_dict())


def _not_longer(res: dict, table: dict) -> str:
    """Why ``res`` is not ``table`` run longer (the same checkpoint and settings, more epochs); "" when it is."""
    if res.get("checkpoint") != table.get("checkpoint"):
        return f"these results are for {res.get('checkpoint')}, the card's table for {table.get('checkpoint')}"
    sr, tb = _settings(res), _settings(table)
    differ = sorted(k for k in set(sr) | set(tb) if k not in ("epochs", "score_every") and sr.get(k) != tb.get(k))
    if differ:
        return ("a longer run must keep the table's settings but its epochs; these differ: "
                + ", ".join(f"{k} ({tb.get(k)!r} -> {sr.get(k)!r})" for k in differ))
    if not res["args"].get("epochs", 0) > table["args"].get("epochs", 0):
        return f"a longer run needs more epochs than the table's {table['args'].get('epochs')}"
    return ""


def _with_longer(table: dict, longer: dict) -> dict:
    """The table with its longer run beside it, and its reading made again with what that run found."""
    return {**table, "longer": longer, "reading": finetune_reading(table["rows"], longer["rows"])}


def _settings(res: dict) -> dict:
    return {k: v for k, v in res.get("args", {}).items() if k not in ("modes", "threads")}


def merge(old: dict, new: dict) -> dict:
    """``new``'s rows, and ``old``'s rows of other modes when both were run with the same settings on the same
    checkpoint (one protocol's modes run one at a time); otherwise ``new`` alone. The rows keep ``old``'s order,
    new modes last; the reading is made again from all of them."""
    if not old or old.get("checkpoint") != new.get("checkpoint") or _settings(old) != _settings(new):
        return new
    fresh = {r["mode"]: r for r in new["rows"]}
    rows = [fresh.pop(r["mode"], r) for r in old.get("rows", [])] + list(fresh.values())
    modes = [r["mode"] for r in rows]
    return {**new, "rows": rows, "args": {**new["args"], "modes": modes}, "reading": finetune_reading(rows)}


if __name__ == "__main__":
    sys.exit(main())
