"""The patch painter: a Streamlit v2 component (inline HTML/CSS/JS, no build step) that draws the model's
patch grid over the image. Press on a visible patch to start hiding, on a hidden one to start revealing, and
drag to paint; on release the whole mask is sent once as a trigger value. The mask passed in as data is the
one source of truth: the component never keeps state of its own between runs."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import streamlit as st

_CSS = """
.mae-wrap { display: inline-flex; flex-direction: column; gap: 6px; font-family: var(--st-font, sans-serif); }
.mae-painter {
  position: relative; display: grid; touch-action: none; user-select: none; cursor: crosshair;
  background-size: 100% 100%; background-repeat: no-repeat; border-radius: 6px; overflow: hidden;
  box-shadow: 0 1px 4px rgba(0,0,0,.25);
}
.mae-painter.pixelated { image-rendering: pixelated; }
.mae-cell { box-shadow: inset 0 0 0 0.5px rgba(255,255,255,.35); transition: background-color 60ms linear; }
.mae-cell:hover { box-shadow: inset 0 0 0 2px rgba(255,196,0,.9); }
.mae-cell.hidden {
  background-color: rgba(28,31,38,.88);
  background-image: repeating-linear-gradient(45deg, rgba(255,255,255,.07) 0 3px, transparent 3px 7px);
}
.mae-hint { font-size: 12px; color: #6b7280; }
"""

_HTML = """
<div class="mae-wrap">
  <div class="mae-painter" data-testid="mae-painter"></div>
  <div class="mae-hint"></div>
</div>
"""

_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector('.mae-painter');
  const hint = parentElement.querySelector('.mae-hint');
  const g = data.grid, size = data.size;
  const mask = Array.from(data.mask, v => (v ? 1 : 0));
  root.style.width = size + 'px';
  root.style.height = size + 'px';
  root.style.gridTemplateColumns = `repeat(${g}, 1fr)`;
  root.style.gridTemplateRows = `repeat(${g}, 1fr)`;
  root.style.backgroundImage = `url(${data.image})`;
  hint.style.maxWidth = size + 'px';
  root.classList.toggle('pixelated', !!data.pixelated);
  if (root.children.length !== g * g) {
    root.replaceChildren();
    for (let i = 0; i < g * g; i++) {
      const c = document.createElement('div');
      c.className = 'mae-cell';
      c.dataset.i = String(i);
      root.appendChild(c);
    }
  }
  const cells = Array.from(root.children);
  const show = () => {
    cells.forEach((c, i) => c.classList.toggle('hidden', mask[i] === 1));
    const n = mask.reduce((a, b) => a + b, 0);
    hint.textContent = `${n} of ${g * g} hidden (${Math.round(100 * n / (g * g))}%). Drag to hide; start on a hidden patch to reveal.`;
  };
  show();
  const cellAt = (e) => {
    const r = root.getBoundingClientRect();
    const col = Math.floor((e.clientX - r.left) / r.width * g);
    const row = Math.floor((e.clientY - r.top) / r.height * g);
    return (col < 0 || row < 0 || col >= g || row >= g) ? -1 : row * g + col;
  };
  let mode = null;
  const setCell = (i) => {
    if (i >= 0 && mask[i] !== mode) { mask[i] = mode; cells[i].classList.toggle('hidden', mode === 1); }
  };
  root.onpointerdown = (e) => {
    const i = cellAt(e);
    if (i < 0) return;
    e.preventDefault();
    mode = mask[i] ? 0 : 1;
    setCell(i);
    try { root.setPointerCapture(e.pointerId); } catch (err) {}
  };
  root.onpointermove = (e) => { if (mode !== null) setCell(cellAt(e)); };
  const finish = () => {
    if (mode === null) return;
    mode = null;
    show();
    setTriggerValue('mask', mask.slice());
  };
  root.onpointerup = finish;
  root.onpointercancel = finish;
  root.onlostpointercapture = finish;
}
"""

_painter = st.components.v2.component("mae_patch_painter", html=_HTML, css=_CSS, js=_JS)


def patch_painter(image_data_url: str, mask: Sequence[int], grid: int, size: int = 336, pixelated: bool = False,
                  key: str = "painter", on_change: Optional[Callable[[], None]] = None):
    """Mount the painter. ``on_change`` runs when a stroke ends; read the new mask with ``painted_cells(key)``."""
    return _painter(data={"image": image_data_url, "mask": [int(bool(v)) for v in mask], "grid": int(grid),
                          "size": int(size), "pixelated": bool(pixelated)},
                    key=key, on_mask_change=on_change or (lambda: None), height=size + 48)


def painted_cells(key: str = "painter"):
    """The mask of the last finished stroke (list of 0/1), or None."""
    state = st.session_state.get(key)
    if state is None:
        return None
    try:
        return state["mask"]
    except (KeyError, TypeError):
        return getattr(state, "mask", None)
