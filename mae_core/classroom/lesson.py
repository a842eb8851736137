"""The lesson: the paper's story in nine steps on a live model, and the work behind its interactives (kept here, out
of the page, with tests): the steps and their address, the predict-then-reveal scoring, the encoder's measured
saving, the neighbour agreement of a map, and the embedding maps precomputed for the bundled models.

Step 5's curve and step 6's maps go through ``mae_core.evaluation.results`` (keyed by the weights' SHA-256 and the settings):
shipped for the bundled models by ``python -m mae_core.evaluation.precompute``, computed once for the server for others."""
from __future__ import annotations

import contextlib

import statistics
import time
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from ..evaluation import results
from ..data import FASHION_MNIST_CLASSES, load_fashion_mnist_subset
from ..embed import encode, project, raw_pixels
from ..metrics import nearest_neighbours
from ..evaluation.sweep import sweep


@dataclass(frozen=True)
class Step:
    key: str
    title: str          # the short name in the step list
    headline: str       # a question or a claim, at most about 12 words
    terms: tuple = ()   # the glossary terms the step uses


STEPS: tuple = (
    Step("patches", "Patches", "A picture becomes a grid of patches", ("patch", "token")),
    Step("guess", "Guess", "Can you guess what is hidden?", ("mask ratio", "inpainting")),
    Step("encoder", "Encoder", "The encoder only looks at the visible patches", ("encoder", "token", "cls token")),
    Step("decoder", "Decoder", "The decoder fills every gap, and only the gaps are scored",
         ("decoder", "mask token")),
    Step("ratio", "Why hide so much", "Why hide so much? Copying the neighbours stops working",
         ("mask ratio", "inpainting")),
    Step("learned", "What it learned", "What did the encoder learn, without any labels?",
         ("encoder", "t-SNE", "kNN")),
    Step("pretraining", "How much to hide", "Does it matter how much is hidden while training?",
         ("mask ratio", "linear probe")),
    Step("finetune", "Fine-tuning", "Train the whole encoder, or only a last layer?",
         ("fine-tuning", "linear probe")),
    Step("yourturn", "Your turn", "Your turn: explore it yourself", ()),
)
MAX_HEADLINE_WORDS = 12


def step_from_param(value: Optional[str], n: int = len(STEPS)) -> tuple:
    """The step an address names (``?step=3``: counted from 1) as (index from 0, notice or ""). A missing value
    is the first step; a bad one is the first step with a notice saying why."""
    if value is None or value == "":
        return 0, ""
    text = str(value).strip()
    if text.isdigit() and len(text) <= 3 and 1 <= int(text) <= n:
        return int(text) - 1, ""
    return 0, f"Ignored step={text[:12]!r} from the link: the lesson has steps 1 to {n}."


# ----------------------------------------------------------------------------- predict, then reveal
BRUSH = (0.0, 0.25, 0.5, 0.75, 1.0)   # the guess brush's grey levels (0 black, 1 white)
EMPTY_LEVEL = 0.0                      # a hidden patch the student did not paint counts as black (the background)


def _pixel_mask(mask, grid: int, patch: int) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(mask, dtype=bool).reshape(grid, grid))
    return m.repeat_interleave(patch, 0).repeat_interleave(patch, 1)


def guess_image(image01: torch.Tensor, mask, levels: Sequence[Optional[float]], patch: int) -> torch.Tensor:
    """The student's guess as an image (C, H, W): visible patches from the picture, each hidden patch one flat grey
    ``levels[i]`` (None or a negative value: not painted, ``EMPTY_LEVEL``)."""
    c, h, w = image01.shape
    grid = h // patch
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    if len(levels) != grid * grid or len(mask) != grid * grid:
        raise ValueError(f"need {grid * grid} patch levels and mask cells, got {len(levels)} and {len(mask)}")
    lv = np.array([EMPTY_LEVEL if v is None or v < 0 else min(1.0, float(v)) for v in levels], dtype=np.float32)
    flat = torch.from_numpy(lv.reshape(grid, grid)).repeat_interleave(patch, 0).repeat_interleave(patch, 1)
    return torch.where(_pixel_mask(mask, grid, patch), flat.expand(c, h, w), image01)


