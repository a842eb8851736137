"""A class on one server (issue 33): what a first visitor meets while the server is busy.

    python bench/class_load.py [--repeats 3] [--busy 2] [--sessions 10] [--without-shipped]

``--busy N`` starts N processes that keep a core each busy for the whole measurement (a class's server is not
idle; other work on the machine counts too). Then, with an empty results cache:

1. each page's first visit with its defaults, in a fresh process (AppTest: the whole script run of a visitor
   opening the page's address), after the server's own start-up warm-up (app/ui/server.py: imports, default
   models; timed apart); on Reconstruct, the attention maps switched on and one patch clicked;
2. a real `streamlit run` server and one chromium with ``--sessions`` tabs opening the pages at once (the pages in
   turn; ``--contexts``: a browser context each), timed from navigation to the page's first chart, map or
   reconstruction drawn, and to the server's answer (its last message before that: the rest is the browser's own
   drawing, which in a class happens on each student's machine, here on the same busy cores; a chart a session's
   first page shows as its picture (app/ui/charts.py) counts when the picture is drawn; then the session points
   at it and the time until the interactive chart replaced it is printed apart); p50 and p95, on a
   fresh server the moment it answers, and on one started before the class (its own warm-up over: app/ui/server.py;
   no visitor before, the results cache empty). It also prints the CPU seconds the server (with its workers), the
   browser and the rest (this script, Playwright, ``--busy``) spent from the sessions' first navigation to the last
   one's chart drawn (interactive): what bounds the sessions' times on the machine's cores. The baseline, in the
   same run: the same number of tabs opening a Streamlit page with one title and one sentence (`FLOOR_APP`), the
   framework's own cost in a browser on these cores, which no page of ours can go under.

Medians over ``--repeats``. ``--without-shipped`` hides the shipped results (MAE_SHIPPED_RESULTS_DIR points at an
empty folder): the server as it was before they were shipped.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchlib import ROOT, write

from browser import CHART_BOX, CHART_DRAWN, CHROMIUM, CHROMIUM_ARGS, streamlit_server

PAGES = ("reconstruct", "lesson", "ratios", "embeddings", "train")
READY = {   # the page's first answer is on screen
    "reconstruct": "document.querySelectorAll('img[src^=\"data:image\"]').length >= 6",
    "lesson": "document.querySelectorAll('img[src^=\"data:image\"]').length >= 2",
    "ratios": CHART_DRAWN,
    "embeddings": CHART_DRAWN,
    "train": "document.body.innerText.includes('Start training')",
}
READY["floor"] = "document.body.innerText.includes('own cost')"
FLOOR_APP = ('import streamlit as st\nst.title("MAE Explorer")\n'
             'st.write("A page with one sentence: the own cost of Streamlit\'s frontend in a browser tab.")\n')
INTERACTIVE = ("ratios", "embeddings")   # pages whose first chart is a plotly chart (first shown as a picture)
URL = {"reconstruct": "", "lesson": "lesson?step=1", "ratios": "ratios", "embeddings": "embeddings", "train": "train",
       "floor": ""}

_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from streamlit.testing.v1 import AppTest
from ui import server          # app/ is on PYTHONPATH, as streamlit run makes it importable
root, page = Path(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
server.warm()                  # what the server does at its start, before any visitor
from streamlit.components.v2.component_manager import BidiComponentManager
components = BidiComponentManager()   # the server's runtime scans for components once, at its start; AppTest
components.discover_and_register_components(start_file_watching=False)   # would scan again for each visitor
out = {"app": time.perf_counter() - t}
app = AppTest.from_file(str(root / "app" / "main.py"), default_timeout=900)
app._bidi_component_manager = components
if page != "reconstruct":
    app.switch_page(str(root / "app" / "views" / (page + ".py")))   # the visitor opens the page's address
t = time.perf_counter(); app.run(); out["page"] = time.perf_counter() - t
if page == "reconstruct":
    t = time.perf_counter(); app.toggle(key="att_on").set_value(True).run(); out["attention_on"] = time.perf_counter() - t
    app.session_state["att_query"] = 17
    t = time.perf_counter(); app.run(); out["patch_click"] = time.perf_counter() - t
assert not app.exception, [e.value for e in app.exception]
print("RESULT" + json.dumps(out))
"""


