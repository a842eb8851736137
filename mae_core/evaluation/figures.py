"""Every picture the app and the command line show, built from arrays and results (never from file paths).

Two kinds:

* **Images** (PIL): one reconstruction's panel, the per-patch error map, and rows of captioned tiles (a strip of
  ratios, strategies compared, models side by side, a training run's held-out images).
* **Charts**: each chart is described once, as a ``Chart`` (lines with optional bands, bars, a heat map,
  reference lines, axis titles), by one builder per chart (``error_curve_chart``, ``strategy_bars_chart``,
  ``heatmap_chart``, ``probe_chart``). Two generic renderers draw any ``Chart``: ``to_plotly`` for the app
  (interactive) and ``to_png`` with matplotlib for downloads and the command line (static, no browser needed).
  So what a chart shows, its colours and labels live in one place.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from html import escape
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..data import data_url, png_bytes, tensor_to_uint8, to_pil  # noqa: F401  (figures.data_url etc.: the pages' image helpers)
from ..masking import STRATEGIES
from ..explore import HIDDEN_CSS

INK = "#1f2937"
GREY = "#6b7280"
COPYING = "copying the neighbours"   # the classical baseline (harmonic inpainting) in plain words, on every chart


def _style(strategy: str) -> tuple:
    """(label, colour) of a strategy from the registry; the classical baseline on a strategy's masks
    ("harmonic:random") takes that strategy's colour; an unregistered name (an old CSV) is drawn grey."""
    if strategy.startswith("harmonic:"):
        label, colour = _style(strategy.split(":", 1)[1])
        return f"{label}, {COPYING}", colour
    s = STRATEGIES.get(strategy)
    return (s.label, s.colour) if s else (strategy, GREY)

# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------


ERROR_RAMP = ((0, 0, 4), (120, 28, 109), (237, 105, 37), (252, 255, 164))  # evenly spaced stops


def error_ramp_css() -> str:
    """The error maps' colour ramp as a CSS gradient (for a colour scale drawn by the browser)."""
    return "linear-gradient(90deg, " + ", ".join(f"rgb{c}" for c in ERROR_RAMP) + ")"


def _ramp(t: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB on a compact perceptual ramp: black -> purple -> orange -> yellow."""
    stops = np.array(ERROR_RAMP, dtype=np.float32)
    pos = t * (len(stops) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - lo)[..., None]
    return (stops[lo] * (1 - frac) + stops[lo + 1] * frac).astype(np.uint8)


def error_map_image(error_map: np.ndarray, mask: np.ndarray, size: int, vmax: Optional[float] = None) -> Image.Image:
    """Per-patch error of the hidden patches as a heat map (black = 0, yellow = vmax); visible patches, whose
    error the model is never trained on, are drawn neutral grey with a cyan outline."""
    g = error_map.shape[0]
    hidden = mask.reshape(g, g).astype(bool)
    if vmax is None:
        vmax = float(error_map[hidden].max()) if hidden.any() else 1.0
    rgb = _ramp(np.clip(error_map / max(1e-6, float(vmax)), 0, 1))
    rgb[~hidden] = (176, 176, 176)   # light grey: not on the black-to-yellow scale, unlike a dark grey
    im = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(im)
    cell = size / g
    for idx in np.flatnonzero(~mask.reshape(-1)):
        r, col = divmod(int(idx), g)
        draw.rectangle([col * cell + 1, r * cell + 1, (col + 1) * cell - 2, (r + 1) * cell - 2], outline=(0, 200, 220))
    return im


_FONTS: dict = {}


def font(size: int = 14):
    if size not in _FONTS:
        try:
            _FONTS[size] = ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1
            _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


PANEL_TITLES = ("original", "masked", "reconstruction", "reconstruction + visible", "error per patch")


def attention_image(image01: torch.Tensor, att: np.ndarray, size: int = 280, query: Optional[int] = None,
                    vmax: Optional[float] = None) -> Image.Image:
    """An attention map over the patch grid drawn on the image: the image in grey, each patch tinted by its weight
    on the error maps' ramp (the strongest = ``vmax``, default the largest shown), patches without a value (hidden
    from the encoder: NaN) hatched dark, and the query patch outlined in cyan."""
    g = att.shape[0]
    base = to_pil(image01, size).convert("L").convert("RGB")
    vals = np.nan_to_num(att, nan=0.0)
    top = float(vmax) if vmax else float(np.nanmax(att)) if np.isfinite(att).any() else 1.0
    heat = Image.fromarray(_ramp(np.clip(vals / max(top, 1e-12), 0, 1)), "RGB").resize((size, size),
                                                                                      Image.Resampling.NEAREST)
    im = Image.blend(base, heat, 0.72)
    d = ImageDraw.Draw(im)
    cell = size / g
    for idx in np.flatnonzero(np.isnan(att.reshape(-1))):
        r, c = divmod(int(idx), g)
        x0, y0 = c * cell, r * cell
        d.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(40, 42, 48))
        for k in range(-int(cell), int(cell), 6):  # hatching: "never seen"
            d.line([x0 + max(k, 0), y0 + max(-k, 0), x0 + min(cell, cell + k) - 1, y0 + min(cell, cell - k) - 1],
                   fill=(80, 82, 90))
    if query is not None:
        r, c = divmod(int(query), g)
        d.rectangle([c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1], outline=(0, 220, 240), width=3)
    return im


ERROR_UNITS = "squared error per pixel, image in [0, 1]"


def colour_bar(width: int, vmax: float, font_px: int = 14, label: str = ERROR_UNITS) -> Image.Image:
    """The error map's scale: the colour ramp from 0 to ``vmax`` with its end values and units."""
    h_bar = max(10, font_px)
    bar = Image.fromarray(np.repeat(_ramp(np.linspace(0, 1, width))[None], h_bar, 0), "RGB")
    im = Image.new("RGB", (width, h_bar + 2 * font_px + 10), "white")
    im.paste(bar, (0, 0))
    d = ImageDraw.Draw(im)
    f = font(font_px)
    d.text((0, h_bar + 2), "0", fill=(30, 30, 30), font=f)
    hi = f"{vmax:.3g}"
    d.text((width - d.textlength(hi, font=f), h_bar + 2), hi, fill=(30, 30, 30), font=f)
    d.text((0, h_bar + font_px + 6), _fit(d, label, width, f), fill=(80, 80, 80), font=f)
    return im


