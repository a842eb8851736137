"""The Mask ratios page's computations: each strategy's curves stored for the server (shipped for the bundled
models' defaults) and drawn while they grow, the pretraining series' grid, and the strategy-pretrained models' rows.
Each holds a slot of the server's pool of heavy work."""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from mae_core.evaluation import cards, figures, results
from mae_core.evaluation.sweep import DEFAULT_RATIOS, eval_images, pretraining_grid, sweep, sweep_settings

from .caches import fmnist_subset, get_model
from .heavy import gate, heavy, same_work
from .session import read_only

def strategy_sweep(path: str, n_images: int, seeds: int, strategy: str, ratios: tuple, on_rows=None) -> list:
    """One strategy's curves (with the classical baseline), stored for the whole server per strategy (shipped for
    the bundled models' defaults): computed once, by one visitor, in the server's pool; another strategy or a
    strategy taken away reuses the others. ``on_rows`` draws the curves as the ratios finish."""
    m, _ = get_model(path)
    bar = st.empty()

    def compute():
        bar.progress(0.0, text="Sweeping…")
        return sweep(m, eval_images(m.config, n_images), ratios, (strategy,), seeds, baseline=True, on_rows=on_rows,
                     progress=lambda f, label: bar.progress(f, text=f"Sweeping {Path(path).stem}: {label}")).rows
    rows = results.get(path, f"sweep-{strategy}", sweep_settings(m.config, n_images, seeds, (strategy,), ratios, True),
                       compute, on_wait=same_work(bar, "computing the same curves"),
                       keep=not read_only(), gate=gate("these curves", bar))   # a read-only server writes nothing
    bar.empty()
    return rows


def sweep_rows(path: str, n_images: int, seeds: int, strategies: tuple, ratios: tuple, live) -> list:
    """Every strategy's rows; while one is computed, ``live`` shows the curves so far (at most every second)."""
    done, last = [], [0.0]
    m, _ = get_model(path)

    def draw(rows):
        if time.time() - last[0] > 1.0:
            last[0] = time.time()
            live.plotly_chart(figures.to_plotly(figures.error_curve_chart(done + rows, m.card.get("mask_ratio"))),
                              key=f"sw_live_{len(done) + len(rows)}")
    for s in strategies:
        done += strategy_sweep(path, n_images, seeds, s, ratios, on_rows=draw)
    live.empty()
    return done


@st.cache_data(show_spinner=False, max_entries=4)
def pretraining_rows(paths: tuple, mtimes: tuple, n_images: int, seeds: int):
    models = {Path(p).stem: (get_model(p)[0], r) for p, r in paths}
    bar = st.empty()
    with heavy("the pretraining series", bar):
        bar.progress(0.0, text="Sweeping the pretraining series…")
        names, ratios, grid = pretraining_grid(models, fmnist_subset().images[:n_images], DEFAULT_RATIOS, seeds,
                                               progress=lambda f, name: bar.progress(f, text=f"Sweeping {name}"))
    bar.empty()
    return names, grid


@st.cache_data(show_spinner="Scoring the strategy-pretrained models…", max_entries=4)
def strategy_rows(models: tuple, mtimes: tuple) -> list:
    """Figure 6 in small: each strategy-pretrained model's error on its own kind of masks and on random masks (shape
    MSE, same images), and its card's probe."""
    rows = []
    imgs = fmnist_subset().images[:64]
    random_card = get_model(dict(models)["random"])[1]
    with heavy("the strategy models"):
        for strategy, path in models:
            rows.append(_strategy_row(strategy, path, imgs, random_card))
    return rows


def _strategy_row(strategy: str, path: str, imgs, random_card) -> dict:
    """One strategy-pretrained model: its error on its own masks and on random ones, and its card's scores."""
    m, card_ = get_model(path)
    c = cards.read(card_)
    ratio = float(c.mask_ratio)
    own = sweep(m, imgs, (ratio,), (strategy,), seeds=2, matched=True).rows[0]["mean"]
    rnd = own if strategy == "random" else \
        sweep(m, imgs, (ratio,), ("random",), seeds=2, matched=True).rows[0]["mean"]
    return {"strategy": strategy, "own_error": own, "random_error": rnd,
            "probe": float(c.probe("both") or float("nan")), "knn": float(c.knn("both") or float("nan")),
            "probe_ci": c.embedding_metrics.get("linear_probe_both_ci"),
            "vs_random_ci": None if strategy == "random" else cards.paired_ci(card_, random_card)}
