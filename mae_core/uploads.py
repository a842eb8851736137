"""Checkpoint files that visitors upload: stored per visitor, bounded by a quota and an age.

Each visitor's uploads live in their own folder (``$MAE_UPLOAD_DIR/<visitor>/<content hash>/``), so one
visitor's quota never counts another's files and nothing is shared between them. When a new upload would
exceed the quota, that visitor's oldest uploads are removed first; a single upload larger than the quota is
refused. Uploads older than the age limit are removed by ``clean_old`` (the app calls it at start-up and
hourly). A read-only server stores none.

==========================  ==============================================================
``MAE_UPLOAD_DIR``          where uploads are kept (default: the cache folder's ``uploads/``)
``MAE_UPLOAD_QUOTA_MB``     per visitor, default 1400 (one official ViT-L checkpoint)
``MAE_UPLOAD_MAX_AGE_H``    hours an upload is kept, default 24
==========================  ==============================================================
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path
from typing import Iterable, Optional

from . import policy
from .checkpoints import CheckpointError, atomic_write
from .data import cache_dir

WEIGHT_SUFFIXES = (".safetensors", ".json", ".pth", ".pt", ".bin")


class UploadError(ValueError):
    """An upload that cannot be stored; the message says why."""


def upload_dir() -> Path:
    return Path(os.environ.get("MAE_UPLOAD_DIR") or cache_dir() / "uploads")


def quota_bytes() -> int:
    return int(float(os.environ.get("MAE_UPLOAD_QUOTA_MB") or 1400) * 2**20)


def max_age_s() -> float:
    return float(os.environ.get("MAE_UPLOAD_MAX_AGE_H") or 24) * 3600


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(str(name)).name).lstrip(".")[:100] or "upload"


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def save_checkpoint_upload(files: Iterable[tuple[str, bytes]], visitor: str) -> Path:
    """Store one upload (a .safetensors with its .json card, or one .pth/.bin) for ``visitor``; return the
    path to load. Raises ``UploadError`` (too large, wrong kind) or ``policy.NotAllowed`` (read-only)."""
    policy.require_writable("uploading weights")
    files = [(_safe_name(n), memoryview(b)) for n, b in files]
    bad = [n for n, _ in files if not n.endswith(WEIGHT_SUFFIXES)]
    if bad:
        raise UploadError(f"{bad[0]}: upload .safetensors (with its .json card), .pth, .pt or .bin files")
    total = sum(b.nbytes for _, b in files)
    quota = quota_bytes()
    if total > quota:
        raise UploadError(f"this upload is {total / 2**20:,.0f} MB; each visitor may keep {quota / 2**20:,.0f} MB "
                          f"(MAE_UPLOAD_QUOTA_MB)")
    weights = [n for n, _ in files if n.endswith(".safetensors")] or \
        [n for n, _ in files if n.endswith((".pth", ".pt", ".bin"))]
    if not weights:
        raise CheckpointError("upload a .safetensors file (with its .json model card) or an official .pth file")
    h = hashlib.sha256()
    for n, b in files:
        h.update(n.encode())
        h.update(b)
    mine = upload_dir() / _safe_name(hashlib.sha256(visitor.encode()).hexdigest()[:16])
    folder = mine / h.hexdigest()[:16]
    if not folder.is_dir():
        _make_room(mine, total, quota)
        for n, b in files:
            atomic_write(folder / n, lambda f, b=b: f.write(b))
    os.utime(folder)  # used again: the age limit counts from now
    return folder / weights[0]


def _make_room(mine: Path, need: int, quota: int) -> None:
    """Remove the visitor's oldest uploads until ``need`` more bytes fit in the quota."""
    if not mine.is_dir():
        return
    olds = sorted((d for d in mine.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    used = sum(_folder_bytes(d) for d in olds)
    while olds and used + need > quota:
        d = olds.pop(0)
        used -= _folder_bytes(d)
        shutil.rmtree(d, ignore_errors=True)


def clean_old(now: Optional[float] = None, root: Optional[Path] = None) -> int:
    """Remove uploads older than the age limit; return how many were removed."""
    now = time.time() if now is None else now
    root = root or upload_dir()
    if not root.is_dir():
        return 0
    removed = 0
    limit = max_age_s()
    for visitor in root.iterdir():
        if not visitor.is_dir():
            continue
        for d in visitor.iterdir():
            if d.is_dir() and now - d.stat().st_mtime > limit:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        if not any(visitor.iterdir()):
            visitor.rmdir()
    return removed