def _fit(draw, text: str, width: float, f) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels in font ``f``."""
    if draw.textlength(text, font=f) <= width:
        return text
    while text and draw.textlength(text + "…", font=f) > width:
        text = text[:-1]
    return text + "…"


def panel_image(rec, size: int = 224, titles: Sequence[str] = PANEL_TITLES, gap: int = 8,
                rows: Optional[Sequence[tuple]] = None, vmax: Optional[float] = None) -> Image.Image:
    """The five views of one reconstruction side by side with titles, and the error map's colour scale: the picture
    the page shows and lets users download. Text scales with ``size`` (about 1/11 of a tile), so a large export
    (size 448) stays readable on a projector.

    ``rows``: several reconstructions of the same image and mask, one row each, as ``[(heading, rec), ...]`` (two
    models compared); their error maps share one colour scale (``vmax``, default the largest error shown)."""
    rows = list(rows) if rows else [("", rec)]
    fpx = max(14, size // 11)
    if vmax is None:
        vals = [float(r.error_map.reshape(-1)[r.mask].max()) for _, r in rows if r.mask.any()]
        vmax = max(vals) if vals else 1.0
    head, foot, row_head = fpx + 10, 2 * fpx + 12, (fpx + 10 if len(rows) > 1 or rows[0][0] else 0)
    W = 5 * size + 6 * gap
    row_h = row_head + head + size + foot
    bar = colour_bar(size, vmax, font_px=max(12, fpx - 2))
    canvas = Image.new("RGB", (W, len(rows) * row_h + bar.size[1] + gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    f, fb = font(fpx), font(fpx + 2)
    for r, (heading, rc) in enumerate(rows):
        y0 = r * row_h
        if row_head:
            draw.text((gap, y0 + 4), _fit(draw, heading, W - 2 * gap, fb), fill=(17, 24, 39), font=fb)
        tiles = [to_pil(rc.original, size), to_pil(rc.masked, size), to_pil(rc.reconstruction, size),
                 to_pil(rc.pasted, size), error_map_image(rc.error_map, rc.mask, size, vmax=vmax)]
        for i, (tile, title) in enumerate(zip(tiles, titles)):
            x = gap + i * (size + gap)
            canvas.paste(tile, (x, y0 + row_head + head))
            draw.text((x, y0 + row_head + 3), _fit(draw, title, size, f), fill=(30, 30, 30), font=f)
        mse = "—" if rc.mse_hidden != rc.mse_hidden else f"{rc.mse_hidden:.4f}"
        note = f"hidden {rc.n_hidden}/{rc.mask.size} patches ({rc.ratio:.0%}) · MSE on hidden patches {mse}"
        if rc.rescaled:
            note += " · norm-pix model: each patch re-scaled with the true patch's mean and std"
        elif rc.mse_hidden_matched == rc.mse_hidden_matched and rc.n_hidden:
            note += f" · with true patch mean/std (comparable to norm-pix): {rc.mse_hidden_matched:.4f}"
        draw.text((gap, y0 + row_head + head + size + 4), _fit(draw, note, W - 2 * gap, f), fill=(80, 80, 80), font=f)
    canvas.paste(bar, (gap + 4 * (size + gap), len(rows) * row_h))
    return canvas


def tiles_image(rows: Sequence[Sequence[tuple]], size: int = 120, gap: int = 8, caption_px: int = 14) -> Image.Image:
    """Rows of captioned tiles: ``rows[r] = [(caption or "", PIL image or tensor), ...]``. Captions go under each
    tile. Every composite (strips, strategies, side by side, training snapshots) is one call of this."""
    cap_h = caption_px + 6
    ncols = max(len(r) for r in rows)
    W = ncols * size + (ncols + 1) * gap
    H = len(rows) * (size + cap_h) + (len(rows) + 1) * gap
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        y = gap + r * (size + cap_h + gap)
        for c, (cap, tile) in enumerate(row):
            x = gap + c * (size + gap)
            im = tile if isinstance(tile, Image.Image) else to_pil(tile, size)
            canvas.paste(im.resize((size, size), Image.Resampling.NEAREST) if im.size != (size, size) else im, (x, y))
            if cap:
                draw.text((x, y + size + 2), cap, fill=(30, 30, 30), font=font(caption_px))
    return canvas


def strip_image(recs: Sequence[tuple], size: int = 112) -> Image.Image:
    """One image at several ratios: ``recs = [(ratio, Reconstruction), ...]``; masked above, filled in below."""
    return tiles_image([[(f"{r:.0%} hidden", rec.masked) for r, rec in recs],
                        [(f"MSE {rec.mse_hidden:.4f}", rec.pasted) for _, rec in recs]], size)


def strategies_image(examples: dict, size: int = 112) -> Image.Image:
    """Each strategy's masked image and reconstruction (the paper's Figure 6 for one image)."""
    row = []
    for s, rec in examples.items():
        label = _style(s)[0]
        row += [(label, rec.masked), (f"MSE {rec.mse_hidden:.4f}", rec.pasted)]
    return tiles_image([row], size)


def side_by_side_image(original: torch.Tensor, recs: Sequence[tuple], size: int = 150) -> Image.Image:
    """The original, then each model's reconstruction of it: ``recs = [(caption, Reconstruction), ...]``."""
    return tiles_image([[("original", original)] + [(cap, rec.pasted) for cap, rec in recs]], size)


