"""Lesson scenes: the state of a page as URL query parameters, so a teacher can bookmark or share a precise scene,
and a few prepared scenes (mae_core/assets/scenes.json).

Parameters (all optional; anything missing keeps the page's default):
    m     model: a bundled checkpoint's name (``fmnist_r75``) or ``run:NAME`` for a run trained on this server
    img   image: ``fm:N`` (image N of the bundled Fashion-MNIST set) or ``ph:NAME`` (a bundled photo)
    mask  a painted mask: the L cells as hex digits, row-major, 1 = hidden (``encode_mask``)
    st, r, s   a generated mask: strategy, ratio, seed (used when there is no ``mask``)
    cmp   a second model to compare with (same forms as ``m``)
    pt    the selected point (image number) on the Embeddings page
    sec   the Mask ratios page's section: test, strategy or pre
Bad or stale values (an unknown model, a mask of the wrong length, a ratio out of range) are dropped one by one, each
with a notice saying which and why; the rest of the scene still applies.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

from ..data import ASSETS
from ..masking import STRATEGIES

SCENES_PATH = ASSETS / "scenes.json"
PARAMS = ("m", "img", "mask", "st", "r", "s", "cmp", "pt", "sec")
SECTIONS = ("test", "strategy", "pre")


class SceneError(ValueError):
    """A scene file that cannot be used."""


def encode_mask(mask) -> str:
    """L cells (1 = hidden) -> hex digits, 4 cells a digit, row-major; the last digit is padded with zeros."""
    bits = "".join("1" if int(bool(v)) else "0" for v in mask)
    bits += "0" * (-len(bits) % 4)
    return "".join(f"{int(bits[i:i + 4], 2):x}" for i in range(0, len(bits), 4))


def decode_mask(text: str, n_cells: int) -> list:
    """The inverse of ``encode_mask`` for a grid of ``n_cells``; ValueError says what does not fit."""
    text = (text or "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]+", text):
        raise ValueError("a mask is hex digits (0-9, a-f)")
    need = -(-n_cells // 4)
    if len(text) != need:
        raise ValueError(f"this model's mask has {n_cells} cells ({need} hex digits), the link has {len(text)}")
    bits = "".join(f"{int(ch, 16):04b}" for ch in text)
    if "1" in bits[n_cells:]:
        raise ValueError("the mask's padding bits are not zero")
    return [int(b) for b in bits[:n_cells]]


@dataclass
class Scene:
    """A page's state as read from query parameters, checked."""
    model: Optional[str] = None
    image: Optional[tuple] = None          # ("fm", index) or ("ph", name)
    mask: Optional[list] = None            # painted cells
    strategy: Optional[str] = None
    ratio: Optional[float] = None
    seed: Optional[int] = None
    compare: Optional[str] = None
    point: Optional[int] = None
    section: Optional[str] = None
    notices: list = field(default_factory=list)


def parse(params: Mapping[str, str], models: Mapping[str, int], photos=(), n_fmnist: int = 2000) -> Scene:
    """Check query parameters against what this server has: ``models`` maps each model id (``fmnist_r75``,
    ``run:NAME``) to its number of patches. Each bad value is dropped with a notice."""
    sc = Scene()

    def drop(key, why):
        sc.notices.append(f"Ignored {key}={str(params.get(key))[:24]!r} from the link: {why}.")
    for key, attr, allowed, why in (("m", "model", models, "no such model on this server"),
                                    ("cmp", "compare", models, "no such model on this server"),
                                    ("st", "strategy", STRATEGIES, "strategies are " + ", ".join(STRATEGIES)),
                                    ("sec", "section", SECTIONS, "sections are " + ", ".join(SECTIONS))):
        v = params.get(key)
        if v is not None:
            if v in allowed:
                setattr(sc, attr, v)
            else:
                drop(key, why)
    img = params.get("img")
    if img is not None:
        kind, _, val = img.partition(":")
        if kind == "fm" and val.isdigit() and len(val) <= 9 and int(val) < n_fmnist:  # 5,000 digits: no int()
            sc.image = ("fm", int(val))
        elif kind == "ph" and val in photos:
            sc.image = ("ph", val)
        else:
            drop("img", f"expected fm:0..{n_fmnist - 1} or ph:NAME of a bundled photo")
    for key, attr, conv, ok, what in (("r", "ratio", float, lambda v: 0 <= v <= 0.95, "a ratio from 0 to 0.95"),
                                      ("s", "seed", int, lambda v: 0 <= v <= 10**6, "a seed from 0 to 1,000,000"),
                                      ("pt", "point", int, lambda v: v >= 0, "an image number")):
        if params.get(key) is not None:
            try:
                if len(str(params[key])) > 24:  # Python refuses int() of 4,300+ digits; no real value is this long
                    raise ValueError
                v = conv(params[key])
                if not ok(v):
                    raise ValueError
                setattr(sc, attr, round(round(v * 20) / 20, 2) if attr == "ratio" else v)  # ratios on the sliders' 0.05 grid
            except (TypeError, ValueError):
                drop(key, f"expected {what}")
    if params.get("mask") is not None:
        n = models.get(sc.model) if sc.model else None
        try:
            if n is None:
                raise ValueError("the link names no model to read it for" if not sc.model else "unknown model")
            sc.mask = decode_mask(params["mask"], n)
        except ValueError as e:
            drop("mask", str(e))
    return sc


def to_params(model: Optional[str] = None, image: Optional[tuple] = None, mask=None, strategy=None, ratio=None,
              seed=None, compare=None, point=None, section=None) -> dict:
    """The query parameters of a state (None values left out). A painted mask goes as ``mask``; a generated one
    as its recipe (``st``, ``r``, ``s``)."""
    out = {"m": model, "img": f"{image[0]}:{image[1]}" if image else None,
           "mask": encode_mask(mask) if mask is not None else None, "st": strategy,
           "r": f"{float(ratio):g}" if ratio is not None else None, "s": str(int(seed)) if seed is not None else None,
           "cmp": compare, "pt": str(int(point)) if point is not None else None, "sec": section}
    return {k: v for k, v in out.items() if v is not None}


def load_scenes(path: Path = SCENES_PATH, validate: Optional[Callable[[dict], list]] = None) -> list:
    """The prepared scenes: [{"title", "page", "params", "note"}, ...]."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SceneError(f"{path}: cannot read the scenes file ({e})") from None
    scenes = data.get("scenes") if isinstance(data, dict) else None
    if not isinstance(scenes, list):
        raise SceneError(f"{path}: expected {{\"scenes\": [...]}}")
    out = []
    for i, s in enumerate(scenes):
        if not isinstance(s, dict) or not isinstance(s.get("title"), str) or not isinstance(s.get("params"), dict):
            raise SceneError(f"{path}: scene {i + 1} needs a title and params")
        unknown = set(s["params"]) - set(PARAMS)
        if unknown:
            raise SceneError(f"{path}: scene {s['title']!r} has unknown parameters {sorted(unknown)}")
        out.append({"title": s["title"], "page": s.get("page", ""), "note": s.get("note", ""),
                    "params": {k: str(v) for k, v in s["params"].items()}})
    return out
