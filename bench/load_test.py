"""N concurrent browser sessions against one `streamlit run` server, each painting its own masks on the
Reconstruct page. Reports stroke-to-update latency (p50/p95), errors, whether any session saw another's mask,
and the server's memory before and after.

    python bench/load_test.py [--sessions 20] [--strokes 5]
Needs Debian's chromium and playwright (as the browser tests do).
"""
import argparse
import statistics
import time
from pathlib import Path

from benchlib import write

from browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server

HIDDEN_CELLS_JS = "cells => cells.map((c, i) => c.classList.contains('hidden') ? i : -1).filter(i => i >= 0)"


def hidden_cells(page) -> list:
    """Indices of the painter's hidden cells (Playwright's CSS engine pierces the component's shadow root)."""
    return page.locator('[data-testid="mae-painter"] > .mae-cell').evaluate_all(HIDDEN_CELLS_JS)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_pid(port_url: str) -> int:
    import subprocess
    port = port_url.rsplit(":", 1)[1]
    out = subprocess.run(["pgrep", "-f", f"server.port {port}"], capture_output=True, text=True).stdout.split()
    return int(out[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--strokes", type=int, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    latencies, errors, crossed = [], [], 0
    with streamlit_server({"OMP_NUM_THREADS": "1"}) as url, sync_playwright() as p:
        pid = server_pid(url)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = []
        t0 = time.time()
        for i in range(args.sessions):
            ctx = browser.new_context(viewport={"width": 1300, "height": 900})
            page = ctx.new_page()
            page.goto(url)
            pages.append(page)
        for page in pages:
            page.wait_for_selector('[data-testid="mae-painter"]', timeout=180000)
        rss_before = rss_mb(pid)
        pages[0].wait_for_function("() => document.body.innerText.includes('37 / 49')", timeout=120000)
        opening_mse = pages[0].locator('[data-testid="stMetricValue"]').nth(2).inner_text()
        print(f"{args.sessions} sessions open in {time.time() - t0:.1f} s; server RSS {rss_before:.0f} MB", flush=True)
        for page in pages:
            page.get_by_role("button", name="Clear").click()
        for page in pages:
            page.wait_for_function("() => document.body.innerText.includes('0 / 49')", timeout=120000)
        for stroke in range(args.strokes):
            for i, page in enumerate(pages):
                row = (i + stroke) % 7
                try:
                    box = page.locator('[data-testid="mae-painter"]').bounding_box()
                    cell = box["width"] / 7
                    page.get_by_role("button", name="Clear").click()
                    page.wait_for_function("() => document.body.innerText.includes('0 / 49')", timeout=60000)
                    y = box["y"] + cell * (row + 0.5)
                    page.mouse.move(box["x"] + cell * 0.5, y)
                    page.mouse.down()
                    page.mouse.move(box["x"] + cell * 6.5, y, steps=8)
                    t = time.perf_counter()
                    page.mouse.up()
                    page.wait_for_function("() => document.body.innerText.includes('7 / 49')", timeout=60000)
                    latencies.append(time.perf_counter() - t)
                    hidden = hidden_cells(page)
                    if hidden != list(range(row * 7, row * 7 + 7)):
                        crossed += 1
                except Exception as e:  # noqa: BLE001 - a load test counts failures
                    errors.append(f"session {i} stroke {stroke}: {type(e).__name__}: {str(e)[:120]}")
        rss_after = rss_mb(pid)
        # the shared model must be untouched: a fresh session gets exactly the first session's opening numbers
        fresh = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
        fresh.goto(url)
        fresh.wait_for_selector('[data-testid="mae-painter"]', timeout=120000)
        fresh.wait_for_function("() => document.body.innerText.includes('37 / 49')", timeout=120000)
        model_unchanged = fresh.locator('[data-testid="stMetricValue"]').nth(2).inner_text() == opening_mse
        browser.close()
    lat = sorted(latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
    print(f"strokes: {len(lat)} ok, {len(errors)} errors; stroke -> updated page: p50 {1000 * p50:.0f} ms, "
          f"p95 {1000 * p95:.0f} ms (strokes sent one after another)")
    print(f"sessions that saw a mask other than their own: {crossed}; shared model unchanged: {model_unchanged}")
    print(f"server RSS: {rss_before:.0f} MB with {args.sessions} sessions open -> {rss_after:.0f} MB after the strokes")
    for e in errors[:5]:
        print("  ", e)
    print("->", write("load_test", {"sessions": args.sessions, "strokes_per_session": args.strokes,
                                    "ok": len(lat), "errors": errors, "p50_ms": 1000 * p50, "p95_ms": 1000 * p95,
                                    "foreign_masks_seen": crossed, "model_unchanged": model_unchanged,
                                    "server_rss_mb_before": rss_before,
                                    "server_rss_mb_after": rss_after}))


if __name__ == "__main__":
    main()