def training_strip(originals: np.ndarray, masked: np.ndarray, recon: np.ndarray, scale: int = 1) -> np.ndarray:
    """Rows original / masked / latest reconstruction of a training run's held-out images, as one uint8 RGB array
    (greyscale rows are repeated over three channels, since the masked row shows hidden patches in colour), each
    pixel ``scale`` x ``scale`` (sharp when a browser stretches it)."""
    rgb = [a if a.ndim == 4 else np.repeat(a[..., None], 3, axis=-1) for a in (originals, masked, recon)]
    if scale > 1:
        rgb = [a.repeat(scale, axis=1).repeat(scale, axis=2) for a in rgb]
        gap = max(1, scale // 2)   # a white seam between images, or the masked row reads as one amber band
        rgb = [np.pad(a, ((0, 0), (gap, gap), (gap, gap), (0, 0)), constant_values=255) for a in rgb]
    rows = [np.concatenate(list(r), axis=1) for r in rgb]
    return np.concatenate(rows, axis=0)


def svg_img_html(svg: str, alt: str) -> str:
    """An SVG as an <img> with a data URL: Streamlit's HTML element removes inline <svg> (a browser shows nothing
    where a test of the script sees the markup), while images with data URLs pass."""
    url = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img src="{url}" alt="{escape(alt)}" style="width:100%;max-width:780px;display:block">'


# --------------------------------------------------------------------------------------------------
# Charts: described once, drawn by plotly (app) or matplotlib (downloads, command line)
# --------------------------------------------------------------------------------------------------

@dataclass
class Line:
    x: Sequence[float]
    y: Sequence[float]
    name: str
    colour: str
    band: Optional[Sequence[float]] = None      # +- this around y, drawn as a light band
    dash: str = "solid"                         # solid | dash | dot
    marker: str = "circle"
    hover: Optional[Sequence[str]] = None       # one text per point (plotly only)
    interval: Optional[Sequence[tuple]] = None  # (lo, hi) per point: an interval drawn as error bars
    markers: bool = True                        # False: the line alone (a long curve)


@dataclass
class Points:
    """One group of a scatter (a class of a map): its points, drawn unjoined."""
    x: Sequence[float]
    y: Sequence[float]
    name: str
    colour: str
    size: float = 5
    opacity: float = 0.8
    ids: Optional[Sequence[int]] = None         # each point's index in the data: what a selection returns
    legend: bool = True


@dataclass
class RefLine:
    value: float
    label: str
    colour: str = GREY
    orient: str = "h"                           # h: horizontal (y = value) | v: vertical (x = value)
    dash: str = "dash"


@dataclass
class Bars:
    names: Sequence[str]
    values: Sequence[float]
    errors: Optional[Sequence[float]]
    colours: Sequence[str]
    intervals: Optional[Sequence[tuple]] = None  # (lo, hi) per bar instead of +- errors


@dataclass
class Heat:
    z: np.ndarray
    x: Sequence[str]
    y: Sequence[str]
    colour_title: str


@dataclass
class Chart:
    title: str
    xlabel: str
    ylabel: str
    lines: list = field(default_factory=list)
    refs: list = field(default_factory=list)
    bars: Optional[Bars] = None
    heat: Optional[Heat] = None
    height: int = 400
    legend_title: str = ""
    y_range: Optional[tuple] = None             # (lo, hi); None: fitted to the data
    points: list = field(default_factory=list)  # Points: a scatter (a map)
    axes: bool = True                           # False: no axes (a map's coordinates mean nothing)


# The classes' colours on every map (Tableau 10)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")


def map_chart(xy, labels, classes: Sequence[str], title: str = "", height: int = 560, highlight: Optional[str] = None,
              ids: bool = True, legend: bool = True, size: float = 5) -> Chart:
    """A 2-D map of features (t-SNE, PCA), one colour per class; ``highlight``: that class lit (a little larger),
    the others faint; ``ids``: each point carries its index (what a selection returns)."""
    xy, labels = np.asarray(xy, dtype=float), np.asarray(labels)
    pts = []
    for k, name in enumerate(classes):
        idx = np.flatnonzero(labels == k)
        on = highlight in (None, name)
        pts.append(Points(xy[idx, 0], xy[idx, 1], name, PALETTE[k % len(PALETTE)],
                          size=size + (highlight is not None) if on else size - 1,
                          opacity=(0.9 if highlight else 0.8) if on else 0.12, ids=idx if ids else None,
                          legend=legend))
    return Chart(title, "", "", points=pts, height=height, axes=False)


def loss_chart(steps: Sequence[int], losses: Sequence[float]) -> Chart:
    """A training run's loss against step (markers while there are few points)."""
    return Chart("training loss (hidden patches)", "step", "loss", height=260,
                 lines=[Line(list(steps), list(losses), "loss", "#4f46e5", markers=len(steps) < 30)])


def error_curve_chart(rows: Sequence[dict], pretrained_at: Optional[float] = None, bands: bool = True) -> Chart:
    """Masked-patch error against test-time ratio, one line per strategy (sweep rows)."""
    ch = Chart("Reconstruction error against mask ratio (mean" + (" ± 1 sd" if bands else "") + " over images × seeds)",
               "mask ratio at test time", "MSE on hidden patches (pixels in [0, 1])", height=420,
               # which line is which, in the legend's title, when the baseline is drawn
               legend_title=f"masks (solid: the MAE; dashed: {COPYING})"
               if any(r["strategy"].startswith("harmonic:") for r in rows) else "masks")
    for s in dict.fromkeys(r["strategy"] for r in rows):
        rs = [r for r in rows if r["strategy"] == s]
        classical = s.startswith("harmonic:")
        ch.lines.append(Line([r["ratio"] for r in rs], [r["mean"] for r in rs], *_style(s),
                             dash="dash" if classical else "solid", marker="square" if classical else "circle",
                             band=[r["std"] for r in rs] if bands and not classical else None,
                             hover=[f"ratio {r['ratio']:.2f}: MSE {r['mean']:.4f} ± {r['std']:.4f}, "
                                    f"{r['n_hidden']} patches hidden" for r in rs]))
    if pretrained_at is not None:
        ch.refs.append(RefLine(float(pretrained_at), f"pretrained at {float(pretrained_at):.2f}", orient="v",
                               dash="dot"))
    return ch


def strategy_bars_chart(rows: Sequence[dict], ratio: float, n_images: int = 64, seeds: int = 3) -> Chart:
    at = {r["strategy"]: r for r in rows if abs(r["ratio"] - float(ratio)) < 1e-9}
    names = list(at)
    return Chart(f"Over {n_images} images × {seeds} seeds at ratio {ratio:.2f}", "strategy",
                 "MSE on hidden patches", height=300,
                 bars=Bars([_style(s)[0] for s in names], [at[s]["mean"] for s in names],
                           [at[s]["std"] for s in names], [_style(s)[1] for s in names]))


def strategy_pretraining_charts(rows: Sequence[dict], raw_probe: Optional[float] = None) -> tuple:
    """The paper's Figure 6 as two small charts of the models pretrained with each strategy (``sweep`` rows
    {"strategy", "own_error", "probe", "probe_ci"}): how hard each pretraining task was (error on its own kind of
    masks) and how good the features are (linear probe with its 95% interval; raw pixels as a line). The probe axis
    is zoomed to the scores (a bar from 0 would hide a 1-point difference), which the axis title says."""
    names = [_style(r["strategy"])[0] for r in rows]
    colours = [_style(r["strategy"])[1] for r in rows]
    task = Chart("How hard was the task?", "", "MSE on own masks",
                 bars=Bars(names, [r["own_error"] for r in rows], None, colours), height=320)
    probe = [100 * r["probe"] for r in rows]
    cis = [tuple(100 * v for v in r["probe_ci"]) if r.get("probe_ci") else (p, p) for r, p in zip(rows, probe)]
    lo = min([c[0] for c in cis] + ([100 * raw_probe] if raw_probe is not None else []))
    hi = max(c[1] for c in cis)
    feats = Chart("How good are the features?", "", "probe (%), zoomed",
                  bars=Bars(names, probe, None, colours, intervals=cis), height=320,
                  y_range=(float(np.floor(lo - 1)), float(np.ceil(hi + 0.5))))
    if raw_probe is not None:
        feats.refs.append(RefLine(100 * raw_probe, f"raw pixels {100 * raw_probe:.1f}%", GREY, dash="dash"))
    return task, feats


def heatmap_chart(pre_ratios: Sequence[float], test_ratios: Sequence[float], grid: np.ndarray) -> Chart:
    """Error of models pretrained at each ratio (rows) at each test ratio (columns)."""
    return Chart("", "mask ratio at test time", "pretraining ratio", height=120 + 45 * len(pre_ratios),
                 heat=Heat(np.asarray(grid), [f"{r:.2f}" for r in test_ratios], [f"{r:.2f}" for r in pre_ratios],
                           "MSE"))


def probe_chart(rows: Sequence[dict], pool: str = "both") -> Chart:
    """Linear probe and kNN accuracy against pretraining ratio (sweep.probe_table rows), raw pixels as lines; the
    cards' 95% bootstrap intervals as error bars where every row has them."""
    ch = Chart("", "pretraining mask ratio", "test accuracy (%)", height=360)
    x = [r["ratio"] for r in rows]
    def ci(key):
        if all(r.get(f"{key}_ci") for r in rows):
            return [(100 * r[f"{key}_ci"][0], 100 * r[f"{key}_ci"][1]) for r in rows]
        return None
    ch.lines.append(Line(x, [100 * r[f"linear_probe_{pool}"] for r in rows], f"linear probe ({pool})", "#4f46e5",
                         interval=ci(f"linear_probe_{pool}")))
    ch.lines.append(Line(x, [100 * r[f"knn_{pool}"] for r in rows], f"kNN k=20 ({pool})", "#dc2626", marker="square",
                         interval=ci(f"knn_{pool}")))
    if rows:
        raw_p, raw_k = 100 * rows[0]["raw_probe"], 100 * rows[0]["raw_knn"]
        ch.refs.append(RefLine(raw_p, f"raw pixels: probe ({raw_p:.1f}%)", "#4f46e5", dash="dash"))
        ch.refs.append(RefLine(raw_k, f"raw pixels: kNN ({raw_k:.1f}%)", "#dc2626", dash="dot"))
    return ch


def probe_epochs_chart(curves: Sequence[tuple]) -> Chart:
    """Linear probe against pretraining epochs: ``curves = [(name, [(epoch, probe, knn), ...]), ...]``."""
    ch = Chart("", "pretraining epoch", "linear probe accuracy (%)", legend_title="model", height=340)
    # Okabe-Ito's colour-blind-safe set (yellow left out: too faint on white), and a marker per curve as well,
    # so the curves stay apart on a washed-out projector; past seven the colours come round, dashed (the bundled
    # set is eight: the eighth is the first's blue, dashed, with another marker)
    palette = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#000000")
    shapes = ("circle", "square", "diamond", "triangle-up")
    dashes = ("solid", "dash", "dot")
    for i, (name, pts) in enumerate(curves):
        if pts:
            ch.lines.append(Line([p[0] for p in pts], [100 * p[1] for p in pts], name, palette[i % len(palette)],
                                 marker=shapes[i % len(shapes)], dash=dashes[(i // len(palette)) % len(dashes)]))
    return ch


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def to_plotly(ch: Chart, bands: bool = True, type_scale: float = 1.0):
    """The chart as an interactive plotly figure, with type legible on a projector (14-15 px, dark ink; times
    ``type_scale``, and the chart as much taller: the app's presenter mode enlarges it as it does the page's text).
    Horizontal reference lines (baselines) are legend entries, not text on the plot, so a label can never sit on
    another line or under the toolbar. ``bands=False`` leaves out the lines' shaded spreads."""
    import plotly.graph_objects as go

    def px(size: float) -> int:
        return round(size * type_scale)
    fig = go.Figure()
    for ln in ch.lines:
        x, y = list(ln.x), np.asarray(ln.y, dtype=float)
        if ln.band is not None and bands:
            b = np.asarray(ln.band, dtype=float)
            fig.add_trace(go.Scatter(x=x + x[::-1], y=list(y + b) + list((y - b)[::-1]), fill="toself",
                                     fillcolor=_rgba(ln.colour, 0.09), line=dict(width=0), hoverinfo="skip",
                                     showlegend=False, legendgroup=ln.name))
        err = None
        if ln.interval is not None:
            lo, hi = np.array([v[0] for v in ln.interval], float), np.array([v[1] for v in ln.interval], float)
            err = dict(type="data", symmetric=False, array=list(hi - y), arrayminus=list(y - lo), thickness=1.5)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers" if ln.markers else "lines", name=ln.name,
                                 legendgroup=ln.name,
                                 line=dict(color=ln.colour, dash=ln.dash, width=2.5), error_y=err,
                                 marker=dict(symbol=ln.marker, size=8),
                                 text=list(ln.hover) if ln.hover else None,
                                 hovertemplate="%{text}<extra></extra>" if ln.hover else None))
    for pt in ch.points:
        fig.add_trace(go.Scattergl(x=list(pt.x), y=list(pt.y), mode="markers", name=pt.name, showlegend=pt.legend,
                                   customdata=None if pt.ids is None else list(map(int, pt.ids)),
                                   marker=dict(size=pt.size, color=pt.colour, opacity=pt.opacity),
                                   hovertemplate=f"{pt.name}" + ("<br>#%{customdata}" if pt.ids is not None else "")
                                                 + "<extra></extra>"))
    if ch.bars is not None:
        b = ch.bars
        err = dict(type="data", array=list(b.errors)) if b.errors is not None else None
        if b.intervals is not None:
            err = dict(type="data", symmetric=False, array=[hi - v for v, (_, hi) in zip(b.values, b.intervals)],
                       arrayminus=[v - lo for v, (lo, _) in zip(b.values, b.intervals)], thickness=1.5)
        fig.add_trace(go.Bar(x=list(b.names), y=list(b.values), marker_color=list(b.colours), showlegend=False,
                             error_y=err))
    if ch.heat is not None:
        h = ch.heat
        fig.add_trace(go.Heatmap(z=h.z, x=list(h.x), y=list(h.y), colorscale="Viridis",
                                 colorbar=dict(title=h.colour_title, tickfont=dict(size=13, color=INK)),
                                 hovertemplate="pretrained %{y}, tested %{x}: %{z:.4f}<extra></extra>"))
        fig.update_yaxes(type="category")
        fig.update_xaxes(type="category")
    xs = [float(v) for ln in ch.lines for v in ln.x]
    span = [min(xs), max(xs)] if xs else ([ch.bars.names[0], ch.bars.names[-1]] if ch.bars is not None else None)
    for r in ch.refs:
        if r.orient == "h" and span:
            fig.add_trace(go.Scatter(x=span, y=[r.value, r.value], mode="lines", name=r.label,
                                     line=dict(color=r.colour, dash=r.dash, width=2),
                                     hovertemplate=f"{r.label}: {r.value:.4g}<extra></extra>"))
        elif r.orient == "h":   # a chart of reference lines alone: nothing to sit on, so the label is written
            fig.add_hline(y=r.value, line_dash=r.dash, line_color=r.colour, annotation_text=r.label,
                          annotation_position="bottom right", annotation_font=dict(size=px(14), color=INK))
        else:
            fig.add_vline(x=r.value, line_dash=r.dash, line_color=r.colour, annotation_text=r.label,
                          annotation_position="top left", annotation_font=dict(size=px(14), color=INK))
    _plotly_layout(fig, ch, px)
    return fig


def _plotly_layout(fig, ch: Chart, px) -> None:
    """``to_plotly``'s layout: type sizes (``px``: a size in pixels at this chart's scale), margins, the title below
    the toolbar's row, the legend below the plot; a map without axes, its legend beside it (below it at a larger
    type)."""
    tick = dict(size=px(14), color=INK)
    # the legend sits below the tick labels and the x title, whatever the chart's height: an offset in pixels
    # (ticks about 30 px, a title 30 more) as a fraction of the plotting area;
    # the title sits below the row of plotly's toolbar (about 30 px; it shows on hover), which would cover a long
    # title's end on a 1024 px screen; a map's short title stays in its narrow top margin
    top = 32 + px(32) if ch.title else 36
    height = px(ch.height)   # larger type, a taller chart: the same proportions, as if zoomed
    legend_y = -px(74 if ch.xlabel else 34) / max(120, height - top - 10)
    fig.update_layout(height=height,
                      title=dict(text=ch.title, font=dict(size=px(16), color=INK), yref="container", y=1,
                                 yanchor="top", pad=dict(t=32 if ch.axes else 8)) if ch.title else None,
                      margin=dict(l=10, r=10, t=top, b=10),
                      xaxis=dict(title=dict(text=ch.xlabel, font=dict(size=px(15), color=INK)), tickfont=tick),
                      yaxis=dict(title=dict(text=ch.ylabel, font=dict(size=px(15), color=INK)), tickfont=tick),
                      legend=dict(title=dict(text=ch.legend_title or "", font=tick), font=tick, orientation="h",
                                  yanchor="top", y=legend_y, xanchor="left", x=0),
                      font=dict(size=px(14), color=INK))
    if ch.y_range is not None:
        fig.update_yaxes(range=list(ch.y_range))
    if not ch.axes:
        # a map's legend beside it; with larger type (presenter mode) below it, in rows: beside, it would leave
        # the map a strip a quarter as wide as the page's column on a 1024 px projector
        beside = px(100) <= 100
        fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), plot_bgcolor="white",
                          margin=dict(l=5, r=5, t=36 if ch.title else 10, b=5),
                          legend=dict(itemsizing="constant", orientation="v", y=0.92, x=1.0, xanchor="left")
                          if beside else dict(itemsizing="constant", orientation="h", yanchor="top", y=0,
                                              x=0, xanchor="left"))


def _png_figure(ch: Chart, dpi: int = 130, size: Optional[tuple] = None):
    """The matplotlib figure of ``to_png``, styled as the interactive chart (``to_plotly``): type at plotly's sizes
    (ticks 14 px, axis titles 15 px, a left-aligned 16 px title at 100 dpi; they grow with ``dpi``), dark ink, no
    box, a light grid, the legend below the plot in rows with its title first, a vertical reference line labelled
    at its top and a horizontal one as a legend entry; a map's legend beside it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    dashes = {"solid": "-", "dash": "--", "dot": ":"}
    markers = {"circle": "o", "square": "s", "diamond": "D", "triangle-up": "^"}
    pt_of = 72 / 100   # points per pixel at 100 dpi: plotly's pixel sizes
    rc = {"font.size": 14 * pt_of, "text.color": INK, "axes.labelcolor": INK, "axes.edgecolor": "#d1d5db",
          "xtick.color": INK, "ytick.color": INK, "xtick.labelsize": 14 * pt_of, "ytick.labelsize": 14 * pt_of,
          "axes.labelsize": 15 * pt_of, "axes.titlesize": 16 * pt_of, "legend.fontsize": 14 * pt_of,
          "axes.spines.top": False, "axes.spines.right": False}
    with plt.rc_context(rc):
        if ch.heat is not None:
            fig, ax = plt.subplots(figsize=size or (7, 0.6 * len(ch.heat.y) + 1.6), dpi=dpi, layout="constrained")
            im = ax.imshow(ch.heat.z, aspect="auto", cmap="viridis")
            ax.set_xticks(range(len(ch.heat.x)), ch.heat.x, rotation=90, fontsize=9)
            ax.set_yticks(range(len(ch.heat.y)), ch.heat.y)
            fig.colorbar(im, ax=ax, label=ch.heat.colour_title)
        else:
            fig, ax = plt.subplots(figsize=size or (6.4, max(3.2, ch.height / 100)), dpi=dpi, layout="constrained")
            for pt in ch.points:
                ax.scatter(np.asarray(pt.x, float), np.asarray(pt.y, float), s=pt.size * 2, color=pt.colour,
                           alpha=pt.opacity, label=pt.name if pt.legend else None, linewidths=0)
            if not ch.axes:
                ax.set_axis_off()
            for ln in ch.lines:
                x, y = np.asarray(ln.x, dtype=float), np.asarray(ln.y, dtype=float)
                ax.plot(x, y, dashes.get(ln.dash, "-"), marker=markers.get(ln.marker, "o") if ln.markers else None,
                        ms=5, lw=2, label=ln.name, color=ln.colour)
                if ln.interval is not None:
                    lo, hi = np.array([v[0] for v in ln.interval]), np.array([v[1] for v in ln.interval])
                    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="none", ecolor=ln.colour, capsize=3, lw=1)
                if ln.band is not None:
                    b = np.asarray(ln.band, dtype=float)
                    ax.fill_between(x, y - b, y + b, alpha=0.09, color=ln.colour, lw=0)
            if ch.bars is not None:
                b = ch.bars
                yerr = None if b.errors is None else list(b.errors)
                if b.intervals is not None:
                    yerr = [[v - lo for v, (lo, _) in zip(b.values, b.intervals)],
                            [hi - v for v, (_, hi) in zip(b.values, b.intervals)]]
                ax.bar(list(b.names), list(b.values), yerr=yerr, color=list(b.colours), capsize=4)
            for r in ch.refs:
                if r.orient == "h":
                    ax.axhline(r.value, ls=dashes.get(r.dash, "--"), color=r.colour, lw=2, label=r.label)
                else:   # labelled at its top, left of the line, as on the interactive chart
                    ax.axvline(r.value, ls=dashes.get(r.dash, "--"), color=r.colour, lw=1.5)
                    ax.annotate(r.label, (r.value, 1), xycoords=("data", "axes fraction"), xytext=(-4, -4),
                                textcoords="offset points", ha="right", va="top", color=INK)
            if ch.axes:
                ax.grid(color="#e5e7eb", lw=1)
                ax.set_axisbelow(True)
            if ch.points and not ch.axes:   # a map: its legend beside it, as on the interactive one
                ax.legend(title=ch.legend_title or None, loc="upper left", bbox_to_anchor=(1.0, 0.96),
                          frameon=False, markerscale=2)
            else:
                handles, labels = ax.get_legend_handles_labels()
                if handles:   # below the plot, its title above, entries in rows: the interactive chart's legend
                    cols = max(1, min(len(labels), int(fig.get_figwidth() * 100 // max(40 + 7.5 * len(t)
                                                                                        for t in labels))))
                    rows = -(-len(labels) // cols)
                    blank = plt.Line2D([], [], lw=0)
                    handles += [blank] * (rows * cols - len(handles))
                    labels += [""] * (rows * cols - len(labels))
                    order = [r * cols + c for c in range(cols) for r in range(rows)]   # matplotlib fills columns
                    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower left",
                               ncols=cols, title=ch.legend_title or None, alignment="left", frameon=False,
                               handlelength=2.2, columnspacing=1.2, borderaxespad=0.2)
        if ch.y_range is not None:
            ax.set_ylim(*ch.y_range)
        ax.set_xlabel(ch.xlabel)
        ax.set_ylabel(ch.ylabel)
        if ch.title:   # below an empty band where the interactive chart has its toolbar
            ax.set_title(ch.title, loc="left", color=INK)
            fig.get_layout_engine().set(rect=(0, 0, 1, 1 - 24 / (fig.get_figheight() * 100)))
    return fig


def to_png(ch: Chart, dpi: int = 130, size: Optional[tuple] = None) -> bytes:
    """The same chart as a static PNG (matplotlib, no browser needed), looking as the interactive one does
    (``_png_figure``); ``size``: (width, height) in inches."""
    import matplotlib.pyplot as plt
    fig = _png_figure(ch, dpi, size)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# The MAE explained with one model's numbers
# --------------------------------------------------------------------------------------------------

def mae_diagram_svg(config, n_hidden: int) -> str:
    """An SVG flow of this model's MAE for a mask hiding ``n_hidden`` patches: patches, visible tokens, encoder,
    mask tokens, decoder, loss, each box with the model's real sizes. Scales to its container's width."""
    c = config
    L, g, p = c.num_patches, c.grid_size, c.patch_size
    vis = L - int(n_hidden)
    ch = "RGB" if c.in_chans == 3 else "grey"
    target = "per-patch normalised pixels (norm-pix)" if c.norm_pix_loss else "pixels"
    boxes = [
        ("Image → patches", [f"{c.img_size}×{c.img_size} {ch} image", f"{g}×{g} = {L} patches of {p}×{p} px"],
         "#e0e7ff"),
        ("Mask", [f"{n_hidden} hidden, {vis} visible", "hidden patches are dropped"], "#fde68a"),
        ("Encoder (ViT)", [f"sees {vis} patch tokens + 1 cls", f"{c.depth} blocks × width {c.embed_dim}, "
                           f"{c.num_heads} heads"], "#c7d2fe"),
        ("+ mask tokens", [f"{n_hidden} copies of one learned token", "all get position embeddings"], "#fde68a"),
        ("Decoder", [f"all {L} tokens (+ cls)", f"{c.decoder_depth} blocks × width {c.decoder_embed_dim}, "
                     f"{c.decoder_num_heads} heads"], "#c7d2fe"),
        ("Prediction & loss", [f"{L} patches × {c.patch_dim} values", f"MSE on the {n_hidden} hidden only,",
                               f"target: {target}"], "#bbf7d0"),
    ]
    bw, bh, gx, gy, x0, y0 = 230, 104, 40, 46, 10, 10
    parts = []
    for i, (title, lines, fill) in enumerate(boxes):
        row, col = divmod(i, 3)
        col = col if row == 0 else 2 - col  # second row runs right to left: a continuous path
        x, y = x0 + col * (bw + gx), y0 + row * (bh + gy)
        parts.append(f'<rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="10" fill="{fill}" stroke="#4b5563"/>')
        parts.append(f'<text x="{x + 12}" y="{y + 26}" font-size="17" font-weight="700" fill="#111827">'
                     f'{escape(title)}</text>')
        for k, line in enumerate(lines):
            parts.append(f'<text x="{x + 12}" y="{y + 50 + 21 * k}" font-size="15" fill="#1f2937">'
                         f'{escape(line)}</text>')
    arrow = 'stroke="#374151" stroke-width="2.5" marker-end="url(#mae-arrow)"'
    for col in range(2):  # first row, left to right
        x = x0 + col * (bw + gx) + bw
        parts.append(f'<line x1="{x + 4}" y1="{y0 + bh / 2}" x2="{x + gx - 6}" y2="{y0 + bh / 2}" {arrow}/>')
    xr = x0 + 2 * (bw + gx) + bw / 2  # down on the right
    parts.append(f'<line x1="{xr}" y1="{y0 + bh + 4}" x2="{xr}" y2="{y0 + bh + gy - 6}" {arrow}/>')
    for col in (2, 1):  # second row, right to left
        x = x0 + col * (bw + gx)
        yy = y0 + bh + gy + bh / 2
        parts.append(f'<line x1="{x - 4}" y1="{yy}" x2="{x - gx + 6}" y2="{yy}" {arrow}/>')
    W, H = x0 * 2 + 3 * bw + 2 * gx, y0 * 2 + 2 * bh + gy
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" '
            f'style="max-width:{W}px;font-family:sans-serif" aria-label="How this MAE processes an image">'
            '<defs><marker id="mae-arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#374151"/></marker></defs>'
            + "".join(parts) + "</svg>")


# ----------------------------------------------------------------------------- the lesson's drawings
def grid_image(image01: torch.Tensor, patch: int, size: int = 280, numbers: bool = False) -> Image.Image:
    """The picture with its patch grid drawn over it (``patch`` pixels of the original per square), optionally
    each patch's number in reading order: how a ViT cuts a picture."""
    side = image01.shape[-1]
    g = side // patch
    im = to_pil(image01, size)
    d = ImageDraw.Draw(im)
    step = size / g
    for k in range(1, g):
        d.line([(round(k * step), 0), (round(k * step), size)], fill=(255, 196, 0), width=2)
        d.line([(0, round(k * step)), (size, round(k * step))], fill=(255, 196, 0), width=2)
    if numbers and g <= 14:
        f = font(max(9, min(16, int(step / 2.4))))
        for i in range(g * g):
            r, c = divmod(i, g)
            d.text((c * step + 3, r * step + 2), str(i + 1), fill=(255, 230, 120), font=f, stroke_width=2,
                   stroke_fill=(0, 0, 0))
    return im


def patch_tile_urls(image01: torch.Tensor, patch: int, mask=None, limit: int = 200) -> list:
    """Each patch as a small PNG data URL in reading order (the first ``limit``), None where ``mask`` hides it."""
    g = image01.shape[-1] // patch
    px = tensor_to_uint8(image01)
    m = np.zeros(g * g, bool) if mask is None else np.asarray(mask, dtype=bool).reshape(-1)
    out = []
    for i in range(min(g * g, limit)):
        r, c = divmod(i, g)
        tile = Image.fromarray(px[r * patch:(r + 1) * patch, c * patch:(c + 1) * patch]).convert("RGB")
        out.append(None if m[i] else data_url(tile.resize((16, 16), Image.Resampling.NEAREST)))
    return out


def mark_patch(im: Image.Image, index: int, grid: int) -> Image.Image:
    """``im`` with patch ``index`` of a ``grid`` x ``grid`` layout outlined (the patch a visitor picked): white inside
    dark, visible on every colour of the error ramp."""
    im = im.copy()
    step = im.size[0] / grid
    r, c = divmod(int(index), grid)
    box = [round(c * step), round(r * step), round((c + 1) * step) - 1, round((r + 1) * step) - 1]
    w = max(2, round(step / 10))
    d = ImageDraw.Draw(im)
    d.rectangle(box, outline=(17, 24, 39), width=w)
    d.rectangle([box[0] + w, box[1] + w, box[2] - w, box[3] - w], outline=(255, 255, 255), width=w)
    return im


def patch_strip_html(image01: torch.Tensor, patch: int, tile_px: int = 30, mask=None, limit: int = 200,
                     per_row: int = 0, numbers: bool = False) -> str:
    """The patches in reading order as a wrapped row of tiles (the sequence a transformer reads); hidden ones (``mask``
    of L cells) drawn in the hidden colour. At most ``limit`` tiles, then a count of the rest. ``per_row``: at most
    that many tiles a row (the grid's width); ``numbers``: each tile's number under it."""
    urls = patch_tile_urls(image01, patch, mask, limit=limit)
    tiles = []
    for i, url in enumerate(urls):
        if url is None:
            tiles.append(f"<div title='patch {i + 1}: hidden' style='width:{tile_px}px;height:{tile_px}px;"
                         f"background:{HIDDEN_CSS};border-radius:3px'></div>")
        else:
            tiles.append(f"<img alt='patch {i + 1}' title='patch {i + 1}' src='{url}' style='width:{tile_px}px;"
                         f"height:{tile_px}px;border-radius:3px;image-rendering:pixelated'>")
        if numbers:
            tiles[-1] = (f"<div style='display:flex;flex-direction:column;align-items:center;font-size:0.7rem;"
                         f"color:{GREY}'>{tiles[-1]}<span>{i + 1}</span></div>")
    g = image01.shape[-1] // patch
    more = g * g - len(urls)
    if more:
        tiles.append(f"<span style='align-self:center;color:{GREY}'>… and {more} more</span>")
    width = f"max-width:{per_row * (tile_px + 3)}px;" if per_row else ""
    return (f"<div data-testid='patch-strip' style='display:flex;flex-wrap:wrap;gap:3px;{width}'>"
            f"{''.join(tiles)}</div>")


def encoder_flow_svg(config, tiles: Sequence[Optional[str]], stage: int) -> str:
    """The encoder's work drawn for one mask, at one ``stage``: 0 every patch in line, 1 the hidden ones dropped
    (the visible ones and the cls token go in), 2..depth+1 the tokens inside block ``stage - 1``, depth+2 out: one
    vector of ``embed_dim`` numbers per token. ``tiles``: one data URL per patch in reading order, None where the
    patch is hidden (at most the first 49 are drawn)."""
    c = config
    L, D = c.num_patches, c.depth
    n_visible = sum(t is not None for t in tiles)
    visible = [t for t in tiles if t is not None]
    W, top = 720, 92
    bh, gap = (30, 6) if D <= 8 else (max(12, 280 // D - 3), 3)   # a 24-block ViT-L stays one screen tall
    H = top + D * (bh + gap) + 74
    parts = []
    for b in range(D):   # the encoder's blocks, the current one lit
        y = top + b * (bh + gap)
        lit = stage == b + 2
        parts.append(f'<rect x="60" y="{y}" width="{W - 120}" height="{bh}" rx="7" '
                     f'fill="{"#c7d2fe" if lit else "#eef2ff"}" stroke="{"#4338ca" if lit else "#c7d2fe"}" '
                     f'stroke-width="{2.5 if lit else 1}" fill-opacity="{0.55 if lit else 1}"/>'
                     f'<text x="70" y="{y + bh * 0.7}" font-size="{min(17, bh * 0.6):.0f}" fill="#374151">block {b + 1}</text>')
    shown = min(L, 49)
    n_tok = shown if stage == 0 else min(n_visible, shown - 1) + 1
    rows = 2 if stage == 0 and n_tok > 25 else 1            # every patch in two rows: tiles big enough to see
    per_row = -(-n_tok // rows)
    tw = min(max(bh - 6.0, 10.0) if stage > 1 else 26.0, (W - (40 if stage <= 1 else 220)) / per_row - 2)
    # the row of patches: every patch at stage 0; then the visible ones (and cls) only
    row_y0 = (32 if rows == 2 else 48) if stage <= 1 else top + (min(stage, D + 1) - 2) * (bh + gap) + (bh - tw) / 2
    if stage >= D + 2:
        row_y0 = top + D * (bh + gap) + 18
    tint = (stage - 1) / (D + 1) * 0.5 if 2 <= stage <= D + 1 else 0.0   # tokens change block after block
    for k in range(n_tok):
        row_y = row_y0 + (k // per_row) * (tw + 2)
        x = (W - per_row * (tw + 2)) / 2 + (k % per_row) * (tw + 2)
        if stage >= 1 and k == 0:
            parts.append(f'<rect x="{x:.1f}" y="{row_y:.1f}" width="{tw:.1f}" height="{tw:.1f}" rx="3" fill="#111827"/>'
                         f'<text x="{x + tw / 2:.1f}" y="{row_y + tw * 0.7:.1f}" font-size="{tw * 0.5:.1f}" '
                         f'font-weight="700" fill="white" text-anchor="middle">cls</text>')
        elif stage >= D + 2:
            parts.append(f'<rect x="{x:.1f}" y="{row_y:.1f}" width="{tw:.1f}" height="{tw:.1f}" rx="3" '
                         f'fill="#6366f1"/>')
        else:
            src = tiles[k] if stage == 0 else visible[k - 1]
            if src is None:
                parts.append(f'<rect x="{x:.1f}" y="{row_y:.1f}" width="{tw:.1f}" height="{tw:.1f}" rx="3" '
                             f'fill="{HIDDEN_CSS}"/>')
            else:
                parts.append(f'<image href="{src}" x="{x:.1f}" y="{row_y:.1f}" width="{tw:.1f}" '
                             f'height="{tw:.1f}" style="image-rendering:pixelated"/><rect x="{x:.1f}" '
                             f'y="{row_y:.1f}" width="{tw:.1f}" height="{tw:.1f}" fill="#6366f1" '
                             f'fill-opacity="{tint:.2f}" stroke="#9ca3af"/>')
    say = {0: f"{L} patches in line: {n_visible} visible, {L - n_visible} hidden",
           1: f"{L - n_visible} hidden patches dropped: {n_visible} visible + 1 summary token go in"}
    caption = say.get(stage) or (f"block {stage - 1} of {D}: each token looks at all {n_visible + 1}, then updates"
                                 if stage <= D + 1 else f"out: {n_visible + 1} tokens, each {c.embed_dim} numbers")
    parts.append(f'<text x="{W / 2}" y="22" font-size="20" fill="#111827" text-anchor="middle" '
                 f'font-weight="600">{escape(caption)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 {W} {H}" '
            f'width="100%" role="img" style="max-width:{W}px;font-family:sans-serif" '
            f'aria-label="{escape(caption)}">' + "".join(parts) + "</svg>")
