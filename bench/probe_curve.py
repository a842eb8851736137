"""Linear-probe and kNN accuracy of the encoder against training time: pretrains the bundled recipe
(mae_fmnist_tiny, 75% masking, the bundled schedule) for EPOCHS and, every INTERVAL seconds of training, scores the cls,
mean and concatenated features (fit on 10,000 training images, scored on 5,000 test images). Evaluation
time is excluded from the time axis. Raw pixels are scored by the same code for reference.

    python bench/probe_curve.py [--epochs 2] [--interval 60] [--norm-pix]
    python bench/probe_curve.py --checkpoints SNAPSHOT ... [--name NAME]   # score saved per-epoch snapshots
                                                                          # of a longer run on the same split
"""
import argparse
import time

import numpy as np
import torch

from benchlib import write

from mae_core.data import load_fashion_mnist
from mae_core.embed import encode, raw_pixels
from mae_core.metrics import knn_accuracy, linear_probe_accuracy
from mae_core.train import TrainArgs, pretrain


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--interval", type=float, default=60)
    ap.add_argument("--norm-pix", action="store_true")
    ap.add_argument("--out", default="/tmp/mae_probe_curve")
    ap.add_argument("--checkpoints", nargs="+", help="score these checkpoints instead of training")
    ap.add_argument("--name", default="probe_curve_checkpoints", help="results file name for --checkpoints")
    args = ap.parse_args()
    torch.set_num_threads(2)
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    tr_idx = rng.choice(len(train), 10000, replace=False)
    te_idx = rng.choice(len(test), 5000, replace=False)
    xtr, ytr = train.images[tr_idx], train.labels.numpy()[tr_idx]
    xte, yte = test.images[te_idx], test.labels.numpy()[te_idx]
    raw = {"linear_probe": linear_probe_accuracy(raw_pixels(xtr), ytr, raw_pixels(xte), yte),
           "knn": knn_accuracy(raw_pixels(xtr), ytr, raw_pixels(xte), yte)}
    print(f"raw pixels: probe {raw['linear_probe']:.4f}  kNN {raw['knn']:.4f}", flush=True)
    curve, state = [], {"eval_time": 0.0, "next": args.interval}

    def measure(model, train_s, step):
        t = time.time()
        ftr, fte = encode(model, xtr, "both"), encode(model, xte, "both")
        model.train()
        d = model.config.embed_dim
        row = {"train_s": round(train_s, 1), "step": step}
        for pool, sl in (("cls", slice(0, d)), ("mean", slice(d, 2 * d)), ("both", slice(0, 2 * d))):
            row[f"probe_{pool}"] = linear_probe_accuracy(ftr[:, sl], ytr, fte[:, sl], yte)
            row[f"knn_{pool}"] = knn_accuracy(ftr[:, sl], ytr, fte[:, sl], yte)
        curve.append(row)
        print(f"  {train_s:6.0f} s of training (step {step}): probe cls {row['probe_cls']:.4f} mean "
              f"{row['probe_mean']:.4f} both {row['probe_both']:.4f} | kNN both {row['knn_both']:.4f}", flush=True)
        state["eval_time"] += time.time() - t

    if args.checkpoints:
        from mae_core.checkpoints import load_model
        for path in args.checkpoints:
            model, card = load_model(path)
            measure(model, float(card.get("wall_time_s") or 0.0), int(card.get("steps") or 0))
            curve[-1].update({"checkpoint": str(path), "epoch": card.get("epochs"),
                              "norm_pix": bool(model.config.norm_pix_loss)})
        print("->", write(args.name, {"split": "10k train / 5k test images", "raw_pixels": raw, "curve": curve,
                                      "note": "train_s is the run's wall time at that epoch, as its card says"}))
        return

    def callback(info):
        train_s = info.elapsed - state["eval_time"]
        if info.model is not None and (train_s >= state["next"] or (info.eta == 0.0 and info.step > 0)):
            state["next"] = train_s + args.interval
            measure(info.model, train_s, info.step)

    targs = TrainArgs(data="fashion-mnist", preset="mae_fmnist_tiny", mask_ratio=0.75, norm_pix_loss=args.norm_pix,
                      epochs=args.epochs, batch_size=256, lr=1e-3, warmup_epochs=0.3,
                      out=args.out, progress=False, eval_images=200)
    pretrain(targs, callback=callback, callback_every=10)
    print("->", write("probe_curve" + ("_normpix" if args.norm_pix else ""),
                      {"epochs": args.epochs, "interval_s": args.interval, "norm_pix": args.norm_pix,
                       "split": "10k train / 5k test images", "raw_pixels": raw, "curve": curve}))


if __name__ == "__main__":
    main()
