"""Mask ratios: what the ratio and the strategy do at test time, and what the pretraining ratio does."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from common import get_model, image_picker, model_picker, fmnist_subset

from mae_core.checkpoints import list_bundled
from mae_core.data import photo_eval_set
from mae_core.explore import to_pil
from mae_core.masking import STRATEGIES, make_mask
from mae_core.sweep import (STRATEGY_COLOURS, plot_curves, plot_heatmap, plot_probe, plot_strip, probe_table,
                            strategy_examples, sweep, write_csv)
from mae_core.explore import reconstruct

RATIOS = tuple(round(0.05 * i, 2) for i in range(1, 20))

model, card, model_path = model_picker()
cfg = model.config
image, image_label, _ = image_picker(cfg)

st.title("Mask ratio and masking strategy")
st.caption("How hard is the task at each ratio, does the strategy matter, and what does the ratio used in "
           "pretraining change? Errors are mean squared errors on the hidden patches, in [0, 1] pixel units.")


def _eval_images(n: int) -> torch.Tensor:
    if cfg.in_chans == 1 and cfg.img_size == 28:
        return fmnist_subset().images[:n]
    return photo_eval_set(cfg.img_size, cfg.in_chans)[:n]


@st.cache_data(show_spinner=False, max_entries=32)
def _sweep_rows(path: str, mtime: float, n_images: int, seeds: int, strategies: tuple, ratios: tuple):
    m, _ = get_model(path)
    bar = st.progress(0.0, text="Sweeping…")
    res = sweep(m, _eval_images(n_images), ratios, strategies, seeds,
                progress=lambda f, label: bar.progress(f, text=f"Sweeping: {label}"))
    bar.empty()
    return res.rows


def _png_from(plot_fn, *args):
    """Deferred download data: the figure is drawn only when its button is clicked, not on every rerun."""
    def draw() -> bytes:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "fig.png"
            plot_fn(*args, path)
            return path.read_bytes()
    return draw


def _side_by_side_png(img, side) -> bytes:
    from PIL import Image, ImageDraw
    from mae_core.explore import png_bytes
    tiles = [("original", to_pil(img, 150))] + [(cap, to_pil(rec.pasted, 150)) for cap, rec in side]
    canvas = Image.new("RGB", (len(tiles) * 160 + 10, 185), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (cap, tile) in enumerate(tiles):
        canvas.paste(tile, (10 + i * 160, 10))
        draw.text((10 + i * 160, 165), cap.split(":")[0], fill=(30, 30, 30))
    return png_bytes(canvas)


def _csv_bytes(rows) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return write_csv(rows, Path(d) / "s.csv").read_bytes()


def _mtime(path: str) -> float:
    p = Path(path)
    return p.stat().st_mtime if p.exists() else 0.0


tab_test, tab_strategy, tab_pre = st.tabs(["Error against ratio", "Strategies compared", "Pretraining ratio"])

# ----------------------------------------------------------------------------- test-time sweep
with tab_test:
    c1, c2, c3 = st.columns([2, 1, 1])
    strategies = c1.multiselect("Strategies", STRATEGIES, default=list(STRATEGIES), key="sw_strategies")
    n_images = c2.select_slider("Images", [16, 32, 64, 128, 256], value=64, key="sw_images")
    seeds = c3.select_slider("Seeds", [1, 2, 3, 5], value=3, key="sw_seeds")
    if not strategies:
        st.info("Pick at least one strategy.")
    else:
        rows = _sweep_rows(model_path, _mtime(model_path), int(n_images), int(seeds), tuple(strategies), RATIOS)
        fig = go.Figure()
        for s in strategies:
            rs = [r for r in rows if r["strategy"] == s]
            x = [r["ratio"] for r in rs]
            m = np.array([r["mean"] for r in rs])
            sd = np.array([r["std"] for r in rs])
            colour = STRATEGY_COLOURS[s]
            fig.add_trace(go.Scatter(x=x + x[::-1], y=list(m + sd) + list((m - sd)[::-1]), fill="toself",
                                     fillcolor=colour, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                                     showlegend=False))
            fig.add_trace(go.Scatter(x=x, y=m, mode="lines+markers", name=s, line=dict(color=colour),
                                     customdata=np.stack([sd, [r["n_hidden"] for r in rs]], axis=1),
                                     hovertemplate="ratio %{x:.2f}: MSE %{y:.4f} ± %{customdata[0]:.4f}"
                                                   "<br>%{customdata[1]} patches hidden<extra>" + s + "</extra>"))
        pre = card.get("mask_ratio")
        if pre is not None:
            fig.add_vline(x=float(pre), line_dash="dot", line_color="#6b7280",
                          annotation_text=f"pretrained at {float(pre):.2f}")
        fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="mask ratio at test time",
                          yaxis_title="MSE on hidden patches", legend_title="strategy", hovermode="x unified")
        st.plotly_chart(fig, width="stretch")
        st.caption(f"Mean over {n_images} images × {seeds} seeds; the band is ± 1 standard deviation across them. "
                   "Errors need not fall all the way to ratio 0: a model pretrained at a high ratio never saw so "
                   "many visible patches, and with only a few patches hidden the mean rests on few, hard ones.")
        d1, d2 = st.columns(2)
        d1.download_button("Curves (CSV)", _csv_bytes(rows), "error_vs_ratio.csv", "text/csv",
                           icon=":material/download:")
        d2.download_button("Figure (PNG)", _png_from(plot_curves, rows), "error_vs_ratio.png", "image/png",
                           icon=":material/download:")

    st.subheader("One image at several ratios")
    strip_ratios = st.multiselect("Ratios", RATIOS, default=[0.25, 0.5, 0.75, 0.9], key="strip_ratios")
    strip_strategy = st.radio("Strategy", STRATEGIES, horizontal=True, key="strip_strategy")
    if strip_ratios:
        cols = st.columns(len(strip_ratios))
        for col, r in zip(cols, sorted(strip_ratios)):
            mk = make_mask(strip_strategy, 1, cfg.grid_size, r, seed=0)[0]
            rec = reconstruct(model, image, mk)
            col.image(to_pil(rec.masked, 160), caption=f"{r:.0%} hidden")
            col.image(to_pil(rec.pasted, 160), caption=f"MSE {rec.mse_hidden:.4f}")
        st.download_button("Strip (PNG)", _png_from(lambda p: plot_strip(model, image, sorted(strip_ratios), p,
                                                                          strategy=strip_strategy)),
                           "ratio_strip.png", "image/png", icon=":material/download:", key="dl_strip")

# ----------------------------------------------------------------------------- strategies (Figure 6)
with tab_strategy:
    ratio = st.slider("Mask ratio", 0.05, 0.95, 0.75, 0.05, key="strat_ratio")
    seed = st.number_input("Seed", 0, 10**6, 0, key="strat_seed")
    ex = strategy_examples(model, image, float(ratio), seed=int(seed))
    cols = st.columns(3)
    for col, (s, rec) in zip(cols, ex.items()):
        with col:
            st.markdown(f"**{s.capitalize()}** — {rec.n_hidden}/{rec.mask.size} hidden")
            a, b = st.columns(2)
            a.image(to_pil(rec.masked, 200), caption="masked")
            b.image(to_pil(rec.pasted, 200), caption=f"MSE {rec.mse_hidden:.4f}")
    rows = _sweep_rows(model_path, _mtime(model_path), 64, 3, tuple(STRATEGIES), RATIOS)
    at = {r["strategy"]: r for r in rows if abs(r["ratio"] - float(ratio)) < 1e-9}
    fig = go.Figure(go.Bar(x=list(at), y=[at[s]["mean"] for s in at],
                           error_y=dict(type="data", array=[at[s]["std"] for s in at]),
                           marker_color=[STRATEGY_COLOURS[s] for s in at]))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), yaxis_title="MSE on hidden patches",
                      title=f"Over 64 images × 3 seeds at ratio {ratio:.2f}")
    st.plotly_chart(fig, width="stretch")
    st.caption("The paper (Figure 6) reports block masking as the harder task at the same ratio (large regions "
               "with nothing to copy from) and the regular grid as the easier one (every hidden patch keeps visible "
               "neighbours). Compare with this model, at this grid size.")
    from mae_core.sweep import plot_strategies
    st.download_button("Figure (PNG)", _png_from(plot_strategies, ex), f"strategies_{ratio:.2f}.png", "image/png",
                       icon=":material/download:")

# ----------------------------------------------------------------------------- pretraining ratio (Figure 5)
with tab_pre:
    series = [c for c in list_bundled() if (c.get("data") or {}).get("name") == "Fashion-MNIST"
              and not c.get("norm_pix_loss") and c.get("mask_ratio") is not None]
    series.sort(key=lambda c: float(c["mask_ratio"]))
    if len(series) < 2:
        st.info("The bundled Fashion-MNIST ratio series is not available.")
    else:
        st.markdown("Models with the same architecture and training budget, pretrained at different mask ratios, "
                    "on the **same image with the same masks**.")
        c1, c2 = st.columns([3, 1])
        test_ratio = c1.slider("Mask ratio at test time", 0.05, 0.95, 0.75, 0.05, key="pre_ratio")
        pre_seed = c2.number_input("Seed", 0, 10**6, 0, key="pre_seed")
        sub = fmnist_subset()
        img = image if (cfg.in_chans == 1 and cfg.img_size == 28) else sub.images[0]
        mk = make_mask("random", 1, 7, float(test_ratio), seed=int(pre_seed))[0]
        cols = st.columns(len(series) + 1)
        cols[0].image(to_pil(img, 150), caption="original")
        side = []
        for col, c in zip(cols[1:], series):
            m, _ = get_model(c["path"])
            rec = reconstruct(m, img, mk)
            caption = f"pretrained {float(c['mask_ratio']):.0%}: MSE {rec.mse_hidden:.4f}"
            col.image(to_pil(rec.pasted, 150), caption=caption)
            side.append((caption, rec))
        st.download_button("Side by side (PNG)", functools.partial(_side_by_side_png, img, side),
                           "pretraining_side_by_side.png", "image/png", icon=":material/download:", key="dl_side")

        st.subheader("Error by pretraining ratio × test ratio")
        grid_rows = [_sweep_rows(c["path"], _mtime(c["path"]), 64, 2, ("random",), RATIOS) for c in series]
        grid = np.array([[r["mean"] for r in rows] for rows in grid_rows])
        pre_ratios = [float(c["mask_ratio"]) for c in series]
        fig = go.Figure(go.Heatmap(z=grid, x=list(RATIOS), y=[f"{r:.2f}" for r in pre_ratios], colorscale="Viridis",
                                   colorbar=dict(title="MSE"),
                                   hovertemplate="pretrained %{y}, tested %{x:.2f}: %{z:.4f}<extra></extra>"))
        fig.update_layout(height=120 + 45 * len(series), margin=dict(l=10, r=10, t=10, b=10),
                          xaxis_title="mask ratio at test time", yaxis=dict(title="pretraining ratio", type="category"))
        st.plotly_chart(fig, width="stretch")
        st.caption("Each row is one model (random masks, 64 images × 2 seeds). Read a column to see which "
                   "pretraining ratio reconstructs best at that test ratio.")
        st.download_button("Heatmap (PNG)", _png_from(plot_heatmap, [c["name"] for c in series], pre_ratios,
                                                      list(RATIOS), grid), "pretraining_heatmap.png", "image/png",
                           icon=":material/download:")

        st.subheader("Representation quality against pretraining ratio")
        rows = probe_table(series)
        if not rows:
            st.info("These model cards carry no kNN / linear-probe metrics yet "
                    "(python -m mae_core.embed card checkpoints/NAME).")
        else:
            pool = st.radio("Features", ["both", "cls", "mean"], horizontal=True, key="probe_pool",
                            format_func={"both": "cls + mean of patches", "cls": "cls token",
                                         "mean": "mean of patch tokens"}.get)
            x = [r["ratio"] for r in rows]
            fig = go.Figure()
            fig.add_trace(go.Scatter(x=x, y=[100 * r[f"linear_probe_{pool}"] for r in rows], mode="lines+markers",
                                     name="linear probe", line=dict(color="#4f46e5")))
            fig.add_trace(go.Scatter(x=x, y=[100 * r[f"knn_{pool}"] for r in rows], mode="lines+markers",
                                     name="kNN (k=20)", line=dict(color="#dc2626")))
            fig.add_hline(y=100 * rows[0]["raw_probe"], line_dash="dash", line_color="#4f46e5",
                          annotation_text="raw pixels: probe", annotation_position="bottom right")
            fig.add_hline(y=100 * rows[0]["raw_knn"], line_dash="dot", line_color="#dc2626",
                          annotation_text="raw pixels: kNN", annotation_position="top right")
            fig.update_layout(height=360, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="pretraining mask ratio",
                              yaxis_title="accuracy on the 10k test set (%)")
            st.plotly_chart(fig, width="stretch")
            st.caption("The small-scale analogue of the paper's Figure 5. Fit on the 60k training images, scored "
                       "on the 10k test images; the dashed lines are raw pixels scored by the same code.")
            st.download_button("Figure (PNG)", _png_from(plot_probe, rows), "probe_vs_ratio.png", "image/png",
                               icon=":material/download:")
