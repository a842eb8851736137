"""``python -m mae_core.evaluation.precompute [NAME ...]``: the results a first visit with default settings shows, computed once
and shipped next to the bundled checkpoints (checkpoints/precomputed/), so no visitor waits for them: the Mask ratios
page's error curves (every strategy, with the classical baseline), the Embeddings page's map and score table for its
default settings, and the lesson's curve and maps. Each file is keyed by the weights' SHA-256 and the settings
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
from ..data import SUBSET_PATH, labelled_dataset
from ..embed import encode, project, raw_pixels
from ..metrics import nearest_neighbours, scores
from .sweep import PAGE_IMAGES, PAGE_SEEDS, DEFAULT_RATIOS, STRATEGIES, eval_images, sweep, sweep_settings


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


NEIGHBOURS = 16   # the most the Embeddings page shows


def neighbour_table(features) -> list:
    """Each point's ``NEIGHBOURS`` nearest others (cosine, in the encoder's space): the page's neighbours without
    the features."""
    return nearest_neighbours(features, features, k=NEIGHBOURS, exclude_self=True).tolist()


def raw_scores(source: str, n: int, size: int, channels: int) -> dict:
    ds = labelled_dataset(source, size, channels, limit=n, seed=0)
    return scores(raw_pixels(ds.images), ds.labels.numpy())


def precompute(names: Sequence[str] = (), log=print) -> list:
    """Ship the default results of the bundled models named (all of them when none are); returns the files."""
    written = []
    for card in list_bundled():
        if names and card["name"] not in names:
            continue
        t = time.perf_counter()
        model, _ = load_model(card["path"])
        cfg = model.config
        for s in STRATEGIES:   # one file a strategy: the page reuses each when the visitor changes the others
            rows = sweep(model, eval_images(cfg, PAGE_IMAGES), DEFAULT_RATIOS, (s,), PAGE_SEEDS, baseline=True).rows
            written.append(results.ship(card["path"], f"sweep-{s}", sweep_settings(cfg, strategies=(s,)), rows))
        if FASHION_MNIST.fits(cfg):   # the lesson's steps 5 and 6 draw Fashion-MNIST
            written.append(results.ship(card["path"], "lesson-curve", lesson.CURVE_SETTINGS,
                                        lesson.compute_curve(model)))
            written.append(results.ship(card["path"], "lesson-maps", lesson.MAP_SETTINGS,
                                        lesson.compute_maps(model)))
            written += _embeddings(card, model)
        log(f"{card['name']}: {time.perf_counter() - t:.1f} s")
    if not names:   # raw pixels' scores, keyed by the bundled pictures themselves
        d = EMBED_DEFAULTS
        written.append(results.ship(SUBSET_PATH, "embed-raw-scores", embedding_settings(d["source"], d["n"], "raw", 0.0),
                                    raw_scores(d["source"], d["n"], 28, 1)))
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mae_core.evaluation.precompute", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="bundled model names (default: all)")
    a = ap.parse_args(argv)
    known = {c["name"] for c in list_bundled()}
    unknown = [n for n in a.names if n not in known]
    if unknown:
        print(f"error: no bundled model named {', '.join(unknown)} (bundled: {', '.join(sorted(known))})",
              file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    files = precompute(a.names)
    print(f"{len(files)} files in {results.SHIPPED_DIR}")
    return 0 if files else 1


if __name__ == "__main__":
    sys.exit(main())
