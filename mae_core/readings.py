"""Plain words first: every reading the app shows is a ``Reading``, a headline of at most about 20 plain words that
a 15-year-old follows, and the details (intervals, paired differences, protocols, split sizes) that a researcher
checks, one click away. The details are the full sentences of the functions that judge the evidence (sweep's
verdicts, embed.score_reading, finetune.reading, explore.versus_classical); each headline here is drawn from the
same judgement, so the two never disagree."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from . import cards
from .embed import score_reading
from .explore import versus_classical
from .finetune import mode_label, reading as finetune_reading
from .masking import STRATEGIES
from .metrics import clear_difference
from .sweep import (BASELINE_PREFIX, CONVERGED_BAR, baseline_verdict, convergence_reading, decoder_series,
                    decoder_verdict, ratio_judgement, ratio_verdict, strategy_verdict, target_pair, target_verdict)

MAX_HEADLINE_WORDS = 20


@dataclass(frozen=True)
class Reading:
    headline: str
    details: str = ""

    def __bool__(self) -> bool:
        return bool(self.headline or self.details)


NONE = Reading("")


def _pct(v: float) -> str:
    return f"{v:.0%}"


def ratio(model_cards: Sequence[dict], pool: str = "both", raw: Optional[dict] = None,
          judgement: Optional[dict] = None) -> Reading:
    """Figure 5: which pretraining ratio gave the best features, and whether the others are clearly worse
    (``judgement``: ``sweep.ratio_judgement``'s, when the caller has it already)."""
    j = judgement or ratio_judgement(model_cards, pool)
    if j is None:
        return NONE
    best, judged = j["best"], j["judged"]
    low = [(r, c) for r, c, _, _ in judged if r["ratio"] <= 0.5]
    close = [_pct(r["ratio"]) for r, c, _, _ in judged if not c]
    also = f"; {' and '.join(close)} {'was' if len(close) == 1 else 'were'} too close to call" if close else ""
    if best["ratio"] >= 0.6 and low and all(c for _, c in low):
        head = f"Hiding {_pct(best['ratio'])} while training worked best, as in the paper{also}."
    elif best["ratio"] >= 0.6:
        head = (f"Hiding {_pct(best['ratio'])} while training worked best, as in the paper{also}." if low else
                f"Of the high ratios tried, {_pct(best['ratio'])} worked best{also}.")
    else:
        head = f"Here hiding {_pct(best['ratio'])} while training worked best; the paper found about 75% best."
    return Reading(head, ratio_verdict(model_cards, pool, raw, judgement=j))


def strategy(rows: Sequence[dict]) -> Reading:
    """Figure 6: random hiding against block and grid hiding (rows as ``sweep.strategy_verdict``'s)."""
    details = strategy_verdict(rows)
    rnd = next((r for r in rows if r["strategy"] == "random"), None)
    if not details or rnd is None:
        return Reading("", details)
    others = [r for r in rows if r is not rnd]
    judged = [(r, clear_difference(r.get("probe_ci"), rnd.get("probe_ci"), r.get("vs_random_ci"))) for r in others]
    easiest = min(rows, key=lambda r: r["own_error"])
    name = lambda r: (STRATEGIES[r["strategy"]].label if r["strategy"] in STRATEGIES else r["strategy"]).lower()  # noqa: E731
    if all(r["probe"] < rnd["probe"] and c for r, c in judged):
        head = "Hiding patches at random taught the encoder best, as in the paper" + (
            f"; the easiest task ({name(easiest)}) did not." if easiest is not rnd else ".")
    elif all(r["probe"] < rnd["probe"] for r, _ in judged):
        head = "Random hiding scored best, as in the paper, but the gaps are too small to be sure."
    elif any(r["probe"] > rnd["probe"] and c for r, c in judged):
        winner = max((r for r, c in judged if c and r["probe"] > rnd["probe"]), key=lambda r: r["probe"])
        head = f"Unlike the paper, {name(winner)} hiding taught the encoder better than random here."
    else:
        head = "No way of hiding clearly beat random here: the test cannot tell them apart."
    return Reading(head, details)


def _paired(card_a: dict, card_b: dict, *sentences: str) -> str:
    """One of four plain sentences for card_a's probe against card_b's (cls + mean features): (higher, clearly),
    (higher, not clearly), (lower, clearly), (lower, not clearly); clear as the paired interval says."""
    a, b = cards.read(card_a), cards.read(card_b)
    ci = lambda c: c.embedding_metrics.get("linear_probe_both_ci")  # noqa: E731
    clear = clear_difference(ci(a), ci(b), cards.paired_ci(card_a, card_b))
    higher = a.probe("both") > b.probe("both")
    return sentences[(0 if higher else 2) + (0 if clear else 1)]


def target(model_cards: Sequence[dict]) -> Reading:
    """Table 1d: predicting normalised patches (norm-pix) against plain pixels."""
    details = target_verdict(model_cards)
    pair = target_pair(model_cards)
    if not details or pair is None:
        return NONE
    return Reading(_paired(
        *pair, "Predicting each patch's shape (norm-pix) taught the encoder better than plain pixels, as in the paper.",
        "Predicting each patch's shape (norm-pix) scored a little higher than plain pixels, but not clearly.",
        "Unlike the paper, predicting plain pixels taught the encoder better than norm-pix here.",
        "Unlike the paper, norm-pix did not teach the encoder better here, though not clearly."), details)


def decoder(model_cards: Sequence[dict]) -> Reading:
    """Table 1a: a deeper decoder against the preset's."""
    details = decoder_verdict(model_cards)
    series = decoder_series(model_cards)
    if not details or not series:
        return NONE
    return Reading(_paired(
        series[-1][1], series[0][1], "A deeper decoder taught the encoder better, as in the paper.",
        "A deeper decoder scored a little higher, but not clearly: at this small scale it hardly matters.",
        "Unlike the paper, a deeper decoder made the encoder worse here.",
        "A deeper decoder made no clear difference at this small scale (the paper found it helps)."), details)


def convergence(model_cards: Sequence[dict], gains: Sequence[tuple] = ()) -> Reading:
    """Had training stopped improving? The full-protocol checks on the cards where there are some, else the quick
    check during training (``gains``: (model name, probe gain over the last quarter)), which the details state too."""
    full = convergence_reading(model_cards)
    quick = ""
    if gains:
        quick = ("A quick check during pretraining, noisy: linear probe (cls + mean, fit on 10,000 training images, "
                 "scored on 5,000 test images). Gain over the last quarter of training: "
                 + "; ".join(f"{n}: {100 * g:+.1f} points" for n, g in gains)
                 + f". Under {100 * CONVERGED_BAR:.1f} points means the probe had stopped improving at this budget."
                 + (" Where the full-protocol check covers a model, it replaces this one." if full else ""))
    details = " ".join(filter(None, (quick, full)))
    if not details:
        return NONE
    # each model's verdict: its full-protocol check where it has one, else the quick check during training
    full_by_name = {card.short_label: card.convergence for card in map(cards.read, model_cards)
                    if card.convergence and "probe_gain_ci" in card.convergence}
    quick = {n: g for n, g in gains if n not in full_by_name}
    still = [g for g in full_by_name.values() if g["probe_gain"] >= CONVERGED_BAR and g["probe_gain_ci"][0] > 0]
    rising = [n for n, g in quick.items() if g >= CONVERGED_BAR]   # the quick check has no interval: "may"
    if not still and not rising and all(g["probe_gain"] < CONVERGED_BAR for g in full_by_name.values()):
        head = "Training had stopped improving: more of the same training would change little."
    elif still:
        head = f"{'One model was' if len(still) == 1 else 'Some models were'} still improving when training stopped."
    elif rising:
        head = (f"The {' and '.join(rising)} model{'s' if len(rising) > 1 else ''} may still have been improving; "
                "the others had stopped.")
    else:
        head = "Training had nearly stopped improving; the last small gains are within the noise."
    return Reading(head, details)


def classical_curves(rows: Sequence[dict], strategies: Sequence[str]) -> Reading:
    """The error-against-ratio chart: where the MAE beats copying the neighbours (harmonic inpainting)."""
    details = " ".join(filter(None, (baseline_verdict(rows, s) for s in strategies)))
    if not details:
        return NONE
    wins, total = 0, 0
    lowest_win = {}
    for s in strategies:
        mae = {r["ratio"]: r["mean"] for r in rows if r["strategy"] == s}
        base = {r["ratio"]: r["mean"] for r in rows if r["strategy"] == BASELINE_PREFIX + s}
        for r in sorted(set(mae) & set(base)):
            total += 1
            if mae[r] < base[r]:
                wins += 1
                lowest_win.setdefault(s, r)
    if total and wins == total:
        head = "The MAE fills the gaps better than copying the neighbours, at every ratio shown."
    elif wins == 0:
        head = "Copying the neighbours beats this model everywhere: it has not learned enough to help."
    else:
        head = ("The MAE beats copying the neighbours when much is hidden; with little hidden, copying does as "
                "well or better.")
    return Reading(head, details)


def one_picture(mine: float, theirs: float, what: str = "pixel") -> Reading:
    """One picture and mask: the MAE's fill against the classical fill."""
    details = versus_classical(mine, theirs, what)
    if theirs <= 0:
        head = "Copying the neighbours is exact here: this picture has nothing left to guess."
    elif mine < theirs:
        head = f"The MAE's fill is closer than copying the neighbours: {1 - mine / theirs:.0%} less error."
    else:
        head = f"Copying the neighbours is closer than the MAE here: {1 - theirs / mine:.0%} less error."
    return Reading(head, details)


def scores(model: dict, raw: dict, pool: str, epochs: Optional[int] = None) -> Reading:
    """The Embeddings page's score table: the encoder's features against raw pixels."""
    details = score_reading(model, raw, pool, epochs)
    d_probe, d_knn = model["linear_probe"] - raw["linear_probe"], model["knn"] - raw["knn"]
    if d_probe > 0 and d_knn > 0:
        head = "The encoder's features sort the classes better than raw pixels, on both tests."
    elif d_probe <= 0 and d_knn <= 0:
        head = "Raw pixels sort the classes as well as or better than these features."
    else:
        better = "a simple classifier" if d_probe > 0 else "nearest neighbours"
        head = f"The encoder's features win with {better}, and not with the other test."
    return Reading(head, details)


def finetune(rows: Sequence[dict]) -> Reading:
    """A fine-tuning table: the whole encoder trained, against a last layer on the frozen encoder and from scratch."""
    details = finetune_reading(rows)
    if not details:
        return NONE
    by = {r["mode"]: r for r in rows}
    lin = by.get("logreg") or by.get("probe")
    tuned = by.get("full") or next(r for r in rows if r["mode"].startswith("last-"))
    clear = clear_difference(tuned["ci95"], lin["ci95"])
    what = "Tuning the whole encoder" if tuned["mode"] == "full" else mode_label(tuned["mode"]).capitalize()
    if tuned["accuracy"] > lin["accuracy"] and clear:
        head = (f"{what} beats training only a last layer: {tuned['accuracy']:.0%} against "
                f"{lin['accuracy']:.0%} right.")
    elif tuned["accuracy"] > lin["accuracy"]:
        head = f"{what} scored a little higher than a last layer alone, but not clearly."
    else:
        head = f"Here a last layer alone did as well as {what.lower()} ({lin['accuracy']:.0%} right)."
    if "scratch" in by:
        head += f" Without pretraining: {by['scratch']['accuracy']:.0%}."
    return Reading(head, details)


def full_split(card: dict, pool: str = "both") -> Reading:
    """A model card's full-split test (60k / 10k) against raw pixels, for the features ``pool``."""
    c = cards.read(card)
    p, raw = c.probe(pool), cards.raw_baseline(card)
    if p is None or "linear_probe" not in raw:
        return NONE
    diff, diff_knn = cards.vs_raw_ci(card, "linear_probe", pool), cards.vs_raw_ci(card, "knn", pool)
    details = ("[lo, hi]: 95% bootstrap intervals over the test images."
               + (f" Paired difference to raw pixels on the same images: {100 * diff[0]:+.1f} to {100 * diff[1]:+.1f} "
                  "points on the linear probe" + (f", {100 * diff_knn[0]:+.1f} to {100 * diff_knn[1]:+.1f} on kNN"
                                                  if diff_knn else "") + "." if diff else ""))
    r = raw["linear_probe"]
    sure = diff is None or diff[0] > 0 or diff[1] < 0
    if p > r:
        head = (f"With all 60,000 labels, a simple classifier sorts these features {'better' if sure else 'a bit better'}"
                f" than raw pixels: {p:.0%} against {r:.0%} right.")
    else:
        head = f"With all 60,000 labels, raw pixels sort as well as these features or better: {r:.0%} against {p:.0%}."
    return Reading(head + ("" if sure else " The gap is within the noise."), details)
