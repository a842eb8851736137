"""What the mask ratio and the masking strategy do: reconstruction error against ratio, strategies compared,
models pretrained at different ratios compared.

    python -m mae_core.evaluation.sweep --model fmnist_r75 --ratios 0.05:0.95:0.05 --strategies random,block,grid \\
        --images 64 --seeds 3 --out sweeps/fmnist_r75
writes sweep.csv and the figures as PNG (error curve, strategies at one ratio, a strip of reconstructions),
drawn by ``figures`` (the same chart builders the app uses).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from . import figures
from ..checkpoints import atomic_write, CheckpointError, load_model
from ..masking import STRATEGIES, get_strategy, make_mask
from ..baselines import baseline_errors
from ..datasets import FASHION_MNIST
from ..data import array_to_pil, DataError, load_fashion_mnist_subset, photo_eval_set, prepare_image
from ..metrics import masked_errors
from ..explore import reconstruct

DEFAULT_RATIOS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
BASELINE_PREFIX = "harmonic:"   # sweep rows of the classical baseline: "harmonic:random", ...
CSV_FIELDS = ("strategy", "ratio", "n_hidden", "mean", "std", "q25", "q75", "n")


def _seed(strategy: str, ratio: float, seed: int) -> int:
    return zlib.crc32(f"{strategy}:{ratio:.4f}:{seed}".encode())


@dataclass
class SweepResult:
    rows: list          # one dict per (strategy, ratio): CSV_FIELDS
    raw: dict           # (strategy, ratio) -> (n_seeds, n_images) array of per-image errors

    def curve(self, strategy: str):
        rs = [r for r in self.rows if r["strategy"] == strategy]
        return (np.array([r["ratio"] for r in rs]), np.array([r["mean"] for r in rs]),
                np.array([r["std"] for r in rs]))


STEP_MB = 256   # one step of a sweep (a batch of images through the model) stays under about this much memory


def batch_for(config, mb: float = STEP_MB) -> int:
    """Images per batch so that one forward pass stays under ``mb`` MB of estimated activations
    (``MAEConfig.activation_bytes``, a rough upper estimate per image): 467 for the 28 px tiny model, 17 for ViT-L."""
    return max(1, int(mb * 2**20 // max(1, config.activation_bytes())))


def sweep(model, images01: torch.Tensor, ratios: Sequence[float] = DEFAULT_RATIOS,
          strategies: Sequence[str] = STRATEGIES, seeds: int = 3, batch_size: Optional[int] = None,
          progress: Optional[Callable[[float, str], None]] = None, matched: bool = False,
          baseline: bool = False, on_rows: Optional[Callable[[list], None]] = None) -> SweepResult:
    """Masked-patch error for every (strategy, ratio), averaged over images x seeds. Every sample of one
    (strategy, ratio) hides the same number of patches, so no padding; they run in batches of ``batch_size``
    (default: ``batch_for`` the model, under ``STEP_MB`` of activations).
    ``matched``: errors with each patch's true mean and std given (comparable between pixel and norm-pix models).
    ``baseline``: also score harmonic inpainting (mae_core.baselines) on the very same masks, as rows whose
    strategy is ``"harmonic:<strategy>"`` (matched like the model: always for a norm-pix model).
    ``on_rows(rows)``: called with the rows so far each time a ratio is done, to draw the curves as they grow."""
    for s in strategies:
        get_strategy(s)  # an unknown name is an error that lists the registered ones
    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    if len(images01) == 0:
        raise ValueError("no images to sweep over")
    g = model.config.grid_size
    n = len(images01)
    batch_size = batch_size or batch_for(model.config)
    rows, raw = [], {}
    total, done = len(strategies) * len(ratios), 0
    for strategy in strategies:
        for ratio in ratios:
            masks = torch.cat([make_mask(strategy, n, g, float(ratio), seed=_seed(strategy, float(ratio), s))
                               for s in range(seeds)])
            errs = masked_errors(model, images01.repeat(seeds, 1, 1, 1), masks, batch_size,
                                 matched=matched).reshape(seeds, n)
            scored = [(strategy, errs)]
            if baseline:
                every = images01.repeat(seeds, 1, 1, 1)
                b = np.concatenate([baseline_errors(model, every[i:i + batch_size], masks[i:i + batch_size],
                                                    matched=matched or model.config.norm_pix_loss)
                                    for i in range(0, len(every), batch_size)]).reshape(seeds, n)
                scored.append((BASELINE_PREFIX + strategy, b))
            for name, e in scored:
                raw[(name, float(ratio))] = e
                flat = e.reshape(-1)
                rows.append({"strategy": name, "ratio": float(ratio), "n_hidden": int(masks[0].sum()),
                             "mean": float(flat.mean()), "std": float(flat.std()),
                             "q25": float(np.quantile(flat, 0.25)), "q75": float(np.quantile(flat, 0.75)),
                             "n": int(flat.size)})
            done += 1
            if progress is not None:
                progress(done / total, f"{strategy} {ratio:.2f}")
            if on_rows is not None:
                on_rows(list(rows))
    return SweepResult(rows, raw)


PAGE_IMAGES, PAGE_SEEDS = 16, 3   # the Mask ratios page's first chart: its default settings


def eval_images(config, n: int) -> torch.Tensor:
    """The pictures a sweep of this model is scored on: the bundled Fashion-MNIST subset for a 28 px greyscale model,
    held-out photo crops otherwise."""
    if FASHION_MNIST.fits(config):
        return load_fashion_mnist_subset().images[:n]
    return photo_eval_set(config.img_size, config.in_chans)[:n]


def sweep_settings(config, n_images: int = PAGE_IMAGES, seeds: int = PAGE_SEEDS, strategies=tuple(STRATEGIES),
                   ratios=DEFAULT_RATIOS, baseline: bool = True) -> dict:
    """What a stored sweep is keyed by (``mae_core.evaluation.results``), beside the weights."""
    data = "fashion-mnist-subset" if FASHION_MNIST.fits(config) else "photo-crops"
    return {"images": int(n_images), "seeds": int(seeds), "strategies": list(strategies),
            "ratios": [float(r) for r in ratios], "baseline": bool(baseline), "data": data}


def csv_text(rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in CSV_FIELDS})
    return buf.getvalue()


def write_csv(rows, path) -> Path:
    return atomic_write(path, lambda f: f.write(csv_text(rows)), mode="w")


def read_csv(path) -> list:
    with open(path, newline="") as f:
        out = []
        for r in csv.DictReader(f):
            out.append({"strategy": r["strategy"], "ratio": float(r["ratio"]), "n_hidden": int(r["n_hidden"]),
                        **{k: float(r[k]) for k in ("mean", "std", "q25", "q75")}, "n": int(r["n"])})
        return out


def pretraining_grid(models: dict, images01: torch.Tensor, ratios: Sequence[float], seeds: int = 2,
                     strategy: str = "random", progress=None) -> tuple[list, list, np.ndarray]:
    """Error of each model (name -> (model, pretraining ratio)) at each test ratio: the heatmap of
    pretraining ratio x test ratio, with matched errors (every model's patches given the true mean and std) so
    that pixel and norm-pix models can share it. Returns (names sorted by pretraining ratio, ratios, (M, R))."""
    names = sorted(models, key=lambda k: models[k][1])
    grid = np.zeros((len(names), len(ratios)))
    for i, name in enumerate(names):
        grid[i] = heat_row(models[name][0], images01, ratios, seeds, strategy)
        if progress is not None:
            progress((i + 1) / len(names), name)
    return names, list(ratios), grid


# The Mask ratios page's comparisons of pretrained models: 64 bundled pictures x 2 seeds, shape (matched) errors
COMPARE_IMAGES, COMPARE_SEEDS = 64, 2


def heat_row(model, images01: torch.Tensor, ratios: Sequence[float] = DEFAULT_RATIOS, seeds: int = COMPARE_SEEDS,
             strategy: str = "random") -> list:
    """One model's row of the pretraining-ratio heatmap: its matched error at each test ratio."""
    return [r["mean"] for r in sweep(model, images01, ratios, (strategy,), seeds, matched=True).rows]


def heat_settings(ratios: Sequence[float] = DEFAULT_RATIOS, n_images: int = COMPARE_IMAGES,
                  seeds: int = COMPARE_SEEDS) -> dict:
    """What a stored heatmap row is keyed by beside the weights (``results``)."""
    return {"images": int(n_images), "seeds": int(seeds), "ratios": [float(r) for r in ratios],
            "strategy": "random", "matched": True, "data": "fashion-mnist-subset"}


def strategy_errors(model, strategy: str, ratio: float, images01: torch.Tensor, seeds: int = COMPARE_SEEDS) -> dict:
    """A model pretrained with ``strategy`` at ``ratio`` (the paper's Figure 6): its matched error on its own kind
    of masks and on random masks, same pictures."""
    own = sweep(model, images01, (ratio,), (strategy,), seeds, matched=True).rows[0]["mean"]
    rnd = own if strategy == "random" else sweep(model, images01, (ratio,), ("random",), seeds, matched=True).rows[0]["mean"]
    return {"own_error": own, "random_error": rnd}


def strategy_settings(strategy: str, ratio: float, n_images: int = COMPARE_IMAGES, seeds: int = COMPARE_SEEDS) -> dict:
    return {"strategy": strategy, "ratio": round(float(ratio), 4), "images": int(n_images), "seeds": int(seeds),
            "matched": True, "data": "fashion-mnist-subset"}


def ratio_strip(model, image01: torch.Tensor, ratios: Sequence[float], strategy: str = "random", seed: int = 0):
    """One image reconstructed at several ratios: [(ratio, Reconstruction), ...] in ascending ratio."""
    g = model.config.grid_size
    return [(float(r), reconstruct(model, image01, make_mask(strategy, 1, g, float(r), seed=seed)[0]))
            for r in sorted(ratios)]


def strategy_examples(model, image01: torch.Tensor, ratio: float, seed: int = 0):
    """The paper's Figure 6 for one image: each strategy's mask and reconstruction at one ratio."""
    g = model.config.grid_size
    return {s: reconstruct(model, image01, make_mask(s, 1, g, ratio, seed=seed)[0]) for s in STRATEGIES}


def parse_ratios(text: str) -> list:
    """'0.05:0.95:0.05' (start:stop:step, inclusive) or '0.25,0.5,0.75'."""
    try:
        if ":" in text:
            a, b, c = (float(v) for v in text.split(":"))
            n = int(round((b - a) / c)) + 1
            vals = [round(a + i * c, 6) for i in range(n)]
        else:
            vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"cannot read ratios {text!r}: use start:stop:step or a comma list") from None
    bad = [v for v in vals if not 0 <= v < 1]
    if not vals or bad:
        raise ValueError(f"ratios must be in [0, 1); got {bad or 'none'}")
    return vals


