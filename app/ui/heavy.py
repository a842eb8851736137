"""Heavy work on a page goes through the server's bounded pool (``mae_core.classroom.pool``): while every slot is
taken the visitor sees how many others are ahead, in the place where the result will appear."""
from __future__ import annotations

import contextlib

import streamlit as st

from mae_core.classroom import policy
from mae_core.classroom.pool import HEAVY
from mae_core.evaluation import results

from .session import read_only


@contextlib.contextmanager
def heavy(what: str, where=None):
    """Hold a slot of the pool for the ``with`` block; ``where`` (a placeholder) tells the visitor while they wait."""
    box = where if where is not None else st.empty()
    size = policy.current().max_heavy

    def told(n: int) -> None:
        box.info(f"Waiting for {n} other visitor{'s' if n != 1 else ''}' work to finish before {what} (this server "
                 f"computes {size} thing{'s' if size != 1 else ''} like this at a time)…", icon=":material/hourglass_top:")
    with HEAVY.slot(on_wait=told):
        box.empty()
        yield


def same_work(box, doing: str):
    """``results.get``'s ``on_wait``: while others compute the very result asked for, say so in ``box``
    (``doing``: "drawing the same map")."""
    return lambda n: box.info(f"Waiting for {n} other visitor{'s' if n > 1 else ''} {doing}…",
                              icon=":material/hourglass_top:")


def gate(what: str, where=None):
    """``heavy`` as a factory, for ``results.get(..., gate=)``."""
    return lambda: heavy(what, where)


def stored(path, kind: str, settings: dict, compute, what: str, box=None, doing: str = ""):
    """``results.get`` as every page asks it: the result for these weights and settings, shipped or stored for the
    whole server, else computed once in a slot of the pool (``what``: said while waiting for a slot, in ``box``);
    while others compute the very same result, ``box`` says so (``doing``: "drawing the same map"). A read-only
    server writes nothing."""
    on_wait = same_work(box, doing or f"computing {what}") if box is not None else None
    return results.get(path, kind, settings, compute, on_wait=on_wait, keep=not read_only(), gate=gate(what, box))
