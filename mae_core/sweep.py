"""What the mask ratio and the masking strategy do: reconstruction error against ratio, strategies compared,
models pretrained at different ratios compared.

    python -m mae_core.sweep --model fmnist_r75 --ratios 0.05:0.95:0.05 --strategies random,block,grid \\
        --images 64 --seeds 3 --out sweeps/fmnist_r75
writes sweep.csv and the figures as PNG (error curve, strategies at one ratio, a strip of reconstructions),
drawn by ``figures`` (the same chart builders the app uses).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from . import cards, figures
from .checkpoints import atomic_write
from .masking import STRATEGIES, get_strategy, make_mask
from .baselines import baseline_errors
from .metrics import masked_errors

DEFAULT_RATIOS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
CONVERGED_BAR = 0.003   # "stopped improving": the probe rose under 0.3 points over the last quarter of training
BASELINE_PREFIX = "harmonic:"   # sweep rows of the classical baseline: "harmonic:random", ...
CSV_FIELDS = ("strategy", "ratio", "n_hidden", "mean", "std", "q25", "q75", "n")


def _seed(strategy: str, ratio: float, seed: int) -> int:
    return zlib.crc32(f"{strategy}:{ratio:.4f}:{seed}".encode())


@dataclass
class SweepResult:
    rows: list          # one dict per (strategy, ratio): CSV_FIELDS
    raw: dict           # (strategy, ratio) -> (n_seeds, n_images) array of per-image errors

    def curve(self, strategy: str):
        rs = [r for r in self.rows if r["strategy"] == strategy]
        return (np.array([r["ratio"] for r in rs]), np.array([r["mean"] for r in rs]),
                np.array([r["std"] for r in rs]))


def sweep(model, images01: torch.Tensor, ratios: Sequence[float] = DEFAULT_RATIOS,
          strategies: Sequence[str] = STRATEGIES, seeds: int = 3, batch_size: int = 512,
          progress: Optional[Callable[[float, str], None]] = None, matched: bool = False,
          baseline: bool = False) -> SweepResult:
    """Masked-patch error for every (strategy, ratio), averaged over images x seeds. All seeds of one
    (strategy, ratio) run as one batch: every sample hides the same number of patches, so no padding.
    ``matched``: errors with each patch's true mean and std given (comparable between pixel and norm-pix models).
    ``baseline``: also score harmonic inpainting (mae_core.baselines) on the very same masks, as rows whose
    strategy is ``"harmonic:<strategy>"`` (matched like the model: always for a norm-pix model)."""
    for s in strategies:
        get_strategy(s)  # an unknown name is an error that lists the registered ones
    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    if len(images01) == 0:
        raise ValueError("no images to sweep over")
    g = model.config.grid_size
    n = len(images01)
    rows, raw = [], {}
    total, done = len(strategies) * len(ratios), 0
    for strategy in strategies:
        for ratio in ratios:
            masks = torch.cat([make_mask(strategy, n, g, float(ratio), seed=_seed(strategy, float(ratio), s))
                               for s in range(seeds)])
            errs = masked_errors(model, images01.repeat(seeds, 1, 1, 1), masks, batch_size,
                                 matched=matched).reshape(seeds, n)
            scored = [(strategy, errs)]
            if baseline:
                b = baseline_errors(model, images01.repeat(seeds, 1, 1, 1), masks,
                                    matched=matched or model.config.norm_pix_loss).reshape(seeds, n)
                scored.append((BASELINE_PREFIX + strategy, b))
            for name, e in scored:
                raw[(name, float(ratio))] = e
                flat = e.reshape(-1)
                rows.append({"strategy": name, "ratio": float(ratio), "n_hidden": int(masks[0].sum()),
                             "mean": float(flat.mean()), "std": float(flat.std()),
                             "q25": float(np.quantile(flat, 0.25)), "q75": float(np.quantile(flat, 0.75)),
                             "n": int(flat.size)})
            done += 1
            if progress is not None:
                progress(done / total, f"{strategy} {ratio:.2f}")
    return SweepResult(rows, raw)


PAGE_IMAGES, PAGE_SEEDS = 16, 3   # the Mask ratios page's first chart: its default settings


def eval_images(config, n: int) -> torch.Tensor:
    """The pictures a sweep of this model is scored on: the bundled Fashion-MNIST subset for a 28 px greyscale model,
    held-out photo crops otherwise."""
    from .data import load_fashion_mnist_subset, photo_eval_set
    if config.in_chans == 1 and config.img_size == 28:
        return load_fashion_mnist_subset().images[:n]
    return photo_eval_set(config.img_size, config.in_chans)[:n]


def sweep_settings(config, n_images: int = PAGE_IMAGES, seeds: int = PAGE_SEEDS, strategies=tuple(STRATEGIES),
                   ratios=DEFAULT_RATIOS, baseline: bool = True) -> dict:
    """What a stored sweep is keyed by (``mae_core.results``), beside the weights."""
    data = "fashion-mnist-subset" if config.in_chans == 1 and config.img_size == 28 else "photo-crops"
    return {"images": int(n_images), "seeds": int(seeds), "strategies": list(strategies),
            "ratios": [float(r) for r in ratios], "baseline": bool(baseline), "data": data}


def csv_text(rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in CSV_FIELDS})
    return buf.getvalue()


def write_csv(rows, path) -> Path:
    return atomic_write(path, lambda f: f.write(csv_text(rows)), mode="w")


def read_csv(path) -> list:
    with open(path, newline="") as f:
        out = []
        for r in csv.DictReader(f):
            out.append({"strategy": r["strategy"], "ratio": float(r["ratio"]), "n_hidden": int(r["n_hidden"]),
                        **{k: float(r[k]) for k in ("mean", "std", "q25", "q75")}, "n": int(r["n"])})
        return out


def pretraining_grid(models: dict, images01: torch.Tensor, ratios: Sequence[float], seeds: int = 2,
                     strategy: str = "random", progress=None) -> tuple[list, list, np.ndarray]:
    """Error of each model (name -> (model, pretraining ratio)) at each test ratio: the heatmap of
    pretraining ratio x test ratio, with matched errors (every model's patches given the true mean and std) so
    that pixel and norm-pix models can share it. Returns (names sorted by pretraining ratio, ratios, (M, R))."""
    names = sorted(models, key=lambda k: models[k][1])
    grid = np.zeros((len(names), len(ratios)))
    for i, name in enumerate(names):
        res = sweep(models[name][0], images01, ratios, (strategy,), seeds, matched=True)
        grid[i] = [r["mean"] for r in res.rows]
        if progress is not None:
            progress((i + 1) / len(names), name)
    return names, list(ratios), grid


def ratio_strip(model, image01: torch.Tensor, ratios: Sequence[float], strategy: str = "random", seed: int = 0):
    """One image reconstructed at several ratios: [(ratio, Reconstruction), ...] in ascending ratio."""
    from .explore import reconstruct
    g = model.config.grid_size
    return [(float(r), reconstruct(model, image01, make_mask(strategy, 1, g, float(r), seed=seed)[0]))
            for r in sorted(ratios)]


def strategy_examples(model, image01: torch.Tensor, ratio: float, seed: int = 0):
    """The paper's Figure 6 for one image: each strategy's mask and reconstruction at one ratio."""
    from .explore import reconstruct
    g = model.config.grid_size
    return {s: reconstruct(model, image01, make_mask(s, 1, g, ratio, seed=seed)[0]) for s in STRATEGIES}


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


def parse_ratios(text: str) -> list:
    """'0.05:0.95:0.05' (start:stop:step, inclusive) or '0.25,0.5,0.75'."""
    try:
        if ":" in text:
            a, b, c = (float(v) for v in text.split(":"))
            n = int(round((b - a) / c)) + 1
            vals = [round(a + i * c, 6) for i in range(n)]
        else:
            vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"cannot read ratios {text!r}: use start:stop:step or a comma list") from None
    bad = [v for v in vals if not 0 <= v < 1]
    if not vals or bad:
        raise ValueError(f"ratios must be in [0, 1); got {bad or 'none'}")
    return vals


def main(argv=None) -> int:
    from .checkpoints import CheckpointError, load_model
    from .data import DataError, load_fashion_mnist_subset, photo_eval_set, prepare_image

    p = argparse.ArgumentParser(prog="python -m mae_core.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="bundled name or checkpoint path")
    p.add_argument("--ratios", default="0.05:0.95:0.05")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--strip-ratios", default="0.25,0.5,0.75,0.9")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    try:
        ratios = parse_ratios(args.ratios)
        strip = parse_ratios(args.strip_ratios)
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        model, card = load_model(args.model)
        c = model.config
        if c.in_chans == 1:
            sub = load_fashion_mnist_subset()
            imgs = torch.stack([prepare_image(_pil(sub.images[i]), c.img_size, 1) for i in range(args.images)]) \
                if c.img_size != 28 else sub.images[:args.images]
        else:
            imgs = photo_eval_set(c.img_size, c.in_chans)[:args.images]
        from tqdm.auto import tqdm
        bar = tqdm(total=len(ratios) * len(strategies), desc="sweep")
        res = sweep(model, imgs, ratios, strategies, args.seeds,
                    progress=lambda f, label: (bar.update(1), bar.set_postfix_str(label)))
        bar.close()
    except (CheckpointError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(res.rows, out / "sweep.csv")
    chart = figures.error_curve_chart(res.rows, card.get("mask_ratio"))
    chart.title = f"{card.get('name', args.model)}: error against ratio"
    (out / "error_vs_ratio.png").write_bytes(figures.to_png(chart))
    figures.strip_image(ratio_strip(model, imgs[0], strip)).save(out / "strip.png")
    figures.strategies_image(strategy_examples(model, imgs[0], 0.75)).save(out / "strategies_at_0.75.png")
    for r in res.rows:
        if abs(r["ratio"] - 0.75) < 1e-9:
            print(f"  {r['strategy']:6s} @0.75: MSE {r['mean']:.4f} ± {r['std']:.4f}")
    print(f"wrote {out}/sweep.csv, error_vs_ratio.png, strip.png, strategies_at_0.75.png")
    return 0


def _pil(t):
    from .data import array_to_pil
    return array_to_pil((t[0].numpy() * 255).round().astype("uint8"))


if __name__ == "__main__":
    sys.exit(main())


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


def strategy_series(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> dict:
    """Models that differ only in the masking strategy used in pretraining (the paper's Figure 6): among cards of
    ``data``, grouped by everything else (preset, target, epochs, ratio, architecture), the group with the most
    strategies (two or more; random must be one). Returns {strategy: card}, random first, or {}."""
    ok = [g for _, g in _varying(model_cards, "strategy", data) if "random" in g]
    if not ok:
        return {}
    best = max(ok, key=len)
    return {s: best[s] for s in sorted(best, key=lambda s: (s != "random", s))}


def strategy_verdict(rows: Sequence[dict]) -> str:
    """What a Figure 6 table shows, stated from its numbers: rows {"strategy", "own_error", "probe"} with optional
    "probe_ci" and "vs_random_ci" (the paired interval of the row's probe minus random's). The paper's reading (grid:
    an easy task and a worse representation; block: hard, and also worse) is given only where the numbers, with
    their intervals, agree with it; otherwise the sentence says what they show instead."""
    from .metrics import NO_INTERVALS, clear_difference, points
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


def ratio_judgement(model_cards: Sequence[dict], pool: str = "both") -> Optional[dict]:
    """The Figure 5 comparison behind every sentence about it (``ratio_verdict``, ``readings.ratio``): the series'
    probe rows, the best one, and each other ratio as (row, clearly worse, paired interval, within a rerun's
    spread); None with fewer than two measured ratios."""
    from .metrics import clear_difference
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


def ratio_verdict(model_cards: Sequence[dict], pool: str = "both", raw: Optional[dict] = None,
                  judgement: Optional[dict] = None) -> str:
    """What the Figure 5 view shows, from the series' cards: the pretraining ratio with the best linear probe, every
    other ratio's difference to it (paired over the test images where the cards keep per-image results, else by
    their separate intervals), and whether that agrees with the paper (a high ratio, near 75%, is best); then, where
    every card can be paired with the raw-pixel baseline (``raw``: default the stored one), how each compares with
    raw pixels. ``judgement``: ``ratio_judgement``'s, when the caller has it already."""
    from .metrics import NO_INTERVALS, points
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
    bci = f" [{best[ci][0]:.1%}, {best[ci][1]:.1%}]" if best.get(ci) else ""
    out = (f"The best linear probe came from pretraining at {best['ratio']:.0%} masking ({best[key]:.1%}{bci}); "
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


def target_verdict(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> str:
    """What the bundled models say about the reconstruction target, from the cards of ``target_pair``: each probe,
    the paired difference where both cards keep per-image results, and whether that agrees with the paper
    (norm-pix gives the better representation). Empty when no such pair is bundled."""
    from .metrics import NO_INTERVALS, clear_difference, points
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


def decoder_verdict(model_cards: Sequence[dict], data: str = "Fashion-MNIST") -> str:
    """What the bundled models say about the decoder's depth, from ``decoder_series``: each depth's probe, each
    deeper decoder's paired difference to the shallowest, and whether the deepest agrees with the paper (a deeper
    decoder gives the better linear probe). Empty when no such series is bundled."""
    from .metrics import NO_INTERVALS, clear_difference, points
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


def convergence_reading(model_cards: Sequence[dict]) -> str:
    """The full-protocol convergence checks on the cards (``cards converged``: the final model against a snapshot
    from earlier in its run, paired on the same test images), one clause each, with what each says against
    ``CONVERGED_BAR``; "" when no card has one."""
    from .metrics import points
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
