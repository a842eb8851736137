"""What a first visitor meets: each page's first visit on a fresh server (empty caches), each section's first
opening, a revisit with everything cached, and training from the Train page against the same run from the
command line. A real `streamlit run` server and Debian's chromium, as the browser tests use.

    python bench/page_latency.py [--repeats 3] [--train-minutes 1]

Each repeat starts a new server (so "first visit" really starts cold); figures are medians over the repeats.
Training: the page's run and `python -m mae_core.train` with the same settings (micro model, bundled subset,
a budget in minutes), one after the other, compared in optimisation steps per minute.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, write

from browser import CHART_BOX, CHART_DRAWN, browser_page, streamlit_server, wait_idle

PLOT = ".js-plotly-plot"
PRESET_LABEL = "Micro · 0.1M params · 2 min"


def _timed(page, action, ready: str, timeout_s: float = 600) -> float:
    """Seconds from ``action()`` until the JS expression ``ready`` holds in the page."""
    t = time.time()
    action()
    page.wait_for_function(f"() => ({ready})", timeout=timeout_s * 1000, polling=100)
    return time.time() - t


def _has_text(text: str) -> str:
    return f"document.body.innerText.includes({json.dumps(text)})"


def _plots(n: int) -> str:
    return f"document.querySelectorAll('{PLOT}').length >= {n}"


# the Reconstruct page has drawn its answer: the scores and the row of image tiles (original ... inpainting)
RECONSTRUCTED = (_has_text("Pixel MSE") + " && " + _has_text("MSE on visible patches") + " && "
                 "document.querySelectorAll('img[src^=\"data:image\"]').length >= 6")


class _Figures(dict):
    """The figures of one server, each printed as it is measured (a slow or stuck step shows where it is)."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        print(f"  {key}: {value:.1f}", file=sys.stderr, flush=True)


def one_server(train_minutes: float, pages: bool = True) -> dict:
    out = _Figures()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MAE_CACHE_DIR": f"{tmp}/cache", "MAE_RUNS_DIR": f"{tmp}/runs"}
        with streamlit_server(env, timeout=120) as url, browser_page(1280, 800) as page:
            if pages:
                out.update(visit_pages(page, url))
            out["train_first"] = _timed(page, lambda: page.goto(url + "/train"), _has_text("timed on this server"))
            wait_idle(page, 120)
            if train_minutes:
                out.update(train_in_app(page, tmp, train_minutes))
    if train_minutes:
        out.update(train_cli(train_minutes))
    return out


def visit_pages(page, url: str) -> dict:
    out = _Figures()
    out["reconstruct_first"] = _timed(page, lambda: page.goto(url), RECONSTRUCTED)
    wait_idle(page)
    # a page load is a new session, whose first page shows its charts as pictures until pointed at (app/ui/charts.py):
    # the first chart counts when its picture is drawn; pointing at it gives the interactive one (timed apart)
    out["ratios_first"] = _timed(page, lambda: page.goto(url + "/ratios"), CHART_DRAWN)
    wait_idle(page, 600)
    out["ratios_interactive"] = _timed(page, lambda: page.hover(CHART_BOX), _plots(1))
    wait_idle(page, 600)
    out["ratios_strategies_first"] = _timed(
        page, lambda: page.get_by_text("Strategies compared", exact=True).click(),
        "[...document.querySelectorAll('.js-plotly-plot')].some(g => g.data.some(t => t.type === 'bar'))")
    wait_idle(page, 600)
    out["ratios_pretraining_first"] = _timed(
        page, lambda: page.get_by_text("Pretraining ratio", exact=True).click(),
        _has_text("Representation quality against pretraining ratio") + " && "
        "document.querySelectorAll('.js-plotly-plot').length >= 1")
    wait_idle(page, 600)
    out["ratios_reload"] = _timed(page, lambda: page.goto(url + "/ratios"), CHART_DRAWN)
    wait_idle(page, 600)
    out["embeddings_map_first"] = _timed(page, lambda: page.goto(url + "/embeddings"), CHART_DRAWN)
    t0 = time.time()
    page.wait_for_function(f"() => ({_has_text('kNN accuracy')})", timeout=600000, polling=100)
    out["embeddings_table_first"] = out["embeddings_map_first"] + time.time() - t0
    wait_idle(page, 600)
    out["embeddings_reload"] = _timed(page, lambda: page.goto(url + "/embeddings"),
                                      CHART_DRAWN + " && " + _has_text("kNN accuracy"))
    wait_idle(page, 600)
    for name, path, ready in (("ratios", "/ratios", CHART_DRAWN),
                              ("embeddings", "/embeddings", CHART_DRAWN + " && " + _has_text("kNN accuracy"))):
        # a revisit in the same session: away through the sidebar, then back (what a visitor does)
        page.get_by_test_id("stSidebarNav").get_by_text("Reconstruct").click()
        page.wait_for_function(f"() => ({RECONSTRUCTED})", timeout=120000, polling=100)
        wait_idle(page, 120)
        link = page.get_by_test_id("stSidebarNav").locator(f'a[href$="{path}"]')
        out[f"{name}_revisit"] = _timed(page, link.click, ready + f" && location.pathname.endsWith('{path}')")
        wait_idle(page, 120)
    return out


