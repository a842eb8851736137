"""Model cards: the schema every card follows, and how a card's metrics are measured.

A card is the JSON beside our weights (``NAME.json``): what the model is (config), how it was made (data,
command, commit, epochs, wall time) and how good it is (held-out error, kNN / probe). ``ModelCard`` is its
schema, with a version: ``train`` writes cards through it, and every reader (the app's card table and model
labels, the sweep's probe table, ``measure``) reads them through it. Cards written before the schema (version
1) load unchanged: unknown keys are kept in ``extra`` and written back.

    python -m mae_core.evaluation.cards measure checkpoints/fmnist_r75   # held-out error, kNN / probe -> the card
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ..checkpoints import _stem, atomic_write_json, CHECKPOINT_DIR, CheckpointError, load_model
from ..runfiles import ModelCard
from ..metrics import bootstrap_ci, evaluate, knn_accuracy, linear_probe_accuracy, pack_bools, unpack_bools
from ..data import DataError, load_fashion_mnist, photo_eval_set
from ..datasets import FASHION_MNIST
from ..embed import encode, POOLS, raw_pixels


RAW_BASELINE_PATH = CHECKPOINT_DIR / "raw_pixel_baseline.json"
FULL_SPLIT_LABELS = 60_000   # the full-split probe on a card: fit on every labelled Fashion-MNIST training image


def paired_ci(a: Any, b: Any, name: str = "linear_probe", pool: str = "both") -> Optional[tuple]:
    """95% interval of card ``a``'s score minus card ``b``'s, paired image by image on the same test split (much
    tighter than two separate intervals); None unless both cards kept their per-image results. Remembered per pair
    of results: the bootstrap takes about 0.3 s and the pages ask again on every rerun."""
    pa, pb = read(a).correct_packed(name, pool), read(b).correct_packed(name, pool)
    if pa is None or pb is None or pa[1] != pb[1]:
        return None
    return _paired_ci(pa[0], pb[0], pa[1])


def stored_raw_baseline(path: Optional[Path] = None) -> dict:
    """The raw-pixel baseline as stored (``raw_pixel_baseline.json``), or {} when there is none: read only, never
    computed (that takes tens of minutes; ``python -m mae_core.evaluation.cards raw-baseline``)."""
    p = Path(path or RAW_BASELINE_PATH)
    try:
        return _read_baseline(str(p), p.stat().st_mtime_ns)
    except (OSError, ValueError):
        return {}


@functools.lru_cache(maxsize=4)
def _read_baseline(path: str, mtime_ns: int) -> dict:
    return json.loads(Path(path).read_text())


def raw_baseline(card: Any, stored: Optional[dict] = None) -> dict:
    """The raw-pixel figures a card was compared with (its own copy), with the intervals of the stored baseline
    added where the card's copy has none and both hold the same scores (the same measurement, re-run since with
    intervals and per-image results). ``stored``: the baseline to use (default ``stored_raw_baseline()``)."""
    own = dict(read(card).raw_pixel_baseline)
    base = stored_raw_baseline() if stored is None else stored
    for name in ("knn", "linear_probe"):
        if f"{name}_ci" not in own and base.get(f"{name}_ci") and own.get(name) is not None \
                and abs(float(base.get(name, -1)) - float(own[name])) < 1e-9:
            own[f"{name}_ci"] = base[f"{name}_ci"]
    return own


def vs_raw_ci(card: Any, name: str = "linear_probe", pool: str = "both",
              stored: Optional[dict] = None) -> Optional[tuple]:
    """95% interval of the card's score minus raw pixels' on the same test images: the card's own where it was
    measured against a baseline with per-image results, else computed from both sides' per-image results (the
    cards keep them for cls + mean features only). None when neither is there."""
    c = read(card)
    own = c.embedding_metrics.get(f"{name}_{pool}_vs_raw_ci")
    if own:
        return tuple(own)
    packed = c.correct_packed(name, pool)
    base = stored_raw_baseline() if stored is None else stored
    hexed = base.get(f"{name}_correct_hex")
    if packed is None or not hexed or len(hexed) != len(packed[0]):
        return None
    return _paired_ci(packed[0], hexed, packed[1])


@functools.lru_cache(maxsize=64)
def _paired_ci(hex_a: str, hex_b: str, n: int) -> tuple:
    return tuple(round(v, 4) for v in bootstrap_ci(unpack_bools(hex_a, n), unpack_bools(hex_b, n)))


def read(card: Any) -> ModelCard:
    """A ModelCard from a card dict (as ``load_model`` returns it), a ModelCard, or a card file's path."""
    if isinstance(card, ModelCard):
        return card
    if isinstance(card, (str, Path)):
        card = json.loads(Path(card).read_text())
    return ModelCard.from_dict(card or {})


