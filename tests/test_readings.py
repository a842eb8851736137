"""Plain words first: every reading is a short headline over the full sentence, and the two never disagree."""
import pytest

from mae_core.evaluation import readings
from mae_core.classroom import zoo
from mae_core.checkpoints import list_bundled
from mae_core.evaluation.comparisons import ratio_judgement, ratio_series
from mae_core.evaluation.readings import ratio_verdict

JARGON = ("interval", "paired", "bootstrap", "probe", "kNN", "MSE", "harmonic", "[", "±")


def _plain(r):
    assert r.headline and len(r.headline.split()) <= readings.MAX_HEADLINE_WORDS, r.headline
    assert not any(j in r.headline for j in JARGON), r.headline
    assert r.details and r.headline not in r.details


@pytest.fixture(scope="module")
def bundled():
    return list_bundled()


def test_figure5_headline_names_the_best_ratio_and_the_ones_too_close_to_call(bundled):
    series = ratio_series(bundled)
    r = readings.ratio(series)
    _plain(r)
    assert r.details == ratio_verdict(series)          # nothing removed: the full sentence is the details
    j = ratio_judgement(series)
    best = f"{j['best']['ratio']:.0%}"
    assert f"Hiding {best} " in r.headline and f"pretraining at {best} masking" in r.details
    for row, clear, _, _ in j["judged"]:               # every ratio not clearly worse is named as too close
        assert (f"{row['ratio']:.0%}" in r.headline) == (not clear)


def test_a_students_pick_of_the_best_ratio_gets_its_reason(bundled):
    j = ratio_judgement(ratio_series(bundled))
    best = j["best"]
    assert readings.ratio_pick(best["ratio"], j) == f"You picked {best['ratio']:.0%}: right."
    for row, clear, _, _ in j["judged"]:
        said = readings.ratio_pick(row["ratio"], j)
        if clear:   # the bundled series: 25% is clearly below 85%
            assert said == (f"You picked {row['ratio']:.0%}: it did worse, {100 * row['linear_probe_both']:.1f}% right "
                            f"against {100 * best['linear_probe_both']:.1f}%, a bigger gap than training twice makes.")
        else:
            assert said == f"You picked {row['ratio']:.0%}: too close to call."
    assert any(clear for _, clear, _, _ in j["judged"])
    assert readings.ratio_pick(0.4, j) == "You picked 40%: no model here was trained that way."


def test_readings_of_the_bundled_cards_are_plain(bundled):
    for r in (readings.target(bundled), readings.decoder(bundled), readings.convergence(bundled)):
        _plain(r)
    assert "as in the paper" in readings.target(bundled).headline
    ft, _ = zoo.finetune_results(bundled[0])
    r = readings.finetune(ft["rows"])
    _plain(r)
    full = next(x for x in ft["rows"] if x["mode"] == "full")
    assert f"{full['accuracy']:.0%}" in r.headline and f"{full['accuracy']:.1%}" in r.details
    # the card's convergence check (the table's settings, 12 epochs): what it found is said, not guessed
    longer = next(x for x in ft["longer"]["rows"] if x["mode"] == "full")
    said = readings.finetune_of(ft).details
    assert longer["epochs"] > full["epochs"] and longer["curve"][-1][1] == pytest.approx(longer["accuracy"], abs=1e-4)
    assert f"run for {longer['epochs']} epochs instead, it reached {longer['accuracy']:.1%}" in said
    assert "likely add a little" not in said and said == ft["reading"]


def test_a_fine_tuning_table_says_what_it_may_be_compared_with():
    full = readings.finetune_budget(60_000, "the full-split probe")
    assert full == "Every row learns from the same 60,000 labelled images as the full-split probe: like with like."
    few = readings.finetune_budget(5_000, "the last step's scores", "Every bar", "labelled pictures")
    assert few == ("Every bar learns from the same 5,000 labelled pictures (not the 60,000 of the last step's "
                   "scores): compare them with each other.")
    assert readings.finetune_budget(None, "the full-split probe") == ""


