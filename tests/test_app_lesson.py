"""AppTest walks the lesson: Next to the end, Back to the start, the address restores a step, Reveal scores a guess,
the predict-first questions, and the last step's buttons."""
from pathlib import Path

import numpy as np
import pytest

from mae_core.classroom import lesson

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def at(app_page):
    return app_page("lesson.py")


def _headline(app):
    return app.subheader[0].value


def _said(app):
    return " ".join(m.value.replace("\\", "") for m in app.markdown)


def test_next_to_the_end_and_back_to_the_start(at):
    seen = []
    for k, step in enumerate(lesson.STEPS):
        assert not at.exception, at.exception
        assert _headline(at) == step.headline
        assert at.query_params["step"] == str(k + 1)
        assert any(f"step {k + 1} of {len(lesson.STEPS)}" in h.value for h in at.get("html")
                   if "lesson-progress" in h.value)
        assert sum(e.label == "Details" for e in at.expander) >= 1          # the numbers one click away
        seen.append(_headline(at))
        if k < len(lesson.STEPS) - 1:
            at.button(key="lesson_next").click().run()
    assert at.button(key="lesson_next").disabled
    for k in range(len(lesson.STEPS) - 1, 0, -1):
        at.button(key="lesson_back").click().run()
        assert _headline(at) == lesson.STEPS[k - 1].headline
    assert at.button(key="lesson_back").disabled and at.query_params["step"] == "1"
    assert len(set(seen)) == len(lesson.STEPS)


def test_the_address_restores_a_step_and_a_bad_one_says_why(app_page, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MAE_RUNS_DIR", str(tmp_path / "runs"))
    for value, want, warned in (("5", 4, False), ("42", 0, True)):
        app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
        app.switch_page(str(ROOT / "app" / "views" / "lesson.py"))   # the address lesson?step=...
        app.query_params["step"] = value
        app.run()
        assert not app.exception
        assert _headline(app) == lesson.STEPS[want].headline
        assert any("the lesson has steps 1 to 9" in w.value for w in app.warning) == warned


def test_reveal_scores_the_guess_beside_the_mae_and_the_classical_fill(at):
    at.button(key="lesson_next").click().run()
    assert _headline(at) == "Can you guess what is hidden?"
    assert "37 of 49 patches are hidden" in _said(at)
    assert at.button(key="lesson_reveal").disabled is False
    # a stroke of the painter: every hidden patch painted mid-grey
    levels = [0.5 if h else -1.0 for h in at.session_state["lesson_guess_for"][2] and
              np.isin(np.arange(49), at.session_state["lesson_guess_for"][2])]
    at.session_state["lesson_levels"] = levels
    at.run()
    assert "You painted 100% of them" in " ".join(c.value for c in at.caption)
    at.button(key="lesson_reveal").click().run()
    assert not at.exception
    tiles = next(h.value for h in at.get("html") if "lesson-reveal" in h.value)
    for name in ("Your guess", "The MAE", "Copying the neighbours"):
        assert name in tiles
    answer = next(h.value for h in at.get("html") if "lesson-answer" in h.value)   # in the painter's place
    assert "The real picture" in answer and not any("mae-guess" in h.value for h in at.get("html"))
    assert "came closest" in _said(at)
    assert "the best guess this brush can paint" in _said(at)
    assert at.button(key="lesson_reveal").disabled
    assert [b.label for b in at.button if b.key == "lesson_clear"] == ["Try again"]
    at.button(key="lesson_clear").click().run()                          # a fresh canvas
    assert at.session_state["lesson_levels"] == [-1.0] * 49 and not at.session_state["lesson_revealed"]
    at.button(key="lesson_another").click().run()                        # the next picture, a fresh guess
    assert at.session_state["img_index"] == 1 and "Reveal" in [b.label for b in at.button]


def test_predict_first_then_the_evidence(at):
    at.session_state["lesson_step"] = 6
    at.run()
    assert _headline(at) == "Does it matter how much is hidden while training?"
    assert at.button(key="lesson_show_ratio").disabled                   # pick before the answer
    assert not at.get("plotly_chart")
    at.pills(key="lesson_pick_ratio").set_value(0.75).run()
    at.button(key="lesson_show_ratio").click().run()
    assert len(at.get("plotly_chart")) == 1
    said = _said(at)
    # the bundled series (25, 50, 60, 75, 85, 90%): 85% scored best, by 0.1 points over 75% and 60%, within the
    # intervals
    assert "You picked 75%: too close to call." in said
    assert ("Hiding 85% while training worked best (the MAE paper: 75%); 50%, 60%, 75% and 90% were too close to call."
            in said)
    assert "Training the very same model twice can change its score by about 1% of the pictures" in said
    at.button(key="lesson_next").click().run()
    at.pills(key="lesson_pick_ft").set_value("scratch").run()
    at.button(key="lesson_show_ft").click().run()
    said = _said(at)
    assert "You picked “no pretraining”: not this time, 80.9% right against 92.2%." in said
    assert "Without pretraining: 81%" in said
    assert "Every bar learns from the same 60,000 labelled pictures as the last step's scores: like with like." in said
    # the details say what the card's longer run of the table found (the same reading as the Embeddings page's)
    from mae_core.checkpoints import list_bundled
    from mae_core.classroom import zoo
    from mae_core.evaluation import readings
    ft, _ = zoo.finetune_results(next(c for c in list_bundled() if c["name"] == "fmnist_r85"))
    assert ft.get("longer") and readings.finetune_of(ft).details in said


def test_every_step_runs_on_the_photo_model_too(at):
    box = at.selectbox(key="bundled_choice")
    box.set_value(next(lab for lab in box.options if lab.startswith("Photos"))).run()
    assert at.session_state["active_model"].endswith("photo64_r75.safetensors")
    for k in range(len(lesson.STEPS)):
        at.session_state["lesson_step"] = k
        at.run()
        assert not at.exception and not at.error, (k, at.error)
    at.session_state["lesson_step"] = 5
    at.run()
    assert any("needs a Fashion-MNIST model" in i.value for i in at.info)


def test_your_turn_opens_the_pages_with_the_lessons_picture_and_mask(at):
    at.session_state["lesson_step"] = 8
    at.run()
    labels = [b.label for b in at.button]
    for want in ("Paint your own masks", "Try every mask ratio", "Explore the map", "Train your own MAE"):
        assert want in labels
    at.button(key="lesson_go_reconstruct").click().run()
    assert not at.exception
    assert at.header[0].value.startswith("What does the MAE put back")
    assert np.asarray(at.session_state["mask_editor"].mask).sum() == 37


def test_reconstruct_starts_the_lesson_at_its_first_step(app_page):
    app = app_page("reconstruct.py")
    app.session_state["lesson_step"] = 5            # a lesson seen before, left at step 6
    app.button(key="start_lesson").click().run()
    assert not app.exception
    assert _headline(app) == lesson.STEPS[0].headline and app.query_params["step"] == "1"


def test_a_patch_picked_on_another_models_grid_is_not_reused(at):
    at.session_state["lesson_step"] = 3
    at.session_state["lesson_patch_pick"] = 60        # picked on the photo model's 8 x 8 grid
    at.run()
    assert not at.exception and not at.error
    assert any("was **hidden**" in m.value or "was **visible**" in m.value for m in at.markdown)
