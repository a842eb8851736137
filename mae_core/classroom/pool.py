"""Heavy work bounded for the whole server: sweeps, projections (t-SNE), encodings of large sets and time estimates
go through one pool of ``policy.current().max_heavy`` slots (``MAE_MAX_HEAVY``). A visitor whose work finds every
slot taken waits, and is told how many others are ahead (``on_wait``); the fine-tune borrows a training slot
instead (``worker.JobRegistry.slot``)."""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Optional

from . import policy


class HeavyPool:
    """At most ``size()`` holders at once; the others wait in arrival order. A thread that holds a slot takes no
    second one for work nested inside it (a map whose computation needs the features first)."""

    def __init__(self, size: Callable[[], int] = lambda: policy.current().max_heavy):
        self._size = size
        self._cv = threading.Condition()
        self._running = 0
        self._queue: list = []           # tickets of the waiting, first come first served
        self._held = threading.local()   # this thread's depth of nested slots

    def counts(self) -> tuple:
        """(running, waiting) now."""
        with self._cv:
            return self._running, len(self._queue)

    @contextlib.contextmanager
    def slot(self, on_wait: Optional[Callable[[int], None]] = None, poll: float = 0.25):
        """Hold one slot for the ``with`` block. While waiting, ``on_wait(n)`` is called whenever the number of
        visitors' jobs ahead of this one (running or waiting before it) changes."""
        depth = getattr(self._held, "depth", 0)
        if depth:                        # nested in this thread's own slot: already counted
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        ticket = object()
        told = None
        with self._cv:
            self._queue.append(ticket)
        try:
            while True:
                with self._cv:
                    first = self._queue[0] is ticket
                    if first and self._running < max(1, int(self._size())):
                        self._queue.pop(0)
                        self._running += 1
                        break
                    ahead = self._running + self._queue.index(ticket)
                if on_wait is not None and ahead != told:
                    on_wait(ahead)
                    told = ahead
                with self._cv:
                    self._cv.wait(poll)
        except BaseException:           # interrupted while waiting (the visitor left): give the place up
            with self._cv:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._cv.notify_all()
            raise
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._cv:
                self._running -= 1
                self._cv.notify_all()


HEAVY = HeavyPool()
