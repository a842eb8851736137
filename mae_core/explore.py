"""Reconstruction of one image under one mask: everything the Reconstruct page computes, tested without
Streamlit and timed by bench/interactive_latency.py. Its pictures are drawn by ``figures``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .masking import painted_mask

# Hidden patches in every "masked" picture (and the painter's CSS, app/painter.py): an opaque amber, unlike any
# Fashion-MNIST pixel (greyscale) and unlike the black background it sat beside when hidden was drawn dark grey;
# a hue survives a washed-out projector where a shade of grey does not.
HIDDEN_RGB = (0.96, 0.62, 0.04)
HIDDEN_CSS = "#f59e0b"


def masked_view(images01: torch.Tensor, pix_hidden: torch.Tensor) -> torch.Tensor:
    """Images (..., C, H, W) in [0, 1] with their hidden pixels (a bool mask broadcastable to them) in the hidden
    colour, always as RGB (..., 3, H, W): greyscale images are repeated over three channels."""
    rgb = images01.expand(*images01.shape[:-3], 3, *images01.shape[-2:]) if images01.shape[-3] == 1 else images01
    hidden = pix_hidden[..., :1, :, :].expand_as(rgb)
    fill = torch.tensor(HIDDEN_RGB, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1).expand_as(rgb)
    return torch.where(hidden, fill, rgb)


@dataclass
class Reconstruction:
    original: torch.Tensor        # (C, H, W) in [0, 1]
    masked: torch.Tensor          # original (as RGB) with hidden patches in the hidden colour (masked_view)
    reconstruction: torch.Tensor  # the model's prediction for every patch, in [0, 1]
    pasted: torch.Tensor          # prediction on hidden patches, original pixels on visible ones
    mask: np.ndarray              # (L,) bool, True = hidden
    error_map: np.ndarray         # (grid, grid) per-patch MSE in [0, 1] pixel units
    mse_hidden: float             # mean squared error over hidden patches (NaN when none is hidden)
    mse_visible: float            # the same over visible patches (how well it copies what it saw)
    rescaled: bool                # True for norm-pix models: colours re-scaled with the true patch statistics
    mse_hidden_matched: float = float("nan")  # hidden-patch MSE with every predicted patch given the true patch's
    #                               mean and std (model.reconstruct_pixels(matched=True)): comparable across targets

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
    masked = masked_view(x01, pix_mask)
    mse_h = float(per_patch[hidden].mean()) if hidden.any() else float("nan")
    mse_v = float(per_patch[~hidden].mean()) if (~hidden).any() else float("nan")
    mse_m = mse_h
    if not c.norm_pix_loss and hidden.any():  # a norm-pix model's error is already the matched one
        matched = model.pixels_from_pred(out.pred, x01, matched=True)[1][0]   # same forward pass, re-scaled
        mse_m = float(matched[hidden].mean())
    return Reconstruction(original=x01[0].cpu(), masked=masked[0].cpu(), reconstruction=rec[0].cpu(),
                          pasted=pasted[0].cpu(), mask=hidden.cpu().numpy(),
                          error_map=per_patch.view(c.grid_size, c.grid_size).cpu().numpy(),
                          mse_hidden=mse_h, mse_visible=mse_v, rescaled=bool(c.norm_pix_loss),
                          mse_hidden_matched=mse_m)


