"""Time of the full test-time sweep the Mask ratios page runs: 19 ratios x 3 strategies x 64 images x 3 seeds
on a bundled model (batched per (strategy, ratio)), against a baseline that runs one image and one mask at a
time through the same model, measured in this process on a subset and scaled.

    python bench/sweep_speed.py [--model fmnist_r75] [--repeats 3]
"""
import argparse
import statistics
import time

import torch

from benchlib import write

from mae_core.checkpoints import load_model
from mae_core.data import load_fashion_mnist_subset
from mae_core.masking import make_mask
from mae_core.metrics import masked_errors
from mae_core.evaluation.sweep import DEFAULT_RATIOS, sweep


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fmnist_r75")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    model, _ = load_model(args.model)
    images = load_fashion_mnist_subset().images[:64]
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        sweep(model, images, DEFAULT_RATIOS, ("random", "block", "grid"), seeds=3)
        times.append(time.perf_counter() - t)
    batched = statistics.median(times)
    # baseline: one (image, mask) per forward, on 1/19 of the work (one ratio), scaled to the full sweep
    n_calls = 19 * 3 * 64 * 3
    masks = make_mask("random", 64 * 3, 7, 0.75, seed=0)
    imgs = images.repeat(3, 1, 1, 1)
    t = time.perf_counter()
    for i in range(len(imgs)):
        masked_errors(model, imgs[i:i + 1], masks[i:i + 1])
    per_call = (time.perf_counter() - t) / len(imgs)
    looped = per_call * n_calls
    print(f"full sweep (19 ratios x 3 strategies x 64 images x 3 seeds = {n_calls} reconstructions)")
    print(f"  batched: median {batched:.2f} s over {args.repeats} runs ({sorted(round(x, 2) for x in times)})")
    print(f"  one at a time (estimated from {len(imgs)} calls): {looped:.1f} s  -> batched is {looped / batched:.0f}x faster")
    print("->", write("sweep_speed", {"model": args.model, "batched_s": batched, "runs_s": times,
                                      "one_at_a_time_estimate_s": looped, "speedup": looped / batched}))


if __name__ == "__main__":
    main()
