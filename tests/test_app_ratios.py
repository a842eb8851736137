"""AppTest drives the Mask ratios page."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def at(tmp_path, monkeypatch):
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path / "cache"))
    app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    app.run()
    app.switch_page(str(ROOT / "app" / "views" / "ratios.py"))
    app.session_state["sw_images"] = 16
    app.session_state["sw_seeds"] = 1
    app.run()
    assert not app.exception, app.exception
    return app


def test_ratio_page_renders_every_section(at):
    assert at.title[0].value == "Mask ratio and masking strategy"
    assert len(at.tabs) == 3
    labels = [b.label for b in at.get("download_button")]
    assert "Curves (CSV)" in labels and "Figure (PNG)" in labels
    assert any("Mean over 16 images × 1 seeds" in c.value for c in at.caption)


def test_changing_strategies_and_strip(at):
    at.multiselect(key="sw_strategies").set_value(["grid"]).run()
    assert not at.exception
    at.multiselect(key="sw_strategies").set_value([]).run()
    assert any("Pick at least one strategy" in i.value for i in at.info)
    at.multiselect(key="strip_ratios").set_value([0.5]).run()
    at.radio(key="strip_strategy").set_value("block").run()
    assert not at.exception
    at.slider(key="strat_ratio").set_value(0.5).run()
    assert not at.exception
