"""Figures: one builder per chart serves the app (plotly) and downloads / the command line (matplotlib PNG)."""
import io

import numpy as np
import pytest
from PIL import Image

from mae_core.evaluation import figures
from mae_core.masking import STRATEGIES


def _rows():
    rows = []
    for s in ("random", "grid"):
        for r in (0.25, 0.5, 0.75):
            rows.append({"strategy": s, "ratio": r, "n_hidden": int(49 * r), "mean": r / 10 + (s == "grid") * 0.01,
                         "std": 0.005, "q25": 0, "q75": 0, "n": 4})
    return rows


def _png_size(data: bytes):
    im = Image.open(io.BytesIO(data))
    assert im.format == "PNG"
    return im.size


def test_error_curve_is_one_description_drawn_twice():
    ch = figures.error_curve_chart(_rows(), pretrained_at=0.75)
    assert [ln.name for ln in ch.lines] == ["Random", "Grid"]
    assert [ln.colour for ln in ch.lines] == [STRATEGIES["random"].colour, STRATEGIES["grid"].colour]
    assert ch.refs[0].value == 0.75 and ch.refs[0].orient == "v"
    fig = figures.to_plotly(ch)
    curves = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in curves] == ["Random", "Grid"] and len(fig.data) == 4   # + one band each
    assert list(curves[1].y) == pytest.approx([0.035, 0.06, 0.085])
    assert fig.layout.shapes[0].x0 == 0.75                                         # the pretraining ratio
    w, h = _png_size(figures.to_png(ch))
    assert w > 600 and h > 300
    no_bands = figures.to_plotly(figures.error_curve_chart(_rows(), bands=False))
    assert len(no_bands.data) == 2


def test_the_picture_is_laid_out_as_the_interactive_chart():
    """A first page shows a chart's PNG until plotly replaces it (app/ui/charts.py): same size, the legend below the
    plot with its entries in rows, the pretraining ratio labelled on the plot, type at plotly's 14-16 px."""
    import matplotlib.pyplot as plt
    ch = figures.error_curve_chart(_rows(), pretrained_at=0.75)
    ch.legend_title = "strategy"
    fig = figures._png_figure(ch, dpi=100, size=(7.6, ch.height / 100))
    try:
        fig.canvas.draw()
        ax, legend = fig.axes[0], fig.legends[0]
        box, axes_box = legend.get_window_extent(), ax.get_tightbbox()
        assert box.y1 <= axes_box.y0 + 1                      # below the plot and its x title, not over the curves
        names = [t.get_text() for t in legend.get_texts()]
        assert legend.get_title().get_text() == "strategy" and set(names) - {""} == {"Random", "Grid"}
        assert "pretrained at 0.75" in [t.get_text() for t in ax.texts]   # on the plot, not a legend entry
        # entries fill rows left to right, as plotly's horizontal legend does
        xs = {t.get_text(): t.get_window_extent().x0 for t in legend.get_texts() if t.get_text()}
        assert xs["Random"] < xs["Grid"]
        px = 100 / 72
        assert ax.xaxis.get_ticklabels()[0].get_fontsize() * px == pytest.approx(14)
        title = [t for t in ax.get_children() if getattr(t, "get_text", lambda: "")() == ch.title]
        assert ax.get_title(loc="left") == ch.title and title[0].get_fontsize() * px == pytest.approx(16)
    finally:
        plt.close(fig)
    assert _png_size(figures.to_png(ch, dpi=100, size=(7.6, ch.height / 100))) == (760, ch.height)


def test_presenter_type_zooms_the_interactive_chart():
    """Presenter mode's charts (type_scale): type and height grow together, so a long axis title still fits."""
    ch = figures.error_curve_chart(_rows(), pretrained_at=0.75)
    normal, big = figures.to_plotly(ch), figures.to_plotly(ch, type_scale=1.3)
    assert (normal.layout.height, big.layout.height) == (ch.height, round(1.3 * ch.height))
    assert (normal.layout.xaxis.tickfont.size, big.layout.xaxis.tickfont.size) == (14, 18)
    assert (normal.layout.title.font.size, big.layout.title.font.size) == (16, 21)
    assert big.layout.annotations[0].font.size == 18 and big.layout.margin.t > normal.layout.margin.t


