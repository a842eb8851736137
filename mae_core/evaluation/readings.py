"""Plain words first: every reading the app shows is a ``Reading``, a headline of at most about 20 plain words that
a 15-year-old follows, and the details (intervals, paired differences, protocols, split sizes) that a researcher
checks, one click away. The details are the full sentences that judge the evidence, all in this module (the
``*_verdict`` functions, ``score_reading``, ``finetune_reading``, ``versus_classical``, ``points``); each headline
here is drawn from the same judgement, so the two never disagree. Which cards are compared is ``comparisons``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from . import cards
from .comparisons import CONVERGED_BAR, decoder_series, ratio_judgement, target_pair
from .sweep import BASELINE_PREFIX
from ..masking import STRATEGIES
from ..metrics import clear_difference

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


def with_interval(value: float, ci: Optional[Sequence[float]] = None) -> str:
    """An accuracy with its 95% interval, as every table and reading writes it: "89.1% [88.5%, 89.8%]" (the value
    alone without one)."""
    return f"{value:.1%}" + (f" [{ci[0]:.1%}, {ci[1]:.1%}]" if ci else "")


def ratio(model_cards: Sequence[dict], pool: str = "both", raw: Optional[dict] = None,
          judgement: Optional[dict] = None) -> Reading:
    """Figure 5: which pretraining ratio gave the best features, and whether the others are clearly worse
    (``judgement``: ``comparisons.ratio_judgement``'s, when the caller has it already)."""
    j = judgement or ratio_judgement(model_cards, pool)
    if j is None:
        return NONE
    best, judged = j["best"], j["judged"]
    low = [(r, c) for r, c, _, _ in judged if r["ratio"] <= 0.5]
    close = [_pct(r["ratio"]) for r, c, _, _ in judged if not c]
    listed = ", ".join(close[:-1]) + " and " + close[-1] if len(close) > 1 else "".join(close)
    also = f"; {listed} {'was' if len(close) == 1 else 'were'} too close to call" if close else ""
    paper = ", as in the paper" if 0.7 <= best["ratio"] <= 0.8 else " (the MAE paper: 75%)"
    if best["ratio"] >= 0.6 and low:
        head = f"Hiding {_pct(best['ratio'])} while training worked best{paper}{also}."
    elif best["ratio"] >= 0.6:
        head = f"Of the high ratios tried, {_pct(best['ratio'])} worked best{also}."
    else:
        head = f"Here hiding {_pct(best['ratio'])} while training worked best; the paper found about 75% best."
    return Reading(head, ratio_verdict(model_cards, pool, raw, judgement=j))


def ratio_pick(pick: float, judgement: dict, pool: str = "both") -> str:
    """What the lesson says to a student's guess of the best pretraining ratio (``comparisons.ratio_judgement``'s
    ``judgement``): right, too close to call, or clearly worse with both scores, so "not this time" never stands
    without its reason."""
    key, best = f"linear_probe_{pool}", judgement["best"]
    if pick == best["ratio"]:
        return f"You picked {_pct(pick)}: right."
    row, clear = next(((r, c) for r, c, _, _ in judgement["judged"] if r["ratio"] == pick), (None, False))
    if row is None:
        return f"You picked {_pct(pick)}: no model here was trained that way."
    if not clear:
        return f"You picked {_pct(pick)}: too close to call."
    return (f"You picked {_pct(pick)}: it did worse, {100 * row[key]:.1f}% right against {100 * best[key]:.1f}%, "
            "a bigger gap than training twice makes.")


def strategy(rows: Sequence[dict]) -> Reading:
    """Figure 6: random hiding against block and grid hiding (rows as ``strategy_verdict``'s, below)."""
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


def finetune_of(results: dict) -> Reading:
    """``finetune`` of a card's (or ``finetune.read_results``') fine-tuning results: its table, with the longer run
    of it the card keeps (``finetune.store_longer``) where there is one."""
    return finetune(results["rows"], (results.get("longer") or {}).get("rows", ()))


def finetune(rows: Sequence[dict], longer: Sequence[dict] = ()) -> Reading:
    """A fine-tuning table: the whole encoder trained, against a last layer on the frozen encoder and from scratch
    (``longer``: the same protocol run longer, as ``finetune_reading``)."""
    details = finetune_reading(rows, longer)
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


def finetune_budget(n: Optional[int], probe: str, each: str = "Every row", noun: str = "labelled images") -> str:
    """What a fine-tuning table may be compared with, from its label budget ``n``: the full-split probe (``probe``
    names where it is shown) when both learnt from the same labels, else only its own rows."""
    if not n:
        return ""
    if n == cards.FULL_SPLIT_LABELS:
        return f"{each} learns from the same {n:,} {noun} as {probe}: like with like."
    return (f"{each} learns from the same {n:,} {noun} (not the {cards.FULL_SPLIT_LABELS:,} of {probe}): "
            "compare them with each other.")


def head_below_probe(rows: Sequence[dict], card: Optional[dict], whose: str, n: Optional[int]) -> str:
    """Why a fine-tuning table's linear head sits below the same model's full-split probe (``card``'s, on cls + mean
    features; ``whose`` names where that probe is shown) on the same labels: it reads other features. Empty when
    it does not sit below, or the two did not learn from the same labels."""
    probe = cards.read(card).probe("both") if card else None
    lin = next((r["accuracy"] for r in rows if r["mode"] in ("logreg", "probe")), None)
    if n != cards.FULL_SPLIT_LABELS or probe is None or lin is None or lin >= probe:
        return ""
    return (f" The last layer alone ({lin:.1%}) sits a little below {whose} {probe:.1%} for the same model and "
            "labels: it reads only the mean of the encoder's patches, what every classifier here shares, where "
            f"{whose} also reads the cls token.")


def finetune_pick(pick: str, rows: Sequence[dict], name: str) -> str:
    """What the lesson says to a student's guess of the best way to use the labels (``name``: the pick's plain
    name): right, too close to call with the best, or below it with both scores."""
    by = {r["mode"]: r for r in rows}
    top = max(rows, key=lambda r: r["accuracy"])
    if pick == top["mode"]:
        return f"You picked “{name}”: right."
    mine = by[pick]
    if not clear_difference(mine["ci95"], top["ci95"]):
        return f"You picked “{name}”: too close to call with the best."
    return f"You picked “{name}”: not this time, {mine['accuracy']:.1%} right against {top['accuracy']:.1%}."


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
        head = (f"With all {cards.FULL_SPLIT_LABELS:,} labels, a simple classifier sorts these features "
                f"{'better' if sure else 'a bit better'} than raw pixels: {p:.0%} against {r:.0%} right.")
    else:
        head = (f"With all {cards.FULL_SPLIT_LABELS:,} labels, raw pixels sort as well as these features or better: "
                f"{r:.0%} against {p:.0%}.")
    return Reading(head + ("" if sure else " The gap is within the noise."), details)


# --------------------------------------------------------------------------------------------------
# The full sentences (a Reading's details): differences in points, the classical fill, the score table,
# fine-tuning, and the bundled series' verdicts
# --------------------------------------------------------------------------------------------------

def points(a: float, b: float, clear: Optional[bool], paired=None) -> str:
    """a - b in points with what the intervals say: '-0.6 points [-0.9, -0.3], a clear difference' (nothing said
    when ``clear`` is None: the caller says once that there are no intervals)."""
    out = f"{100 * (a - b):+.1f} points"
    if paired is not None:
        out += f" [{100 * paired[0]:+.1f}, {100 * paired[1]:+.1f}]"
    return out + {True: ", a clear difference", False: ", within the intervals", None: ""}[clear]


NO_INTERVALS = "These cards carry no intervals, so no difference here can be called clear."


def versus_classical(mine: float, theirs: float, what: str = "pixel") -> str:
    """One sentence comparing the MAE's error on the hidden patches with the classical fill's, on the same image and
    mask. Safe for every pair of numbers: an image of one colour gives the fill an error of exactly 0."""
    lead = f"On this image and mask the MAE's {what} error is "
    if theirs <= 0:
        if mine <= 1e-12:
            return lead + "0, like the classical fill's (harmonic inpainting): the hidden patches are easy to guess."
        return (lead + f"{mine:.3g}, while the classical fill (harmonic inpainting) is exact: this image has no "
                "detail to guess, just copying the neighbours is perfect.")
    change = mine / theirs - 1
    side = f"{-change:.0%} below" if change < 0 else f"{change:.0%} above"
    return lead + side + " the classical fill's (harmonic inpainting, shown last in the row below)."


def score_reading(model: dict, raw: dict, pool: str, epochs: Optional[int] = None) -> str:
    """One honest sentence on a score table (``metrics.scores`` rows for the model's features and raw pixels):
    who wins by how many points, and, when the MAE loses, the likely reasons."""
    d_probe = 100 * (model["linear_probe"] - raw["linear_probe"])
    d_knn = 100 * (model["knn"] - raw["knn"])
    n_test = model.get("n_test", 0)
    se = 100 * 2 * (0.25 / max(n_test, 1)) ** 0.5  # ~95% half-width of one accuracy near 50%: a noise floor
    head = (f"MAE features {'beat' if d_probe > 0 else 'trail'} raw pixels by {abs(d_probe):.1f} points on the linear "
            f"probe and {'beat' if d_knn > 0 else 'trail'} them by {abs(d_knn):.1f} on kNN")
    notes = []
    if max(abs(d_probe), abs(d_knn)) < se:
        notes.append(f"with {n_test} test points, differences under about {se:.0f} points are within noise")
    if d_probe <= 0 or d_knn <= 0:
        if n_test and n_test < 1000:
            notes.append("the split is small (use more points, or the model card's full-split figures)")
        if pool == "cls":
            notes.append("the cls token is the weakest feature of a short pretraining run (try cls + mean)")
        if epochs is not None and epochs < 10:
            notes.append(f"this model pretrained for only {epochs} epochs")
    tail = "; ".join(notes)
    return head + (f" ({tail})" if tail else "") + "."


def mode_label(mode: str) -> str:
    """A mode as a table row says it: 'last-2' -> 'last 2 blocks tuned'."""
    if mode.startswith("last-"):
        k = mode.split("-", 1)[1]
        return f"last {k} block{'s' if k != '1' else ''} tuned"
    return {"logreg": "linear head on the frozen encoder",
            "probe": "linear probe (head trained by SGD)", "full": "full fine-tuning",
            "scratch": "same ViT from scratch"}.get(mode, mode)


def finetune_reading(rows, longer: Sequence[dict] = ()) -> str:
    """One sentence on what a results table shows: fine-tuning against the best linear head, and against training
    from scratch, in points, saying when the intervals overlap. Empty when the rows lack the modes compared.
    ``longer``: rows of the same protocol run for more epochs (a convergence check of the table, ``finetune
    --longer``): what each says of its mode replaces the guess that a longer run would add a little."""
    by = {r["mode"]: r for r in rows}
    lin = by.get("logreg") or by.get("probe")
    tuned = by.get("full") or next((r for r in rows if r["mode"].startswith("last-")), None)
    if not lin or not tuned:
        return ""

    def vs(a, b):   # from the figures as shown (one decimal), so the reader's subtraction agrees
        d = round(100 * a["accuracy"], 1) - round(100 * b["accuracy"], 1)
        sure = clear_difference(a["ci95"], b["ci95"])
        return f"{d:+.1f} points" + ("" if sure else ", within the intervals (not a clear difference)")
    out = (f"{mode_label(tuned['mode']).capitalize()} reaches {tuned['accuracy']:.1%}: {vs(tuned, lin)} against the "
           f"{mode_label(lin['mode'])} at {lin['accuracy']:.1%}.")
    if "scratch" in by:
        out += f" The same ViT trained from scratch on these images reaches {by['scratch']['accuracy']:.1%}: " \
               f"pretraining adds {vs(tuned, by['scratch'])}."
    checked = {r["mode"]: r for r in longer if r.get("epochs") and r["mode"] in by
               and r["epochs"] > (by[r["mode"]].get("epochs") or 0)}
    rising = [r for r in (tuned, by.get("scratch")) if r and (r.get("last_quarter_gain") or 0) > 100 * CONVERGED_BAR]
    for r in rising:   # a gap to a run that had not stopped improving is an upper bound of the gap
        name = mode_label(r["mode"])
        out += (f" {name[0].upper() + name[1:]} was still rising ({r['last_quarter_gain']:+.1f} points over "
                f"its last quarter of {r['epochs']} epochs)" + (
                    "; " if r["mode"] in checked else
                    ", so a longer run would " + ("narrow the gap." if r["mode"] == "scratch" else "likely add a little.")))
        if r["mode"] in checked:
            out += _longer_run(r, checked.pop(r["mode"]))
    for r in checked.values():
        out += " " + _longer_run(by[r["mode"]], r, start=True)
    return out


def _longer_run(short: dict, long: dict, start: bool = False) -> str:
    """What the same mode run for more epochs found: its accuracy against the table's, and whether it had stopped
    improving by its own last quarter."""
    d = round(100 * long["accuracy"], 1) - round(100 * short["accuracy"], 1)
    sure = clear_difference(long["ci95"], short["ci95"])
    gain = long.get("last_quarter_gain")
    name = mode_label(long["mode"])
    said = (("Run" if start else "run") + f" for {long['epochs']} epochs instead, {name if start else 'it'} "
            f"reached {with_interval(long['accuracy'], long['ci95'])}: {d:+.1f} points"
            + ("" if sure else ", within the intervals (not a clear difference)"))
    if gain is None:
        return said + "."
    if gain > 100 * CONVERGED_BAR:
        return said + f", and it was still rising ({gain:+.1f} points over its last quarter)."
    return said + (f", and it had stopped improving ({gain:+.1f} points over its last quarter, under the "
                   f"{100 * CONVERGED_BAR:.1f}-point bar).")


def baseline_verdict(rows: Sequence[dict], strategy: str = "random") -> str:
    """One sentence on where the MAE beats the classical baseline on the same masks, and where it does not."""
    mae = {r["ratio"]: r["mean"] for r in rows if r["strategy"] == strategy}
    base = {r["ratio"]: r["mean"] for r in rows if r["strategy"] == BASELINE_PREFIX + strategy}
    ratios = sorted(set(mae) & set(base))
    if not ratios:
        return ""
    wins = [r for r in ratios if mae[r] < base[r]]
    loses = [r for r in ratios if mae[r] >= base[r]]

    def spans(rs):
        out, start, prev = [], None, None
        for r in rs:
            if start is None:
                start = prev = r
            elif round(r - prev, 6) <= 0.051:
                prev = r
            else:
                out.append((start, prev))
                start = prev = r
        if start is not None:
            out.append((start, prev))
        return ", ".join(f"{a:.2f}" if a == b else f"{a:.2f}–{b:.2f}" for a, b in out)
    label = STRATEGIES[strategy].label if strategy in STRATEGIES else strategy
    if not loses:
        best = max(ratios, key=lambda r: base[r] - mae[r])
        return (f"{label} masks: the MAE's error is below harmonic inpainting's at every ratio shown, by up to "
                f"{100 * (1 - mae[best] / base[best]):.0f}% (at {best:.2f}).")
    if not wins:
        return (f"{label} masks: harmonic inpainting's error is at or below the MAE's at every ratio shown: this model "
                "does not beat a fill with no learning (a short training run, or a model for other images?).")
    return (f"{label} masks: the MAE's error is below harmonic inpainting's at ratios {spans(wins)}, and not at "
            f"{spans(loses)}.")


def strategy_verdict(rows: Sequence[dict]) -> str:
    """What a Figure 6 table shows, stated from its numbers: rows {"strategy", "own_error", "probe"} with optional
    "probe_ci" and "vs_random_ci" (the paired interval of the row's probe minus random's). The paper's reading (grid:
    an easy task and a worse representation; block: hard, and also worse) is given only where the numbers, with
    their intervals, agree with it; otherwise the sentence says what they show instead."""
    if len(rows) < 2:
        return ""
    label = lambda s: (STRATEGIES[s].label if s in STRATEGIES else s).lower()  # noqa: E731
    easiest = min(rows, key=lambda r: r["own_error"])
    best = max(rows, key=lambda r: r["probe"])
    also = "; the paper finds grid easiest too" if easiest["strategy"] == "grid" else ""
    parts = [f"The easiest pretraining task was {label(easiest['strategy'])} masking (held-out error "
             f"{easiest['own_error']:.4f} on its own masks{also}); the best linear probe came from "
             f"{label(best['strategy'])} masking ({best['probe']:.1%})."]
    rnd = next((r for r in rows if r["strategy"] == "random"), None)
    if rnd is None:
        return parts[0]
    others = [r for r in rows if r is not rnd]
    judged = [(r, clear_difference(r.get("probe_ci"), rnd.get("probe_ci"), r.get("vs_random_ci"))) for r in others]
    said = "; ".join(f"{label(r['strategy'])} {points(r['probe'], rnd['probe'], c, r.get('vs_random_ci'))}"
                     for r, c in judged)
    scale = "at this scale (28-pixel images, a 7×7 grid of patches, a small model)"
    if all(r["probe"] < rnd["probe"] and c for r, c in judged):
        parts.append(f"As in the paper, random masking gives the best representation here (against random: {said})"
                     + ("; the easiest task did not give the best features." if easiest is not rnd else "."))
    elif all(r["probe"] < rnd["probe"] for r, _ in judged):
        parts.append(f"Random masking probed best, as in the paper, but not clearly (against random: {said}): {scale} "
                     "the test set cannot tell them apart.")
    elif any(r["probe"] > rnd["probe"] and c for r, c in judged):
        parts.append(f"Unlike the paper, random masking did not give the best representation here (against "
                     f"random: {said}): {scale} the paper's finding does not show.")
    else:
        parts.append(f"Random masking did not probe highest, but no strategy beat it clearly (against random: {said}): "
                     f"{scale} the test set cannot tell them apart, so this neither shows nor contradicts the paper.")
    if any(c is None for _, c in judged):
        parts.append(NO_INTERVALS)
    return " ".join(parts)


def ratio_verdict(model_cards: Sequence[dict], pool: str = "both", raw: Optional[dict] = None,
                  judgement: Optional[dict] = None) -> str:
    """What the Figure 5 view shows, from the series' cards: the pretraining ratio with the best linear probe, every
    other ratio's difference to it (paired over the test images where the cards keep per-image results, else by
    their separate intervals), and whether that agrees with the paper (a high ratio, near 75%, is best); then, where
    every card can be paired with the raw-pixel baseline (``raw``: default the stored one), how each compares with
    raw pixels. ``judgement``: ``ratio_judgement``'s, when the caller has it already."""
    j = judgement or ratio_judgement(model_cards, pool)
    if j is None:
        return ""
    rows, best, judged, spread, reruns, by_name = (j[k] for k in ("rows", "best", "judged", "spread", "reruns",
                                                                   "by_name"))
    key, ci = f"linear_probe_{pool}", f"linear_probe_{pool}_ci"

    def said(r, c, p, within_rerun):
        if within_rerun:
            return f"{r['ratio']:.0%}: {points(r[key], best[key], None, p)}, no more than a rerun can move"
        return f"{r['ratio']:.0%}: {points(r[key], best[key], c, p)}"
    out = (f"The best linear probe came from pretraining at {best['ratio']:.0%} masking "
           f"({with_interval(best[key], best.get(ci))}); "
           + "; ".join(said(*j) for j in judged) + ".")
    low = [(r, c) for r, c, _, _ in judged if r["ratio"] <= 0.5]
    if best["ratio"] >= 0.6 and low and all(c for _, c in low):
        out += " As in the paper (Figure 5), a high masking ratio gives the better representation."
    elif best["ratio"] >= 0.6:
        out += (" A high ratio is best, as in the paper (Figure 5), but not every lower ratio tried is clearly worse "
                "here." if low else " No ratio at or below 50% is in this series to compare with.")
    else:
        out += (f" Unlike the paper (Figure 5: best near 75%), {best['ratio']:.0%} scored best here; the paper's "
                "longer schedules and larger images are not reproduced at this scale.")
    if any(c is None for _, c, _, _ in judged):
        out += " " + NO_INTERVALS
    for r, rr in reruns:   # a rerun of a series model's own command (cards converged --replay): the spread of one run
        out += (f" Rerun spread: the {r['ratio']:.0%} model is "
                f"{points(rr['final_probe_diff'], 0, None, rr['final_probe_diff_ci'])} from a rerun of its own "
                f"command, paired; so a gap between ratios counts as clear here only when it is larger than "
                f"{100 * spread:.1f} points.")
    vs_raw = [(r, cards.vs_raw_ci(by_name[r["name"]], "linear_probe", pool, raw)) for r in rows]
    if all(d is not None for _, d in vs_raw):
        vs_raw.sort(key=lambda rd: rd[0]["ratio"])
        said = "; ".join(f"{r['ratio']:.0%} [{100 * d[0]:+.1f}, {100 * d[1]:+.1f}]" for r, d in vs_raw)
        if all(d[0] > 0 for _, d in vs_raw):
            head = "Every ratio's features beat raw pixels clearly"
        elif all(d[1] < 0 for _, d in vs_raw):
            head = "Every ratio's features trail raw pixels clearly"
        else:
            head = "Against raw pixels the ratios differ"
        out += f" {head} (paired difference on the same test images, points: {said})."
    return out


def target_verdict(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> str:
    """What the bundled models say about the reconstruction target, from the cards of ``target_pair``: each probe,
    the paired difference where both cards keep per-image results, and whether that agrees with the paper
    (norm-pix gives the better representation). Empty when no such pair is bundled."""
    pair = target_pair(model_cards, data)
    if pair is None:
        return ""
    norm, pix = map(cards.read, pair)
    a, b = norm.probe("both"), pix.probe("both")
    ci = lambda c: c.embedding_metrics.get("linear_probe_both_ci")  # noqa: E731
    paired = cards.paired_ci(pair[0], pair[1])
    clear = clear_difference(ci(norm), ci(pix), paired)
    out = (f"Same model, data, {float(norm.mask_ratio):.0%} {norm.mask_strategy} masks and {norm.epochs} epochs, only "
           f"the target differs: the model that predicts normalised pixels (each patch's mean and spread taken out) "
           f"probes {a:.1%}, the one that predicts plain pixels {b:.1%}: norm-pix {points(a, b, clear, paired)}.")
    if a > b and clear:
        out += " As in the paper (Table 1d), the normalised target gives the better representation."
    elif a > b:
        out += " Norm-pix probed higher, as in the paper (Table 1d), but not clearly at this scale."
    elif clear:
        out += " Unlike the paper (Table 1d), the plain-pixel target gave the better representation here."
    else:
        out += " Unlike the paper (Table 1d), norm-pix did not probe higher here, though not clearly."
    return out + (" " + NO_INTERVALS if clear is None else "")


def decoder_verdict(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> str:
    """What the bundled models say about the decoder's depth, from ``decoder_series``: each depth's probe, each
    deeper decoder's paired difference to the shallowest, and whether the deepest agrees with the paper (a deeper
    decoder gives the better linear probe). Empty when no such series is bundled."""
    series = decoder_series(model_cards, data)
    if not series:
        return ""
    read = [(d, c, cards.read(c)) for d, c in series]
    (d0, c0, base), deeper = read[0], read[1:]
    ci = lambda card: card.embedding_metrics.get("linear_probe_both_ci")  # noqa: E731
    judged = []
    for d, c, card in deeper:
        paired = cards.paired_ci(c, c0)
        judged.append((d, card, paired, clear_difference(ci(card), ci(base), paired)))
    probes = ", ".join(f"{d} blocks {card.probe('both'):.1%}" for d, _, card in read)
    diffs = "; ".join(f"{d} blocks {points(card.probe('both'), base.probe('both'), clear, paired)}"
                      for d, card, paired, clear in judged)
    out = (f"The same encoder architecture, data, {float(base.mask_ratio):.0%} {base.mask_strategy} masks, "
           f"{'norm-pix' if base.norm_pix_loss else 'pixel'} target and {base.epochs} epochs; only the decoder's depth "
           f"differs (the probe reads the encoder only). Linear probe on cls + mean features: {probes}; against "
           f"{d0} blocks: {diffs}.")
    _, card, _, clear = judged[-1]
    higher = card.probe("both") > base.probe("both")
    if higher and clear:
        out += (" As in the paper (Table 1a), the deeper decoder gives the better linear probe: with more decoder "
                "blocks left to finish the reconstruction, the encoder's last blocks can stay more abstract.")
    elif higher:
        out += " The deeper decoder probed higher, as in the paper (Table 1a), but not clearly at this scale."
    elif clear:
        out += " Unlike the paper (Table 1a), the deeper decoder gave the worse linear probe here."
    else:
        out += " Unlike the paper (Table 1a), the deeper decoder did not probe higher here" + (
            "." if clear is None else ", though the difference is within the intervals.")
    if not (higher and clear):
        depth = base.config.get("depth")
        out += (" The paper measured its gain on ImageNet with a far larger ViT; at this scale (28-pixel images, "
                f"{f'a {depth}-block encoder' if depth else 'a small encoder'}) it does not show"
                f"{' clearly' if higher else ''}.")
    errors = [(d, c.metrics.get("heldout_eval_mse_matched")) for d, _, c in read]
    if all(e is not None for _, e in errors):
        out += " Held-out shape MSE at 75% (how well each reconstructs): " + ", ".join(
            f"{d} blocks {e:.4f}" for d, e in errors) + "."
    return out + (" " + NO_INTERVALS if any(j[3] is None for j in judged) else "")


def convergence_reading(model_cards: Sequence[dict]) -> str:
    """The full-protocol convergence checks on the cards (``cards converged``: the final model against a snapshot
    from earlier in its run, paired on the same test images), one clause each, with what each says against
    ``CONVERGED_BAR``; "" when no card has one."""
    said = []
    for c in model_cards:
        card = cards.read(c)
        g = card.convergence
        if not g or "probe_gain_ci" not in g:
            continue
        lo, hi = g["probe_gain_ci"]
        if g["probe_gain"] < CONVERGED_BAR:
            what = f"under the {100 * CONVERGED_BAR:.1f}-point bar: it had stopped improving"
        elif lo > 0:
            what = "a clear gain above the bar: still improving"
        else:
            what = "above the bar, but the interval reaches zero"
        replay = g.get("replay") or {}
        where = ""
        if g.get("measured_on") == "replay":   # both ends from a rerun of the same command (the bundled run kept none)
            where = " of a replay of its run"
            what += (f"; the bundled model's probe is "
                     f"{points(replay['final_probe_diff'], 0, None, replay['final_probe_diff_ci'])} from the replay's "
                     "final one, paired: how far a rerun of the same command lands")
        elif "probe_max_abs_diff" in replay:   # a replay rounds differently: say how close it stayed
            what += (f"; its epoch-{g['from_epoch']} snapshot is from a replay of the run, whose probe during training "
                     f"stayed within {100 * replay['probe_max_abs_diff']:.1f} points of the run's own")
        said.append(f"{card.short_label}, epoch {g['from_epoch']} to {g['to_epoch']}{where}: probe "
                    f"{points(g['probe_gain'], 0, None, (lo, hi))}, kNN "
                    f"{100 * g['knn_gain']:+.1f} [{100 * g['knn_gain_ci'][0]:+.1f}, {100 * g['knn_gain_ci'][1]:+.1f}]"
                    f" ({what})")
    if not said:
        return ""
    return ("The same check on the full protocol (60k / 10k), the final model against a snapshot kept from the start "
            "of its last quarter, paired on the same test images: " + "; ".join(said) + ".")
