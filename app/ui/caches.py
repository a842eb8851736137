"""What every session shares on this server: the models (loaded once, frozen), the bundled images, and the
registry of training runs."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import streamlit as st

from mae_core.checkpoints import load_model
from mae_core.classroom import policy
from mae_core.classroom.worker import JobRegistry
from mae_core.data import load_fashion_mnist_subset, load_photo

ROOT = Path(__file__).resolve().parents[2]
RUNS_DIR = Path(os.environ.get("MAE_RUNS_DIR", ROOT / "runs"))


@st.cache_resource
def registry():
    """One registry of training runs per server process: runs survive reloads; limits come from the server's
    policy. The in-app fine-tune borrows a slot from it, so it counts against the same limits."""
    return JobRegistry()


@st.cache_resource(max_entries=6, show_spinner="Loading model…")
def _cached_model(path: str, mtime: float, overrides_json: str):
    model, card = load_model(path, limits=policy.current().limits, **json.loads(overrides_json))
    for p in model.parameters():  # shared by every session: frozen, eval mode, never mutated
        p.requires_grad_(False)
    return model, card


def get_model(path: str, overrides: Optional[dict] = None):
    p = Path(path)
    mtime = p.stat().st_mtime if p.exists() else 0.0
    return _cached_model(str(p), mtime, json.dumps(overrides or {}, sort_keys=True))


@st.cache_resource(show_spinner=False)
def fmnist_subset():
    return load_fashion_mnist_subset()


@st.cache_resource(show_spinner=False)
def photo(name: str):
    return load_photo(name)
