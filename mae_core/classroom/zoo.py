"""Which models there are: the bundled checkpoints, runs the user trained, and the official MAE weights
(downloaded on request into a cache, never at import time)."""
from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from ..evaluation import cards
from . import policy
from ..atomic import atomic_write
from ..checkpoints import CheckpointError, list_bundled, load_model
from ..data import cache_dir

OFFICIAL_BASE = "https://dl.fbaipublicfiles.com/mae/visualize/"
OFFICIAL_VISUALIZE = {
    # name: (label, approximate size in MB). The publisher gives no checksums for these files; each download
    # is verified by loading it, and its SHA-256 is recorded beside it.
    "mae_visualize_vit_base": ("Official MAE ViT-B/16 (visualize)", 447),
    "mae_visualize_vit_large": ("Official MAE ViT-L/16 (visualize)", 1260),
    "mae_visualize_vit_huge": ("Official MAE ViT-H/14 (visualize)", 2630),
    "mae_visualize_vit_large_ganloss": ("Official MAE ViT-L/16 with GAN loss (visualize)", 1260),
}


def official_dir() -> Path:
    return cache_dir() / "official"


def official_path(name: str) -> Path:
    if name not in OFFICIAL_VISUALIZE:
        raise CheckpointError(f"unknown official model {name!r}; choose one of: {', '.join(OFFICIAL_VISUALIZE)}")
    return official_dir() / f"{name}.pth"


def is_downloaded(name: str) -> bool:
    return official_path(name).is_file()


def download_official(name: str, progress: Optional[Callable[[int, Optional[int]], None]] = None,
                      timeout: float = 20.0, opener=urllib.request.urlopen) -> Path:
    """Download one official visualize checkpoint into the cache (``atomic_write``: it must load before it is
    renamed into place), and record its SHA-256. ``progress(done_bytes, total_bytes)`` is called as data arrives."""

    final = official_path(name)
    if final.is_file():
        return final
    policy.require_writable("downloading models")
    url = OFFICIAL_BASE + final.name
    sha = hashlib.sha256()

    def fetch(f):
        with opener(url, timeout=timeout) as r:
            total = int(r.headers.get("Content-Length") or 0) or None
            done = 0
            for chunk in iter(lambda: r.read(1 << 20), b""):
                f.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done != total:
            raise OSError(f"connection closed after {done} of {total} bytes")
    try:  # a broken or foreign file never enters the cache: it must load before it is renamed into place
        atomic_write(final, fetch, verify=lambda tmp: load_model(tmp, limits=policy.current().limits))
    except OSError as e:
        raise CheckpointError(
            f"could not download {final.name} from {OFFICIAL_BASE} ({e}). Without a network, download it on "
            f"another machine and load it with 'Path on this server' or an upload.") from None
    (final.with_suffix(".sha256")).write_text(sha.hexdigest() + "  " + final.name + "\n")
    return final


def model_label(card: dict) -> str:
    """A human name for a checkpoint: data, pretraining ratio (and strategy), target."""
    return cards.read(card).label


def bundled_choices() -> dict[str, str]:
    """label -> path of the bundled checkpoints, the default (Fashion-MNIST at 75%) first."""
    found = sorted(list_bundled(), key=lambda c: (c["name"] != "fmnist_r75", not c["name"].startswith("fmnist"),
                                                  c["name"]))
    out = {}
    for c in found:
        label = cards.read(c).short_label
        out[label if label not in out else f"{label} ({c['name']})"] = c["path"]
    return out


def user_runs(runs_dir: Path) -> dict[str, str]:
    """Checkpoints the user trained (our format) under ``runs_dir``: run name -> weights. The name alone (a safe
    stem of at most 48 characters), so a closed picker in the 300 px sidebar shows it whole; the page says the rest
    (data, ratio, target) once the run is loaded."""
    out = {}
    if runs_dir.is_dir():
        for card_path in sorted(runs_dir.glob("*.json")):
            w = card_path.with_suffix(".safetensors")
            if w.is_file():
                out[card_path.stem] = str(w)
    return out


def best_representation(found: Optional[list] = None) -> Optional[dict]:
    """The bundled Fashion-MNIST model and feature with the strongest linear probe on its card (full split):
    {"name", "path", "label", "pool", "probe", "knn"}; None when no card carries probe scores."""
    best = None
    for c in (list_bundled() if found is None else found):
        card = cards.read(c)
        if card.data_name != "Fashion-MNIST":
            continue
        for pool in ("both", "mean", "cls"):
            p = card.probe(pool)
            if p is not None and (best is None or p > best["probe"]):
                best = {"name": c["name"], "path": c["path"], "label": card.short_label, "pool": pool,
                        "probe": float(p), "knn": card.knn(pool)}
    return best


def bundled_card(name: Optional[str], found: Optional[list] = None) -> Optional[dict]:
    """The card of the bundled model called ``name`` (as a card's ``name``), or None."""
    return next((c for c in (list_bundled() if found is None else found) if c.get("name") == name), None)


def finetune_results(card: dict, found: Optional[list] = None) -> tuple:
    """The fine-tuning results to show beside a model: (its card's own ``finetune``, None) when it has rows, else
    (a bundled model's, that model's short label) from the first bundled card that has them, else ({}, None). So a
    page that opens on a model without results still shows the paper's headline, saying whose results they are."""
    own = cards.read(card).finetune
    if own.get("rows"):
        return own, None
    for c in (list_bundled() if found is None else found):
        other = cards.read(c)
        if other.finetune.get("rows"):
            return other.finetune, other.short_label
    return {}, None
