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
from ..checkpoints import CheckpointError, atomic_write
from ..data import cache_dir

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


def _looks_like(name: str, head: bytes) -> bool:
    """Whether the first bytes of a file fit its kind: a safetensors header length and JSON, a zip archive or a
    pickle (what torch.save writes), a JSON object. Junk is refused before a byte of it is stored."""
    if name.endswith(".safetensors"):
        return len(head) >= 9 and 2 <= int.from_bytes(head[:8], "little") <= 100 * 2**20 and head[8:9] == b"{"
    if name.endswith(".json"):
        return head.lstrip()[:1] == b"{"
    if head[:4] == b"PK\x03\x04":   # torch.save's zip format
        return True
    return len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5   # a legacy pickle, protocol 2-5


def content_key(files: Iterable[tuple[str, bytes]]) -> str:
    """The name an upload is stored under: a hash of its file names and contents."""
    h = hashlib.sha256()
    for n, b in files:
        h.update(_safe_name(n).encode())
        h.update(b)
    return h.hexdigest()[:16]


def save_checkpoint_upload(files: Iterable[tuple[str, bytes]], visitor: str) -> Path:
    """Store one upload (a .safetensors with its .json card, or one .pth/.bin) for ``visitor``; return the
    path to load. Raises ``UploadError`` (too large, wrong kind, not what its name says) or ``policy.NotAllowed``
    (read-only). Nothing is written for an upload that is refused."""
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
    junk = next((n for n, b in files if not _looks_like(n, bytes(b[:16]))), None)
    if junk:
        kind = "JSON model card" if junk.endswith(".json") else \
            "safetensors file" if junk.endswith(".safetensors") else "PyTorch checkpoint (zip or pickle)"
        raise UploadError(f"{junk}: not a {kind}; its first bytes are not what such a file starts with")
    folder = _visitor_dir(visitor) / content_key(files)
    if not folder.is_dir():
        _make_room(folder.parent, total, quota)
        for n, b in files:
            atomic_write(folder / n, lambda f, b=b: f.write(b))
    os.utime(folder)  # used again: the age limit counts from now
    return folder / weights[0]


def _visitor_dir(visitor: str) -> Path:
    return upload_dir() / _safe_name(hashlib.sha256(visitor.encode()).hexdigest()[:16])


def discard(path: Path) -> bool:
    """Remove the stored upload that ``path`` (as returned by ``save_checkpoint_upload``) belongs to: an upload
    that failed to load is not kept. Refuses anything outside the upload folder. Returns whether it removed it."""
    root = Path(os.path.realpath(upload_dir()))
    folder = Path(os.path.realpath(Path(path).parent))
    if folder.parent.parent != root or not folder.is_dir():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    visitor = folder.parent
    if visitor.is_dir() and not any(visitor.iterdir()):
        visitor.rmdir()
    return True


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
