"""AppTest drives the Embeddings page (PCA keeps it quick; t-SNE is covered in test_embed and the browser test)."""
import pytest
from conftest import tables


@pytest.fixture
def at(app_page):
    return app_page("embeddings.py", emb_method="pca", emb_n=400)


def _table_rows(app):
    t = next(t for t in tables(app) if "train / test" in t)  # the table of these points (not the card's)
    return dict(zip(t[""], t["kNN accuracy"]))


@pytest.mark.slow
def test_page_shows_map_point_neighbours_and_scores(at):
    assert at.header[0].value == "What the encoder has learned"
    # a first visit opens on the bundled model and feature with the strongest probe, and says so
    assert any("the bundled model with the strongest representation" in i.value for i in at.info)
    from mae_core.classroom import zoo
    assert at.session_state["bundled_choice"] == zoo.best_representation()["label"] == "85% · norm-pix · 24 ep"
    assert any("400 points · PCA of 384-d cls + mean features" in c.value for c in at.caption)
    rows = _table_rows(at)
    assert set(rows) == {"this model", "raw pixels"}
    assert all(v.endswith("%") for v in rows.values())
    reading = " ".join(m.value.replace("\\", "") for m in at.markdown)
    assert "raw pixels by" in reading and "understates" not in reading   # the table beside it says otherwise
    # the fine-tuning rows say their label budget: the same 60,000 labels as the full-split probe (like with like)
    assert any("Every row learns from the same 60,000 labelled images as the full-split probe: like with like."
               in c.value for c in at.caption)
    # and why its linear head sits under that probe (the page opens on cls + mean features: other features)
    assert at.session_state["emb_pool"] == "both"
    assert any("The last layer alone (88.2%) sits a little below the full-split probe's 89.2% for the same model"
               in c.value for c in at.caption)
    assert any("fit on 300 of the points and scored on the other 100" in c.value for c in at.caption)
    assert any("On the full split" in m.value for m in at.markdown)
    # the card and the stored raw-pixel baseline both keep per-image results: their paired difference is stated
    md = [m.value.replace("\\", "") for m in at.markdown]
    assert any("Paired difference to raw pixels on the same images: +" in t and "on kNN" in t for t in md)
    assert any(t.startswith("**With all 60,000 labels, a simple classifier sorts these features better than raw "
                            "pixels: ") for t in md)          # its plain headline first
    assert any("of the neighbours share the class of #0" in c.value for c in at.caption)
    # the card's fine-tuning table, with its reading and protocol: the opened model's, or (when its card has none)
    # a bundled model's, named
    from mae_core.checkpoints import list_bundled
    from mae_core.classroom.zoo import best_representation, finetune_results
    opened = next(c for c in list_bundled() if c["name"] == best_representation()["name"])
    ft_card, whose = finetune_results(opened)
    assert any("no fine-tuning results yet; shown: those of the bundled" in i.value for i in at.info) == bool(whose)
    ft = next(t for t in tables(at) if "trained weights" in t)
    assert list(ft[""])[:2] == ["linear head on the frozen encoder", "last 1 block tuned"]
    assert "full fine-tuning" in list(ft[""]) and "same ViT from scratch" in list(ft[""])
    said = [m.value.replace("\\", "") for m in at.markdown]
    assert any(t.startswith("**Tuning the whole encoder beats training only a last layer: ")
               for t in said)                                            # the plain headline first
    assert any(t.startswith("Full fine-tuning reaches") for t in said)  # the figures under Details
    # and what the card's longer run (same settings, more epochs) found, instead of a guess
    longer = next(r for r in ft_card["longer"]["rows"] if r["mode"] == "full")
    assert any(f"run for {longer['epochs']} epochs instead, it reached {longer['accuracy']:.1%}" in t
               and "likely add a little" not in t for t in said)
    assert any(t.startswith("**The encoder's features") or t.startswith("**Raw pixels") for t in said)
    assert any("Protocol: 60,000 labelled Fashion" in c.value.replace("\\", "") for c in at.caption)


@pytest.mark.slow
def test_point_pool_mask_and_comparison(at):
    at.number_input(key="emb_point").set_value(17).run()
    assert any("share the class of #17" in c.value for c in at.caption)
    at.selectbox(key="emb_pool").set_value("both").run()
    assert any("384-d cls + mean features" in c.value for c in at.caption)
    at.slider(key="emb_mask").set_value(0.5).run()
    assert any("with 50% of patches hidden" in c.value for c in at.caption)
    options = at.selectbox(key="emb_compare").options
    if len(options) > 1:
        at.selectbox(key="emb_compare").set_value(options[1]).run()
        assert len(_table_rows(at)) == 3
    assert not at.exception


