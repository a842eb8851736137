"""Results computed once for the whole server, not once per visitor: what a page shows for a model and its settings
(a sweep's curves, the lesson's maps), keyed by the weights' SHA-256 and the settings, so a retrained model never
shows another model's results.

Three places, looked up in order:
  shipped   checkpoints/precomputed/STEM.KIND.json, written for the bundled models by ``python -m mae_core.evaluation.precompute``
            (the pages' defaults: a first visit computes nothing);
  cache     $MAE_CACHE_DIR/results/SHA16.KIND.SETTINGS16.json, written the first time any other result is computed,
            so a second visitor or a restarted server does not compute it again;
  compute   the caller's function, run once per key at a time: a visitor asking for a result another is computing
            waits for it (``get``'s ``on_wait`` says how many are computing or waiting) instead of computing it too;
            inside the caller's ``gate`` (the classroom server's bounded pool of heavy work).
Results looked up lately are also kept in memory (``MEMORY`` of them), so a page's rerun reads no file, and a
server that writes nothing (``keep=False``) still computes a result once.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from ..atomic import atomic_write
from ..checkpoints import CHECKPOINT_DIR
from ..kept import Kept
from ..data import cache_dir

# MAE_SHIPPED_RESULTS_DIR: another folder of shipped results (bench/class_load.py points it at an empty one to
# measure a server without them)
SHIPPED_DIR = Path(os.environ.get("MAE_SHIPPED_RESULTS_DIR") or CHECKPOINT_DIR / "precomputed")
FORMAT = 1
MAX_CACHED = 2000            # result files kept in the disk cache; beyond it the oldest tenth goes
MEMORY = 64                  # results kept in memory, the least recently used dropped first

_hashes: dict = {}
_locks: dict = {}
_busy: dict = {}             # key -> visitors computing or waiting for it
_guard = threading.Lock()
_memory = Kept(lambda: MEMORY)   # (sha, kind, settings id) -> value


def weights_sha256(path) -> str:
    """The SHA-256 of a weights file, remembered per (path, size, mtime): a rewritten file is hashed again."""
    p = Path(path)
    st = p.stat()
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _hashes:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _hashes[memo] = h.hexdigest()
    return _hashes[memo]


def settings_id(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def shipped_path(weights_path, kind: str) -> Path:
    return SHIPPED_DIR / f"{Path(weights_path).stem}.{kind}.json"


def cached_path(sha: str, kind: str, settings: dict) -> Path:
    return Path(cache_dir()) / "results" / f"{sha[:16]}.{kind}.{settings_id(settings)}.json"


def _read(path: Path, sha: str, kind: str, settings: dict) -> Optional[Any]:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = (isinstance(d, dict) and d.get("format") == FORMAT and d.get("weights_sha256") == sha
          and d.get("kind") == kind and d.get("settings") == json.loads(json.dumps(settings, default=str)))
    return d.get("value") if ok else None


def lookup(weights_path, kind: str, settings: dict) -> Optional[Any]:
    """The stored result for these weights and settings (shipped first, then the disk cache), or None."""
    if not Path(weights_path).is_file():
        return None
    sha = weights_sha256(weights_path)
    for path in (shipped_path(weights_path, kind), cached_path(sha, kind, settings)):
        if path.is_file():
            value = _read(path, sha, kind, settings)
            if value is not None:
                return value
    return None


def _write(path: Path, weights_path, kind: str, settings: dict, value: Any) -> Path:
    record = {"format": FORMAT, "kind": kind, "weights_sha256": weights_sha256(weights_path), "settings": settings,
              "value": value}
    text = json.dumps(record, separators=(",", ":"), default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def ship(weights_path, kind: str, settings: dict, value: Any) -> Path:
    """Store a result next to the bundled checkpoints (``python -m mae_core.evaluation.precompute``)."""
    return _write(shipped_path(weights_path, kind), weights_path, kind, settings, value)


def _prune(folder: Path) -> None:
    """Bound the disk cache: past ``MAX_CACHED`` files, the least recently written tenth is deleted."""
    keep = MAX_CACHED
    try:
        files = sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime)
    except OSError:
        return
    if len(files) > keep:
        for f in files[:max(1, keep // 10)]:
            f.unlink(missing_ok=True)


def get(weights_path, kind: str, settings: dict, compute: Callable[[], Any],
        on_wait: Optional[Callable[[int], None]] = None, keep: bool = True,
        gate: Callable[[], Any] = contextlib.nullcontext) -> Any:
    """The result for these weights and settings: in memory, stored, or computed once for the whole server and
    stored in the disk cache (``keep=False``: not stored, for a server that writes nothing). While another visitor
    computes the same key this call waits; ``on_wait(n)`` is told how many visitors are at it before it starts
    waiting. ``compute`` runs inside ``gate()`` (a bounded pool's slot) and must return JSON-serialisable data."""
    if not Path(weights_path).is_file():   # nothing to key it by: computed, not stored
        with gate():
            return compute()
    key = (weights_sha256(weights_path), kind, settings_id(settings))
    value = _memory.get(key)
    if value is not None:
        return value
    value = lookup(weights_path, kind, settings)
    if value is not None:
        return _memory.put(key, value)
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
        _busy[key] = _busy.get(key, 0) + 1
        ahead = _busy[key] - 1
    try:
        if ahead and on_wait is not None:
            on_wait(ahead)
        with lock:
            value = _memory.get(key) or lookup(weights_path, kind, settings)   # the one before us may have stored it
            if value is None:
                with gate():
                    value = compute()
                if keep:
                    try:
                        path = _write(cached_path(key[0], kind, settings), weights_path, kind, settings, value)
                        _prune(path.parent)
                    except OSError:   # a read-only cache: the result is still returned, just not kept
                        pass
            return _memory.put(key, value)
    finally:
        with _guard:
            _busy[key] -= 1
            if not _busy[key]:
                del _busy[key]


def clear_memory() -> None:
    """Forget the remembered hashes and results (tests)."""
    _hashes.clear()
    _memory.clear()
