"""AppTest drives the Mask ratios page: one section at a time, each computing only when shown."""
import json
import re
import pytest
from conftest import tables


@pytest.fixture
def at(app_page):
    return app_page("ratios.py", sw_images=16, sw_seeds=1)


def _downloads(app):
    return [b.label for b in app.get("download_button")]


@pytest.mark.slow
def test_first_visit_computes_only_the_first_section(at):
    assert at.header[0].value == "Mask ratio and masking strategy"
    assert not at.tabs                                    # no st.tabs: they would run every section's code
    assert "Curves (CSV)" in _downloads(at) and "Figure (PNG)" in _downloads(at)
    assert any("Mean over 16 images × 1 seeds" in c.value for c in at.caption)
    assert any("harmonic inpainting" in m.value for m in at.markdown)       # the baseline's verdict is stated
    assert "Side by side (PNG)" not in _downloads(at)                # the pretraining section did not run
    assert not any("pretrained-side-by-side" in h.value for h in at.get("html"))


@pytest.mark.slow
def test_changing_strategies_and_strip(at):
    at.multiselect(key="sw_strategies").set_value(["grid"]).run()
    assert not at.exception
    at.multiselect(key="sw_strategies").set_value([]).run()
    assert any("Pick at least one strategy" in i.value for i in at.info)
    at.multiselect(key="strip_ratios").set_value([0.5]).run()
    at.radio(key="strip_strategy").set_value("block").run()
    assert not at.exception


@pytest.mark.slow
def test_strategy_and_pretraining_sections(at):
    at.session_state["ratio_section"] = "strategy"
    at.run()
    assert [m.value.split(" — ")[0] for m in at.markdown if " hidden" in m.value] == \
        ["**Random**", "**Block**", "**Grid**"]
    at.slider(key="strat_ratio").set_value(0.5).run()
    assert not at.exception and "Images (PNG)" in _downloads(at)
    from mae_core.checkpoints import list_bundled
    from mae_core.evaluation.comparisons import strategy_series
    if len(strategy_series(list_bundled())) < 2:   # until the block/grid-pretrained models are bundled: say so
        assert any("not bundled yet" in i.value for i in at.info)
    else:                                          # then: the table and a sentence drawn from its numbers
        assert any("pretrained with" in t for t in tables(at))
        assert any("easiest pretraining task" in m.value for m in at.markdown)
        assert _chart_box(at, "chart_strat_task") and _chart_box(at, "chart_strat_probe")   # difficulty and probe
    at.session_state["ratio_section"] = "pre"
    at.run()
    assert not at.exception
    said = " ".join(m.value.replace("\\", "") for m in at.markdown)
    assert "models that differ only in the mask ratio used in pretraining" in said and "epochs each" in said
    assert "The best linear probe came from pretraining at " in said      # the Figure 5 reading, from the cards
    from mae_core.evaluation.comparisons import ratio_groups
    caps = " ".join(c.value for c in at.caption)
    if len(ratio_groups(list_bundled())) > 1:    # the bundled groups not shown are named
        assert "Also bundled, not in this series: " in caps
    from mae_core.evaluation.comparisons import target_pair  # two models that differ in the target only: the Table 1d reading
    assert ("Reconstruction target." in said) == (target_pair(list_bundled()) is not None)
    from mae_core.evaluation.comparisons import decoder_series  # models that differ in the decoder's depth only: Table 1a
    assert ("Decoder depth." in said) == bool(decoder_series(list_bundled()))
    # the paired full-protocol convergence check, where a card carries one (fmnist_r75_dec4's does)
    from mae_core.evaluation import cards
    assert ("The same check on the full protocol" in said) == any(cards.read(c).convergence for c in list_bundled())
    # the probe-against-epochs curves of every bundled model that has them (the norm-pix 75% one does)
    assert "Had training converged?" in [h.value for h in at.subheader]
    assert "75% · norm-pix · 24 ep: -0.1 points" in said
    # plain words first: each reading is a bold headline, its figures one click away under Details
    from mae_core.evaluation import readings
    from mae_core.evaluation.comparisons import ratio_series
    head = readings.ratio(ratio_series(list_bundled())).headline
    assert any(m.value.replace("\\", "") == f"**{head}**" for m in at.markdown)
    assert len(head.split()) <= readings.MAX_HEADLINE_WORDS
    assert sum(e.label == "Details" for e in at.expander) >= 3
    assert at.toggle(key="pre_heat").value is False       # the heatmap waits to be asked for
    assert "Side by side (PNG)" in _downloads(at)
    side = next(h.value for h in at.get("html") if "pretrained-side-by-side" in h.value)
    # each model's picture: its pretraining ratio in bold above its error, and alt text without the markup
    assert re.search(r"<b>25%</b><br>MSE 0\.\d{3}</figcaption>", side)
    assert "alt='25% MSE 0." in side