# --------------------------------------------------------------------------------------------------
# Measuring a card's metrics (Fashion-MNIST: train on 60k, score on the 10k test set)
# --------------------------------------------------------------------------------------------------

def fashion_mnist_card_metrics(model, k: int = 20, log=print, baseline: Optional[dict] = None,
                               pools: Optional[tuple] = None) -> dict:
    """kNN and linear-probe accuracy of each pooling on the full split, each with a 95% bootstrap interval over the
    10k test images; with the raw-pixel ``baseline`` (its per-image results), also the paired interval of the
    difference to raw pixels. ``pools``: score only these poolings (default all)."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    ytr, yte = train.labels.numpy(), test.labels.numpy()
    out = {"n_test": len(yte),
           "protocol": "features of the unmasked 28px image; fit on the 60k train split, scored on the 10k test "
                       f"split; kNN: k={k} cosine majority vote; probe: logistic regression on standardised features, "
                       "its L2 penalty C chosen on 10% of the train split held out; [lo, hi]: 95% bootstrap interval "
                       "over the test images (2,000 resamples); vs_raw: the paired interval of the difference to raw "
                       "pixels on the same images; *_correct_hex: each test image's result (cls + mean features), "
                       "for paired differences between models"}
    raw = {}
    for name in ("knn", "linear_probe"):
        if baseline and baseline.get(f"{name}_correct_hex"):
            raw[name] = unpack_bools(baseline[f"{name}_correct_hex"], len(yte))
    t = time.time()
    both_tr, both_te = encode(model, train.images, "both"), encode(model, test.images, "both")
    d = model.config.embed_dim
    log(f"  encoded {len(both_tr) + len(both_te)} images in {time.time() - t:.0f} s")
    for pool in pools or POOLS:
        t = time.time()
        sl = {"cls": slice(0, d), "mean": slice(d, 2 * d), "both": slice(0, 2 * d)}[pool]
        ftr, fte = both_tr[:, sl], both_te[:, sl]
        for name, fn in (("knn", lambda: knn_accuracy(ftr, ytr, fte, yte, k=k, details=det)),
                         ("linear_probe", lambda: linear_probe_accuracy(ftr, ytr, fte, yte, details=det))):
            det = {}
            out[f"{name}_{pool}"] = fn()
            out[f"{name}_{pool}_ci"] = [round(v, 4) for v in bootstrap_ci(det["correct"])]
            if name in raw:
                out[f"{name}_{pool}_vs_raw_ci"] = [round(v, 4) for v in bootstrap_ci(det["correct"], raw[name])]
            if "C" in det:
                out[f"{name}_{pool}_C"] = det["C"]
            if pool == "both":  # the features comparisons use: kept per image for paired intervals (2,500 chars)
                out[f"{name}_{pool}_correct_hex"] = pack_bools(det["correct"])
        log(f"  {pool}: kNN {out[f'knn_{pool}']:.4f}  probe {out[f'linear_probe_{pool}']:.4f} "
            f"{out[f'linear_probe_{pool}_ci']}  ({time.time() - t:.0f} s)")
    return out


def raw_pixel_baseline(k: int = 20, log=print, refresh: bool = False) -> dict:
    """Raw pixels scored by the cards' code on the full split (cached in checkpoints/raw_pixel_baseline.json), with
    intervals and each test image's result (packed), so model cards can state paired differences. The cache is
    used as it is unless ``refresh`` (an older cache without per-image results gives no paired intervals; rebuild
    it with ``python -m mae_core.evaluation.cards raw-baseline``: tens of minutes on 2 cores)."""
    if RAW_BASELINE_PATH.is_file() and not refresh:
        return json.loads(RAW_BASELINE_PATH.read_text())
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    ftr, fte = raw_pixels(train.images), raw_pixels(test.images)
    ytr, yte = train.labels.numpy(), test.labels.numpy()
    res = {"protocol": "raw 784 pixels in [0,1], same kNN / probe code as the model cards"}
    for name, fn in (("knn", lambda: knn_accuracy(ftr, ytr, fte, yte, k=k, details=det)),
                     ("knn_5", lambda: knn_accuracy(ftr, ytr, fte, yte, k=5, details=det)),
                     ("linear_probe", lambda: linear_probe_accuracy(ftr, ytr, fte, yte, details=det))):
        det = {}
        res[name] = fn()
        res[f"{name}_ci"] = [round(v, 4) for v in bootstrap_ci(det["correct"])]
        if "C" in det:
            res[f"{name}_C"] = det["C"]
        if name != "knn_5":
            res[f"{name}_correct_hex"] = pack_bools(det["correct"])
    log(f"  raw pixels: kNN(20) {res['knn']:.4f}  kNN(5) {res['knn_5']:.4f}  probe {res['linear_probe']:.4f}")
    atomic_write_json(RAW_BASELINE_PATH, res)
    return res


def measure(path: str, log=print, pools: Optional[tuple] = None) -> ModelCard:
    """Measure held-out reconstruction and (for Fashion-MNIST models) kNN / probe metrics; write them into
    the model card (atomically). Returns the updated card. With ``pools``, only those poolings' kNN / probe are
    re-measured and merged into the card (the held-out error and the other poolings are kept): how a card measured
    before cards kept per-image results gets them (``--pools both``) in a third of the time."""

    model, _ = load_model(path)
    card_path = _stem(Path(path)).with_suffix(".json")
    card = read(card_path)
    c = model.config
    if FASHION_MNIST.fits(c) and pools:
        base = raw_pixel_baseline(log=log)
        card.embedding_metrics.update(fashion_mnist_card_metrics(model, log=log, baseline=base, pools=pools))
    elif FASHION_MNIST.fits(c):
        test = load_fashion_mnist("test")
        card.metrics.update({f"heldout_{k}": v for k, v in evaluate(model, test.images, 0.75, seed=0,
                                                                      baseline=True).items()})
        card.metrics["heldout_set"] = "Fashion-MNIST test split (10,000), random masks at 0.75, seed 0"
        base = raw_pixel_baseline(log=log)
        card.embedding_metrics = fashion_mnist_card_metrics(model, log=log, baseline=base)
        card.raw_pixel_baseline = {k: v for k, v in base.items() if not k.endswith("_hex")}
    else:
        ev = photo_eval_set(c.img_size, c.in_chans)
        card.metrics.update({f"heldout_{k}": v for k, v in evaluate(model, ev, 0.75, seed=0, baseline=True).items()})
        card.metrics["heldout_set"] = "48 fixed crops of held-out scikit-image photos, random masks at 0.75"
    atomic_write_json(card_path, card.to_dict())
    return card


def replay_match(final: ModelCard, snapshot: ModelCard) -> Optional[dict]:
    """How closely a snapshot from a replay (``train --stop-after``) followed the run that made ``final``: None when
    its history up to its epoch is the run's own (the same losses: a snapshot kept by that run); else the largest
    difference in training loss (relative) and in the probe during training over the epochs both logged, and the
    probe's difference at the replay's last epoch. Replaying on another CPU (other kernels) rounds differently from
    the first step, so a replay is close, not the same weights."""
    ours = {int(h["epoch"]): h for h in final.history}
    pairs = [(ours[int(h["epoch"])], h) for h in snapshot.history if int(h["epoch"]) in ours]
    if not pairs or all(a.get("train_loss") == b.get("train_loss") for a, b in pairs):
        return None
    probes = [(int(b["epoch"]), b["probe_both"] - a["probe_both"]) for a, b in pairs
              if "probe_both" in a and "probe_both" in b]
    out = {"epochs": len(pairs),
           "train_loss_max_rel_diff": round(max(abs(b["train_loss"] / a["train_loss"] - 1) for a, b in pairs), 6)}
    if probes:
        out["probe_max_abs_diff"] = round(max(abs(d) for _, d in probes), 4)
        if snapshot.epochs in dict(probes):
            out["probe_diff_last"] = round(dict(probes)[snapshot.epochs], 4)
    return out


def converged(final: str, snapshot: str, log=print, replay: Optional[str] = None) -> ModelCard:
    """Had training stopped improving? The final model's scores against an earlier epoch's snapshot of the same run
    (``train --keep-epochs``), both on the cards' full protocol and paired on the same 10k test images: far less noisy
    than the probe during training (5k test images, scored separately each time). Measures the snapshot's cls + mean
    features if its card lacks per-image results, then writes {"from_epoch", "to_epoch", "probe_gain",
    "probe_gain_ci", "knn_gain", "knn_gain_ci", "protocol"} into the final card's ``convergence`` (atomically), with
    ``replay`` (``replay_match``) when the snapshot comes from a replay of the run rather than from the run itself.

    ``replay``: a finished replay of the final model's run (``train --stop-after`` with ``--keep-epochs``, then
    ``--resume``; measured) that the snapshot comes from. A replay on another CPU drifts from the run it replays, so
    the gain is then taken within the replay (its final against its own snapshot), and ``replay`` also holds the
    bundled final model's scores against the replay's, paired: how far a rerun of the same command lands."""

    def card_of(path):
        return _stem(Path(path)).with_suffix(".json")

    def need_results(c, path):
        if c.correct_packed() is None:
            raise CheckpointError(f"{card_of(path).name} has no per-image results to pair with; measure it first: "
                                  f"python -m mae_core.evaluation.cards measure {path}")

    def same_run(a, b):
        return (a.train_args.get("out"), a.train_args.get("seed"), a.config) == \
            (b.train_args.get("out"), b.train_args.get("seed"), b.config)
    fin, snap = read(card_of(final)), read(card_of(snapshot))
    need_results(fin, final)
    run, run_path = fin, final     # the run the snapshot belongs to: the final model's own, or its replay
    if replay is not None:
        run, run_path = read(card_of(replay)), replay
        if not same_run(run, fin) or run.epochs != fin.epochs:
            raise CheckpointError(f"{card_of(replay).name} is not a finished replay of the run that made "
                                  f"{card_of(final).name} (its output path, seed, model or epochs differ)")
        need_results(run, replay)
        if replay_match(run, snap) is not None:
            raise CheckpointError(f"{card_of(snapshot).name} is not from the replay {card_of(replay).name} (their "
                                  "histories differ)")
    if not same_run(snap, run):
        raise CheckpointError(f"{card_of(snapshot).name} is not a snapshot of the run that made "
                              f"{card_of(run_path).name} (its output path, seed or model differ)")
    if not snap.epochs < run.epochs:
        raise CheckpointError(f"{card_of(snapshot).name} is from epoch {snap.epochs}, not before the final model's "
                              f"{run.epochs}")
    if snap.correct_packed() is None:
        log(f"measuring {snapshot} (cls + mean features)")
        snap = measure(snapshot, log=log, pools=("both",))
    out = {"from_epoch": snap.epochs, "to_epoch": run.epochs,
           "protocol": "final minus the earlier epoch's score, cls + mean features on the cards' full protocol (60k "
                       "train / 10k test); [lo, hi]: 95% paired bootstrap interval over the same test images"}
    for name, key in (("linear_probe", "probe"), ("knn", "knn")):
        gain = run.embedding_metrics[f"{name}_both"] - snap.embedding_metrics[f"{name}_both"]
        out[f"{key}_gain"] = round(float(gain), 4)
        out[f"{key}_gain_ci"] = [round(v, 4) for v in paired_ci(run, snap, name=name)]
    match = replay_match(fin, run if replay is not None else snap)
    if replay is not None:
        out["measured_on"] = "replay"   # both ends of the gain are the replay's
        match = dict(match or {"epochs": len(fin.history)})
        for name, key in (("linear_probe", "probe"), ("knn", "knn")):
            diff = fin.embedding_metrics[f"{name}_both"] - run.embedding_metrics[f"{name}_both"]
            match[f"final_{key}_diff"] = round(float(diff), 4)     # the bundled model minus the replay's final
            match[f"final_{key}_diff_ci"] = [round(v, 4) for v in paired_ci(fin, run, name=name)]
    if match:
        out["replay"] = match
    fin.convergence = out
    atomic_write_json(card_of(final), fin.to_dict())
    return fin


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mae_core.evaluation.cards", description="Model cards")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("measure", help="measure a checkpoint and write the metrics into its model card")
    c.add_argument("paths", nargs="+")
    c.add_argument("--pools", help="comma list of cls, mean, both: re-measure only these poolings' kNN / probe, "
                                   "merged into the card (the rest is kept)")
    sub.add_parser("raw-baseline", help="re-score raw pixels on the full split (with per-image results)")
    c = sub.add_parser("converged", help="the final model against an earlier epoch's snapshot of its run "
                                         "(train --keep-epochs), paired on the full protocol -> the final card")
    c.add_argument("final")
    c.add_argument("snapshot")
    c.add_argument("--replay", metavar="RUN", help="the finished replay of FINAL's run that SNAPSHOT comes from: the "
                                                   "gain is taken within it, and FINAL is paired with its final model")
    args = p.parse_args(argv)
    if args.cmd == "raw-baseline":
        raw_pixel_baseline(refresh=True)
        print(f"-> {RAW_BASELINE_PATH}")
        return 0
    if args.cmd == "converged":
        try:
            card = converged(args.final, args.snapshot, replay=args.replay)
        except (CheckpointError, DataError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(json.dumps(card.convergence, indent=1))
        return 0
    pools = tuple(v.strip() for v in args.pools.split(",") if v.strip()) if args.pools else None
    if pools is not None and (not pools or set(pools) - set(POOLS)):
        p.error(f"--pools takes a comma list of {', '.join(POOLS)}; got {args.pools!r}")
    for path in args.paths:
        print(f"measuring {path}")
        try:
            card = measure(path, pools=pools)
        except (CheckpointError, DataError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        shown = {k: v for k, v in card.embedding_metrics.items() if not k.endswith("_hex")}
        print(json.dumps({"metrics": card.metrics, "embedding_metrics": shown}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
