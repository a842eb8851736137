"""Text from visitors and files is shown as text; errors are one clear message, with no server path on a shared
server and no traceback."""
from __future__ import annotations

import functools
import logging
import re
import string
from typing import Optional

import streamlit as st

from mae_core.classroom import policy

_MD_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")


# Streamlit's Markdown (GitHub's autolink extension) makes links of bare "www." words, "scheme://" addresses and
# e-mail addresses even when every Markdown character is escaped. An invisible WORD JOINER after "www" (before its
# dot), after the ":" of "://" and after "@" breaks each of those patterns; the text reads and wraps the same.
_AUTOLINK = re.compile(r"(?i)(www)(?=\.)|(:)(?=//)|(@)")


_JOINER = "\u2060"


def plain(text) -> str:
    """``text`` shown literally by Markdown: no link, image, HTML, emphasis or formula can come from a file name, a
    path or an error message that a visitor or a file chose, not even the links Markdown makes of bare addresses."""
    text = _AUTOLINK.sub(lambda m: m.group(0) + _JOINER, str(text))
    return _MD_SPECIAL.sub(r"\\\1", text)


def reading(r, title: str = "") -> None:
    """A ``mae_core.evaluation.readings.Reading``: its headline in plain words first (after ``title`` in bold, if given), the
    intervals, protocols and exact figures under a Details expander."""
    if not r:
        return
    if r.headline:
        st.markdown((f"**{title}** " if title else "") + "**" + plain(r.headline) + "**")
    if r.details:
        with st.expander("Details", icon=":material/info:"):
            st.markdown(plain(r.details))


def error(prefix: str, detail=None) -> None:
    """An error box: our own ``prefix`` (Markdown allowed) and a ``detail`` that came from elsewhere, as text, with
    server paths cut on a shared server (``policy.public_text``)."""
    st.error(prefix if detail is None else f"{prefix}{plain(policy.public_text(detail))}")


_PATHS = re.compile(r"(?:/[^\s/:'\"()]+)+/([^\s/:'\"()]*)")


def failure_text(e: BaseException) -> str:
    """What a visitor is told about an unexpected error: its kind and first line, with server paths cut to their
    last part (the full traceback goes to the server's log)."""
    first = (str(e).strip().splitlines() or [""])[0][:300]
    first = _PATHS.sub(lambda m: m.group(1) or "/", first)
    kind = {MemoryError: "out of memory", RecursionError: "input nested too deeply",
            PermissionError: "permission denied"}.get(type(e), type(e).__name__)
    return f"{kind}: {first}" if first else kind


def guarded(fn):
    """Run a page (or a fragment) so that an error it did not expect is shown as one clear message, not a
    traceback; what the visitor made (model, image, mask: all in session state) is kept."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the page's boundary; st.stop/st.rerun are not Exceptions
            logging.getLogger("mae_explorer").exception("page error")
            st.error(f"Something went wrong here ({plain(failure_text(e))}). Your model, image and mask are kept; "
                     f"change a setting or reload the page to go on.", icon=":material/error:")
            return None
    return run


def server_path_input(where, label: str, key: str, what: str = "Paths on this server") -> Optional[str]:
    """A text box for a file or folder on the server, confined to the folders the operator allows
    (``policy.confine``). Returns the resolved path, "" while nothing is typed, or None when the path is refused
    or such paths are turned off (the reason is shown in ``where``)."""
    pol = policy.current()
    if not pol.allowed_dirs:
        where.info(f"{what} are turned off on this server (the operator can allow folders with MAE_ALLOWED_DIRS).")
        return None
    typed = where.text_input(label, key=key, help=f"Inside: {policy.allowed_text(pol)}")
    if not typed.strip():
        return ""
    try:
        return str(policy.confine(typed, pol))
    except policy.NotAllowed as e:
        where.error(plain(e))
        return None
