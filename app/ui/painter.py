"""The patch painter: a Streamlit v2 component (inline HTML/CSS/JS, no build step) that draws the model's
patch grid over the image. Press on a visible patch to start hiding, on a hidden one to start revealing, and
drag to paint; on release the whole mask is sent once as a trigger value. The mask passed in as data is the
one source of truth: the component never keeps state of its own between runs."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import streamlit as st

from mae_core.explore import HIDDEN_CSS

_CSS = """
.mae-wrap { display: flex; flex-direction: column; gap: 6px; width: 100%; font-family: var(--st-font, sans-serif); }
.mae-painter {
  position: relative; display: grid; touch-action: none; user-select: none; cursor: crosshair;
  width: 100%; aspect-ratio: 1 / 1; box-sizing: border-box;
  background-size: 100% 100%; background-repeat: no-repeat; border-radius: 6px; overflow: hidden;
  box-shadow: 0 1px 4px rgba(0,0,0,.25); outline: none;
}
.mae-painter:focus-visible { box-shadow: 0 0 0 3px rgba(255,196,0,.95); }
.mae-painter.pixelated { image-rendering: pixelated; }
.mae-cell { box-shadow: inset 0 0 0 0.5px rgba(255,255,255,.35); transition: background-color 60ms linear; }
.mae-cell:hover { box-shadow: inset 0 0 0 2px rgba(255,196,0,.9); }
.mae-cell.hidden {   /* opaque (mae_core.explore.HIDDEN_CSS): hides the content, unlike the black background */
  background-color: HIDDEN_CSS;
  background-image: repeating-linear-gradient(45deg, rgba(120,53,15,.28) 0 3px, transparent 3px 8px);
  box-shadow: inset 0 0 0 0.5px rgba(120,53,15,.6);
}
.mae-painter:focus-visible .mae-cell.cursor { box-shadow: inset 0 0 0 3px rgba(255,196,0,1); }
.mae-hint { font-size: 0.8rem; color: #6b7280; line-height: 1.35; }
.mae-cell.picked { box-shadow: inset 0 0 0 2px #111827, inset 0 0 0 5px #ffffff !important; }
""".replace("HIDDEN_CSS", HIDDEN_CSS)

_HTML = """
<div class="mae-wrap">
  <div class="mae-painter" data-testid="mae-painter" tabindex="0" role="grid"
       aria-label="Patch mask painter: arrow keys move, space hides or shows the patch"></div>
  <div class="mae-hint" aria-live="polite"></div>
</div>
"""

# What the painter and the patch picker share: the grid over the image, a cell under the pointer, arrow keys.
_GRID_JS = """
function gridSetup(parentElement, data, pixelated, firstCursor) {
  const wrap = parentElement.querySelector('.mae-wrap');
  const root = parentElement.querySelector('.mae-painter');
  const hint = parentElement.querySelector('.mae-hint');
  const g = data.grid;
  wrap.style.maxWidth = data.max_css || (data.max_px + 'px');
  root.style.gridTemplateColumns = `repeat(${g}, 1fr)`;
  root.style.gridTemplateRows = `repeat(${g}, 1fr)`;
  root.style.backgroundImage = `url(${data.image})`;
  root.classList.toggle('pixelated', pixelated);
  if (root.children.length !== g * g) {
    root.replaceChildren();
    for (let i = 0; i < g * g; i++) {
      const c = document.createElement('div');
      c.className = 'mae-cell';
      c.dataset.i = String(i);
      c.setAttribute('role', 'gridcell');
      root.appendChild(c);
    }
    root.dataset.cursor = String(firstCursor);
  }
  const cursor = Math.max(0, Math.min(g * g - 1, Number(root.dataset.cursor || 0)));
  return { root, hint, g, cells: Array.from(root.children), cursor };
}
function cellAt(root, g, e) {
  const r = root.getBoundingClientRect();
  const col = Math.floor((e.clientX - r.left) / r.width * g);
  const row = Math.floor((e.clientY - r.top) / r.height * g);
  return (col < 0 || row < 0 || col >= g || row >= g) ? -1 : row * g + col;
}
function movedCursor(cursor, g, key) {  // the cell an arrow/Home/End key moves to, or -1 for any other key
  const r = Math.floor(cursor / g), c = cursor % g;
  const moves = { ArrowLeft: [r, c - 1], ArrowRight: [r, c + 1], ArrowUp: [r - 1, c], ArrowDown: [r + 1, c],
                  Home: [0, 0], End: [g - 1, g - 1] };
  if (!(key in moves)) return -1;
  const [nr, nc] = moves[key];
  return Math.max(0, Math.min(g - 1, nr)) * g + Math.max(0, Math.min(g - 1, nc));
}
function strokes(root, g, begin, paint, end) {  // press begin(cell), drag paint(cell), release end()
  let down = false;
  root.onpointerdown = (e) => {
    const i = cellAt(root, g, e);
    if (i < 0) return;
    e.preventDefault();
    root.focus({ preventScroll: true });
    down = true; root.dataset.cursor = String(i);
    begin(i);
    try { root.setPointerCapture(e.pointerId); } catch (err) {}
  };
  root.onpointermove = (e) => { if (down) paint(cellAt(root, g, e)); };
  const finish = () => { if (!down) return; down = false; end(); };
  root.onpointerup = finish;
  root.onpointercancel = finish;
  root.onlostpointercapture = finish;
}
"""

# The painter fills its column (CSS width 100%, square by aspect-ratio, capped by data.max_px), so every cell is
# reachable at any window size. Keyboard: arrows move a cursor cell, Space/Enter toggles it (each toggle is one
# stroke, sent at once), Home/End jump to the first/last cell.
_JS = _GRID_JS + """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const { root, hint, g, cells, cursor: start } = gridSetup(parentElement, data, !!data.pixelated, 0);
  const mask = Array.from(data.mask, v => (v ? 1 : 0));
  let cursor = start;
  const show = () => {
    cells.forEach((c, i) => {
      c.classList.toggle('hidden', mask[i] === 1);
      c.classList.toggle('cursor', i === cursor);
    });
    const n = mask.reduce((a, b) => a + b, 0);
    hint.textContent = `${n} of ${g * g} hidden (${Math.round(100 * n / (g * g))}%) · drag to paint · ` +
      `arrow keys + space`;
  };
  show();
  let mode = null;
  const setCell = (i) => {
    if (i >= 0 && mask[i] !== mode) { mask[i] = mode; cells[i].classList.toggle('hidden', mode === 1); }
  };
  strokes(root, g, (i) => { mode = mask[i] ? 0 : 1; cursor = i; setCell(i); }, setCell,
          () => { mode = null; show(); setTriggerValue('mask', mask.slice()); });
  root.onkeydown = (e) => {
    const next = movedCursor(cursor, g, e.key);
    if (next >= 0) {
      cursor = next; root.dataset.cursor = String(cursor); show(); e.preventDefault();
    } else if (e.key === ' ' || e.key === 'Enter') {
      mask[cursor] = mask[cursor] ? 0 : 1;
      show();
      e.preventDefault();
      setTriggerValue('mask', mask.slice());
    }
  };
}
"""

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
_PICK_JS = _GRID_JS + """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const { root, hint, g, cells, cursor: start } = gridSetup(parentElement, data, true,
                                                           data.selected >= 0 ? data.selected : 0);
  let cursor = start;
  root.style.cursor = 'pointer';
  if (!data.lines) cells.forEach(c => { c.style.boxShadow = 'none'; });
  const show = () => cells.forEach((c, i) => {
    c.classList.toggle('cursor', i === cursor);
    c.classList.toggle('picked', !!data.mark && i === cursor);   // the pick stays marked, focused or not
  });
  hint.textContent = data.hint || '';
  show();
  root.onclick = (e) => {
    const i = cellAt(root, g, e);
    if (i < 0) return;
    cursor = i; root.dataset.cursor = String(cursor); show();
    setTriggerValue('cell', cursor);
  };
  root.onkeydown = (e) => {
    const next = movedCursor(cursor, g, e.key);
    if (next >= 0) {
      cursor = next; root.dataset.cursor = String(cursor); show(); e.preventDefault();
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault(); setTriggerValue('cell', cursor);
    }
  };
}
"""

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
_GUESS_CSS = _CSS + """
.mae-palette { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.mae-swatch { width: 34px; height: 34px; border-radius: 6px; border: 2px solid #9ca3af; cursor: pointer; padding: 0;
  font: 600 0.75rem sans-serif; color: #b45309; }
.mae-swatch.on { border: 3px solid #f59e0b; box-shadow: 0 0 0 2px rgba(245,158,11,.35); }
.mae-cell.visible { cursor: not-allowed; }
.mae-cell.painted { background-image: none; box-shadow: inset 0 0 0 0.5px rgba(120,53,15,.6); }
"""

_GUESS_HTML = """
<div class="mae-wrap">
  <div class="mae-palette" role="toolbar" aria-label="Brush: pick a grey (keys 1 to 5, 0 for the eraser)"></div>
  <div class="mae-painter" data-testid="mae-guess" tabindex="0" role="grid"
       aria-label="Paint your guess on the hidden patches: arrow keys move, space paints"></div>
  <div class="mae-hint" aria-live="polite"></div>
</div>
"""

_GUESS_JS = _GRID_JS + """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const { root, hint, g, cells, cursor: start } = gridSetup(parentElement, data, !!data.pixelated,
                                                           Math.max(0, data.mask.indexOf(1)));
  const palette = parentElement.querySelector('.mae-palette');
  const mask = Array.from(data.mask, v => (v ? 1 : 0));
  const levels = Array.from(data.levels, Number);
  const brush = data.brush;   // grey levels; index brush.length = the eraser
  let pick = Number(root.dataset.pick || data.pick);
  let cursor = start;
  if (palette.children.length !== brush.length + 1) {
    palette.replaceChildren();
    [...brush, -1].forEach((v, k) => {
      const b = document.createElement('button');
      b.className = 'mae-swatch';
      b.type = 'button';
      b.dataset.k = String(k);
      if (v >= 0) { const c = Math.round(255 * v); b.style.background = `rgb(${c},${c},${c})`;
                    b.title = `Grey ${Math.round(100 * v)}% (key ${k + 1})`; b.setAttribute('aria-label', b.title); }
      else { b.textContent = '⌫'; b.title = 'Eraser (key 0)'; b.setAttribute('aria-label', 'Eraser'); }
      palette.appendChild(b);
    });
  }
  const swatches = Array.from(palette.children);
  const show = () => {
    swatches.forEach((s, k) => s.classList.toggle('on', k === pick));
    cells.forEach((c, i) => {
      const painted = mask[i] === 1 && levels[i] >= 0;
      c.classList.toggle('hidden', mask[i] === 1 && !painted);
      c.classList.toggle('painted', painted);
      c.classList.toggle('visible', mask[i] !== 1);
      c.classList.toggle('cursor', i === cursor);
      c.style.backgroundColor = painted ? `rgb(${Math.round(255 * levels[i])},${Math.round(255 * levels[i])},`
                                          + `${Math.round(255 * levels[i])})` : '';
    });
    const n = mask.reduce((a, b) => a + b, 0);
    const done = levels.filter((v, i) => mask[i] === 1 && v >= 0).length;
    hint.textContent = `${done} of ${n} hidden patches painted · drag to paint · keys: arrows, 1-5, space`;
  };
  // a grey is chosen here only: a rerun per click would redraw the painter while a stroke starts. The stroke sends it
  const choose = (k) => { pick = k; root.dataset.pick = String(k); show(); };
  const send = () => setTriggerValue('levels', levels.concat([pick]));   // the L levels, then the brush in use
  swatches.forEach((s, k) => { s.onclick = () => choose(k); });
  show();
  const value = () => (pick < brush.length ? brush[pick] : -1);
  const setCell = (i) => {
    if (i >= 0 && mask[i] === 1 && levels[i] !== value()) { levels[i] = value(); show(); }
  };
  strokes(root, g, (i) => { cursor = i; setCell(i); }, setCell,
          () => { show(); send(); });
  root.onkeydown = (e) => {
    const next = movedCursor(cursor, g, e.key);
    if (next >= 0) {
      cursor = next; root.dataset.cursor = String(cursor); show(); e.preventDefault();
    } else if (/^[0-9]$/.test(e.key) && Number(e.key) <= brush.length) {
      choose(e.key === '0' ? brush.length : Number(e.key) - 1);
      e.preventDefault();
    } else if (e.key === ' ' || e.key === 'Enter') {
      e.preventDefault();
      if (mask[cursor] === 1) { levels[cursor] = value(); show(); send(); }
    }
  };
}
"""
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
