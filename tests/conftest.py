import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
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
        app.run()
        app.switch_page(str(ROOT / "app" / "views" / view))
        for k, v in state.items():
            app.session_state[k] = v
        app.run()
        assert not app.exception, app.exception
        return app
    return open_page
