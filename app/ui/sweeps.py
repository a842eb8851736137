"""The Mask ratios page's computations: each strategy's curves stored for the server (shipped for the bundled
models' defaults) and drawn while they grow, the pretraining series' grid, and the strategy-pretrained models' rows.
Each holds a slot of the server's pool of heavy work."""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from mae_core.evaluation import cards, figures
from mae_core.evaluation.sweep import (COMPARE_IMAGES, COMPARE_SEEDS, DEFAULT_RATIOS, eval_images, heat_row,
                                      heat_settings, strategy_errors, strategy_settings, sweep, sweep_settings)

from .caches import fmnist_subset, get_model
from .heavy import stored


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
    rows = stored(path, f"sweep-{strategy}", sweep_settings(m.config, n_images, seeds, (strategy,), ratios, True),
                  compute, "these curves", bar, "computing the same curves")
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


def pretraining_rows(paths: tuple, n_images: int = COMPARE_IMAGES, seeds: int = COMPARE_SEEDS) -> list:
    """The pretraining series' heatmap: one row a model (``paths``: (weights, pretraining ratio) in the series'
    order), each stored for the server (shipped for the bundled models)."""
    imgs = fmnist_subset().images[:n_images]
    bar = st.empty()
    grid = []
    for i, (p, _) in enumerate(paths):
        bar.progress(i / len(paths), text=f"Sweeping {Path(p).stem}…")
        grid.append(stored(p, "heat-row", heat_settings(DEFAULT_RATIOS, n_images, seeds),
                           lambda p=p: heat_row(get_model(p)[0], imgs, DEFAULT_RATIOS, seeds), "the heatmap", bar))
    bar.empty()
    return grid


def strategy_rows(models: tuple) -> list:
    """Figure 6 in small: each strategy-pretrained model's error on its own kind of masks and on random masks (shape
    MSE, same images; stored for the server, shipped for the bundled models), and its card's probe."""
    imgs = fmnist_subset().images[:COMPARE_IMAGES]
    random_card = get_model(dict(models)["random"])[1]
    bar = st.empty()
    rows = []
    for strategy, path in models:
        m, card_ = get_model(path)
        c = cards.read(card_)
        errors = stored(path, "strategy-errors", strategy_settings(strategy, float(c.mask_ratio)),
                        lambda: strategy_errors(m, strategy, float(c.mask_ratio), imgs), "the strategy models' errors",
                        bar)
        rows.append({"strategy": strategy, **errors,
                     "probe": float(c.probe("both") or float("nan")), "knn": float(c.knn("both") or float("nan")),
                     "probe_ci": c.embedding_metrics.get("linear_probe_both_ci"),
                     "vs_random_ci": None if strategy == "random" else cards.paired_ci(card_, random_card)})
    bar.empty()
    return rows
