"""Server-side time from a new mask to the reconstructed image bytes (what the Reconstruct page does on every
stroke): mask -> model -> panel PNG. Median of 20 per model.

    python bench/interactive_latency.py [--repeats 20] [--skip-large]
Targets on 2 CPU cores: <= 30 ms for bundled models, <= 250 ms for ViT-B, <= 600 ms for ViT-L.
"""
import argparse

import torch

from common import median_time, write

from mae_core.checkpoints import list_bundled, load_model
from mae_core.explore import panel_image, png_bytes, reconstruct
from mae_core.masking import random_mask
from mae_core.model import build_model


def time_model(model, repeats: int) -> dict:
    c = model.config
    image = torch.rand(c.in_chans, c.img_size, c.img_size)
    masks = random_mask(repeats + 3, c.grid_size, 0.75, seed=0)
    it = iter(range(10**9))

    def one_stroke():
        m = masks[next(it) % len(masks)]
        rec = reconstruct(model, image, m)
        return png_bytes(panel_image(rec, size=176))

    def forward_only():
        with torch.no_grad():
            model(model.normalize(image[None]), mask=masks[:1])
    return {"stroke_ms": 1000 * median_time(one_stroke, repeats),
            "forward_ms": 1000 * median_time(forward_only, repeats)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--skip-large", action="store_true", help="skip the ViT-L config")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    rows = {}
    for card in list_bundled():
        model, _ = load_model(card["path"])
        rows[card["name"]] = {**time_model(model, args.repeats), "target_ms": 30}
    for preset, target in (("mae_vit_base_patch16", 250), ("mae_vit_large_patch16", 600)):
        if args.skip_large and "large" in preset:
            continue
        torch.manual_seed(0)
        model = build_model(preset).eval()  # random weights: timing only
        rows[preset] = {**time_model(model, args.repeats), "target_ms": target}
    print(f"{'model':28s} {'stroke ms':>10s} {'forward ms':>11s} {'target':>7s}")
    for name, r in rows.items():
        ok = "ok" if r["stroke_ms"] <= r["target_ms"] else "SLOW"
        print(f"{name:28s} {r['stroke_ms']:10.1f} {r['forward_ms']:11.1f} {r['target_ms']:7d}  {ok}")
    print("->", write("interactive_latency", {"repeats": args.repeats, "results": rows}))


if __name__ == "__main__":
    main()
