"""Server-side time from a new mask to the reconstructed image bytes (what the Reconstruct page does on every
stroke): mask -> model -> the five-view panel and the large pasted reconstruction -> the bytes st.image sends
(JPEG, quality 90, Streamlit's encoding of RGB images). The download PNG is drawn only on click, and the
painter's background once per image, so neither is on the stroke path. Median of 20 per model.

    python bench/interactive_latency.py [--repeats 20] [--skip-large]
Targets on 2 CPU cores: <= 30 ms for bundled models, <= 250 ms for ViT-B, <= 600 ms for ViT-L.
"""
import argparse
import io
import statistics

import torch

from benchlib import median_time, write

from mae_core.checkpoints import list_bundled, load_model
from mae_core.explore import reconstruct
from mae_core.evaluation.figures import panel_image, to_pil
from mae_core.masking import random_mask
from mae_core.model import build_model


PAINTER_PX = 336  # app/views/reconstruct.py


def st_image_bytes(im) -> bytes:
    """What st.image does with an RGB PIL image (streamlit/elements/lib/image_utils.py): JPEG at quality 90."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def time_model(model, repeats: int) -> dict:
    c = model.config
    image = torch.rand(c.in_chans, c.img_size, c.img_size)
    masks = random_mask(repeats + 3, c.grid_size, 0.75, seed=0)
    it = iter(range(10**9))

    def one_stroke():
        m = masks[next(it) % len(masks)]
        rec = reconstruct(model, image, m)
        return [st_image_bytes(panel_image(rec, size=176)), st_image_bytes(to_pil(rec.pasted, PAINTER_PX))]

    def forward_only():
        with torch.no_grad():
            model(model.normalize(image[None]), mask=masks[:1])
    return {"stroke_ms": 1000 * median_time(one_stroke, repeats),
            "forward_ms": 1000 * median_time(forward_only, repeats)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3,
                    help="whole passes over the models; the figure is the median of the rounds' medians")
    ap.add_argument("--skip-large", action="store_true", help="skip the ViT-L config")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    models = {}
    for card in list_bundled():
        models[card["name"]] = (load_model(card["path"])[0], 30)
    for preset, target in (("mae_vit_base_patch16", 250), ("mae_vit_large_patch16", 600)):
        if args.skip_large and "large" in preset:
            continue
        torch.manual_seed(0)
        models[preset] = (build_model(preset).eval(), target)  # random weights: timing only
    rounds = {name: [] for name in models}
    for _ in range(args.rounds):  # rounds interleave the models, so a slow spell of the machine hits them all
        for name, (model, _) in models.items():
            rounds[name].append(time_model(model, args.repeats))
    rows = {}
    for name, (_, target) in models.items():
        rows[name] = {"stroke_ms": statistics.median(r["stroke_ms"] for r in rounds[name]),
                      "forward_ms": statistics.median(r["forward_ms"] for r in rounds[name]),
                      "target_ms": target, "rounds": rounds[name]}
    print(f"{'model':28s} {'stroke ms':>10s} {'forward ms':>11s} {'target':>7s}   (median of {args.rounds} rounds)")
    for name, r in rows.items():
        ok = "ok" if r["stroke_ms"] <= r["target_ms"] else "SLOW"
        print(f"{name:28s} {r['stroke_ms']:10.1f} {r['forward_ms']:11.1f} {r['target_ms']:7d}  {ok}")
    print("->", write("interactive_latency", {"repeats": args.repeats, "rounds": args.rounds, "results": rows}))


if __name__ == "__main__":
    main()
