"""Charts that show at once as a picture and turn interactive when the visitor points at them.

In a class every browser opens a page at the same moment, and plotly's interactive charts are the slowest thing a
first visit draws: loading plotly's script and drawing the chart took each tab 2-6 s more than the server's answer
with ten tabs on a 2-core machine (bench/class_load.py). So a session's first page shows each chart as a PNG of
the same ``figures.Chart`` (matplotlib, made once per chart for the whole server) at the interactive chart's
height. The first time the pointer moves over one (or a finger touches it, or the keyboard focuses it), a small
component asks for the interactive charts, which replace the pictures in place (a rerun of the page: its results
are cached); the picture holds the place until plotly has drawn. From then on the session draws its charts
interactive at once: the browser has plotly loaded; so does presenter mode (one screen, type sized for a
projector). Loading plotly as soon as the browser was idle instead added its work to every tab's first visit at
once (measured: the ten tabs' p50 went up in two of three runs)."""
from __future__ import annotations

import hashlib
import pickle
from typing import Optional

import streamlit as st

from mae_core.evaluation import figures
from mae_core.kept import Kept

from .session import presenting

INTERACTIVE = "_charts_interactive"   # session state: this visitor's browser draws plotly charts now
_PICTURED = "_charts_pictured"         # session state: the charts last shown as pictures
REDRAWN = "_charts_redrawn"            # session state: this run only turns the charts interactive
_PICTURES = Kept(lambda: 96)          # PNG bytes by the chart's content, for the whole server

# The component: the first time the pointer moves over the chart's box (or a finger touches it, or the keyboard
# focuses it; not a wheel: scrolling the page is no wish to explore), it sends "touched". It sits inside the box
# (hidden, CSS in ``ui.session``).
_TOUCH_JS = """
export default function(component) {
  const { setTriggerValue, parentElement } = component;
  const mark = parentElement.querySelector('span');
  if (!mark || mark.dataset.armed) return;
  mark.dataset.armed = '1';
  const host = parentElement.getRootNode().host || parentElement;
  const box = host.closest('[class*="st-key-chartbox_"]');
  if (!box) return;
  box.tabIndex = 0;
  box.setAttribute('aria-label', 'Chart picture: point at it or focus it for the interactive chart');
  const go = () => {
    if (mark.dataset.asked) return;
    mark.dataset.asked = '1';
    box.dataset.touched = '1';   // the picture now says the interactive chart is loading (CSS in ui.session)
    setTriggerValue('touched', true);
  };
  for (const ev of ['pointermove', 'pointerdown', 'touchstart', 'focus'])
    box.addEventListener(ev, go, { once: true, passive: true });
}
"""
_when_touched = st.components.v2.component("mae_when_touched", html="<span></span>", js=_TOUCH_JS)


def picture(chart: figures.Chart, width_px: int = 760) -> bytes:
    """The chart as a PNG ``width_px`` wide and as high as the interactive chart (``figures.to_png``), made once
    per chart content and width for the whole server."""
    key = (hashlib.sha1(pickle.dumps(chart, protocol=4)).hexdigest(), int(width_px))
    return _PICTURES.get_or_make(key, lambda: figures.to_png(chart, dpi=100,
                                                              size=(width_px / 100, chart.height / 100)))


def interactive() -> bool:
    """This session draws plotly charts at once: it has pointed at a picture, or it is the presenter's screen (one
    browser, large type: the interactive charts' type is the one sized for a projector)."""
    return bool(st.session_state.get(INTERACTIVE)) or presenting()


PRESENTER_TYPE = 1.3   # presenter mode's charts: type 1.3 times the normal 14-16 px, as the page's text grows


def plotly_figure(chart: figures.Chart, **kwargs):
    """``figures.to_plotly(chart)`` with type for this screen: larger in presenter mode (a projector)."""
    return figures.to_plotly(chart, type_scale=PRESENTER_TYPE if presenting() else 1.0, **kwargs)


def _go_interactive() -> None:
    st.session_state[INTERACTIVE] = True
    st.session_state[REDRAWN] = True   # the rerun this causes is no act of the visitor's (ui.scenes keeps its note)


def _picture(chart: figures.Chart, key: str, width_px: int) -> None:
    st.html(f"<style>.st-key-chartbox_{key} [data-testid='stImage'] img {{ height: {int(chart.height)}px; "
            "width: 100%; object-fit: contain; }}</style>")
    st.image(picture(chart, width_px), width="stretch")


def show(chart: figures.Chart, key: str, layout: Optional[dict] = None, width_px: int = 760, **plotly_kwargs):
    """``chart`` drawn interactive (``st.plotly_chart`` of ``figures.to_plotly(chart)``, its layout updated with
    ``layout``, with ``plotly_kwargs``; returns what it returns; the figure is built only then), or, on a
    session's first page, as its picture until the visitor points at it (returns None: no selection yet), drawn
    ``width_px`` wide: about its width on a 1024-1280 px screen, so its type is read at its own size (a wider box
    centres it: its height is the chart's).
    On the run that turns it interactive the picture holds the place until plotly has drawn the chart (CSS in
    ``ui.session``), so it is never blank."""
    pictured = st.session_state.setdefault(_PICTURED, set())
    with st.container(key=f"chartbox_{key}"):
        if not interactive():
            pictured.add(key)
            _picture(chart, key, width_px)
            _when_touched(key=f"touch_{key}", on_touched_change=_go_interactive)
            return None
        if key in pictured:
            pictured.discard(key)
            _picture(chart, key, width_px)
        fig = plotly_figure(chart)
        if layout:
            fig.update_layout(**layout)
        return st.plotly_chart(fig, key=key, **plotly_kwargs)
