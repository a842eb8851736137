"""Files written whole or not at all: a temporary file beside the target, fsync, an optional check, rename.

A crash, a full disk or a failed check never leaves a half-written file where a reader would find it; the
previous version stays until the new one is complete. Every writer of the project goes through here."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import: changing the umask later would race with other threads


def atomic_write(path: Union[str, Path], write_fn, mode: str = "wb",
                 verify: Optional[Callable[[Path], None]] = None) -> Path:
    """Write through ``write_fn(file)`` into a temporary file beside ``path``, fsync, run ``verify(temp_path)``
    (it raises to refuse the file: a wrong checksum, a download that does not load), then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the final file gets the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_json(path, obj) -> Path:
    return atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=False) + "\n"), mode="w")
