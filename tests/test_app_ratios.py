"""AppTest drives the Mask ratios page."""
import pytest


@pytest.fixture
def at(app_page):
    return app_page("ratios.py", sw_images=16, sw_seeds=1)


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
