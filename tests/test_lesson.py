"""The lesson's logic: its steps and their address, the predict-then-reveal scoring, the encoder's measured saving,
the neighbour agreement of a map and the maps precomputed per weights."""
import math

import numpy as np
import pytest
import torch

from mae_core.classroom import lesson
from mae_core.classroom.glossary import TERMS


def test_nine_steps_each_with_a_short_headline_and_known_terms():
    assert 7 <= len(lesson.STEPS) <= 9
    assert len({s.key for s in lesson.STEPS}) == len(lesson.STEPS)
    for s in lesson.STEPS:
        assert len(s.headline.split()) <= lesson.MAX_HEADLINE_WORDS, s.headline
        assert set(s.terms) <= set(TERMS), s.key


@pytest.mark.parametrize("value, index", [(None, 0), ("", 0), ("1", 0), ("3", 2), ("9", 8), (" 4 ", 3)])
def test_a_step_in_the_address_is_counted_from_one(value, index):
    assert lesson.step_from_param(value) == (index, "")


@pytest.mark.parametrize("value", ["0", "10", "-1", "abc", "2.5", "9" * 5000])
def test_a_bad_step_opens_the_first_with_a_notice(value):
    i, notice = lesson.step_from_param(value)
    assert i == 0 and "the lesson has steps 1 to 9" in notice and len(notice) < 100


def _picture():
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 28, 28, generator=g)


def _mask(n_hidden=37, seed=0):
    m = np.zeros(49, bool)
    m[np.random.default_rng(seed).permutation(49)[:n_hidden]] = True
    return m


def test_a_guess_keeps_the_visible_patches_and_paints_hidden_ones_flat():
    img, mask = _picture(), _mask()
    levels = [-1.0] * 49
    hidden = np.flatnonzero(mask)
    levels[hidden[0]] = 0.75
    out = lesson.guess_image(img, mask, levels, 4)
    pix = lesson._pixel_mask(mask, 7, 4)
    assert torch.equal(out[:, ~pix], img[:, ~pix])                       # visible: the picture itself
    r, c = divmod(int(hidden[0]), 7)
    assert torch.all(out[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4] == 0.75)    # painted: one flat grey
    r, c = divmod(int(hidden[1]), 7)
    assert torch.all(out[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4] == lesson.EMPTY_LEVEL)   # not painted: black
    with pytest.raises(ValueError, match="need 49 patch levels"):
        lesson.guess_image(img, mask, [0.5] * 10, 4)


def test_a_perfect_guess_scores_best_and_a_blank_one_like_the_empty_fill():
    img, mask = _picture(), _mask()
    assert lesson.hidden_error(img, img, mask, 4) == 0.0
    blank = lesson.guess_image(img, mask, [-1.0] * 49, 4)
    empty = img.clone()
    empty[:, lesson._pixel_mask(mask, 7, 4)] = lesson.EMPTY_LEVEL
    assert lesson.hidden_error(blank, img, mask, 4) == pytest.approx(lesson.hidden_error(empty, img, mask, 4))
    # the same number by hand: black against the hidden pixels
    pix = lesson._pixel_mask(mask, 7, 4)
    assert lesson.hidden_error(blank, img, mask, 4) == pytest.approx(float((img[:, pix] ** 2).mean()), rel=1e-6)
    # every other guess scores worse than the picture itself, and the brush's best beats random brush guesses
    best = lesson.guess_image(img, mask, lesson.best_brush(img, mask, 4), 4)
    rng = np.random.default_rng(1)
    for _ in range(20):
        other = lesson.guess_image(img, mask, list(rng.choice(lesson.BRUSH, 49)), 4)
        assert lesson.hidden_error(best, img, mask, 4) <= lesson.hidden_error(other, img, mask, 4) + 1e-9
        assert lesson.hidden_error(other, img, mask, 4) > 0


def test_nothing_hidden_has_no_score():
    img = _picture()
    assert math.isnan(lesson.hidden_error(img, img, np.zeros(49, bool), 4))
    assert lesson.painted_share([-1.0] * 49, np.zeros(49, bool)) == 0.0


