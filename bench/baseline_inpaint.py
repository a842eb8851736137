"""Time of the classical baseline's fill on the Mask ratios page's first chart: harmonic inpainting of the masks
of 19 ratios x 3 strategies x 16 images x 3 seeds (one call per (strategy, ratio), as the sweep makes them), with
the four-neighbour mean taken from shifted views of the padded image (mae_core.baselines.inpaint) against the same
300 iterations written as a grouped 3x3 convolution (the first version), both run in this process.

    python bench/baseline_inpaint.py [--repeats 5]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from benchlib import write

from mae_core.baselines import _push_pull, inpaint
from mae_core.data import load_fashion_mnist_subset
from mae_core.masking import make_mask
from mae_core.model import build_model
from mae_core.evaluation.sweep import DEFAULT_RATIOS


@torch.no_grad()
def inpaint_conv(images01, pixel_hidden, iters: int = 300):
    """The reference: the same fill, its stencil as a grouped convolution."""
    x = images01.float()
    known = ~pixel_hidden[:, :1].bool()
    x = _push_pull(torch.where(known, x, torch.zeros_like(x)), known)
    kernel = torch.tensor([[0, .25, 0], [.25, 0, .25], [0, .25, 0]]).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)
    for _ in range(iters):
        x = torch.where(known, x, F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1]))
    return x.clamp(0, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    model = build_model("mae_fmnist_micro")
    images = load_fashion_mnist_subset().images[:16].repeat(3, 1, 1, 1)
    calls = [model.mask_to_pixels(make_mask(s, len(images), 7, r, seed=0))
             for s in ("random", "block", "grid") for r in DEFAULT_RATIOS]
    times = {"stencil": [], "conv": []}
    for _ in range(args.repeats):
        for name, fn in (("stencil", inpaint), ("conv", inpaint_conv)):
            t = time.perf_counter()
            for pix in calls:
                fn(images, pix)
            times[name].append(time.perf_counter() - t)
    diff = max(float((inpaint(images, p) - inpaint_conv(images, p)).abs().max()) for p in calls[::7])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"harmonic fill of {len(calls)} x {len(images)} masked images (the page's first chart), "
          f"{torch.get_num_threads()} threads, median of {args.repeats}:")
    print(f"  shifted views (app): {med['stencil']:.2f} s   grouped conv (before): {med['conv']:.2f} s"
          f"   -> {med['conv'] / med['stencil']:.1f}x faster; largest difference {diff:.1e}")
    print("->", write("baseline_inpaint", {"median_s": med, "runs_s": times, "speedup": med["conv"] / med["stencil"],
                                           "max_abs_diff": diff}))


if __name__ == "__main__":
    main()
