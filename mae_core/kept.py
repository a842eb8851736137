"""A bounded memory shared by the threads of one process: the last values by key, the least recently used dropped
first, and a value made once per key at a time (a thread asking for a key another is making waits for it). Used for
what a server's visitors ask for alike: results looked up lately, the Train page's time estimates, one image's
classical fill."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional


class Kept:
    """At most ``size()`` values (read at each insertion, so a module constant behind it can change)."""

    def __init__(self, size: Callable[[], int]):
        self._size = size
        self._values: OrderedDict = OrderedDict()
        self._making: dict = {}          # key -> the lock of whoever makes it
        self._guard = threading.Lock()

    def get(self, key: Hashable) -> Optional[Any]:
        """The value kept for ``key`` (now the most recently used), or None."""
        with self._guard:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        return None

    def put(self, key: Hashable, value: Any) -> Any:
        """Keep ``value`` for ``key``, dropping the least recently used beyond the bound; returns ``value``."""
        with self._guard:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self._size():
                old, _ = self._values.popitem(last=False)
                self._making.pop(old, None)
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value for ``key``, made by ``make()`` when it is not kept; while one thread makes it, the others
        asking for the same key wait for that value instead of making it too."""
        with self._guard:
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            value = self.get(key)
            return value if value is not None else self.put(key, make())

    def keys(self) -> list:
        with self._guard:
            return list(self._values)

    def clear(self) -> None:
        with self._guard:
            self._values.clear()
            self._making.clear()
