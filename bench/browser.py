"""A real `streamlit run` server and Debian's chromium driven by Playwright: the harness of the browser tests and of
the benchmarks that measure what a visitor meets (tests import it through pytest's pythonpath)."""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
SCREENSHOT_DIR = Path(os.environ.get("MAE_SCREENSHOT_DIR", ROOT / "tests" / "screenshots"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env_extra=None, timeout=90, app=ROOT / "app" / "main.py"):
    port = free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env_extra or {})}
    log = open(os.devnull, "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app),
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.headless", "true", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("streamlit did not start")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def chromium():
    """Debian's chromium, driven by Playwright (skips the test where either is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def browser_page(width=1400, height=1000):
    with chromium() as browser:
        yield browser.new_page(viewport={"width": width, "height": height})


def wait_idle(page, timeout=30):
    """Wait until Streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_timeout(300)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        page.wait_for_timeout(200)


CHART_BOX = '[class*="st-key-chartbox_"]'   # a chart of app/ui/charts.py: its picture, then the interactive chart
# a JS expression: a page's first chart is on screen (the interactive one, or its picture, loaded)
CHART_DRAWN = ("(!!document.querySelector('.js-plotly-plot') || [...document.querySelectorAll("
               "'[class*=\"st-key-chartbox_\"] img')].some(i => i.complete && i.naturalWidth > 0))")


def interactive_chart(page, timeout=240):
    """Wait for a page's first chart; where a session's first page shows it as its picture (app/ui/charts.py),
    point at it, as a visitor does, and wait for the interactive chart."""
    page.wait_for_selector(f'.js-plotly-plot, {CHART_BOX} [data-testid="stImage"] img', timeout=timeout * 1000)
    if not page.query_selector(".js-plotly-plot"):
        page.hover(CHART_BOX)
        page.wait_for_selector(".js-plotly-plot", timeout=timeout * 1000)