def _pil(t):
    return array_to_pil((t[0].numpy() * 255).round().astype("uint8"))


def main(argv=None) -> int:

    p = argparse.ArgumentParser(prog="python -m mae_core.evaluation.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="bundled name or checkpoint path")
    p.add_argument("--ratios", default="0.05:0.95:0.05")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--strip-ratios", default="0.25,0.5,0.75,0.9")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    try:
        ratios = parse_ratios(args.ratios)
        strip = parse_ratios(args.strip_ratios)
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        model, card = load_model(args.model)
        c = model.config
        if c.in_chans == 1:
            sub = load_fashion_mnist_subset()
            imgs = torch.stack([prepare_image(_pil(sub.images[i]), c.img_size, 1) for i in range(args.images)]) \
                if c.img_size != 28 else sub.images[:args.images]
        else:
            imgs = photo_eval_set(c.img_size, c.in_chans)[:args.images]
        from tqdm.auto import tqdm
        bar = tqdm(total=len(ratios) * len(strategies), desc="sweep")
        res = sweep(model, imgs, ratios, strategies, args.seeds,
                    progress=lambda f, label: (bar.update(1), bar.set_postfix_str(label)))
        bar.close()
    except (CheckpointError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(res.rows, out / "sweep.csv")
    chart = figures.error_curve_chart(res.rows, card.get("mask_ratio"))
    chart.title = f"{card.get('name', args.model)}: error against ratio"
    (out / "error_vs_ratio.png").write_bytes(figures.to_png(chart))
    figures.strip_image(ratio_strip(model, imgs[0], strip)).save(out / "strip.png")
    figures.strategies_image(strategy_examples(model, imgs[0], 0.75)).save(out / "strategies_at_0.75.png")
    for r in res.rows:
        if abs(r["ratio"] - 0.75) < 1e-9:
            print(f"  {r['strategy']:6s} @0.75: MSE {r['mean']:.4f} ± {r['std']:.4f}")
    print(f"wrote {out}/sweep.csv, error_vs_ratio.png, strip.png, strategies_at_0.75.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())


