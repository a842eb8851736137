"""Figures: one builder per chart serves the app (plotly) and downloads / the command line (matplotlib PNG)."""
import io

import numpy as np
import pytest
from PIL import Image

from mae_core import figures
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
    labels = [a.text for a in probe.layout.annotations]
    assert labels == ["raw pixels: probe", "raw pixels: kNN"]
    assert [s.y0 for s in probe.layout.shapes] == pytest.approx([75, 72])   # each label on its own line


def test_tiles_make_every_composite():
    tile = Image.new("RGB", (10, 10), "red")
    im = figures.tiles_image([[("a", tile), ("b", tile)], [("c", tile)]], size=50, gap=4)
    assert im.size == (2 * 50 + 3 * 4, 2 * (50 + 20) + 3 * 4)
    assert im.getpixel((4 + 25, 4 + 25)) == (255, 0, 0)
    assert figures.training_strip(np.zeros((3, 5, 6), np.uint8), np.ones((3, 5, 6), np.uint8),
                                  np.full((3, 5, 6), 2, np.uint8)).shape == (15, 18)