def test_a_run_still_rising_is_said_to_be_so():
    def row(mode, acc, gain=None):
        return {"mode": mode, "accuracy": acc, "ci95": [acc - 0.005, acc + 0.005], "epochs": 8,
                "last_quarter_gain": gain}
    rows = [row("logreg", 0.88), row("full", 0.92, 0.1), row("scratch", 0.81, 2.13)]
    said = readings.finetune_reading(rows)
    assert said.endswith("pretraining adds +11.0 points. Same ViT from scratch was still rising (+2.1 points over its "
                         "last quarter of 8 epochs), so a longer run would narrow the gap.")
    assert "Full fine-tuning was still rising" not in said                         # +0.1: under the 0.3-point bar
    rows[1]["last_quarter_gain"] = 0.33
    assert "Full fine-tuning was still rising (+0.3 points" in readings.finetune_reading(rows)


def test_a_longer_run_replaces_the_guess_with_what_it_found():
    def row(mode, acc, gain=None, epochs=8, half=0.005):
        return {"mode": mode, "accuracy": acc, "ci95": [acc - half, acc + half], "epochs": epochs,
                "last_quarter_gain": gain}
    rows = [row("logreg", 0.88), row("full", 0.92, 0.33), row("scratch", 0.81, 2.13)]
    said = readings.finetune_reading(rows, [row("full", 0.925, 0.12, 12)])
    assert ("Full fine-tuning was still rising (+0.3 points over its last quarter of 8 epochs); run for 12 epochs "
            "instead, it reached 92.5% [92.0%, 93.0%]: +0.5 points, within the intervals (not a clear difference), "
            "and it had stopped improving (+0.1 points over its last quarter, under the 0.3-point bar).") in said
    assert "likely add a little" not in said and "so a longer run would narrow the gap." in said   # scratch: no check
    said = readings.finetune_reading(rows, [row("full", 0.94, 0.5, 12, 0.004)])
    assert "it reached 94.0% [93.6%, 94.4%]: +2.0 points, and it was still rising (+0.5 points" in said
    rows[1]["last_quarter_gain"] = 0.1                       # the table's run was level: the check said after it
    said = readings.finetune_reading(rows, [row("full", 0.921, 0.0, 12)])
    assert said.endswith("Run for 12 epochs instead, full fine-tuning reached 92.1% [91.6%, 92.6%]: +0.1 points, within "
                         "the intervals (not a clear difference), and it had stopped improving (+0.0 points over "
                         "its last quarter, under the 0.3-point bar).")
    assert readings.finetune_reading(rows, [row("full", 0.95, 0.0, 8)]) == readings.finetune_reading(rows)  # not longer
    assert readings.finetune(rows, [row("full", 0.921, 0.0, 12)]).headline == readings.finetune(rows).headline
    # a card's results, as stored: the table, with its longer run where it keeps one
    longer = {"rows": [row("full", 0.921, 0.0, 12)]}
    assert readings.finetune_of({"rows": rows, "longer": longer}) == readings.finetune(rows, longer["rows"])
    assert readings.finetune_of({"rows": rows}) == readings.finetune(rows)


def test_the_last_layer_below_the_probe_of_the_same_model_is_explained(bundled):
    ft, _ = zoo.finetune_results(bundled[0])
    card = zoo.bundled_card(ft["checkpoint"], bundled)
    assert card is not None and zoo.bundled_card("no such model", bundled) is None
    said = readings.head_below_probe(ft["rows"], card, "the last step's", 60_000)
    assert said == (" The last layer alone (88.2%) sits a little below the last step's 89.2% for the same model and "
                    "labels: it reads only the mean of the encoder's patches, what every classifier here shares, "
                    "where the last step's also reads the cls token.")
    assert readings.head_below_probe(ft["rows"], card, "the last step's", 5_000) == ""   # other labels: no pairing
    assert readings.head_below_probe(ft["rows"], None, "the last step's", 60_000) == ""


def test_a_students_pick_of_the_best_fine_tuning_gets_its_reason():
    def row(mode, acc, half=0.005):
        return {"mode": mode, "accuracy": acc, "ci95": [acc - half, acc + half]}
    rows = [row("logreg", 0.882), row("last-1", 0.918), row("full", 0.922), row("scratch", 0.809)]
    assert readings.finetune_pick("full", rows, "tune it all") == "You picked “tune it all”: right."
    assert readings.finetune_pick("last-1", rows, "the last block") == (
        "You picked “the last block”: too close to call with the best.")               # intervals overlap
    assert readings.finetune_pick("scratch", rows, "no pretraining") == (
        "You picked “no pretraining”: not this time, 80.9% right against 92.2%.")


