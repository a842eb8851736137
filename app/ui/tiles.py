"""Pictures in rows of captioned tiles, and errors rounded for reading: what the Reconstruct page and the lesson
both show."""
from __future__ import annotations

import html
import re

import streamlit as st
import torch

from mae_core.evaluation.figures import (ERROR_UNITS, PANEL_TITLES, data_url, error_map_image, error_ramp_css,
                                         to_pil)

from .painter import fit_css


def rounded(v: float) -> str:
    """An error as the first screen shows it and a student reads it: three decimals ('error 0.028'); ``exact`` in its
    help."""
    return "—" if v != v else f"{v:.3f}"


def exact(v: float) -> str:
    return "—" if v != v else f"{v:.6f}"


_TAGS = re.compile(r"<[^>]+>")
_ROW = "display:flex;gap:10px;flex-wrap:wrap;align-items:flex-start"   # pictures side by side, wrapping


def _figure(im, caption: str, style: str, pixelated: bool) -> str:
    """One captioned picture: an image (C,H,W) in [0,1] or PIL, inlined (no request of its own, no toolbar)."""
    pil = im if not isinstance(im, torch.Tensor) else to_pil(im, 224 if im.shape[-1] <= 64 else None)
    alt = html.escape(" ".join(_TAGS.sub(" ", caption).split()))   # the caption's words, without its markup
    return (f"<figure style='margin:0;{style}'>"
            f"<img src='{data_url(pil)}' alt='{alt}' style='width:100%;"
            f"aspect-ratio:1/1;display:block;border-radius:6px;{'image-rendering:pixelated' if pixelated else ''}'>"
            + (f"<figcaption style='font-size:0.85rem;margin-top:4px;line-height:1.25'>{caption}</figcaption>"
               if caption else "") + "</figure>")


def tiles(items, px: int, testid: str = "lesson-tiles", pixelated: bool = True, basis: str = "0",
          min_px: int = 90, grid: bool = False) -> None:
    """Captioned pictures in a row that wraps: items are (image (C,H,W) in [0,1] or PIL, caption); with ``grid``, in
    equal columns at least ``min_px`` wide (as many as fit; a last row's pictures no wider than the others). One
    HTML block: a browser draws it at a fraction of the cost of as many ``st.image`` elements (each a toolbar)."""
    style = "" if grid else f"flex:1 1 {basis};min-width:{min_px}px;max-width:{px}px"
    out = [_figure(im, caption, style, pixelated) for im, caption in items]
    box = f"display:grid;gap:10px;grid-template-columns:repeat(auto-fill,minmax({min_px}px,{px}px))" if grid else _ROW
    st.html(f"<div data-testid='{testid}' style='{box}'>{''.join(out)}</div>")


def stacks(columns, px: int, testid: str, pixelated: bool = True) -> None:
    """Columns of captioned pictures side by side (each column a list of (image, caption), drawn top to bottom),
    sharing the width, at most ``px`` wide each; they wrap on a narrow screen."""
    out = ["<div style='flex:1 1 0;min-width:72px;max-width:%dpx;display:flex;flex-direction:column;gap:8px'>%s</div>"
           % (px, "".join(_figure(im, caption, "", pixelated) for im, caption in col)) for col in columns]
    st.html(f"<div data-testid='{testid}' style='{_ROW}'>{''.join(out)}</div>")


def image_html(img01, caption: str, max_px: int, config, testid: str = "mae-image", fit_below: int = 0) -> str:
    """An image as wide as its column (at most ``max_px``, and ``fit_css``'s height cap), square, pixels kept sharp
    for small images."""
    src = data_url(to_pil(img01, 280 if config.img_size <= 64 else config.img_size))
    return (f"<figure style='margin:0;max-width:{fit_css(max_px, fit_below)}'><img src='{src}' alt='{caption}' data-testid='{testid}' "
            f"style='width:100%;aspect-ratio:1/1;border-radius:6px;display:block;"
            f"{'image-rendering:pixelated' if config.img_size <= 64 else ''}'>"
            f"<figcaption style='font-size:0.8rem;color:#6b7280;margin-top:6px'>{caption}</figcaption></figure>")


def reconstruction_tiles_html(rec, filled, config) -> str:
    """The five views and the classical fill as a row of captioned tiles that wraps on narrow screens; the error map
    with its scale."""
    vmax = float(rec.error_map.reshape(-1)[rec.mask].max()) if rec.mask.any() else 1.0
    ims = [to_pil(rec.original), to_pil(rec.masked), to_pil(rec.reconstruction), to_pil(rec.pasted),
           error_map_image(rec.error_map, rec.mask, 8 * config.grid_size, vmax=vmax), to_pil(filled)]
    render = "image-rendering:pixelated;" if config.img_size <= 64 else ""
    out = []
    for im, title in zip(ims, PANEL_TITLES + ("harmonic inpainting",)):
        out.append(f"<figure style='margin:0;flex:1 1 0;max-width:220px;min-width:80px'>"
                   f"<figcaption style='font-size:0.85rem;margin-bottom:4px'>{title}</figcaption>"
                   f"<img src='{data_url(im)}' alt='{title}' style='width:100%;aspect-ratio:1/1;display:block;"
                   f"border-radius:4px;{render}'></figure>")
    scale = (f"<div data-testid='error-scale' style='font-size:0.8rem;color:#374151;max-width:220px;"
             f"margin-left:auto'><div style='height:12px;border-radius:3px;background:{error_ramp_css()}'></div>"
             f"<div style='display:flex;justify-content:space-between'><span>0</span><span>{vmax:.3g}</span></div>"
             f"<div style='color:#6b7280'>error per patch: {ERROR_UNITS}; grey with a cyan outline = visible (not scored)</div></div>")
    return (f"<div style='display:flex;gap:8px;flex-wrap:wrap;align-items:flex-end'>{''.join(out)}</div>"
            + (scale if rec.mask.any() else ""))
