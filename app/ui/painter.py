"""The patch painter: a Streamlit v2 component (HTML here, its CSS and JavaScript in ``web/``; no build step) that draws the model's
patch grid over the image. Press on a visible patch to start hiding, on a hidden one to start revealing, and
drag to paint; on release the whole mask is sent once as a trigger value. The mask passed in as data is the
one source of truth: the component never keeps state of its own between runs."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import streamlit as st

from mae_core.explore import HIDDEN_CSS

WEB = Path(__file__).resolve().parent / "web"   # the components' CSS and JavaScript, as files


def _web(name: str) -> str:
    return (WEB / name).read_text()

_CSS = _web("painter.css").replace("HIDDEN_CSS", HIDDEN_CSS)

_HTML = """
<div class="mae-wrap">
  <div class="mae-painter" data-testid="mae-painter" tabindex="0" role="grid"
       aria-label="Patch mask painter: arrow keys move, space hides or shows the patch"></div>
  <div class="mae-hint" aria-live="polite"></div>
</div>
"""

# What the painter and the patch picker share: the grid over the image, a cell under the pointer, arrow keys.
_GRID_JS = _web("grid.js")

# The painter fills its column (CSS width 100%, square by aspect-ratio, capped by data.max_px), so every cell is
# reachable at any window size. Keyboard: arrows move a cursor cell, Space/Enter toggles it (each toggle is one
# stroke, sent at once), Home/End jump to the first/last cell.
_JS = _GRID_JS + _web("paint.js")

_painter = st.components.v2.component("mae_patch_painter", html=_HTML, css=_CSS, js=_JS)


def fit_css(max_px: int, fit_below: int = 0) -> str:
    """A CSS width cap: ``max_px``, and where ``fit_below`` is given, no more than the window's height less that
    many pixels (what sits above and below it), so a square fits the first screen of a laptop."""
    return f"min({int(max_px)}px, calc(100vh - {int(fit_below)}px))" if fit_below else f"{int(max_px)}px"


def patch_painter(image_data_url: str, mask: Sequence[int], grid: int, max_px: int = 560, pixelated: bool = False,
                  key: str = "painter", on_change: Optional[Callable[[], None]] = None, fit_below: int = 0):
    """Mount the painter: as wide as its column, at most ``max_px`` (and ``fit_css``'s height cap), square.
    ``on_change`` runs when a stroke (or a key press) ends; read the new mask with ``painted_cells(key)``."""
    return _painter(data={"image": image_data_url, "mask": [int(bool(v)) for v in mask], "grid": int(grid),
                          "max_px": int(max_px), "max_css": fit_css(max_px, fit_below), "pixelated": bool(pixelated)},
                    key=key, on_mask_change=on_change or (lambda: None))


def _sent(key: str, name: str):
    """The value a component sent last under ``name`` (its trigger value), or None."""
    state = st.session_state.get(key)
    if state is None:
        return None
    try:
        return state[name]
    except (KeyError, TypeError):
        return getattr(state, name, None)


def painted_cells(key: str = "painter"):
    """The mask of the last finished stroke (list of 0/1), or None."""
    return _sent(key, "mask")


# The patch picker: the same grid over an image, but a click (or Enter on the keyboard cursor) picks one patch,
# sent at once as a trigger value. Used to choose the query patch of an attention map.
_PICK_JS = _GRID_JS + _web("pick.js")

_PICK_HTML = """
<div class="mae-wrap">
  <div class="mae-painter" data-testid="mae-picker" tabindex="0" role="grid"
       aria-label="Pick a patch: arrow keys move, Enter picks"></div>
  <div class="mae-hint" aria-live="polite"></div>
</div>
"""
_picker = st.components.v2.component("mae_patch_picker", html=_PICK_HTML, css=_CSS, js=_PICK_JS)


def patch_picker(image_data_url: str, grid: int, max_px: int = 420, selected: int = -1, hint: str = "",
                 key: str = "picker", on_change: Optional[Callable[[], None]] = None, mark: bool = False,
                 lines: bool = False):
    """Mount a patch picker over an image; ``on_change`` runs when a patch is picked: read it with
    ``picked_cell(key)``. ``mark``: the picked patch stays outlined; ``lines``: the patch grid is drawn."""
    return _picker(data={"image": image_data_url, "grid": int(grid), "max_px": int(max_px),
                         "selected": int(selected), "hint": hint, "mark": bool(mark), "lines": bool(lines)},
                   key=key, on_cell_change=on_change or (lambda: None))


def picked_cell(key: str = "picker") -> Optional[int]:
    v = _sent(key, "cell")
    return None if v is None else int(v)


# The guess painter (the lesson's predict step): the same grid over the masked picture; the visitor picks a grey
# from the palette and paints it onto hidden patches (visible ones cannot be painted); the eraser un-paints. On
# release the whole list of levels (-1: not painted) is sent once. Keyboard: arrows move, 1-5 pick a grey, 0 the
# eraser, space paints the cursor's patch.
_GUESS_CSS = _CSS + _web("guess.css")

_GUESS_HTML = """
<div class="mae-wrap">
  <div class="mae-palette" role="toolbar" aria-label="Brush: pick a grey (keys 1 to 5, 0 for the eraser)"></div>
  <div class="mae-painter" data-testid="mae-guess" tabindex="0" role="grid"
       aria-label="Paint your guess on the hidden patches: arrow keys move, space paints"></div>
  <div class="mae-hint" aria-live="polite"></div>
</div>
"""

_GUESS_JS = _GRID_JS + _web("guess.js")
_guesser = st.components.v2.component("mae_guess_painter", html=_GUESS_HTML, css=_GUESS_CSS, js=_GUESS_JS)


def guess_painter(image_data_url: str, mask: Sequence[int], levels: Sequence[float], grid: int,
                  brush: Sequence[float], max_px: int = 420, fit_below: int = 0, pixelated: bool = True,
                  key: str = "guess", on_change: Optional[Callable[[], None]] = None, pick: int = 2):
    """Mount the guess painter over the masked picture; ``levels`` (one per patch, -1: not painted) is the one source
    of truth. ``on_change`` runs when a stroke ends: read the levels with ``guessed_levels(key)`` and the grey it
    used with ``guessed_pick(key)`` (an index into ``brush``; len(brush): the eraser); ``pick`` is the grey chosen
    when the painter appears."""
    return _guesser(data={"image": image_data_url, "mask": [int(bool(v)) for v in mask],
                          "levels": [float(v) for v in levels], "grid": int(grid), "brush": [float(b) for b in brush],
                          "max_px": int(max_px), "max_css": fit_css(max_px, fit_below), "pixelated": bool(pixelated),
                          "pick": int(pick)},
                    key=key, on_levels_change=on_change or (lambda: None))


def guessed_levels(key: str = "guess"):
    """The levels of the last finished stroke (list of floats, -1 = not painted), or None."""
    v = _sent(key, "levels")
    return None if not v else list(v[:-1])


def guessed_pick(key: str = "guess") -> Optional[int]:
    """The brush of the last finished stroke (index into the brush; its length: the eraser), or None."""
    v = _sent(key, "levels")
    return None if not v else int(v[-1])
