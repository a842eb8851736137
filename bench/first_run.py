"""The Train page's default run as a teacher starts it (defaults untouched, Start), on a server where other
processes keep the cores busy: steps reached over the run's two minutes, the page's own estimate, and a picture of
the held-out strip at each moment (bench/results/first_run_<busy>busy_<s>s.png) to look at.

    python bench/first_run.py [--busy 1] [--probes 30,60,90,130]

``--busy N`` starts N processes that spin on a core each (1 on 2 cores: other work takes half the CPU). The
figures are one run's: a run is two minutes of a whole machine, so repeat it (and quote the median) with --repeats.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import RESULTS, write

from browser import browser_page, streamlit_server, wait_idle


def one_run(busy: int, probes: list, shots: bool) -> dict:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        env = {"MAE_CACHE_DIR": tempfile.mkdtemp(), "MAE_RUNS_DIR": tempfile.mkdtemp()}
        with streamlit_server(env) as url, browser_page(1024, 768) as page:
            page.goto(url + "/train")
            page.wait_for_selector("text=steps of", timeout=300000)
            wait_idle(page, 120)
            estimate = page.get_by_text("timed on this server").first.inner_text()
            t = time.time()
            page.get_by_role("button", name="Start training").click()
            steps = {}
            for probe in probes:
                page.wait_for_timeout(max(0.0, (t + probe - time.time()) * 1000))
                m = re.search(r"step ([\d,]+) ·", page.inner_text("body"))
                steps[probe] = int(m.group(1).replace(",", "")) if m else 0
                strip = page.get_by_test_id("stImage").first
                if shots and strip.count():
                    strip.scroll_into_view_if_needed()
                    strip.screenshot(path=str(RESULTS / f"first_run_{busy}busy_{probe}s.png"))
            return {"estimate": estimate, "steps_at_s": steps}
    finally:
        for s in spinners:
            s.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--busy", type=int, default=1)
    p.add_argument("--probes", default="30,60,90,130")
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    probes = [int(x) for x in a.probes.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = [one_run(a.busy, probes, shots=(i == 0)) for i in range(a.repeats)]
    med = {s: statistics.median(r["steps_at_s"][s] for r in runs) for s in probes}
    for s in probes:
        print(f"{a.busy} busy process(es): step {med[s]:,.0f} after {s} s (median of {len(runs)})")
    print("estimate on the page:", runs[0]["estimate"][:160])
    print("written:", write(f"first_run_{a.busy}busy", {"busy": a.busy, "runs": runs, "median_steps_at_s": med}))


if __name__ == "__main__":
    main()
