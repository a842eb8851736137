"""The server's start (``streamlit run app/main.py`` finds the ``st.App`` in main.py and serves it): before the
first visitor arrives, import what every page imports and load the models the pages open on, so a class's first
visits do not each wait for them (on a busy 2-core server about 6-9 s: the imports and the first model loads).

The work runs in a background thread started by the app's lifespan: the server answers at once, and a visitor who
arrives during the warm-up waits only for what is not loaded yet (Python's import locks and the model cache's)."""
from __future__ import annotations

import ast
import contextlib
import importlib
import logging
import sys
import threading
import time
from pathlib import Path

_LOG = logging.getLogger("mae_explorer")
APP = Path(__file__).resolve().parents[1]
STATE = {"thread": None, "seconds": None, "imported": threading.Event()}


def page_imports() -> list:
    """The modules the app's pages and main.py import (absolute imports, read from their source; ``from a import b``
    gives ``a`` and ``a.b``, which the warm-up imports where it is a module)."""
    names = []
    for f in [*sorted(APP.glob("*.py")), *sorted((APP / "views").glob("*.py"))]:   # main.py among the first
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module)   # and what it names, where that is a module (from pkg import module)
                names += [f"{node.module}.{a.name}" for a in node.names]
    return list(dict.fromkeys(n for n in names if n != "__future__"))


def warm() -> None:
    """Imports, the default models (Reconstruct's and the lesson's, the Embeddings page's strongest one) in the
    shared model cache, one forward each, the t-SNE warm-up, the Train page's default time estimate, what a first
    drawing loads (``warm_drawing``) and the pages compiled (``compile_pages``). Errors are logged, never raised: a
    visitor then meets them (with the page's own message) rather than a server that did not start."""
    t, paths = time.perf_counter(), []
    quiet = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = quiet.level
    quiet.setLevel(logging.ERROR)   # the caches are used outside a visit: no "missing ScriptRunContext" lines
    try:
        import torch
        from mae_core.classroom import zoo
        from mae_core.data import load_fashion_mnist_subset
        from . import caches, session, training
        for name in page_imports():   # what the pages import, imported once, by one thread
            try:
                importlib.import_module(name)
            except ImportError:   # an optional one (umap, openTSNE), or a name that is no module
                pass
        STATE["imported"].set()
        images = load_fashion_mnist_subset().images[:2]
        paths = list(zoo.bundled_choices().values())[:1]
        best = zoo.best_representation()
        if best and best["path"] not in paths:
            paths.append(best["path"])
        for path in paths:
            model, _ = caches.get_model(path)
            if model.config.in_chans == images.shape[1] and model.config.img_size == images.shape[-1]:
                with torch.no_grad():
                    model(model.normalize(images), mask_ratio=0.75)
        session.warm_up()
        training.estimate_defaults()
        warm_drawing()
        compile_pages()
    except Exception:  # noqa: BLE001 - the warm-up must never stop the server
        _LOG.exception("warm-up failed (the pages will load what they need themselves)")
    finally:
        STATE["imported"].set()
        quiet.setLevel(level)
    STATE["seconds"] = time.perf_counter() - t
    print(f"MAE Explorer: warmed up in {STATE['seconds']:.1f} s (imports, {len(paths)} models, the training "
          "estimate)", file=sys.stderr, flush=True)


def warm_drawing() -> None:
    """What a process's first drawing loads once, done before the first visitor: PIL's image plugins (its first PNG:
    about 0.8 s on busy cores, paid by the first page that shows an image), Streamlit's emoji table (the page icon)
    and plotly's validators for every kind of trace the pages draw, through the same conversion st.plotly_chart
    makes."""
    import numpy as np
    import plotly.io
    import plotly.tools
    from PIL import Image
    from streamlit.string_util import is_emoji
    from mae_core.data import png_bytes
    from mae_core.evaluation import figures as F
    png_bytes(Image.fromarray(np.zeros((8, 8, 3), np.uint8)))
    is_emoji("🧩")
    line = F.Line([0, 1], [0, 1], "a", F.GREY, band=[0.1, 0.1], interval=[(0, 1), (0, 1)], hover=["a", "b"])
    charts = [F.Chart("t", "x", "y", lines=[line], refs=[F.RefLine(0.5, "h"), F.RefLine(0.5, "v", orient="v")],
                      points=[F.Points([0.0], [0.0], "p", F.GREY, ids=[0])], y_range=(0, 1)),
              F.Chart("t", "x", "y", bars=F.Bars(["a"], [1.0], None, [F.GREY], intervals=[(0.5, 1.5)])),
              F.Chart("t", "x", "y", heat=F.Heat(np.zeros((1, 1)), ["a"], ["b"], "z"), axes=False)]
    for ch in charts:
        fig = plotly.tools.return_figure_from_figure_or_data(F.to_plotly(ch), validate_figure=True)
        plotly.io.to_json(fig, validate=False)
        F.to_png(ch)   # matplotlib's import and first drawing: a session's first page shows its charts as pictures


def compile_pages() -> None:
    """Each page script compiled into the server's script cache (Streamlit's "magic" rewrite and compile, 0.2-0.4 s
    a page on busy cores, else paid by each page's first visitor). A private attribute of Streamlit's runtime: where
    a version lacks it, the first visits compile them as before."""
    from streamlit.runtime import Runtime
    if not Runtime.exists():
        return
    runtime = Runtime.instance()
    cache = getattr(runtime, "_script_cache", None)
    if cache is not None:   # main.py by the path the server was started with, the pages by their st.Page paths
        for f in [getattr(runtime, "_main_script_path", APP / "main.py"), *sorted((APP / "views").glob("*.py"))]:
            cache.get_bytecode(str(f))


def wait_for_imports(timeout: float = 120.0) -> None:
    """A visit that arrives while the warm-up imports waits for them to finish, rather than importing the same
    modules at the same time in another thread (a module initialised by two threads at once can be seen half-built:
    pandas once was). Without a warm-up (tests, AppTest) there is nothing to wait for."""
    if STATE["thread"] is not None:
        STATE["imported"].wait(timeout)


async def warm_status(_request):
    """GET /_mae/warm-up: 200 once the warm-up is over, 503 before (for an operator's readiness check, and the
    class benchmark's "warmed server")."""
    from starlette.responses import JSONResponse
    done = STATE["seconds"] is not None
    return JSONResponse({"warmed_up": done, "seconds": STATE["seconds"]}, status_code=200 if done else 503)


def routes() -> list:
    from starlette.routing import Route
    return [Route("/_mae/warm-up", warm_status)]


@contextlib.asynccontextmanager
async def lifespan(_app):
    thread = threading.Thread(target=warm, name="mae-server-warm-up", daemon=True)
    STATE["thread"] = thread
    thread.start()
    yield
