"""``python -m mae_core.evaluation.precompute [NAME ...]``: the results a first visit with default settings shows, computed once
and shipped next to the bundled checkpoints (checkpoints/precomputed/), so no visitor waits for them: the Mask ratios
page's error curves (every strategy, with the classical baseline) and the lesson's curve and maps. Each file is keyed
by the weights' SHA-256 and the settings (``mae_core.evaluation.results``): after retraining a model, run this again."""
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
from .sweep import PAGE_IMAGES, PAGE_SEEDS, DEFAULT_RATIOS, STRATEGIES, eval_images, sweep, sweep_settings


def precompute(names: Sequence[str] = (), log=print) -> list:
    """Ship the default results of the bundled models named (all of them when none are); returns the files."""
    written = []
    for card in list_bundled():
        if names and card["name"] not in names:
            continue
        t = time.perf_counter()
        model, _ = load_model(card["path"])
        cfg = model.config
        rows = sweep(model, eval_images(cfg, PAGE_IMAGES), DEFAULT_RATIOS, tuple(STRATEGIES), PAGE_SEEDS,
                     baseline=True).rows
        written.append(results.ship(card["path"], "sweep", sweep_settings(cfg), rows))
        if FASHION_MNIST.fits(cfg):   # the lesson's steps 5 and 6 draw Fashion-MNIST
            written.append(results.ship(card["path"], "lesson-curve", lesson.CURVE_SETTINGS,
                                        lesson.compute_curve(model)))
            written.append(results.ship(card["path"], "lesson-maps", lesson.MAP_SETTINGS,
                                        lesson.compute_maps(model)))
        log(f"{card['name']}: {time.perf_counter() - t:.1f} s")
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
