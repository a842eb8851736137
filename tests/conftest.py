import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent  # mae_core is installed (pip install -e .); app/ and tests/ are on
                                               # pytest's pythonpath (pyproject.toml)
os.environ.setdefault("MAE_CACHE_DIR", str(ROOT / ".pytest_cache" / "mae_cache"))
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_config():
    from mae_core.model import MAEConfig
    return MAEConfig(img_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=2, num_heads=2,
                     decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
                     pixel_mean=(0.5, 0.5, 0.5), pixel_std=(0.25, 0.25, 0.25))


@pytest.fixture
def tiny_model(tiny_config):
    from mae_core.model import MaskedAutoencoderViT
    torch.manual_seed(0)
    return MaskedAutoencoderViT(tiny_config).eval()


@pytest.fixture
def app_page(tmp_path, monkeypatch):
    """Open the app in AppTest on one page: app_page("ratios.py", **session_state_before_first_run)."""
    from streamlit.testing.v1 import AppTest

    def open_page(view: str, timeout: float = 180, **state):
        monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("MAE_RUNS_DIR", str(tmp_path / "runs"))
        app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=timeout)
        app.switch_page(str(ROOT / "app" / "views" / view))   # arriving at the page's address: no first page run
        for k, v in state.items():
            app.session_state[k] = v
        app.run()
        assert not app.exception, app.exception
        return app
    return open_page


@pytest.fixture(scope="session")
def trained_micro(tmp_path_factory):
    """One finished training run shared by the tests that need a trained model and its files: the micro model,
    1 epoch of the bundled subset at batch 100 (16 steps), logging every step. Tests that change the run copy it
    first (``copy_run``)."""
    from mae_core.train import TrainArgs, pretrain
    out = tmp_path_factory.mktemp("trained_micro") / "micro"
    args = TrainArgs(data="fashion-mnist-subset", preset="mae_fmnist_micro", epochs=1, batch_size=100, lr=1e-3,
                     warmup_epochs=0, out=str(out), progress=False, eval_images=50, log_every=1)
    card = pretrain(args)
    assert card["status"] == "finished" and card["steps"] == 16
    return out


def read_tables(markup: str) -> list:
    """The tables of ``ui.tables`` in an HTML text, each as {column heading: [cells]} (what st.table's value was)."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found, self.rows, self.cell = [], None, None

        def handle_starttag(self, tag, attrs):
            if tag == "table" and ("class", "mae-table") in attrs:
                self.rows = []
            elif self.rows is not None and tag == "tr":
                self.rows.append([])
            elif self.rows is not None and tag in ("th", "td"):
                self.cell = ""

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("th", "td") and self.cell is not None:
                self.rows[-1].append(self.cell.replace("\u00a0", " "))   # an interval's kept spaces: as typed
                self.cell = None
            elif tag == "table" and self.rows is not None:
                head, *body = self.rows
                self.found.append({h: [r[i] for r in body] for i, h in enumerate(head)})
                self.rows = None

    parser = Tables()
    parser.feed(markup)
    return parser.found


def tables(app) -> list:
    """Every table an AppTest run drew with ``ui.tables``, in page order."""
    return [t for h in app.get("html") for t in read_tables(h.proto.body)]


def copy_run(stem: Path, dest: Path) -> Path:
    """Copy a run's files (weights, card, state, metrics) to ``dest`` under the same name; returns the new stem."""
    import shutil
    dest.mkdir(parents=True, exist_ok=True)
    for f in stem.parent.glob(stem.name + ".*"):
        shutil.copy2(f, dest / f.name)
    return dest / stem.name


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `streamlit run` of the app for a browser test module, with its own cache and runs folders."""
    from browser import streamlit_server
    env = {"MAE_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "MAE_RUNS_DIR": str(tmp_path_factory.mktemp("runs")),
           "OMP_NUM_THREADS": "1"}
    with streamlit_server(env) as url:
        yield url


@pytest.fixture(autouse=True, scope="session")
def _one_component_scan():
    """AppTest scans the installed packages for Streamlit components once per AppTest (a real server once, at its
    start); one shared scan for the whole test session, as a server has."""
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.testing.v1 import app_test
    shared = BidiComponentManager()
    shared.discover_and_register_components(start_file_watching=False)
    real = app_test.AppTest.__init__

    def init(self, *a, **k):
        real(self, *a, **k)
        self._bidi_component_manager = shared
    app_test.AppTest.__init__ = init
    yield
    app_test.AppTest.__init__ = real


@pytest.fixture(autouse=True, scope="session")
def _one_script_cache():
    """AppTest compiles main.py and the page (Streamlit's "magic" rewrite, then compile) on every run, with a new
    script cache each time; a real server compiles each script once and keeps it (its runtime's one script cache).
    One cache for the whole test session, as a server has: a script is compiled again only when its file changes
    (the cache is keyed by path, so a changed file is dropped from it here)."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    class Shared(ScriptCache):
        def get_bytecode(self, script_path):
            path = os.path.abspath(script_path)
            stamp = (os.stat(path).st_mtime_ns, os.stat(path).st_size) if os.path.exists(path) else None
            with self._lock:
                if self._stamps.get(path) != stamp:   # a changed (or new) file: compiled again
                    self._cache.pop(path, None)
                    self._stamps[path] = stamp
            return super().get_bytecode(script_path)
    shared = Shared()
    shared._stamps = {}
    real = app_test.ScriptCache, local_script_runner.ScriptCache
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared
    yield
    app_test.ScriptCache, local_script_runner.ScriptCache = real