def busy(n: int) -> list:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def cpu_times() -> dict:
    """Every process's CPU time so far (user + system, seconds), its parent and command line (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:   # it ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()   # after the command's name, which may hold spaces
        out[int(p)] = (int(fields[1]), cmd, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_spent(before: dict, after: dict, port: int) -> dict:
    """CPU seconds spent between two `cpu_times`: by the server on `port` (with its worker processes), by chromium,
    by the rest (processes that ended between the two are not counted)."""
    server = {pid for pid, (_, cmd, _) in after.items() if f"--server.port {port} " in cmd + " "}
    grew = True
    while grew:   # and its children, theirs...
        new = {pid for pid, (ppid, _, _) in after.items() if ppid in server} - server
        server |= new
        grew = bool(new)
    spent = {"server": 0.0, "browser": 0.0, "other": 0.0}
    for pid, (_, cmd, t) in after.items():
        key = "server" if pid in server else "browser" if "chromium" in cmd else "other"
        spent[key] += t - before.get(pid, (0, "", 0.0))[2]
    return spent


def first_visit(page: str, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        p = subprocess.run([sys.executable, "-c", _SCRIPT, str(ROOT), page], capture_output=True, text=True,
                           cwd=ROOT, timeout=1800,
                           env={**env, "MAE_CACHE_DIR": cache, "PYTHONPATH": str(ROOT / "app")})
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"{page}: {p.stderr[-3000:]}")
    return json.loads(line[6:])


async def _sessions(url: str, n: int, timeout_s: float, warm: bool = False, contexts: bool = False,
                    pages=PAGES) -> tuple:
    from playwright.async_api import async_playwright
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if BROWSER_NICE:
            renice_browser(BROWSER_NICE)
        if warm:   # the server started a while before the class: its own warm-up is over (app/ui/server.py)
            await asyncio.to_thread(wait_warmed_up, url, timeout_s)

        shared = None if contexts else await browser.new_context(viewport={"width": 1280, "height": 800})

        async def one(i: int):
            page_name = pages[i % len(pages)]
            # a tab of one chromium (a Streamlit session of its own), or a context of its own (a visitor with an
            # empty browser cache, as ten machines would be, but all on this machine's cores)
            ctx = shared or await browser.new_context(viewport={"width": 1280, "height": 800})
            tab = await ctx.new_page()
            frames = []   # when the server's messages arrived: its answer, before the browser has drawn it
            tab.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append((time.time(), len(f)))))
            t = time.time()
            await tab.goto(f"{url}/{URL[page_name]}")
            loaded = time.time()   # the page's HTML and the app's scripts loaded (the load event)
            await tab.wait_for_function(f"() => ({READY[page_name]})", timeout=timeout_s * 1000, polling=200)
            ready = time.time()
            if page_name in INTERACTIVE:   # a chart shown first as its picture: pointed at, the interactive one
                if not await tab.query_selector(".js-plotly-plot"):
                    await tab.hover(CHART_BOX)
                await tab.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1",
                                            timeout=timeout_s * 1000, polling=200)
            interactive = time.time()
            answered = max((a for a, size in frames if a <= ready and size > 64), default=ready)
            first = min((a for a, size in frames), default=ready)   # the server's first message: the session is on
            print(f"    {page_name}: drawn {ready - t:.1f} s", file=sys.stderr, flush=True)
            return page_name, ready - t, answered - t, loaded - t, first - t, interactive - t
        before, t = cpu_times(), time.time()
        out = await asyncio.gather(*(one(i) for i in range(n)))
        spent = {**cpu_spent(before, cpu_times(), int(url.rsplit(":", 1)[1])), "wall": time.time() - t}
        await browser.close()
        return list(out), spent


BROWSER_NICE = 0   # --nice-browser


def renice_browser(nice: int) -> None:
    """Every thread of every chromium process at niceness ``nice`` (the renderers its zygote forks later inherit it):
    the server's threads then come first on the cores, as if the browsers drew on other machines (a class)."""
    for pid, (_, cmd, _) in cpu_times().items():
        if "chromium" not in cmd:
            continue
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)
            except OSError:
                pass


