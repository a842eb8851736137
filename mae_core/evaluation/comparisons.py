"""Which bundled models form a comparison: the cards that differ in one setting only (the pretraining ratio for
the paper's Figure 5, the masking strategy for Figure 6, the target, the decoder's depth), the probe table against
ratio, the best ratio judged with its intervals, and a run's probe against epochs. The sentences that read these
are in ``readings``."""
from __future__ import annotations

import json
import re
from typing import Callable, Optional, Sequence

from . import cards
from ..metrics import clear_difference


CONVERGED_BAR = 0.003   # "stopped improving": the probe rose under 0.3 points over the last quarter of training


_SCORE_KEY = re.compile(r"(knn|linear_probe)_(cls|mean|both)")


_CI_KEY = re.compile(r"(knn|linear_probe)_(cls|mean|both)_ci")


def _recipe(card: "cards.ModelCard") -> dict:
    """What the bundled comparisons hold fixed between two models: preset, epochs, pretraining ratio and strategy,
    target and architecture changes (``card.arch_changes``; "{}": the preset's own)."""
    return {"preset": card.preset, "epochs": card.epochs, "ratio": round(float(card.mask_ratio), 2),
            "strategy": card.mask_strategy, "norm_pix": bool(card.norm_pix_loss),
            "arch": json.dumps(card.arch_changes, sort_keys=True)}


def _varying(model_cards: Sequence[dict], vary: str, data: str, measured: bool = False,
             keep: Callable = lambda card: True, smallest: int = 2) -> list:
    """Cards of ``data`` (with a pretraining ratio; with ``measured``, only those whose linear probe is measured;
    only those ``keep`` accepts) grouped by every ``_recipe`` setting but ``vary``: [(shared settings, {value of
    ``vary``: card})], the first card found for each value, groups of ``smallest`` or more values only."""
    groups: dict = {}
    for c in model_cards:
        card = cards.read(c)
        if (card.data_name != data or card.mask_ratio is None or not keep(card)
                or (measured and "linear_probe_both" not in card.embedding_metrics)):
            continue
        recipe = _recipe(card)
        value = recipe.pop(vary)
        groups.setdefault(tuple(recipe.items()), {}).setdefault(value, c)
    return [(dict(k), g) for k, g in groups.items() if len(g) >= smallest]


