"""The Reconstruct page's mask, one source of truth: a ``MaskEditor`` in the session (with undo and redo), set up
for the model's grid, taking a link's or a prepared scene's mask, and the callbacks its controls and painter call."""
from __future__ import annotations

import streamlit as st

from mae_core.classroom.mask_edit import GENERATED, MaskEditor

from .painter import painted_cells


def editor(grid: int) -> MaskEditor:
    """The session's editor for a ``grid`` x ``grid`` model: a new one on a first visit or another grid (a generated
    mask from the controls' settings); a scene's painted mask (if it fits) or its settings applied."""
    ss = st.session_state
    ss.setdefault("mask_strategy", "random")
    ss.setdefault("mask_ratio", 0.75)
    ss.setdefault("mask_seed", 0)
    if not isinstance(ss.get("mask_editor"), MaskEditor) or ss.mask_editor.grid != grid:
        ss.mask_editor = MaskEditor(grid=grid)
        ss.mask_editor.generate(ss.mask_strategy, ss.mask_ratio, ss.mask_seed)
    ed = ss.mask_editor
    if ss.get("scene_mask") is not None:
        if len(ss.scene_mask) == grid * grid:
            ed.paint(ss.scene_mask)
        ss.scene_mask = None
    if ss.pop("scene_generate", False):
        ed.generate(ss.mask_strategy, ss.mask_ratio, int(ss.mask_seed))
    return ed


def generate() -> None:
    ss = st.session_state
    ss.mask_editor.generate(ss.mask_strategy, ss.mask_ratio, int(ss.mask_seed))


def settings_changed() -> None:
    ss = st.session_state
    ss.mask_editor.settings_changed(ss.mask_strategy, ss.mask_ratio, int(ss.mask_seed))


def reroll() -> None:
    st.session_state.mask_seed = int(st.session_state.mask_seed) + 1
    generate()


def history(which: str) -> None:
    """Undo or redo, with the strategy, ratio and seed widgets following a generated mask's recipe, so the controls,
    the sentence under them and the address describe the mask on screen."""
    ss = st.session_state
    ed = ss.mask_editor
    if (ed.undo if which == "undo" else ed.redo)() and ed.source == GENERATED and ed.recipe is not None:
        ss.mask_strategy, ss.mask_ratio, ss.mask_seed = ed.recipe.strategy, ed.recipe.ratio, ed.recipe.seed


def painted() -> None:
    cells = painted_cells("painter")
    ed = st.session_state.mask_editor
    if cells is not None and len(cells) == ed.grid * ed.grid:
        ed.paint(cells)