def test_bars_heatmap_and_probe_charts():
    bars = figures.to_plotly(figures.strategy_bars_chart(_rows(), 0.5))
    assert list(bars.data[0].x) == ["Random", "Grid"] and list(bars.data[0].y) == pytest.approx([0.05, 0.06])
    grid = np.arange(6.0).reshape(2, 3)
    heat = figures.heatmap_chart([0.25, 0.75], [0.1, 0.5, 0.9], grid)
    assert figures.to_plotly(heat).data[0].z.tolist() == grid.tolist()
    _png_size(figures.to_png(heat))
    rows = [{"ratio": 0.25, "linear_probe_both": 0.8, "knn_both": 0.7, "raw_probe": 0.75, "raw_knn": 0.72},
            {"ratio": 0.75, "linear_probe_both": 0.85, "knn_both": 0.74, "raw_probe": 0.75, "raw_knn": 0.72}]
    probe = figures.to_plotly(figures.probe_chart(rows))
    assert list(probe.data[0].y) == pytest.approx([80, 85])
    # baselines are legend entries drawn as their own lines: a label can never sit on another line
    refs = {t.name: list(t.y) for t in probe.data if t.mode == "lines"}
    assert refs == {"raw pixels: probe (75.0%)": [75, 75], "raw pixels: kNN (72.0%)": [72, 72]}
    assert not probe.layout.annotations and probe.layout.legend.font.size >= 14
    assert probe.layout.xaxis.tickfont.size >= 14 and probe.layout.xaxis.tickfont.color == figures.INK


def test_figure6_charts_show_task_difficulty_and_probe_intervals():
    rows = [{"strategy": "random", "own_error": 0.013, "probe": 0.891, "probe_ci": [0.885, 0.898]},
            {"strategy": "block", "own_error": 0.030, "probe": 0.880, "probe_ci": [0.874, 0.886]}]
    task, feats = figures.strategy_pretraining_charts(rows, raw_probe=0.846)
    t = figures.to_plotly(task)
    assert list(t.data[0].x) == ["Random", "Block"] and list(t.data[0].y) == pytest.approx([0.013, 0.030])
    f = figures.to_plotly(feats)
    bar = f.data[0]
    assert list(bar.y) == pytest.approx([89.1, 88.0])
    # asymmetric error bars reach exactly the card's interval
    assert [y + e for y, e in zip(bar.y, bar.error_y.array)] == pytest.approx([89.8, 88.6])
    assert [y - e for y, e in zip(bar.y, bar.error_y.arrayminus)] == pytest.approx([88.5, 87.4])
    # the axis is zoomed to the scores and the raw-pixel line (84.6%), and says so
    assert tuple(f.layout.yaxis.range) == (83.0, 91.0) and "zoomed" in feats.ylabel
    raw = [t for t in f.data if t.name == "raw pixels 84.6%"]      # a legend entry, never text over a bar
    assert len(raw) == 1 and list(raw[0].y) == [84.6, 84.6] and not f.layout.annotations
    for ch in (task, feats):
        _png_size(figures.to_png(ch))


def test_tiles_make_every_composite():
    tile = Image.new("RGB", (10, 10), "red")
    im = figures.tiles_image([[("a", tile), ("b", tile)], [("c", tile)]], size=50, gap=4)
    assert im.size == (2 * 50 + 3 * 4, 2 * (50 + 20) + 3 * 4)
    assert im.getpixel((4 + 25, 4 + 25)) == (255, 0, 0)
    assert figures.training_strip(np.zeros((3, 5, 6), np.uint8), np.ones((3, 5, 6), np.uint8),
                                  np.full((3, 5, 6), 2, np.uint8)).shape == (15, 18, 3)   # RGB: the masked row is in colour
    assert figures.training_strip(np.zeros((3, 5, 6), np.uint8), np.ones((3, 5, 6), np.uint8),
                                  np.full((3, 5, 6), 2, np.uint8), scale=4).shape == (3 * (20 + 4), 3 * (24 + 4), 3)   # 2-px seams


def _rec(grid=7, hidden=37):
    import torch
    from mae_core.explore import reconstruct
    from mae_core.model import build_model
    torch.manual_seed(0)
    mask = np.zeros(grid * grid, bool)
    mask[:hidden] = True
    return reconstruct(build_model("mae_fmnist_micro").eval(), torch.rand(1, 28, 28), mask)


def test_panel_scales_for_a_projector_and_draws_the_error_scale():
    rec = _rec()
    small, large = figures.panel_image(rec, size=224), figures.panel_image(rec, size=448)
    assert large.size[0] >= 2 * 928 and large.size[0] > 1.9 * small.size[0]  # at least 2x the old 928 px panel
    # the colour scale sits under the error tile: its ramp runs from near-black to yellow
    arr = np.asarray(large)
    x0 = 8 + 4 * (448 + 8)
    bar_row = arr[large.size[1] - figures.colour_bar(448, 1.0, font_px=38).size[1] + 2, x0:x0 + 448]
    assert bar_row[2].sum() < 60 and bar_row[-3][0] > 240 and bar_row[-3][1] > 240
    two = figures.panel_image(rec, size=224, rows=[("model A", rec), ("model B", rec)])
    assert two.size[1] > 1.8 * small.size[1] - 120 and two.size[0] == small.size[0]