def ratio_groups(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> list:
    """Cards of ``data`` with random pretraining masks that differ in the ratio only, grouped by what else they
    share (preset, target, epochs, architecture): a list of (description, cards sorted by ratio), the best-founded
    group first (more models, then norm-pix, the paper's default, then more epochs, then the preset's own
    architecture)."""
    found = _varying(model_cards, "ratio", data, keep=lambda card: card.mask_strategy == "random", smallest=1)
    found.sort(key=lambda kg: (len(kg[1]), kg[0]["norm_pix"], kg[0]["epochs"] or 0, kg[0]["arch"] == "{}"),
               reverse=True)
    out = []
    for k, g in found:
        arch = cards.read(next(iter(g.values()))).arch_text()
        out.append((f"{'norm-pix' if k['norm_pix'] else 'pixel'} target, {k['epochs']} epochs ({k['preset'] or '?'}"
                    f"{', ' + arch if arch else ''})", [g[r] for r in sorted(g)]))
    return out


def ratio_series(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> list:
    """The models that differ in pretraining mask ratio only (the paper's Figure 5): the first group of
    ``ratio_groups`` if it has two or more models, sorted by ratio. Empty if there is none."""
    groups = ratio_groups(model_cards, data)
    return groups[0][1] if groups and len(groups[0][1]) >= 2 else []


def probe_table(model_cards: Sequence[dict]) -> list:
    """Linear-probe and kNN accuracy against pretraining ratio from model cards (the analogue of the paper's
    Figure 5), sorted by ratio; cards without embedding metrics are left out."""
    rows = []
    for c in map(cards.read, model_cards):
        em = c.embedding_metrics
        if c.mask_ratio is None or not em:
            continue
        rows.append({"name": c.name, "ratio": float(c.mask_ratio), "norm_pix": bool(c.norm_pix_loss),
                     **{k: float(v) for k, v in em.items() if _SCORE_KEY.fullmatch(k)},
                     **{k: list(v) for k, v in em.items() if _CI_KEY.fullmatch(k)},
                     "raw_probe": float(c.raw_pixel_baseline.get("linear_probe", float("nan"))),
                     "raw_knn": float(c.raw_pixel_baseline.get("knn", float("nan")))})
    return sorted(rows, key=lambda r: (r["norm_pix"], r["ratio"]))


def strategy_series(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> dict:
    """Models that differ only in the masking strategy used in pretraining (the paper's Figure 6): among cards of
    ``data``, grouped by everything else (preset, target, epochs, ratio, architecture), the group with the most
    strategies (two or more; random must be one). Returns {strategy: card}, random first, or {}."""
    ok = [g for _, g in _varying(model_cards, "strategy", data) if "random" in g]
    if not ok:
        return {}
    best = max(ok, key=len)
    return {s: best[s] for s in sorted(best, key=lambda s: (s != "random", s))}


def ratio_judgement(model_cards: Sequence[dict], pool: str = "both") -> Optional[dict]:
    """The Figure 5 comparison behind every sentence about it (``ratio_verdict``, ``readings.ratio``): the series'
    probe rows, the best one, and each other ratio as (row, clearly worse, paired interval, within a rerun's
    spread); None with fewer than two measured ratios."""
    rows = [r for r in probe_table(model_cards) if f"linear_probe_{pool}" in r]
    if len(rows) < 2:
        return None
    by_name = {cards.read(c).name: c for c in model_cards}
    key, ci = f"linear_probe_{pool}", f"linear_probe_{pool}_ci"
    best = max(rows, key=lambda r: r[key])
    reruns = [(r, cards.read(by_name[r["name"]]).convergence.get("replay", {})) for r in rows] if pool == "both" else []
    reruns = [(r, rr) for r, rr in reruns if "final_probe_diff_ci" in rr]
    # a rerun of the same command moves the probe too: a gap no larger than the farthest end of a rerun's interval
    # is not evidence that the ratios differ, however its own interval looks
    spread = max((max(abs(x) for x in rr["final_probe_diff_ci"]) for _, rr in reruns), default=None)
    judged = []
    for r in sorted(rows, key=lambda r: r["ratio"]):
        if r is best:
            continue
        paired = cards.paired_ci(by_name[r["name"]], by_name[best["name"]], pool=pool)
        clear = clear_difference(r.get(ci), best.get(ci), paired)
        within_rerun = bool(clear and spread is not None and abs(r[key] - best[key]) <= spread)
        judged.append((r, clear and not within_rerun, paired, within_rerun))
    return {"rows": rows, "best": best, "judged": judged, "spread": spread, "reruns": reruns, "by_name": by_name}


def target_pair(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> Optional[tuple]:
    """Two models that differ only in the reconstruction target (the paper's Table 1d: pixels against pixels
    normalised per patch): the (norm-pix card, pixel card) pair of ``data`` sharing preset, epochs, ratio, strategy
    and architecture, with both linear probes measured; the pair with the most epochs (then 75%, then the preset's
    own architecture), or None."""
    pairs = _varying(model_cards, "norm_pix", data, measured=True)
    if not pairs:
        return None
    _, g = max(pairs, key=lambda kg: (kg[0]["epochs"] or 0, kg[0]["ratio"] == 0.75, kg[0]["arch"] == "{}"))
    return g[True], g[False]


def decoder_series(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> list:
    """Models that differ only in the decoder's depth (the paper's Table 1a): [(depth, card)] sorted by depth, from
    the group sharing preset, epochs, ratio, strategy and target (no other architecture change, every linear probe
    measured) with the most depths, then the most epochs, then 75%; [] when no two such models exist."""
    keep = lambda card: set(card.arch_changes) <= {"decoder_depth"} and "decoder_depth" in card.config  # noqa: E731
    found = []
    for k, g in _varying(model_cards, "arch", data, measured=True, keep=keep):
        by_depth: dict = {}   # "--set decoder_depth=2" on a 2-block preset is the preset's own depth
        for c in g.values():
            by_depth.setdefault(int(cards.read(c).config["decoder_depth"]), c)
        if len(by_depth) >= 2:
            found.append((k, by_depth))
    if not found:
        return []
    _, g = max(found, key=lambda kg: (len(kg[1]), kg[0]["epochs"] or 0, kg[0]["ratio"] == 0.75))
    return sorted(g.items())


def probe_history(card: dict) -> list:
    """[(epoch, probe_both, knn_both), ...] from a card's training history (``train --probe-every``)."""
    return [(int(h["epoch"]), float(h["probe_both"]), float(h.get("knn_both", float("nan"))))
            for h in cards.read(card).history if "probe_both" in h]


def last_quarter_gain(points: Sequence[tuple]) -> Optional[float]:
    """How much the probe rose over the last quarter of training: final score minus the score at the last probe at
    or before 75% of the epochs (None with fewer than two probes). The bar for "stopped improving": CONVERGED_BAR."""
    if len(points) < 2:
        return None
    final_epoch, final = points[-1][0], points[-1][1]
    before = [p for p in points if p[0] <= 0.75 * final_epoch]
    return final - (before[-1][1] if before else points[0][1])