def wait_warmed_up(url: str, timeout_s: float) -> None:
    """Until the server's warm-up is over (GET /_mae/warm-up answers 200)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_mae/warm-up", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:   # 503 (an HTTPError) while it warms up
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not warm up")


def browser_run(n: int, env: dict, warm: bool = False, contexts: bool = False, pages=PAGES,
                app: Path = ROOT / "app" / "main.py") -> tuple:
    with tempfile.TemporaryDirectory() as cache:
        with streamlit_server(env_extra={**env, "MAE_CACHE_DIR": cache}, timeout=180, app=app) as url:
            return asyncio.run(_sessions(url, n, timeout_s=900, warm=warm, contexts=contexts, pages=pages))


def floor_run(n: int, env: dict, contexts: bool = False) -> tuple:
    """The baseline: n sessions opening a one-sentence Streamlit page (`FLOOR_APP`) at once."""
    with tempfile.TemporaryDirectory() as folder:
        app = Path(folder) / "floor.py"
        app.write_text(FLOOR_APP)
        with streamlit_server(env_extra=env, timeout=180, app=app) as url:
            return asyncio.run(_sessions(url, n, timeout_s=900, contexts=contexts, pages=("floor",)))


def pct(values, q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]


def browser_figures(label: str, results: list, sessions: int) -> dict:
    """Print and return one variant's figures: p50 / p95 (medians over the runs) of the time to the page drawn and
    of the time to the server's answer (its last message before the page was drawn), and the CPU spent."""
    runs = [rows for rows, _ in results]
    cpu = {k: statistics.median(spent[k] for _, spent in results) for k in results[0][1]}
    out = {"runs": runs, "cpu_runs": [spent for _, spent in results], "cpu": cpu}
    for k, what in ((1, "drawn"), (2, "answered")):
        out[f"p50_{what}"] = statistics.median(pct([r[k] for r in run], 0.5) for run in runs)
        out[f"p95_{what}"] = statistics.median(pct([r[k] for r in run], 0.95) for run in runs)
    seen = [p for p in (*PAGES, "floor") if any(r[0] == p for run in runs for r in run)]
    out["per_page"] = {p: statistics.median(r[1] for run in runs for r in run if r[0] == p) for p in seen}
    if all(len(r) >= 6 for run in runs for r in run):   # the charts shown first as pictures: when interactive
        out["interactive"] = {p: statistics.median(r[5] for run in runs for r in run if r[0] == p)
                              for p in INTERACTIVE if p in seen}
    if all(len(r) >= 5 for run in runs for r in run):   # where the time goes (medians over every session)
        out["stages"] = {k: statistics.median(r[i] for run in runs for r in run)
                         for i, k in ((3, "scripts_loaded"), (4, "first_message"), (2, "answered"), (1, "drawn"))}
    print(f"Browser, {sessions} sessions at once, {label} (medians of {len(runs)} runs):\n"
          f"  page drawn (first chart / map / reconstruction on screen): p50 {out['p50_drawn']:.1f} s, "
          f"p95 {out['p95_drawn']:.1f} s\n"
          f"  server answered (its last message before that): p50 {out['p50_answered']:.1f} s, "
          f"p95 {out['p95_answered']:.1f} s\n"
          "  drawn, per page: " + ", ".join(f"{p} {t:.1f} s" for p, t in out["per_page"].items()) +
          ("\n  the picture pointed at once drawn, the interactive chart in its place: " + ", ".join(
              f"{p} {t:.1f} s" for p, t in out["interactive"].items()) if out.get("interactive") else "") +
          ("\n  stages (median session): " + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s"
                                                       for k, v in out["stages"].items()) if "stages" in out else "") +
          f"\n  CPU from the first navigation to the last chart drawn (interactive): server {cpu['server']:.1f} s, chromium {cpu['browser']:.1f} s, the rest "
          f"{cpu['other']:.1f} s, in {cpu['wall']:.1f} s of wall time on {os.cpu_count()} cores")
    return out