def test_error_ramp_css_lists_the_ramps_stops():
    css = figures.error_ramp_css()
    assert css.startswith("linear-gradient(90deg") and css.count("rgb(") == len(figures.ERROR_RAMP)


def test_mae_diagram_uses_the_models_real_numbers():
    from mae_core.model import preset_config
    svg = figures.mae_diagram_svg(preset_config("mae_vit_base_patch16"), n_hidden=147)
    for text in ("224×224 RGB image", "14×14 = 196 patches of 16×16 px", "147 hidden, 49 visible",
                 "12 blocks × width 768, 12 heads", "8 blocks × width 512, 16 heads", "196 patches × 768 values",
                 "MSE on the 147 hidden only"):
        assert text in svg, text
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "norm-pix" in figures.mae_diagram_svg(preset_config("mae_fmnist_tiny", norm_pix_loss=True), 37)


def test_attention_image_marks_hidden_patches_and_the_query():
    import torch
    att = np.full((7, 7), 0.02)
    att[0, 0] = np.nan            # hidden from the encoder
    att[3, 3] = 0.5               # the strongest weight: the top of the ramp
    im = np.asarray(figures.attention_image(torch.zeros(1, 28, 28), att, size=70, query=24))
    assert tuple(im[5, 5]) in ((40, 42, 48), (80, 82, 90))           # hatched dark, not tinted
    strong, weak = im[35, 35].astype(int), im[35, 65].astype(int)     # centre of cell (3, 3) vs cell (3, 6)
    assert strong.sum() > weak.sum() + 150
    assert tuple(im[30, 30]) == (0, 220, 240)                          # the query's outline (cell 24 = row 3, col 3)


def test_probe_chart_draws_the_cards_intervals():
    rows = [{"ratio": r, "linear_probe_both": p, "knn_both": 0.7, "raw_probe": 0.75, "raw_knn": 0.72,
             "linear_probe_both_ci": [p - 0.01, p + 0.005], "knn_both_ci": [0.69, 0.71]}
            for r, p in ((0.25, 0.8), (0.75, 0.85))]
    fig = figures.to_plotly(figures.probe_chart(rows))
    probe = fig.data[0]
    assert list(probe.error_y.array) == pytest.approx([0.5, 0.5]) and list(probe.error_y.arrayminus) == pytest.approx([1, 1])
    _png_size(figures.to_png(figures.probe_chart(rows)))
    rows[0].pop("knn_both_ci")
    assert figures.to_plotly(figures.probe_chart(rows)).data[1].error_y.array is None   # not all rows: no bars


def test_a_map_is_one_chart_for_the_page_and_the_png():
    """The Embeddings page's and the lesson's maps are figures.map_chart: one colour per class, each point carrying
    its index (what a selection returns), a highlighted class lit and the others faint; drawn by plotly and
    matplotlib alike."""
    from mae_core.evaluation.figures import PALETTE, loss_chart, map_chart, to_plotly, to_png
    rng = np.random.default_rng(0)
    xy, labels = rng.normal(size=(30, 2)), np.arange(30) % 3
    ch = map_chart(xy, labels, ["a", "b", "c"])
    fig = to_plotly(ch)
    assert [t.name for t in fig.data] == ["a", "b", "c"] and fig.data[1].marker.color == PALETTE[1]
    assert list(fig.data[2].customdata) == [2, 5, 8, 11, 14, 17, 20, 23, 26, 29]
    assert np.allclose(fig.data[0].x, xy[labels == 0, 0]) and fig.layout.xaxis.visible is False
    # its legend beside it; in presenter type below it, in rows, so a 1024 px projector keeps the map wide
    big = to_plotly(ch, type_scale=1.3).layout.legend
    assert (fig.layout.legend.orientation, fig.layout.legend.x) == ("v", 1.0)
    assert (big.orientation, big.yanchor, big.y) == ("h", "top", 0)
    lit = to_plotly(map_chart(xy, labels, ["a", "b", "c"], highlight="b", legend=False))
    assert [t.marker.opacity for t in lit.data] == [0.12, 0.9, 0.12] and not any(t.showlegend for t in lit.data)
    assert to_png(ch)[:4] == b"\x89PNG" and to_png(loss_chart([1, 2, 3], [0.9, 0.5, 0.4]))[:4] == b"\x89PNG"
    assert to_plotly(loss_chart(list(range(100)), [1.0] * 100)).data[0].mode == "lines"
