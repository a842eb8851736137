"""What a visitor may do on this server: the operator's settings and the checks that enforce them.

The app is meant to run on one server for a whole class. Everything a visitor can name (a path, a model size,
a training run) goes through a check here, in the library, so hiding a widget is never the only guard:

* paths: a visitor's path must resolve (symlinks and ``..`` followed) inside a folder the operator allowed;
  anything else gets one message that does not say whether the path exists;
* writes: a read-only server refuses training, downloads and weight uploads;
* sizes: the operator's ``Limits`` (``current().limits``), which the app passes to ``load_model``: a model's
  parameter count and activation memory are computed from its configuration and capped before any tensor is
  allocated.

Settings come from the environment at each call (so tests and operators can change them without a restart):

==========================  ==========================================================================
``MAE_SHARED=1``            a server shared by several people (implied by ``MAE_READ_ONLY=1``)
``MAE_READ_ONLY=1``         no training, downloads or weight uploads
``MAE_ALLOWED_DIRS``        folders a visitor may read models and image folders from, ``:``-separated;
                            default: none on a shared server, the project's own folders (checkpoints,
                            runs, cache) when run locally by one user
``MAE_MAX_PARAMS``          largest model (parameters) that may be built, default 1,000,000,000 (ViT-H: 0.66 B)
``MAE_MAX_ACTIVATION_MB``   largest estimated activation memory of one image's forward pass, default 2048
``MAE_MAX_CHECKPOINT_MB``   largest checkpoint (also the unpacked size of a .pth archive), default 4096
``MAE_MAX_RUNNING``         training runs at once on the server, default 2 (more wait in a queue)
``MAE_MAX_HEAVY``           heavy computations at once (sweeps, projections, encodings, time estimates; more
                            wait, told how many are ahead), default half the CPU cores, at least 1
``MAE_RUNS_PER_SESSION``    runs one visitor (one browser) may have running or queued, default 1
``MAE_MAX_RUN_MINUTES``     longest a run may train before it is stopped and saved, default 60 on a shared
                            server, 1440 otherwise
``MAE_SHOW_ALL_RUNS=0``     hide other visitors' runs (default: shown, read-only)
``MAE_OPERATOR_KEY``        a secret that lets whoever types it on the Train page stop or delete any run
==========================  ==========================================================================
"""
from __future__ import annotations

import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..data import cache_dir
from ..model import Limits

ROOT = Path(__file__).resolve().parents[2]


class NotAllowed(PermissionError):
    """An action this server's operator has not allowed; the message says which setting governs it."""


def _flag(name: str, default: bool = False) -> bool:
    v = os.environ.get(name)
    if v is None or not v.strip():
        return default
    return v.strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, default: int) -> int:
    v = os.environ.get(name, "").strip()
    try:
        return int(float(v)) if v else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Policy:
    shared: bool
    read_only: bool
    allowed_dirs: tuple
    max_params: int
    max_activation_bytes: int
    max_checkpoint_bytes: int
    max_running: int
    max_heavy: int
    runs_per_session: int
    max_run_minutes: float
    show_all_runs: bool
    operator_key: Optional[str]

    @property
    def limits(self) -> Limits:
        """The sizes this server reads and builds, for ``load_model(..., limits=)``; refusals name the setting."""
        return Limits(self.max_params, self.max_activation_bytes, self.max_checkpoint_bytes,
                      names=("MAE_MAX_PARAMS", "MAE_MAX_ACTIVATION_MB", "MAE_MAX_CHECKPOINT_MB"))

    def is_operator(self, key: Optional[str]) -> bool:
        return bool(self.operator_key) and bool(key) and hmac.compare_digest(str(key), self.operator_key)


def default_local_dirs() -> tuple:
    runs = Path(os.environ.get("MAE_RUNS_DIR", ROOT / "runs"))
    return (ROOT / "checkpoints", runs, cache_dir())


