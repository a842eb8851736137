"""What the transformer attends to: the attention weights of every encoder and decoder block, for one image and
mask, computed with the model's own weights and numerics.

timm's fused attention (``scaled_dot_product_attention``) never materialises the weights, so a forward hook on
each block's ``attn`` module takes the module's input and recomputes them explicitly, the way timm's non-fused
path does (qkv projection, q/k norms, scale, softmax). The model's outputs are untouched: the hook only reads.

    from mae_core import load_model
    from mae_core.attention import attention_maps, attention_grid
    model, _ = load_model("fmnist_r75")
    maps = attention_maps(model, image01, mask)                     # image (C, H, W) in [0, 1], mask (L,) 1 = hidden
    grid, cls_share = attention_grid(maps, "encoder", block=-1, query="cls")   # (g, g), NaN where hidden
    roll, _ = attention_grid(maps, "encoder", query="cls", rollout=True)       # Abnar & Zuidema (2020)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch

from .explore import check_image_for_model
from .masking import painted_mask


@dataclass
class AttentionMaps:
    """Attention weights of one image under one mask.

    encoder[b]: (heads, S, S), S = 1 + number of visible patches; token 0 is cls, token 1 + i is patch visible[i].
    decoder[b]: (heads, 1 + L, 1 + L); token 0 is cls, token 1 + j is patch j (hidden ones carry the mask token).
    Rows are queries, columns keys; every row sums to 1."""
    encoder: list
    decoder: list
    visible: np.ndarray   # (S - 1,) patch index of each encoder token after cls, ascending
    grid: int

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid


def explicit_attention(attn, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None):
    """A timm ``Attention`` module's weights and output for input ``x`` (B, S, D), computed explicitly.
    Returns (weights (B, heads, S, S), output (B, S, D)); the output equals ``attn(x)`` up to float rounding."""
    B, S, _ = x.shape
    qkv = attn.qkv(x).reshape(B, S, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    if attn_mask is not None:
        logits = logits.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else logits + attn_mask
    w = logits.softmax(dim=-1)
    out = (w @ v).transpose(1, 2).reshape(B, S, attn.attn_dim)
    out = attn.norm(out)
    if getattr(attn, "gate", None) is not None:
        out = out * attn.gate(x).sigmoid()
    return w, attn.proj(out)


@torch.no_grad()
def attention_maps(model, image01: torch.Tensor, mask) -> AttentionMaps:
    """Run the model once on one image (C, H, W) in [0, 1] with a mask of L cells (1 = hidden) and collect the
    attention weights of every block, encoder and decoder."""
    c = model.config
    check_image_for_model(image01, c)
    m = painted_mask(np.asarray(mask, dtype=bool).reshape(-1), grid=c.grid_size)
    device = next(model.parameters()).device
    caught: dict = {"encoder": [], "decoder": []}
    hooks = []

    def hook_for(part):
        def hook(module, args, kwargs, output):
            x = args[0] if args else kwargs["x"]
            w, _ = explicit_attention(module, x, kwargs.get("attn_mask"))
            caught[part].append(w[0].float().cpu())
        return hook
    for part, blocks in (("encoder", model.blocks), ("decoder", model.decoder_blocks)):
        for blk in blocks:
            hooks.append(blk.attn.register_forward_hook(hook_for(part), with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        model(model.normalize(image01.unsqueeze(0).to(device)), mask=m.to(device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    visible = np.flatnonzero(~m.reshape(-1).numpy())  # the model feeds visible patches in ascending order
    return AttentionMaps(caught["encoder"], caught["decoder"], visible, c.grid_size)


def attention_rollout(weights: list, head: Optional[int] = None) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): per block the head-averaged (or one head's) weights plus the
    identity for the residual path, rows renormalised, multiplied from the first block to the last."""
    out = None
    for w in weights:
        a = w.mean(0) if head is None else w[head]
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
        a = a / a.sum(-1, keepdim=True)
        out = a if out is None else a @ out
    return out


def attention_grid(maps: AttentionMaps, part: str = "encoder", block: int = -1, head: Optional[int] = None,
                   query: Union[str, int] = "cls", rollout: bool = False):
    """The attention of one query over the patch grid: (grid (g, g) float array, share of attention on cls).

    part: "encoder" (hidden patches are NaN: the encoder never saw them) or "decoder" (every patch).
    block: which block (negative counts from the end); ignored with ``rollout`` (all blocks combined).
    head: one head, or None for the mean over heads. query: "cls" or a patch index (for the encoder it must be
    a visible patch). Grid values are attention weights: over the visible patches plus cls they sum to 1."""
    if part not in ("encoder", "decoder"):
        raise ValueError(f"part must be 'encoder' or 'decoder', got {part!r}")
    weights = maps.encoder if part == "encoder" else maps.decoder
    if not weights:
        raise ValueError(f"this model has no {part} blocks to show")
    n_heads = weights[0].shape[0]
    if head is not None and not 0 <= head < n_heads:
        raise ValueError(f"head must be in 0..{n_heads - 1}, got {head}")
    if rollout:
        a = attention_rollout(weights, head)
    else:
        if not -len(weights) <= block < len(weights):
            raise ValueError(f"block must be in 0..{len(weights) - 1}, got {block}")
        w = weights[block]
        a = w.mean(0) if head is None else w[head]
    tokens = maps.visible if part == "encoder" else np.arange(maps.num_patches)
    if query == "cls":
        row = 0
    else:
        q = int(query)
        hits = np.flatnonzero(tokens == q)
        if not hits.size:
            raise ValueError(f"patch {q} is hidden: the encoder has no token for it (pick a visible patch or cls)")
        row = 1 + int(hits[0])
    r = a[row].numpy().astype(np.float64)
    grid = np.full(maps.num_patches, np.nan)
    grid[tokens] = r[1:]
    return grid.reshape(maps.grid, maps.grid), float(r[0])

