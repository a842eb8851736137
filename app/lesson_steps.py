"""The lesson's steps 1-4: the model at work on one picture (patches, the guess, the encoder, the decoder). Each step:
one live interactive, at most three short sentences, the numbers in a Details expander. The work is mae_core's
(lesson, explore, baselines, figures); this file lays it out, with what every step shares (``Ctx``, ``details``,
``tiles``). Steps 5-9: lesson_evidence.py."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ui.session import keep
from ui.text import plain
from ui.painter import fit_css, guess_painter, guessed_levels, guessed_pick, patch_picker, picked_cell
from ui.tiles import rounded, tiles

from mae_core.evaluation import figures
from mae_core.classroom import lesson
from mae_core.baselines import baseline_reconstruction
from mae_core.explore import masked_view, reconstruct
from mae_core.classroom.glossary import explain

# this file's settings, kept when the visitor looks at another page (ui.session.keep)
keep("lesson_numbers", "lesson_patch", "lesson_stage")


@dataclass
class Ctx:
    """What every step works on: the sidebar's model and picture, the lesson's mask (75% random, its seed)."""
    model: object
    card: dict
    path: str
    image: torch.Tensor
    image_key: str
    image_label: str
    mask: np.ndarray
    big: bool            # presenter mode: large type, the main interactive must still fit 1024x768

    @property
    def cfg(self):
        return self.model.config

    @property
    def pixelated(self) -> bool:
        return self.cfg.img_size <= 64


def details(text: str) -> None:
    with st.expander("Details", icon=":material/info:"):
        st.markdown(text)


# ----------------------------------------------------------------------------- 1. patches
def patches(cx: Ctx) -> None:
    c = cx.cfg
    sizes = [s for s in range(2, c.img_size // 2 + 1) if c.img_size % s == 0 and c.img_size // s <= 16] or [c.patch_size]
    if c.patch_size not in sizes:
        sizes = sorted({*sizes, c.patch_size})
    st.markdown(f"The model never looks at the picture whole. It cuts it into a grid of small squares, **patches**, "
                f"and reads them in order, like the words of a sentence. This model uses {c.patch_size}-pixel squares: "
                f"{c.num_patches} of them.")
    left, right = st.columns([1, 1.3], gap="medium")
    with right:
        if st.session_state.get("lesson_patch") not in sizes:   # first visit, or another model's sizes
            st.session_state.lesson_patch = c.patch_size
        size = st.select_slider("Cut the picture into squares of", sizes, key="lesson_patch",
                                format_func=lambda s: f"{s} px" + (" (this model)" if s == c.patch_size else ""),
                                help=explain("patch"))
        g = c.img_size // size
        numbers = st.toggle("Number the patches", key="lesson_numbers", disabled=g > 8,
                            help="Up to 8 × 8 patches: smaller numbers would not be readable")
        st.markdown(f"**{g} × {g} = {g * g} patches**, read in this order:")
        st.html(figures.patch_strip_html(cx.image, size, tile_px=22 if g > 7 or cx.big else 30, per_row=g,
                                         numbers=numbers and g <= 8))
    with left:
        px = 300 if cx.big else 320
        st.html(f"<img data-testid='lesson-grid' alt='the picture cut into patches' src='"
                f"{figures.data_url(figures.grid_image(cx.image, size, 280, numbers and g <= 8))}' style='width:100%;"
                f"max-width:{fit_css(px, 420 if cx.big else 380)};border-radius:6px'>")
    details(f"Picture: {c.img_size}×{c.img_size} pixels, {'RGB' if c.in_chans == 3 else 'grey'} "
            f"({plain(cx.image_label)}). Patch: {c.patch_size}×{c.patch_size} pixels, so {c.grid_size}×{c.grid_size} "
            f"= {c.num_patches} patches of {c.patch_dim} values each. Each patch becomes a **token**: a list of "
            f"{c.embed_dim} numbers (a learned linear map of its pixels) plus a position code saying where it sits. "
            "Smaller patches mean more tokens, and attention's cost grows with the square of their number: "
            f"{c.img_size // sizes[0]}² = {(c.img_size // sizes[0]) ** 2} tokens at {sizes[0]} px against "
            f"{c.num_patches} at {c.patch_size} px.")


# ----------------------------------------------------------------------------- 2. predict, then reveal
def _fills(cx: Ctx, levels) -> tuple:
    """Every candidate's picture (the student's guess, the MAE's fill, the classical fill, leaving it black) and whether
    the model is norm-pix (its fill borrows each true patch's brightness)."""
    p = cx.cfg.patch_size
    rec = reconstruct(cx.model, cx.image, cx.mask)
    filled, _, _ = baseline_reconstruction(cx.model, cx.image, cx.mask)
    blank = lesson.guess_image(cx.image, cx.mask, [-1] * len(cx.mask), p)
    return {"your guess": lesson.guess_image(cx.image, cx.mask, levels, p), "the MAE": rec.pasted,
            "copying the neighbours": filled, "leaving them black": blank}, rec.rescaled


def guess(cx: Ctx) -> None:
    ss = st.session_state
    L, p = cx.cfg.num_patches, cx.cfg.patch_size
    who = (cx.image_key, cx.path, tuple(np.flatnonzero(cx.mask)))
    if ss.get("lesson_guess_for") != who:   # another picture, model or mask: a fresh canvas
        ss.lesson_guess_for, ss.lesson_levels, ss.lesson_revealed = who, [-1.0] * L, False

    def stroke():
        levels, k = guessed_levels("lesson_guess"), guessed_pick("lesson_guess")
        if levels is not None and len(levels) == L:
            ss.lesson_levels = [float(v) for v in levels]
        if k is not None:
            ss.lesson_brush = k   # the grey in use: kept when the painter comes back (Try again)

    def reveal():
        ss.lesson_revealed = True


    def clear():
        ss.lesson_levels, ss.lesson_revealed = [-1.0] * L, False
        ss.pop("lesson_guess", None)

    def another():
        ss.img_index = int(ss.get("img_index", 0)) + 1
    masked = masked_view(cx.image.unsqueeze(0), cx.model.mask_to_pixels(torch.as_tensor(cx.mask).view(1, -1)))[0]
    left, right = st.columns([1, 1.25], gap="medium")
    with left:
        if not ss.lesson_revealed:
            guess_painter(figures.data_url(figures.to_pil(masked, 280)), cx.mask, ss.lesson_levels, cx.cfg.grid_size,
                          lesson.BRUSH, max_px=330 if cx.big else 340, fit_below=430 if cx.big else 380,
                          pixelated=cx.pixelated, key="lesson_guess", on_change=stroke,
                          pick=ss.get("lesson_brush", len(lesson.BRUSH) // 2))
        else:   # the answer in the painter's place: no more painting once it is shown
            tiles([(cx.image, "<b>The real picture</b>")], 330 if cx.big else 340, testid="lesson-answer")
    share = lesson.painted_share(ss.lesson_levels, cx.mask)
    with right:
        b = st.columns([1.1, 1, 1.35] if not cx.big else [1, 1])
        b[0].button("Reveal", icon=":material/visibility:", type="primary", on_click=reveal, key="lesson_reveal",
                    width="stretch", disabled=ss.lesson_revealed)
        b[1].button("Try again" if ss.lesson_revealed else "Clear", icon=":material/ink_eraser:", on_click=clear,
                    key="lesson_clear", width="stretch", help="Start the guess again")
        if cx.image_key.startswith("fmnist:"):   # photos and uploads are picked in the sidebar
            b[-1 if not cx.big else 0].button("New picture", icon=":material/casino:", on_click=another,
                                             key="lesson_another", width="stretch",
                                             help="The next Fashion-MNIST picture (sidebar: Image)")
        if not ss.lesson_revealed:
            n = int(cx.mask.sum())
            st.markdown(f"**{n} of {L} patches are hidden** (the amber squares). Pick a grey above the picture and "
                        "paint what you think is underneath, then press **Reveal**.")
            st.caption(f"You painted {share:.0%} of them. An unpainted square counts as black.")
        else:
            fills, rescaled = _fills(cx, ss.lesson_levels)
            scores = {k: lesson.hidden_error(v, cx.image, cx.mask, p) for k, v in fills.items()}
            shown = ["your guess", "the MAE", "copying the neighbours"]
            tiles([(fills[k], f"<b>{k[0].upper() + k[1:]}</b><br>error {rounded(scores[k])}") for k in shown],
                  150, testid="lesson-reveal")
            st.markdown("**" + lesson.reveal_sentence({k: scores[k] for k in shown}) + "** Error: how far off the "
                        "hidden pixels are; lower is closer.")
    if ss.lesson_revealed:
        floor = lesson.guess_image(cx.image, cx.mask, lesson.best_brush(cx.image, cx.mask, p), p)
        details("**Score**: the mean squared error over the hidden pixels (pixels from 0 black to 1 white; lower is "
                "closer), the same measure for every fill. "
                f"Leaving every hidden square black scores {rounded(scores['leaving them black'])}; the best guess "
                f"this brush can paint (each square the grey nearest its true average) scores "
                f"{rounded(lesson.hidden_error(floor, cx.image, cx.mask, p))}. **The MAE**: the model's prediction of "
                "the hidden patches, visible ones kept. **Copying the neighbours**: harmonic inpainting, every hidden "
                "pixel the average of its neighbours, no learning."
                + (" This model predicts each patch's *shape* (norm-pix): its fill borrows each true patch's "
                   "brightness and contrast, a help your guess did not get." if rescaled else ""))
    else:
        details(f"The mask hides {int(cx.mask.sum())} of {L} patches at random (mask ratio 75%, the paper's). "
                "Brush: five greys (keys 1-5), the eraser (0); arrow keys and space paint from the keyboard.")


# ----------------------------------------------------------------------------- 3. the encoder
@st.cache_data(show_spinner=False, max_entries=16)
def _encoder_times(path: str, n_visible: int, _model, _mask) -> dict:
    return lesson.time_encoder(_model, _mask)


def encoder(cx: Ctx) -> None:
    c = cx.cfg
    n_vis = int((~cx.mask).sum())
    stages = ["patches", "dropped", *[f"block {b}" for b in range(1, c.depth + 1)], "out"]
    if st.session_state.get("lesson_stage") not in stages:
        st.session_state.lesson_stage = "dropped"
    stage = st.select_slider("Follow the tokens", stages, key="lesson_stage",
                             help="Drag, or click the slider and use the arrow keys. " + explain("attention"))
    tiles_ = figures.patch_tile_urls(cx.image, c.patch_size, cx.mask, limit=c.num_patches)
    # the drawing is 1.9x as wide as tall: as wide as the height left on the screen allows
    st.html(f"<div data-testid='lesson-flow' style='max-width:min(720px, calc((100vh - {460 if cx.big else 400}px) "
            f"* 1.9))'>"
            + figures.svg_img_html(figures.encoder_flow_svg(c, tiles_, stages.index(stage)), "The encoder's tokens")
            + "</div>")
    t = _encoder_times(cx.path, n_vis, cx.model, cx.mask)
    st.markdown(f"The **encoder**, the part that reads the picture, gets only the **{n_vis} visible patches** and "
                f"one summary token (cls); the hidden ones are simply left out. Measured on this server, that makes it **{t['speedup']:.1f}× faster** than "
                f"reading all {c.num_patches}.")
    details(f"Encoder: {c.depth} blocks, width {c.embed_dim}, {c.num_heads} attention heads. Timing: the encoder "
            f"alone on a batch of {t['batch']} pictures, median of {t['repeats']} runs after a warm-up: "
            f"{t['visible_ms']:.2f} ms for {t['n_visible']} visible patches against {t['all_ms']:.2f} ms for all "
            f"{t['n_all']} (measured once, when this step first opened on this server for this model). Inside each block every token compares itself with all the others (attention) and is then updated on its own (an MLP). The paper: with 75% hidden, "
            "pre-training runs 3× faster or more, since attention's cost grows faster than the token count.")


# ----------------------------------------------------------------------------- 4. the decoder
def decoder(cx: Ctx) -> None:
    ss = st.session_state
    c = cx.cfg
    rec = reconstruct(cx.model, cx.image, cx.mask)
    n = int(cx.mask.sum())
    vmax = float(rec.error_map.reshape(-1)[rec.mask].max()) if rec.mask.any() else 1.0
    left, right = st.columns([1, 1.35], gap="medium")
    with left:
        def pick():
            cell = picked_cell("lesson_picker")
            if cell is not None:
                ss.lesson_patch_pick = cell
        worst = int(np.argmax(np.where(cx.mask, rec.error_map.reshape(-1), -1))) if n else 0
        q = int(ss.get("lesson_patch_pick", worst))   # the worst-drawn hidden patch until one is clicked
        if not 0 <= q < c.num_patches:                  # picked on another model's grid
            q = worst
        patch_picker(figures.data_url(figures.to_pil(rec.reconstruction, 280)), c.grid_size,
                     max_px=300 if cx.big else 320, selected=q, hint="The decoder's drawing: click a patch",
                     key="lesson_picker", on_change=pick, mark=True, lines=True)
    with right:
        tiles([(rec.masked, "What the decoder gets: amber = a mask token"),
               (figures.mark_patch(figures.error_map_image(rec.error_map, rec.mask, 8 * c.grid_size, vmax=vmax),
                                   q, c.grid_size),
                "Error on each hidden patch: bright = far off; grey with a blue ring = visible, not scored")],
              170 if cx.big else 190, testid="lesson-decoder")
        r, col = divmod(q, c.grid_size)
        if cx.mask[q]:
            st.markdown(f"Patch {q + 1} (row {r + 1}, column {col + 1}) was **hidden**: its error "
                        f"{rounded(float(rec.error_map.reshape(-1)[q]))} **counts** in the score.")
        else:
            st.markdown(f"Patch {q + 1} (row {r + 1}, column {col + 1}) was **visible**: the decoder redrew it too, "
                        "but it **does not count**.")
    st.markdown(f"The **decoder**, the part that draws the picture back, puts the same blank stand-in (a **mask "
                f"token**) where each hidden patch was. It draws all {c.num_patches} patches; the score that training "
                f"lowers counts only the {n} hidden ones.")
    details(f"Decoder: {c.decoder_depth} blocks of width {c.decoder_embed_dim}, much smaller than the encoder; it is "
            "thrown away after pre-training. The loss is the mean squared error between the drawing and the picture "
            f"over the hidden patches only: {rounded(rec.mse_hidden_matched if rec.rescaled else rec.mse_hidden)} "
            f"here{' (shape error: this norm-pix model predicts each patch with its brightness taken out)' if rec.rescaled else ''}. "
            f"On the visible patches (not scored) the error is {rounded(rec.mse_visible)}. Error colour scale: "
            f"0 to {vmax:.3g}.")