def hidden_error(candidate01: torch.Tensor, image01: torch.Tensor, mask, patch: int) -> float:
    """Mean squared error over the hidden pixels (images in [0, 1]): the one score every fill gets in step 2, the
    same measure as the Reconstruct page's pixel MSE. NaN when nothing is hidden."""
    pix = _pixel_mask(mask, image01.shape[-1] // patch, patch)
    if not bool(pix.any()):
        return float("nan")
    d = (candidate01.float() - image01.float()) ** 2
    return float(d[:, pix].mean())


def best_brush(image01: torch.Tensor, mask, patch: int, brush: Sequence[float] = BRUSH) -> list:
    """The best guess the brush can paint: each hidden patch the brush level nearest its mean grey (-1 for visible
    patches). What a perfect student could score with flat patches: the floor of step 2's scores."""
    grey = image01.float().mean(0)
    g = grey.shape[0] // patch
    means = grey.reshape(g, patch, g, patch).mean(dim=(1, 3)).reshape(-1).numpy()
    b = np.asarray(brush, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    return [float(b[np.abs(b - m).argmin()]) if h else -1.0 for m, h in zip(means, mask)]


def painted_share(levels: Sequence[Optional[float]], mask) -> float:
    """The share of hidden patches the student painted."""
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    n = int(mask.sum())
    return sum(1 for v, h in zip(levels, mask) if h and v is not None and v >= 0) / n if n else 0.0


def reveal_sentence(scores: Mapping[str, float], you: str = "your guess") -> str:
    """Who came closest, in plain words, from {name: error} (lower is closer). Names are said as given."""
    ok = {k: v for k, v in scores.items() if v == v}
    if len(ok) < 2:
        return ""
    ranked = sorted(ok, key=ok.get)
    first, second = ranked[0], ranked[1]
    if ok[first] <= 0:
        return f"{first[0].upper() + first[1:]} is exact: nothing was left to guess."
    lead = f"{first[0].upper() + first[1:]} came closest"
    gap = 1 - ok[first] / ok[second] if ok[second] > 0 else 0.0
    if gap < 0.05:
        return lead + f", but only just: {second} is as good, within 5%."
    out = lead + f": {gap:.0%} less error than {second}"
    if first != you and you in ok and you != second:
        out += f", and {1 - ok[first] / ok[you]:.0%} less than {you}"
    return out + "."


# ----------------------------------------------------------------------------- the encoder's saving
def time_encoder(model, mask, batch: int = 16, repeats: int = 9) -> dict:
    """The encoder's time on the visible patches of ``mask`` against all patches, measured here: medians of
    ``repeats`` timed runs on a batch of ``batch`` images (after one warm-up each). Milliseconds per batch."""
    c = model.config
    mask = torch.as_tensor(np.asarray(mask, dtype=bool).reshape(1, -1)).expand(batch, -1)
    x = torch.zeros(batch, c.in_chans, c.img_size, c.img_size)
    ids_vis, _ = model.ids_from_mask(mask)
    ids_all = torch.arange(c.num_patches).expand(batch, -1)
    out = {}
    with torch.inference_mode():
        for name, ids in (("visible", ids_vis), ("all", ids_all)):
            model.forward_encoder(x, ids, None)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                model.forward_encoder(x, ids, None)
                times.append(time.perf_counter() - t)
            out[f"{name}_ms"] = 1000 * statistics.median(times)
            out[f"n_{name}"] = int(ids.shape[1])
    out["speedup"] = out["all_ms"] / out["visible_ms"] if out["visible_ms"] > 0 else float("nan")
    out["batch"], out["repeats"] = batch, repeats
    return out


# ----------------------------------------------------------------------------- what the encoder learned
MAP_IMAGES = 500      # the first 500 of the bundled class-balanced subset (50 per class)
NEIGHBOURS = 10


def neighbour_agreement(features: np.ndarray, labels: np.ndarray, k: int = NEIGHBOURS) -> float:
    """The share of each image's k nearest neighbours (cosine, itself left out) that share its class, averaged over
    the images: one plain number for "similar things land together"."""
    nn = nearest_neighbours(features, features, k=k, exclude_self=True)
    labels = np.asarray(labels)
    return float((labels[nn] == labels[:, None]).mean())


def compute_maps(model, n: int = MAP_IMAGES, seed: int = 0) -> dict:
    """Step 6's two maps of the first ``n`` bundled Fashion-MNIST images: t-SNE of the encoder's features (cls +
    mean of patches, every patch visible) and of the raw pixels, with each one's neighbour agreement."""
    ds = load_fashion_mnist_subset()
    images, labels = ds.images[:n], ds.labels[:n].numpy()
    feats = {"model": encode(model, images, pool="both"), "raw": raw_pixels(images)}
    out = {"n": int(n), "k": NEIGHBOURS, "features": "cls + mean of patch tokens", "labels": labels.tolist(),
           "classes": list(FASHION_MNIST_CLASSES)}
    for name, f in feats.items():
        out[f"{name}_xy"] = np.round(project(f, "tsne", seed=seed), 2).tolist()
        out[f"{name}_agree"] = round(neighbour_agreement(f, labels), 4)
    return out


CURVE_RATIOS = tuple(round(0.05 * k, 2) for k in range(2, 19))   # 0.1 .. 0.9
CURVE_IMAGES = 16


def compute_curve(model) -> list:
    """Step 5's chart: the MAE's and the classical fill's error against the share hidden (random masks, one each, on
    the first ``CURVE_IMAGES`` bundled Fashion-MNIST pictures), as ``sweep`` rows."""
    return sweep(model, load_fashion_mnist_subset().images[:CURVE_IMAGES], CURVE_RATIOS, ("random",), 1,
                 baseline=True).rows


MAP_SETTINGS = {"images": MAP_IMAGES, "neighbours": NEIGHBOURS, "features": "both", "projection": "tsne", "seed": 0}
CURVE_SETTINGS = {"images": CURVE_IMAGES, "ratios": list(CURVE_RATIOS), "strategy": "random", "seeds": 1}


def maps(weights_path, model, keep: bool = True, gate=contextlib.nullcontext) -> dict:
    """Step 6's maps of this model: shipped for the bundled models, else computed once for the server (and kept in
    its disk cache unless ``keep`` is False)."""
    return results.get(weights_path, "lesson-maps", MAP_SETTINGS, lambda: compute_maps(model), keep=keep, gate=gate)


def curve(weights_path, model, keep: bool = True, gate=contextlib.nullcontext) -> list:
    """Step 5's curve of this model: shipped for the bundled models, else computed once for the server."""
    return results.get(weights_path, "lesson-curve", CURVE_SETTINGS, lambda: compute_curve(model), keep=keep,
                       gate=gate)