def _strategy_rows(block=0.87, grid=0.86, rnd=0.88, ci=0.004):
    def row(s, p, err):
        return {"strategy": s, "own_error": err, "probe": p, "probe_ci": [p - ci, p + ci]}
    return [row("random", rnd, 0.014), row("block", block, 0.019), row("grid", grid, 0.0126)]


def test_figure6_headlines_follow_the_judgement():
    r = readings.strategy(_strategy_rows())
    _plain(r)
    assert r.headline == "Hiding patches at random taught the encoder best, as in the paper; the easiest task (grid) did not."
    r = readings.strategy(_strategy_rows(block=0.878, grid=0.877, ci=0.01))
    assert r.headline.startswith("Random hiding scored best, as in the paper, but the gaps are too small")
    r = readings.strategy(_strategy_rows(block=0.90))
    assert r.headline == "Unlike the paper, block hiding taught the encoder better than random here."
    assert readings.strategy([]) == readings.NONE


def test_one_picture_says_who_is_closer_with_the_rounded_share():
    assert readings.one_picture(0.02, 0.04).headline == \
        "The MAE's fill is closer than copying the neighbours: 50% less error."
    assert readings.one_picture(0.05, 0.04).headline == \
        "Copying the neighbours is closer than the MAE here: 20% less error."
    assert "nothing left to guess" in readings.one_picture(0.01, 0.0).headline
    _plain(readings.one_picture(0.02, 0.04))


def _curve(mae, base):
    rows = []
    for r, (a, b) in zip((0.25, 0.5, 0.75), zip(mae, base)):
        rows += [{"strategy": "random", "ratio": r, "mean": a}, {"strategy": "harmonic:random", "ratio": r, "mean": b}]
    return rows


def test_the_error_curves_headline():
    assert "at every ratio shown" in readings.classical_curves(_curve((1, 2, 3), (2, 3, 4)), ["random"]).headline
    assert "beats this model everywhere" in readings.classical_curves(_curve((3, 4, 5), (2, 3, 4)), ["random"]).headline
    r = readings.classical_curves(_curve((1, 2, 3), (0.5, 3, 4)), ["random"])
    _plain(r)
    assert r.headline.startswith("The MAE beats copying the neighbours when much is hidden")


def test_the_score_table_headline():
    model = {"linear_probe": 0.8, "knn": 0.7, "n_test": 500}
    assert "better than raw pixels, on both" in readings.scores(model, {"linear_probe": 0.7, "knn": 0.6}, "both").headline
    assert readings.scores(model, {"linear_probe": 0.9, "knn": 0.8}, "both").headline.startswith("Raw pixels")
    r = readings.scores(model, {"linear_probe": 0.7, "knn": 0.8}, "both")
    _plain(r)
    assert "win with a simple classifier, and not with the other test" in r.headline


def test_convergence_from_the_quick_check_when_no_card_has_the_full_one():
    r = readings.convergence([], [("a", 0.001), ("b", 0.002)])
    assert r.headline.startswith("Training had stopped improving") and "a: +0.1 points" in r.details
    r = readings.convergence([], [("a", 0.05), ("b", 0.0)])
    assert r.headline == "The a model may still have been improving; the others had stopped."
    assert readings.convergence([], []) == readings.NONE


def test_the_full_split_headline_against_raw_pixels(bundled):
    card = next(c for c in bundled if c["name"] == "fmnist_r75_normpix")
    r = readings.full_split(card)
    _plain(r)
    assert r.headline == "With all 60,000 labels, a simple classifier sorts these features better than raw pixels: " \
                         "89% against 85% right."
    assert "Paired difference to raw pixels on the same images: +" in r.details
    assert readings.full_split({"name": "x"}) == readings.NONE


def test_an_accuracy_is_written_with_its_interval_when_it_has_one():
    from mae_core.evaluation.readings import with_interval
    assert with_interval(0.8912, (0.8851, 0.8983)) == "89.1% [88.5%, 89.8%]"
    assert with_interval(0.8912) == with_interval(0.8912, []) == "89.1%"