def _select(page, label: str, option: str):
    box = page.locator(f'[data-testid="stSelectbox"]:has-text("{label}")')
    box.click()
    page.get_by_role("option", name=option).click()
    wait_idle(page, 120)


def train_in_app(page, tmp: str, minutes: float) -> dict:
    _select(page, "Data", "Fashion-MNIST (bundled 1,600)")
    _select(page, "Model size", PRESET_LABEL)
    mins = page.get_by_role("spinbutton", name="Minutes")
    mins.fill(str(minutes))
    mins.press("Enter")
    wait_idle(page, 120)
    name = page.get_by_role("textbox", name="Run name")
    name.fill("bench_run")
    name.press("Enter")
    wait_idle(page, 120)
    t = time.time()
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function("() => /step [1-9]/.test(document.body.innerText)", timeout=600000, polling=100)
    first_step = time.time() - t
    page.wait_for_function(f"() => ({_has_text('bench_run — finished')})", timeout=(minutes * 60 + 300) * 1000,
                           polling=500)
    card = json.loads((Path(tmp) / "runs" / "bench_run.json").read_text())
    return {"app_first_step_s": first_step, "app_steps": card["steps"], "app_wall_s": card["wall_time_s"],
            "app_steps_per_min": card["steps"] / (card["wall_time_s"] / 60)}


def train_cli(minutes: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "mae_core.train", "--data", "fashion-mnist-subset", "--preset",
               "mae_fmnist_micro", "--mask-ratio", "0.75", "--epochs", "400", "--time-budget", str(minutes),
               "--batch-size", "128", "--lr", "1e-3", "--warmup-epochs", "0.05", "--eval-images", "500",
               "--log-every", "10", "--no-progress", "--out", f"{tmp}/cli"]
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, env={**os.environ, "MAE_CACHE_DIR": tmp})
        card = json.loads(Path(f"{tmp}/cli.json").read_text())
    return {"cli_steps": card["steps"], "cli_wall_s": card["wall_time_s"],
            "cli_steps_per_min": card["steps"] / (card["wall_time_s"] / 60)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-minutes", type=float, default=1.0, help="0 skips the training comparison")
    p.add_argument("--train-only", action="store_true", help="skip the page visits")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    runs = []
    for r in range(args.repeats):
        res = one_server(args.train_minutes, pages=not args.train_only)
        runs.append(res)
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in res.items()), flush=True)
    med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
    if "app_steps_per_min" in med:
        med["app_over_cli"] = statistics.median(run["app_steps_per_min"] / run["cli_steps_per_min"] for run in runs)
    print("\nmedians over", args.repeats, "repeats (s unless named):")
    for k, v in med.items():
        print(f"  {k:28s} {v:8.2f}")
    print("->", write(f"page_latency{args.tag}", {"medians": med, "runs": runs, "repeats": args.repeats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
