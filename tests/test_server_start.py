"""The server's start: `streamlit run app/main.py` serves main.py's st.App, whose lifespan warms the server up
(imports, the default models) before the first visitor, and says when it is done (/_mae/warm-up)."""
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_streamlit_run_finds_the_apps_server():
    from streamlit.web.server.app_discovery import discover_asgi_app
    found = discover_asgi_app(ROOT / "app" / "main.py")
    assert found.is_asgi_app and found.import_string == "main:app"


def test_the_warm_up_imports_what_the_pages_import_and_loads_the_default_models(monkeypatch):
    from ui import caches, server
    names = server.page_imports()
    for needed in ("ui.pickers", "ui.sweeps", "mae_core.evaluation.figures", "mae_core.classroom.zoo"):
        assert needed in names
    assert "__future__" not in names
    loaded = []
    real = caches.get_model
    monkeypatch.setattr(caches, "get_model", lambda path: loaded.append(Path(path).stem) or real(path))
    monkeypatch.setitem(server.STATE, "seconds", None)
    server.warm()
    from mae_core.classroom import zoo
    assert loaded == ["fmnist_r75", zoo.best_representation()["name"]]   # Reconstruct's and the Embeddings page's
    from mae_core.classroom import worker
    from ui import training
    data = next(iter(training.data_choices()))                         # the Train page's default form, timed
    assert (data, training.preset_choices(data)[0], training.MASK_RATIO, training.NORM_PIX, training.BATCH,
            training.EVAL_IMAGES) in [k[:6] for k in worker._estimates.keys()]
    assert server.STATE["seconds"] > 0 and server.STATE["imported"].is_set()
    from PIL import Image
    assert Image._initialized >= 1                                      # the image plugins: loaded before a visit


def test_the_warm_up_compiles_every_page_into_the_servers_script_cache(monkeypatch):
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from ui import server

    class Started:   # the parts of a started server's runtime the warm-up reads
        _script_cache = ScriptCache()
        _main_script_path = str(ROOT / "app" / "main.py")
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: True))
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: Started))
    server.compile_pages()
    pages = {str(p) for p in (ROOT / "app" / "views").glob("*.py")}
    assert set(Started._script_cache._cache) == pages | {str(ROOT / "app" / "main.py")} and len(pages) == 5


@pytest.mark.browser
def test_the_server_says_when_it_has_warmed_up(server):
    deadline, status = time.time() + 180, None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(server + "/_mae/warm-up", timeout=5) as r:
                status, body = r.status, json.loads(r.read())
                break
        except urllib.error.HTTPError as e:    # 503 while it warms up
            assert e.code == 503 and json.loads(e.read())["warmed_up"] is False
        time.sleep(0.5)
    assert status == 200 and body["warmed_up"] is True and body["seconds"] > 0