def test_a_first_visit_with_the_defaults_computes_no_sweep(app_page, monkeypatch):
    """The bundled models ship the page's default curves (python -m mae_core.evaluation.precompute): a first visit reads them."""
    import streamlit as st
    from ui import sweeps
    from mae_core.evaluation import results

    def refuse(*a, **k):
        raise AssertionError("the default curves were computed")
    monkeypatch.setattr(sweeps, "sweep", refuse)          # what the page's sweeps call
    results.clear_memory()
    st.cache_data.clear()
    at = app_page("ratios.py")
    assert not at.exception and not at.error
    assert _chart_box(at, "chart_curve") == ["Image", "touch_chart_curve"]   # its picture first (ui.charts)
    assert any("Mean over 16 images × 3 seeds" in c.value for c in at.caption)


def _chart_box(at, key: str) -> list:
    """What the box of the chart ``key`` holds: "Image" for its picture, "plotly" for the interactive chart, and
    the keys of other elements (the component that waits for the pointer)."""
    def kids(node):
        children = list(getattr(node, "children", {}).values())
        yield children
        for c in children:
            yield from kids(c)

    def name(e):
        ident, own = getattr(getattr(e, "proto", None), "id", "") or "", getattr(e, "key", None)
        if own == key or (own is None and key in ident and not hasattr(e, "children")):   # (the box's id has it)
            return "plotly"
        return own or type(e).__name__
    for children in kids(at.main):
        names = [name(e) for e in children]
        if "plotly" in names or f"touch_{key}" in names:
            return names
    return []


def test_a_first_page_shows_its_charts_as_pictures_until_the_visitor_points_at_one(app_page):
    """A session's first page draws each chart as its picture (a class's browsers draw at once: bench/class_load.py)
    and a component asks for the interactive charts when the pointer is on one; the run that draws them keeps the
    picture under each (it holds the place while plotly loads), the next drops it, and later pages draw plotly."""
    from ui import charts
    at = app_page("ratios.py", sw_images=16, sw_seeds=1)
    assert _chart_box(at, "chart_curve") == ["Image", "touch_chart_curve"] and not at.get("plotly_chart")
    at.session_state[charts.INTERACTIVE] = True       # what the component's "touched" does (its callback)
    at.run()
    assert _chart_box(at, "chart_curve") == ["Image", "plotly"]
    at.run()
    assert _chart_box(at, "chart_curve") == ["plotly"]
    at.segmented_control(key="ratio_section").set_value("pre").run()
    assert not at.exception and _chart_box(at, "chart_probe") == ["plotly"]
    presenter = app_page("ratios.py", sw_images=16, sw_seeds=1, presenter=True)   # the projector: plotly at once
    assert _chart_box(presenter, "chart_curve") == ["plotly"]
    # with type 1.3 times larger, as the page's text grows (14 -> 18 px ticks, 15 -> 20 px axis titles)
    sizes = [json.loads(a.get("plotly_chart")[0].proto.spec)["layout"] for a in (at, presenter)]
    assert [lay["xaxis"]["tickfont"]["size"] for lay in sizes] == [14, 18]
    assert [lay["yaxis"]["title"]["font"]["size"] for lay in sizes] == [15, 20]


def test_the_heatmap_and_the_strategy_rows_are_read_not_computed(app_page, monkeypatch):
    """The pretraining-ratio heatmap and the strategy comparison's errors are shipped for the bundled models: opening
    them computes no sweep; each row is the bundled model's own (one file a model, keyed by its weights)."""
    import streamlit as st
    from ui import sweeps
    from mae_core.evaluation import results

    def refuse(*a, **k):
        raise AssertionError("a shipped result was computed")
    for name in ("sweep", "heat_row", "strategy_errors"):
        monkeypatch.setattr(sweeps, name, refuse)
    results.clear_memory()
    st.cache_data.clear()
    at = app_page("ratios.py", ratio_section="pre", pre_heat=True)
    assert not at.exception and not at.error
    assert _chart_box(at, "chart_heat") == ["Image", "touch_chart_heat"]
    at.segmented_control(key="ratio_section").set_value("strategy").run()
    assert not at.exception and not at.error
    errors = tables(at)[0]["error on its own masks"]
    assert len(errors) >= 2 and all(0 < float(e) < 1 for e in errors)


def test_a_chart_picture_is_the_interactive_charts_size_and_made_once_for_the_server(monkeypatch):
    import io
    from PIL import Image
    from ui import charts
    from mae_core.evaluation import figures
    made = []
    real = figures.to_png
    monkeypatch.setattr(figures, "to_png", lambda *a, **k: made.append(1) or real(*a, **k))
    rows = [{"strategy": "random", "ratio": r, "n_hidden": int(49 * r), "mean": r / 10, "std": 0.005, "q25": 0,
             "q75": 0, "n": 4} for r in (0.25, 0.5, 0.75)]
    chart = figures.error_curve_chart(rows, pretrained_at=0.75)
    a = charts.picture(chart, 760)
    assert Image.open(io.BytesIO(a)).size == (760, chart.height)          # as wide as asked, as high as plotly's
    assert charts.picture(chart, 760) is a and len(made) == 1           # the second visitor's is the first's
    again = figures.error_curve_chart(rows[:2], pretrained_at=0.75)      # other content: its own picture
    assert charts.picture(again, 760) is not a and len(made) == 2