def test_the_best_brush_is_the_nearest_grey_to_each_patch_mean():
    img = torch.zeros(1, 28, 28)
    img[:, :4, :4] = 0.3        # patch 0: mean 0.3 -> 0.25
    img[:, :4, 4:8] = 0.9       # patch 1: mean 0.9 -> 1.0
    mask = np.zeros(49, bool)
    mask[:2] = True
    best = lesson.best_brush(img, mask, 4)
    assert best[:3] == [0.25, 1.0, -1.0]
    assert lesson.painted_share(best, mask) == 1.0


def test_the_reveal_names_who_came_closest_in_plain_words():
    s = lesson.reveal_sentence({"your guess": 0.2, "the MAE": 0.02, "copying the neighbours": 0.1})
    assert s == "The MAE came closest: 80% less error than copying the neighbours, and 90% less than your guess."
    s = lesson.reveal_sentence({"your guess": 0.05, "the MAE": 0.1, "copying the neighbours": 0.2})
    assert s == "Your guess came closest: 50% less error than the MAE."
    assert "but only just" in lesson.reveal_sentence({"your guess": 0.100, "the MAE": 0.102, "x": 0.3})
    assert "exact" in lesson.reveal_sentence({"your guess": 0.0, "the MAE": 0.1})
    assert lesson.reveal_sentence({"your guess": float("nan"), "the MAE": 0.1}) == ""


def test_the_encoder_on_the_visible_quarter_is_timed_against_all_patches(tiny_model):
    mask = np.zeros(16, bool)
    mask[:12] = True
    t = lesson.time_encoder(tiny_model, mask, batch=4, repeats=3)
    assert (t["n_visible"], t["n_all"], t["batch"], t["repeats"]) == (4, 16, 4, 3)
    assert t["visible_ms"] > 0 and t["all_ms"] > 0
    assert t["speedup"] == pytest.approx(t["all_ms"] / t["visible_ms"])


def test_neighbour_agreement_is_one_for_separate_clusters_and_near_chance_for_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    centres = np.eye(8)[:4] * 10
    tight = centres[labels] + rng.normal(0, 0.01, (100, 8))
    assert lesson.neighbour_agreement(tight, labels, k=5) == 1.0
    noise = rng.normal(size=(100, 8))
    assert 0.1 < lesson.neighbour_agreement(noise, labels, k=5) < 0.45


def test_maps_of_a_model_and_of_raw_pixels(monkeypatch):
    from mae_core.model import MAEConfig, MaskedAutoencoderViT
    cfg = MAEConfig(img_size=28, patch_size=7, in_chans=1, embed_dim=16, depth=1, num_heads=2, decoder_embed_dim=8,
                    decoder_depth=1, decoder_num_heads=2, pixel_mean=(0.286,), pixel_std=(0.353,))
    torch.manual_seed(0)
    m = lesson.compute_maps(MaskedAutoencoderViT(cfg).eval(), n=60)
    assert m["n"] == 60 and len(m["labels"]) == 60 and len(m["classes"]) == 10
    assert np.asarray(m["model_xy"]).shape == (60, 2) and np.asarray(m["raw_xy"]).shape == (60, 2)
    assert 0 <= m["model_agree"] <= 1 and 0 <= m["raw_agree"] <= 1


def test_the_bundled_models_ship_their_lesson_results(monkeypatch):
    from mae_core.evaluation import results
    from mae_core.checkpoints import CHECKPOINT_DIR
    weights = CHECKPOINT_DIR / "fmnist_r75.safetensors"
    shipped = results.lookup(weights, "lesson-maps", lesson.MAP_SETTINGS)
    assert shipped is not None and shipped["n"] == lesson.MAP_IMAGES
    assert len(shipped["model_xy"]) == lesson.MAP_IMAGES and 0.5 < shipped["model_agree"] < 1
    curve = results.lookup(weights, "lesson-curve", lesson.CURVE_SETTINGS)
    assert len(curve) == 2 * len(lesson.CURVE_RATIOS)                  # the MAE and the classical fill
    # the page's functions read them and compute nothing
    monkeypatch.setattr(lesson, "compute_maps", lambda *a, **k: pytest.fail("computed a shipped map"))
    monkeypatch.setattr(lesson, "compute_curve", lambda *a, **k: pytest.fail("computed a shipped curve"))
    assert lesson.maps(weights, None) == shipped and lesson.curve(weights, None) == curve
