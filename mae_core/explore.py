"""Reconstruction of one image under one mask, and the pictures the app shows of it.

Everything the reconstruction page computes lives here, so it is tested without Streamlit and timed by
bench/interactive_latency.py.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .data import tensor_to_uint8
from .masking import painted_mask

HIDDEN_GREY = 0.5  # hidden patches are drawn mid-grey in the "masked" panel


@dataclass
class Reconstruction:
    original: torch.Tensor        # (C, H, W) in [0, 1]
    masked: torch.Tensor          # original with hidden patches greyed out
    reconstruction: torch.Tensor  # the model's prediction for every patch, in [0, 1]
    pasted: torch.Tensor          # prediction on hidden patches, original pixels on visible ones
    mask: np.ndarray              # (L,) bool, True = hidden
    error_map: np.ndarray         # (grid, grid) per-patch MSE in [0, 1] pixel units
    mse_hidden: float             # mean squared error over hidden patches (NaN when none is hidden)
    mse_visible: float            # the same over visible patches (how well it copies what it saw)
    rescaled: bool                # True for norm-pix models: colours re-scaled with the true patch statistics

    @property
    def n_hidden(self) -> int:
        return int(self.mask.sum())

    @property
    def ratio(self) -> float:
        return float(self.mask.mean())


def check_image_for_model(image01: torch.Tensor, config) -> torch.Tensor:
    """An image tensor must match the model's channels and size; say which way it does not."""
    if image01.ndim != 3:
        raise ValueError(f"an image must have shape (C, H, W), got {tuple(image01.shape)}")
    if image01.shape[0] != config.in_chans:
        kind = {1: "greyscale", 3: "RGB"}
        raise ValueError(f"the image has {image01.shape[0]} channel(s) but the model expects "
                         f"{config.in_chans} ({kind.get(config.in_chans, '?')}); prepare it with the model's channels")
    if tuple(image01.shape[1:]) != (config.img_size, config.img_size):
        raise ValueError(f"the image is {image01.shape[2]}x{image01.shape[1]} but the model expects "
                         f"{config.img_size}x{config.img_size}")
    return image01


@torch.no_grad()
def reconstruct(model, image01: torch.Tensor, mask) -> Reconstruction:
    """Run the model on one image (C, H, W) in [0, 1] with a mask of L cells (1/True = hidden)."""
    c = model.config
    check_image_for_model(image01, c)
    m = painted_mask(np.asarray(mask, dtype=bool).reshape(-1), grid=c.grid_size)
    device = next(model.parameters()).device
    x01 = image01.unsqueeze(0).to(device)
    out, rec, per_patch = model.reconstruct_pixels(x01, m.to(device))
    rec, per_patch = rec.clamp(0, 1), per_patch[0]  # errors as the sweeps and model cards measure them
    hidden = out.mask[0].bool()
    pix_mask = model.mask_to_pixels(out.mask)
    pasted = torch.where(pix_mask, rec, x01)
    masked = torch.where(pix_mask, torch.full_like(x01, HIDDEN_GREY), x01)
    mse_h = float(per_patch[hidden].mean()) if hidden.any() else float("nan")
    mse_v = float(per_patch[~hidden].mean()) if (~hidden).any() else float("nan")
    return Reconstruction(original=x01[0].cpu(), masked=masked[0].cpu(), reconstruction=rec[0].cpu(),
                          pasted=pasted[0].cpu(), mask=hidden.cpu().numpy(),
                          error_map=per_patch.view(c.grid_size, c.grid_size).cpu().numpy(),
                          mse_hidden=mse_h, mse_visible=mse_v, rescaled=bool(c.norm_pix_loss))


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------

def to_pil(img01: torch.Tensor, size: Optional[int] = None, smooth: bool = False) -> Image.Image:
    im = Image.fromarray(tensor_to_uint8(img01))
    if size and im.size[0] != size:
        im = im.resize((size, size), Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST)
    return im.convert("RGB")


def error_map_image(error_map: np.ndarray, mask: np.ndarray, size: int, vmax: Optional[float] = None) -> Image.Image:
    """Per-patch error of the hidden patches as a heat map (black = 0, yellow = vmax); visible patches, whose
    error the model is never trained on, are drawn neutral grey with a cyan outline."""
    g = error_map.shape[0]
    hidden = mask.reshape(g, g).astype(bool)
    if vmax is None:
        vmax = float(error_map[hidden].max()) if hidden.any() else 1.0
    t = np.clip(error_map / max(1e-6, float(vmax)), 0, 1)
    # a compact perceptual ramp: black -> purple -> orange -> yellow
    stops = np.array([[0, 0, 4], [120, 28, 109], [237, 105, 37], [252, 255, 164]], dtype=np.float32)
    pos = t * (len(stops) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - lo)[..., None]
    rgb = (stops[lo] * (1 - frac) + stops[lo + 1] * frac).astype(np.uint8)
    rgb[~hidden] = (96, 96, 96)
    im = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(im)
    cell = size / g
    for idx in np.flatnonzero(~mask.reshape(-1)):
        r, col = divmod(int(idx), g)
        draw.rectangle([col * cell + 1, r * cell + 1, (col + 1) * cell - 2, (r + 1) * cell - 2], outline=(0, 200, 220))
    return im


_FONT = None


def _font():
    global _FONT
    if _FONT is None:
        try:
            _FONT = ImageFont.load_default(size=14)
        except TypeError:  # Pillow < 10.1
            _FONT = ImageFont.load_default()
    return _FONT


PANEL_TITLES = ("original", "masked", "reconstruction", "reconstruction + visible", "error per patch")


def panel_image(rec: Reconstruction, size: int = 224, titles: Sequence[str] = PANEL_TITLES,
                gap: int = 8) -> Image.Image:
    """The five views side by side with titles: the picture the page shows and lets users download."""
    tiles = [to_pil(rec.original, size), to_pil(rec.masked, size), to_pil(rec.reconstruction, size),
             to_pil(rec.pasted, size), error_map_image(rec.error_map, rec.mask, size)]
    head = 22
    foot = 20
    W = len(tiles) * size + (len(tiles) + 1) * gap
    canvas = Image.new("RGB", (W, size + head + foot + gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (tile, title) in enumerate(zip(tiles, titles)):
        x = gap + i * (size + gap)
        canvas.paste(tile, (x, head))
        draw.text((x, 3), title, fill=(30, 30, 30), font=_font())
    note = (f"hidden {rec.n_hidden}/{rec.mask.size} patches ({rec.ratio:.0%}) - MSE on hidden patches "
            f"{rec.mse_hidden:.4f}")
    if rec.rescaled:
        note += " - norm-pix model: colours re-scaled with each true patch's mean and std"
    draw.text((gap, head + size + 3), note, fill=(80, 80, 80), font=_font())
    return canvas


def png_bytes(im: Image.Image, compress_level: int = 1) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def data_url(im: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode("ascii")