def current() -> Policy:
    """The settings in force now (read from the environment)."""
    read_only = _flag("MAE_READ_ONLY")
    shared = read_only or _flag("MAE_SHARED")
    raw = os.environ.get("MAE_ALLOWED_DIRS")
    if raw is not None:
        dirs = tuple(Path(d).expanduser() for d in raw.split(os.pathsep) if d.strip())
    else:
        dirs = () if shared else default_local_dirs()
    return Policy(
        shared=shared, read_only=read_only,
        allowed_dirs=tuple(Path(os.path.realpath(d)) for d in dirs),
        max_params=_int("MAE_MAX_PARAMS", 1_000_000_000),
        max_activation_bytes=_int("MAE_MAX_ACTIVATION_MB", 2048) * 2**20,
        max_checkpoint_bytes=_int("MAE_MAX_CHECKPOINT_MB", 4096) * 2**20,
        max_running=max(1, _int("MAE_MAX_RUNNING", 2)),
        max_heavy=max(1, _int("MAE_MAX_HEAVY", (os.cpu_count() or 2) // 2)),
        runs_per_session=max(1, _int("MAE_RUNS_PER_SESSION", 1)),
        max_run_minutes=max(1, _int("MAE_MAX_RUN_MINUTES", 60 if shared else 1440)),
        show_all_runs=_flag("MAE_SHOW_ALL_RUNS", True),
        operator_key=os.environ.get("MAE_OPERATOR_KEY") or None,
    )


# --------------------------------------------------------------------------------------------------
# Paths a visitor names
# --------------------------------------------------------------------------------------------------

PATHS_OFF = ("paths on this server are turned off here; the operator can allow folders with MAE_ALLOWED_DIRS")


def confine(path: Union[str, Path], policy: Optional[Policy] = None) -> Path:
    """Resolve a path a visitor typed and return it if it lies inside an allowed folder.

    Relative paths are taken from the first allowed folder. ``~`` is not expanded. Symlinks and ``..`` are
    followed before the check, so neither can lead out. The refusal is the same whether or not the path
    exists, is readable or is a file: it tells a visitor nothing about the disk."""
    policy = policy or current()
    if not policy.allowed_dirs:
        raise NotAllowed(PATHS_OFF)
    text = str(path).strip()
    if not text or "\x00" in text:
        raise NotAllowed("give a path inside one of the folders this server allows")
    p = Path(text)
    if not p.is_absolute():   # "NAME/..." starts in the allowed folder of that name (as shown), else in the first
        named = {d.name: d for d in reversed(policy.allowed_dirs)}
        first = p.parts[0] if p.parts else ""
        p = named[first] / Path(*p.parts[1:]) if first in named else policy.allowed_dirs[0] / p
    real = Path(os.path.realpath(p))
    for root in policy.allowed_dirs:
        if real == root or real.is_relative_to(root):
            return real
    raise NotAllowed(f"that path is not inside a folder this server allows ({allowed_text(policy)})")


def allowed_text(policy: Optional[Policy] = None) -> str:
    """The allowed folders as a visitor may name them: full paths for a local user; on a shared server only their
    names (``confine`` takes ``NAME/...``), since no page there shows a server path."""
    policy = policy or current()
    if not policy.allowed_dirs:
        return "none"
    if policy.shared:
        return ", ".join(f"{d.name}/" for d in policy.allowed_dirs)
    return ", ".join(str(d) for d in policy.allowed_dirs)


_ABS_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/:'\"()\[\]]+/)*[^\s/:'\"()\[\]]*")


def public_path(path: Union[str, Path], policy: Optional[Policy] = None) -> str:
    """How a server path is shown to a visitor: as it is for a local user; on a shared server a path inside an
    allowed folder as ``NAME/rest`` (what the visitor may type), any other only by its last part."""
    policy = policy or current()
    text = str(path)
    if not policy.shared:
        return text
    real = Path(os.path.realpath(text)) if text.startswith("/") else Path(text)
    for root in policy.allowed_dirs:
        if real == root or real.is_relative_to(root):
            return str(Path(root.name) / real.relative_to(root))
    return Path(text).name or "/"


def public_text(text: str, policy: Optional[Policy] = None) -> str:
    """``text`` (an error message, a caption) with every server path in it shown by ``public_path``: on a shared
    server no page names a folder of the server's own."""
    policy = policy or current()
    if not policy.shared:
        return str(text)
    out = str(text)
    for root in sorted(policy.allowed_dirs, key=lambda d: -len(str(d))):   # the visitor's own words, kept whole
        out = out.replace(str(root) + "/", root.name + "/").replace(str(root), root.name + "/")
    return _ABS_PATH.sub(lambda m: Path(m.group(0)).name or "/", out)


def require_writable(action: str, policy: Optional[Policy] = None) -> None:
    """Refuse ``action`` (e.g. "training") on a read-only server."""
    policy = policy or current()
    if policy.read_only:
        raise NotAllowed(f"this server is read-only (MAE_READ_ONLY): {action} is turned off")
