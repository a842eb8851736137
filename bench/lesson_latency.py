"""How long each lesson step takes to appear, as a class meets it (issue 31's target: every step within 2 s on 2
idle cores).

Two measures, each repeated on a fresh process (empty caches), medians printed:
  script  the server's work: AppTest runs the whole app script on the step, its first run in a fresh process that
          has already opened the lesson once (the model loaded, as for any visitor after the first), then a rerun;
  browser what a visitor waits for: a fresh `streamlit run`, then chromium opens /lesson?step=N for each step in
          turn (a new tab each) and waits for that step's main interactive and an idle script; then a reload; then
          one tab walks the lesson with Next (each step's time from the click).

    python bench/lesson_latency.py [--repeats 3] [--no-browser]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

from benchlib import ROOT, write


from mae_core.classroom.lesson import STEPS

MAIN = {"patches": "lesson-grid", "guess": "mae-guess", "encoder": "lesson-flow", "decoder": "mae-picker",
        "ratio": "lesson-ratio", "learned": "stPlotlyChart", "pretraining": "stButtonGroup", "finetune": "stButtonGroup",
        "yourturn": "stButton"}

_SCRIPT = r"""
import json, time
from pathlib import Path
from streamlit.testing.v1 import AppTest
root = Path(%r)
app = AppTest.from_file(str(root / "app" / "main.py"), default_timeout=300)
app.run()
app.switch_page(str(root / "app" / "views" / "lesson.py"))
app.run()
out = []
for k in range(%d):
    app.session_state["lesson_step"] = k
    t = time.perf_counter(); app.run(); first = time.perf_counter() - t
    assert not app.exception, app.exception
    t = time.perf_counter(); app.run(); again = time.perf_counter() - t
    out.append((first, again))
print("RESULT" + json.dumps(out))
"""


def script_times(repeats: int) -> list:
    runs = []
    for _ in range(repeats):
        p = subprocess.run([sys.executable, "-c", _SCRIPT % (str(ROOT), len(STEPS))], capture_output=True, text=True,
                           cwd=ROOT, timeout=900)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")), None)
        if line is None:
            raise SystemExit(p.stderr[-2000:])
        runs.append(json.loads(line[6:]))
    return runs


def browser_times(repeats: int) -> list:
    from browser import chromium, streamlit_server, wait_idle
    runs = []
    for _ in range(repeats):
        out = []
        with streamlit_server() as url, chromium() as b:
            for k, step in enumerate(STEPS):
                page = b.new_page(viewport={"width": 1280, "height": 800})
                times = []
                for _ in range(2):   # the first opening of the step on this server, then a reload
                    t = time.perf_counter()
                    page.goto(f"{url}/lesson?step={k + 1}") if not times else page.reload()
                    page.locator(f'[data-testid="stMain"] [data-testid="{MAIN[step.key]}"]').first.wait_for(
                        timeout=120000)
                    wait_idle(page, 120)
                    times.append(time.perf_counter() - t - 0.3)   # wait_idle's first 0.3 s pause is not the page's
                out.append(times)
                page.close()
            page = b.new_page(viewport={"width": 1280, "height": 800})   # a student's walk: Next, step after step
            page.goto(f"{url}/lesson?step=1")
            page.get_by_test_id("lesson-grid").wait_for(timeout=120000)
            wait_idle(page, 120)
            for k, step in enumerate(STEPS[1:], start=1):
                t = time.perf_counter()
                page.locator(".st-key-lesson_next button").first.click()
                page.get_by_text(f"step {k + 1} of {len(STEPS)}").wait_for(timeout=120000)
                page.locator(f'[data-testid="stMain"] [data-testid="{MAIN[step.key]}"]').first.wait_for(
                    timeout=120000)
                wait_idle(page, 120)
                out[k].append(time.perf_counter() - t - 0.3)
            out[0].append(float("nan"))
        runs.append(out)
    return runs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true")
    a = ap.parse_args(argv)
    res = {"steps": [s.key for s in STEPS]}
    print(f"{'step':<14}{'script first':>14}{'rerun':>8}"
          + ("" if a.no_browser else f"{'browser first':>15}{'reload':>8}{'Next':>8}"))
    sc = script_times(a.repeats)
    res["script"] = [[statistics.median(r[k][j] for r in sc) for j in (0, 1)] for k in range(len(STEPS))]
    br = None if a.no_browser else browser_times(a.repeats)
    if br:
        res["browser"] = [[statistics.median(r[k][j] for r in br) for j in (0, 1, 2)] for k in range(len(STEPS))]
    for k, s in enumerate(STEPS):
        line = f"{k + 1}. {s.key:<11}{res['script'][k][0]:>13.2f}s{res['script'][k][1]:>7.2f}s"
        if br:
            b = res["browser"][k]
            line += f"{b[0]:>14.2f}s{b[1]:>7.2f}s" + (f"{b[2]:>7.2f}s" if b[2] == b[2] else f"{'—':>8}")
        print(line)
    res["repeats"] = a.repeats
    print("medians of", a.repeats, "fresh processes; written to", write("lesson_latency", res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
