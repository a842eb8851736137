"""Images/s of one MAE training step (forward, backward, AdamW step) on the same config for
(a) our model (encoder on visible patches only), (b) the same model with mask tokens fed through the encoder
(no asymmetry: the paper's "encoder w/ [M]" ablation), (c) Hugging Face ViTMAEForPreTraining when transformers
is installed. Prints the ratios, measured in this one process with the models' timings interleaved (each
repeat times every model in turn, so a noisy neighbour slows them all alike; ratios are medians of the per-repeat
ratios). Also prints the ratio of training
FLOPs (forward + backward, counted by torch's FlopCounterMode) of (b) over (a): the speed-up that token dropping
could give if every FLOP cost the same, and so the ceiling for that config.

    python bench/train_throughput.py [--repeats 7] [--batch 64]
    python bench/train_throughput.py --device cuda --precision bf16 --configs vit_base_224 vit_large_224
    python bench/train_throughput.py --configs vitb_ratio_dec1_192x12_dec128x1 --tag _dec1
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

from benchlib import write

from mae_core.model import MAEConfig, MaskedAutoencoderViT, preset_config
from mae_core.optim import make_optimizer
from mae_core.train import train_step

CONFIGS = {
    # the reference point: 192 wide, 6 deep, 32 px (64 patches of 4 px), light decoder
    "small_192x6_dec128x2": MAEConfig(img_size=32, patch_size=4, in_chans=3, embed_dim=192, depth=6, num_heads=3,
                                      decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4,
                                      pixel_mean=(0.5,) * 3, pixel_std=(0.5,) * 3),
    # ViT-B's encoder/decoder cost ratio (12 x 768^2 vs 8 x 512^2 per token) at 1/4 of the width
    "vitb_ratio_192x12_dec128x8": MAEConfig(img_size=32, patch_size=4, in_chans=3, embed_dim=192, depth=12,
                                            num_heads=3, decoder_embed_dim=128, decoder_depth=8,
                                            decoder_num_heads=4, pixel_mean=(0.5,) * 3, pixel_std=(0.5,) * 3),
    # ViT-L's ratio (24 x 1024^2 vs 8 x 512^2), where the paper measured its wall-clock speed-ups (Table 2)
    "vitl_ratio_192x24_dec96x8": MAEConfig(img_size=32, patch_size=4, in_chans=3, embed_dim=192, depth=24,
                                           num_heads=3, decoder_embed_dim=96, decoder_depth=8,
                                           decoder_num_heads=3, pixel_mean=(0.5,) * 3, pixel_std=(0.5,) * 3),
}
# Opt-in (--configs): ViT-B's encoder ratio with the paper's 1-block decoder (its Tables 1c and 2), where dropping
# tokens can save more than with the 8-block default
EXTRA_CONFIGS = {
    "vitb_ratio_dec1_192x12_dec128x1": MAEConfig(img_size=32, patch_size=4, in_chans=3, embed_dim=192, depth=12,
                                                 num_heads=3, decoder_embed_dim=128, decoder_depth=1,
                                                 decoder_num_heads=4, pixel_mean=(0.5,) * 3, pixel_std=(0.5,) * 3),
}
# the official sizes at 224 px: for a GPU (--device cuda); too slow to be the default on a laptop CPU
GPU_CONFIGS = {"vit_base_224": preset_config("mae_vit_base_patch16"),
               "vit_large_224": preset_config("mae_vit_large_patch16")}


class FullTokenMAE(MaskedAutoencoderViT):
    """The same MAE, but hidden patches enter the encoder as a learned mask token (no token dropping)."""

    def __init__(self, config):
        super().__init__(config)
        self.enc_mask_token = nn.Parameter(torch.zeros(1, 1, config.embed_dim))
        nn.init.normal_(self.enc_mask_token, std=0.02)

    def forward(self, imgs, mask=None, mask_ratio=0.75, generator=None):
        n, L = imgs.shape[0], self.config.num_patches
        ids_keep = self.random_keep_ids(n, L, mask_ratio, generator, imgs.device)
        m = torch.ones(n, L, device=imgs.device)
        m.scatter_(1, ids_keep, 0)
        x = self.patch_embed(imgs)
        x = torch.where(m.bool().unsqueeze(-1), self.enc_mask_token.expand_as(x), x) + self.pos_embed[:, 1:, :]
        x = torch.cat([(self.cls_token + self.pos_embed[:, :1, :]).expand(n, -1, -1), x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_embed(self.norm(x)) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        pred = self.decoder_pred(self.decoder_norm(x))[:, 1:, :]
        return type("Out", (), {"loss": self.forward_loss(imgs, pred, m)})


def hf_model(c: MAEConfig):
    try:
        import transformers
    except ImportError:
        return None
    cfg = transformers.ViTMAEConfig(
        image_size=c.img_size, patch_size=c.patch_size, num_channels=c.in_chans, hidden_size=c.embed_dim,
        num_hidden_layers=c.depth, num_attention_heads=c.num_heads, intermediate_size=int(c.embed_dim * c.mlp_ratio),
        decoder_hidden_size=c.decoder_embed_dim, decoder_num_hidden_layers=c.decoder_depth,
        decoder_num_attention_heads=c.decoder_num_heads,
        decoder_intermediate_size=int(c.decoder_embed_dim * c.mlp_ratio), mask_ratio=0.75, layer_norm_eps=c.norm_eps)
    model = transformers.ViTMAEForPreTraining(cfg)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, imgs, mask=None, mask_ratio=0.75, generator=None):
            return self.m(pixel_values=imgs)
    return Wrap()


def step_fn(model, c: MAEConfig, batch: int, steps: int = 5, device="cpu", amp_dtype=None):
    """A callable running ``steps`` training steps (autocast to ``amp_dtype`` as train.py does on a GPU), warmed
    up once; it returns after the device has finished."""
    device = torch.device(device)
    model.to(device)
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad], 1e-4)  # what train.py uses
    x = torch.randn(batch, c.in_chans, c.img_size, c.img_size, device=device)
    model.train()

    def run():
        for _ in range(steps):  # the training step train.py makes, without reading the loss back (no sync)
            train_step(model, opt, x, mask_ratio=0.75, amp_dtype=amp_dtype, check_finite=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
    run()  # warm-up
    return run


def train_flops(model, c: MAEConfig, batch: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    p = next(model.parameters())
    x = torch.randn(batch, c.in_chans, c.img_size, c.img_size, device=p.device)
    with FlopCounterMode(display=False) as fc:
        model(x, mask_ratio=0.75).loss.backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="autocast dtype of the forward (train.py uses bf16 on a GPU)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS),
                    choices=list(CONFIGS) + list(EXTRA_CONFIGS) + list(GPU_CONFIGS))
    ap.add_argument("--tag", default="", help="suffix of the results file, e.g. _h200")
    args = ap.parse_args()
    amp_dtype = torch.bfloat16 if args.precision == "bf16" else None
    results = {}
    for name in args.configs:
        c = {**CONFIGS, **EXTRA_CONFIGS, **GPU_CONFIGS}[name]
        torch.manual_seed(0)
        models = {"ours": MaskedAutoencoderViT(c), "full_tokens": FullTokenMAE(c)}
        hf = hf_model(c)
        if hf is not None:
            models["huggingface"] = hf
        for m in models.values():
            m.to(args.device)
        flops = {k: train_flops(models[k], c, args.batch) for k in ("ours", "full_tokens")}
        runs = {k: step_fn(m, c, args.batch, args.steps, args.device, amp_dtype) for k, m in models.items()}
        rates = {k: [] for k in models}
        for _ in range(args.repeats):
            for k, run in runs.items():
                t = time.perf_counter()
                run()
                rates[k].append(args.batch * args.steps / (time.perf_counter() - t))
        row = {k: statistics.median(v) for k, v in rates.items()}
        row["runs"] = rates

        def paired(a, b):  # median of the per-repeat ratios: the repeats are interleaved, so pairs share conditions
            return statistics.median(x / y for x, y in zip(rates[a], rates[b]))
        row["speedup_vs_full_tokens"] = paired("ours", "full_tokens")
        row["flop_ratio_full_over_ours"] = flops["full_tokens"] / flops["ours"]
        row["share_of_flop_bound"] = row["speedup_vs_full_tokens"] / row["flop_ratio_full_over_ours"]
        if hf is not None:
            row["ratio_vs_huggingface"] = paired("ours", "huggingface")
        results[name] = row
        extra = f"  HF {row['huggingface']:5.0f} img/s  ours/HF {row['ratio_vs_huggingface']:.2f}x" if hf else ""
        print(f"{name:28s} ours {row['ours']:5.0f} img/s  full-token {row['full_tokens']:5.0f} img/s  "
              f"asymmetric speedup {row['speedup_vs_full_tokens']:.2f}x (FLOP ratio "
              f"{row['flop_ratio_full_over_ours']:.2f}x){extra}", flush=True)
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print("->", write("train_throughput" + args.tag, {
        "batch": args.batch, "mask_ratio": 0.75, "repeats": args.repeats, "steps_per_repeat": args.steps,
        "device": device, "precision": args.precision, "results": results}))


if __name__ == "__main__":
    main()