FLOOR = "the baseline: a Streamlit page with one sentence (Streamlit's own cost)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, default=2, help="processes keeping a core busy each")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--without-shipped", action="store_true")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-visits", action="store_true", help="only the browser part")
    ap.add_argument("--contexts", action="store_true",
                    help="each session a browser context of its own (its own empty cache) instead of a tab")
    ap.add_argument("--pages", nargs="+", choices=PAGES, default=list(PAGES),
                    help="the pages the sessions open, in turn (default: every page)")
    ap.add_argument("--warmed-only", action="store_true",
                    help="the browser part on a server started before the class only (no fresh server)")
    ap.add_argument("--app", type=Path, nargs="+", default=[ROOT / "app" / "main.py"],
                    help="the app's main.py (default: this checkout's); several (another checkout's, to compare): "
                         "their runs interleaved, each printed apart")
    ap.add_argument("--nice-browser", type=int, default=0, metavar="N",
                    help="run chromium at niceness N (e.g. 19): the server first on the cores, as if the browsers "
                         "drew on the students' machines (every chromium process on the machine)")
    ap.add_argument("--out", default=None, help="the results file's name under bench/results (default: class_load, "
                                                 "class_load_without_shipped with --without-shipped)")
    a = ap.parse_args(argv)
    global BROWSER_NICE
    BROWSER_NICE = a.nice_browser
    env = dict(os.environ)
    hidden = tempfile.mkdtemp() if a.without_shipped else None
    if hidden:
        env["MAE_SHIPPED_RESULTS_DIR"] = hidden
    variants = {"a fresh server, the moment it answers": False, "a server started before the class (warmed up)": True}
    if a.warmed_only:
        variants.pop("a fresh server, the moment it answers")
    hogs = busy(a.busy)
    try:
        visits = {} if a.no_visits else {p: [first_visit(p, env) for _ in range(a.repeats)] for p in PAGES}
        runs = {}
        for _ in range(0 if a.no_browser else a.repeats):   # the variants and apps in turn, then the baseline
            for label, warm in variants.items():
                for app in a.app:
                    runs.setdefault(label if len(a.app) == 1 else f"{label}, {app}", []).append(
                        browser_run(a.sessions, env, warm, a.contexts, tuple(a.pages), app.resolve()))
            runs.setdefault(FLOOR, []).append(floor_run(a.sessions, env, a.contexts))
    finally:
        for h in hogs:
            h.kill()
    label = "without shipped results" if hidden else "with shipped results"
    med = {}
    if visits:
        print(f"First visits with defaults, {a.busy} busy processes, empty cache, {label} "
              f"(AppTest, medians of {a.repeats}):")
    for p, vs in visits.items():
        med[p] = {k: statistics.median(v[k] for v in vs) for k in vs[0]}
        extra = "".join(f", {k.replace('_', ' ')} {v:.2f} s" for k, v in med[p].items() if k not in ("page", "app"))
        print(f"  {p:12s} page {med[p]['page']:.2f} s (the server's start before it: {med[p]['app']:.2f} s)" + extra)
    where = "a browser context each" if a.contexts else "tabs of one chromium"
    browser = {v: browser_figures(f"{where}, {a.busy} busy processes, empty results cache, {v}, {label}", r,
                                  a.sessions) for v, r in runs.items()}
    print("written to", write(a.out or "class_load" + ("_without_shipped" if hidden else ""),
                              {"busy": a.busy, "repeats": a.repeats, "visits": visits, "medians": med,
                               "sessions": a.sessions, "contexts": a.contexts, "nice_browser": a.nice_browser,
                               "browser": browser}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
