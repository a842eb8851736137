"""What shipping the default results saves a first visitor (issue 33, part 1): the Mask ratios page's first visit
with default settings (AppTest, the whole app script, an empty cache in a fresh process each time), with the shipped
results (checkpoints/precomputed/) against the same page with them hidden (so the sweep runs), alternating; medians.

    python bench/shipped_defaults.py [--repeats 3] [--page ratios.py]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from benchlib import ROOT, write

_SCRIPT = r"""
import json, os, sys, time
from pathlib import Path
from streamlit.testing.v1 import AppTest
import mae_core.evaluation.results as results
if sys.argv[1] == "hidden":
    results.SHIPPED_DIR = Path(os.environ["MAE_CACHE_DIR"]) / "no-shipped-results"
root = Path(sys.argv[2])
app = AppTest.from_file(str(root / "app" / "main.py"), default_timeout=600)
app.run()
app.switch_page(str(root / "app" / "views" / sys.argv[3]))
t = time.perf_counter(); app.run(); dt = time.perf_counter() - t
assert not app.exception, app.exception
print("RESULT" + json.dumps(dt))
"""


def visit(mode: str, page: str) -> float:
    with tempfile.TemporaryDirectory() as cache:
        p = subprocess.run([sys.executable, "-c", _SCRIPT, mode, str(ROOT), page], capture_output=True, text=True,
                           cwd=ROOT, timeout=900, env={**__import__("os").environ, "MAE_CACHE_DIR": cache})
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(p.stderr[-2000:])
    return json.loads(line[6:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--page", default="ratios.py")
    a = ap.parse_args(argv)
    times = {"shipped": [], "hidden": []}
    for _ in range(a.repeats):
        for mode in ("hidden", "shipped"):
            times[mode].append(visit(mode, a.page))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{a.page} first visit, defaults, empty cache: computed {med['hidden']:.2f} s, shipped {med['shipped']:.2f} s "
          f"({med['hidden'] / med['shipped']:.1f}x); medians of {a.repeats}")
    print("written to", write(f"shipped_defaults_{a.page.removesuffix('.py')}", {"times": times, "medians": med}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
