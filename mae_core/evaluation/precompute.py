"""``python -m mae_core.evaluation.precompute [NAME ...]``: the results a first visit with default settings shows, computed once
and shipped next to the bundled checkpoints (checkpoints/precomputed/), so no visitor waits for them: the Mask ratios
page's error curves (every strategy, with the classical baseline), its pretraining-ratio heatmap and strategy
comparison rows, the Embeddings page's map, score table and neighbours for its default settings, and the lesson's
curve and maps. Each file is keyed by the weights' SHA-256 and the settings
(``mae_core.evaluation.results``): after retraining a model, run this again."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import torch

from ..classroom import lesson
from . import results
from ..datasets import FASHION_MNIST
from ..checkpoints import list_bundled, load_model
from ..data import SUBSET_PATH, labelled_dataset, load_fashion_mnist_subset
from ..embed import encode, project, raw_pixels
from ..metrics import nearest_neighbours, scores
from . import cards
from .sweep import (COMPARE_IMAGES, PAGE_IMAGES, PAGE_SEEDS, DEFAULT_RATIOS, STRATEGIES, eval_images, heat_row,
                    heat_settings, strategy_errors, strategy_settings, sweep, sweep_settings)


# The Embeddings page's first visit: the bundled 2,000 Fashion-MNIST pictures, cls + mean features, t-SNE
EMBED_DEFAULTS = dict(source="fashion-mnist-subset", n=2000, pool="both", mask_ratio=0.0, method="tsne",
                      perplexity=30.0, seed=0)


def embedding_settings(source: str, n: int, pool: str, mask_ratio: float, method: str = "", perplexity: float = 0.0,
                       seed: int = 0) -> dict:
    """What an Embeddings result is keyed by beside the weights (the map: with its projection's settings)."""
    out = {"source": source, "n": int(n), "pool": pool, "mask_ratio": round(float(mask_ratio), 4)}
    if method:
        out.update(method=method, perplexity=float(perplexity) if method == "tsne" else 0.0, seed=int(seed))
    return out


def embedding_map(features, method: str, perplexity: float, seed: int, progress=None) -> dict:
    t = time.perf_counter()
    xy = project(features, method, seed=seed, perplexity=perplexity, progress=progress)
    return {"xy": [[round(float(a), 4), round(float(b), 4)] for a, b in xy], "seconds": time.perf_counter() - t}


def _embeddings(card, model) -> list:
    d = EMBED_DEFAULTS
    c = model.config
    ds = labelled_dataset(d["source"], c.img_size, c.in_chans, limit=d["n"], seed=0)
    f = encode(model, ds.images, d["pool"], mask_ratio=d["mask_ratio"], seed=0)
    labels = ds.labels.numpy()
    return [results.ship(card["path"], "embed-map", embedding_settings(**d),
                         embedding_map(f, d["method"], d["perplexity"], d["seed"])),
            results.ship(card["path"], "embed-scores", embedding_settings(d["source"], d["n"], d["pool"], 0.0),
                         scores(f, labels)),
            results.ship(card["path"], "embed-neighbours", embedding_settings(d["source"], d["n"], d["pool"], 0.0),
                         neighbour_table(f))]


def _comparisons(card, model) -> list:
    """The Mask ratios page's rows for this model: its line of the pretraining-ratio heatmap, and its errors on its
    own strategy's masks and on random ones at its pretraining ratio (the strategy comparison)."""
    imgs = load_fashion_mnist_subset().images[:COMPARE_IMAGES]
    c = cards.read(card)
    out = [results.ship(card["path"], "heat-row", heat_settings(), heat_row(model, imgs))]
    if c.mask_ratio is not None:
        strategy, ratio = c.mask_strategy or "random", float(c.mask_ratio)
        out.append(results.ship(card["path"], "strategy-errors", strategy_settings(strategy, ratio),
                                strategy_errors(model, strategy, ratio, imgs)))
    return out


NEIGHBOURS = 16   # the most the Embeddings page shows


def neighbour_table(features) -> list:
    """Each point's ``NEIGHBOURS`` nearest others (cosine, in the encoder's space): the page's neighbours without
    the features."""
    return nearest_neighbours(features, features, k=NEIGHBOURS, exclude_self=True).tolist()


def raw_scores(source: str, n: int, size: int, channels: int) -> dict:
    ds = labelled_dataset(source, size, channels, limit=n, seed=0)
    return scores(raw_pixels(ds.images), ds.labels.numpy())


def _sweeps(card, model) -> list:
    """The Mask ratios page's first chart: one file a strategy (the page reuses each when the visitor changes the
    others)."""
    cfg = model.config
    return [results.ship(card["path"], f"sweep-{s}", sweep_settings(cfg, strategies=(s,)),
                         sweep(model, eval_images(cfg, PAGE_IMAGES), DEFAULT_RATIOS, (s,), PAGE_SEEDS, baseline=True).rows)
            for s in STRATEGIES]


def _lesson(card, model) -> list:
    """The lesson's steps 5 and 6."""
    return [results.ship(card["path"], "lesson-curve", lesson.CURVE_SETTINGS, lesson.compute_curve(model)),
            results.ship(card["path"], "lesson-maps", lesson.MAP_SETTINGS, lesson.compute_maps(model))]


# what is shipped, by part: (every bundled model, or only the Fashion-MNIST ones (the lesson, Embeddings' defaults
# and the comparisons draw its pictures), the function)
PARTS = {"sweeps": (False, _sweeps), "lesson": (True, _lesson), "embeddings": (True, _embeddings),
         "comparisons": (True, _comparisons)}


def precompute(names: Sequence[str] = (), parts: Sequence[str] = tuple(PARTS), log=print) -> list:
    """Ship the default results of the bundled models named (all of them when none are), of the ``parts`` named
    (all of them by default); returns the files."""
    written = []
    for card in list_bundled():
        if names and card["name"] not in names:
            continue
        t = time.perf_counter()
        model, _ = load_model(card["path"])
        for part in parts:
            fashion_only, produce = PARTS[part]
            if FASHION_MNIST.fits(model.config) or not fashion_only:
                written += produce(card, model)
        log(f"{card['name']}: {time.perf_counter() - t:.1f} s")
    if not names and "embeddings" in parts:   # raw pixels' scores, keyed by the bundled pictures themselves
        d = EMBED_DEFAULTS
        written.append(results.ship(SUBSET_PATH, "embed-raw-scores", embedding_settings(d["source"], d["n"], "raw", 0.0),
                                    raw_scores(d["source"], d["n"], 28, 1)))
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mae_core.evaluation.precompute", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="bundled model names (default: all)")
    ap.add_argument("--only", nargs="+", choices=list(PARTS), default=list(PARTS),
                    help="ship only these parts (default: all)")
    a = ap.parse_args(argv)
    known = {c["name"] for c in list_bundled()}
    unknown = [n for n in a.names if n not in known]
    if unknown:
        print(f"error: no bundled model named {', '.join(unknown)} (bundled: {', '.join(sorted(known))})",
              file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    files = precompute(a.names, a.only)
    print(f"{len(files)} files in {results.SHIPPED_DIR}")
    return 0 if files else 1


if __name__ == "__main__":
    sys.exit(main())