def test_bad_folder_is_a_message(at, tmp_path):
    from mae_core.classroom.glossary import TERMS   # the tooltips carry the glossary's plain sentences
    assert TERMS["cls token"] in at.selectbox(key="emb_pool").help and TERMS["t-SNE"] in at.radio(key="emb_method").help
    at.selectbox(key="emb_source").set_value("folder").run()
    assert any("choose an image folder" in e.value for e in at.error)
    at.text_input(key="emb_folder").set_value(str(tmp_path / "nope")).run()
    assert any("not inside a folder this server allows" in e.value for e in at.error)  # outside the allowed folders
    at.text_input(key="emb_folder").set_value(str(tmp_path / "cache" / "nope")).run()
    assert any("is not a folder" in e.value for e in at.error)                         # inside: the real reason
    assert not at.exception


@pytest.mark.slow
def test_tsne_map_says_which_engine_made_it(app_page):
    pytest.importorskip("numba")
    app = app_page("embeddings.py", emb_method="tsne", emb_n=300)
    assert any("300 points · t-SNE (exact forces, perplexity 30) of 384-d cls + mean features" in c.value
               for c in app.caption), [c.value for c in app.caption]
    assert not app.exception


def test_quick_fine_tune_waits_for_a_free_slot_on_a_busy_server(at, monkeypatch):
    """The in-app fine-tune borrows one of the server's training slots: with every slot taken it says so and runs
    nothing."""
    import sys
    monkeypatch.setenv("MAE_MAX_RUNNING", "1")
    reg = sys.modules["ui.caches"].registry()          # the page's own (cached) registry
    with reg.slot("someone else", "a run"):
        at.button(key="ft_run").click().run()
        warn = " ".join(w.value.replace("\\", "") for w in at.warning)   # its text shown through plain()
        assert "Not now: the server is busy: 1 of its 1 training slot(s) in use; try the fine-tune again" in warn
        assert not any("Quick run:" in c.value for c in at.caption)
    assert not at.exception
    assert reg._running() == 0


@pytest.mark.slow
def test_settings_kept_across_pages_and_the_default_model_stays_on_its_page(at):
    from pathlib import Path
    views = Path(__file__).resolve().parent.parent / "app" / "views"
    best = at.session_state["bundled_choice"]
    at.slider(key="emb_k").set_value(12).run()
    at.switch_page(str(views / "reconstruct.py")).run()
    assert not at.exception, at.exception
    # the Embeddings page's own default (the strongest representation) does not follow the visitor to Reconstruct
    assert at.selectbox(key="bundled_choice").value == at.selectbox(key="bundled_choice").options[0] != best
    at.switch_page(str(views / "embeddings.py")).run()
    assert at.session_state["bundled_choice"] == best and at.slider(key="emb_k").value == 12
    assert at.session_state["emb_n"] == 400 and at.radio(key="emb_method").value == "pca"
    # the note on the default model is said once (the fine-tuning note of a card without its own results stays)
    assert not [i.value for i in at.info if "strongest representation" in i.value]
    # a model the visitor picks is theirs on every page
    other = at.selectbox(key="bundled_choice").options[-1]
    at.selectbox(key="bundled_choice").set_value(other).run()
    at.switch_page(str(views / "reconstruct.py")).run()
    assert at.selectbox(key="bundled_choice").value == other


def test_a_first_visit_with_the_defaults_encodes_and_projects_nothing(app_page, monkeypatch):
    """The bundled models ship the page's default map, score table and neighbours (python -m
    mae_core.evaluation.precompute): a first visit with the defaults (2,000 pictures, t-SNE) runs no encoding of the
    set, no projection and no scoring; raw pixels' scores are shipped too."""
    import streamlit as st
    from ui import features
    from mae_core.evaluation import results

    def refuse(what):
        def f(*a, **k):
            raise AssertionError(f"a first visit computed {what}")
        return f
    for name in ("encode", "embedding_map", "scores", "neighbour_table"):
        monkeypatch.setattr(features, name, refuse(name))
    st.cache_resource.clear()
    results.clear_memory()
    at = app_page("embeddings.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("2000 points · t-SNE" in c.value and "768-d" not in c.value for c in at.caption)
    assert any("8 most similar images" in m.value and "all 384 numbers" in m.value for m in at.markdown)
    st.cache_resource.clear()


def test_the_map_turns_interactive_without_losing_a_scenes_note(app_page):
    """A session's first page shows the map as its picture; pointing at it reruns the page to draw the interactive
    map (ui.charts), and that rerun is no act of the visitor's: a prepared scene's note stays until one."""
    from ui import charts
    at = app_page("embeddings.py", emb_method="pca", emb_n=400, scene_note="Select image 1 on the map")
    assert any("Select image 1" in i.value for i in at.info) and not at.get("plotly_chart")
    at.session_state[charts.INTERACTIVE] = True    # what pointing at the picture does (its callback)
    at.session_state[charts.REDRAWN] = True
    at.run()
    assert any("Select image 1" in i.value for i in at.info) and len(at.get("plotly_chart")) == 1
    at.number_input(key="emb_point").set_value(3).run()      # the visitor acts: the note has been read
    assert not any("Select image 1" in i.value for i in at.info) and len(at.get("plotly_chart")) == 1
