"""Reconstruct: hide patches of an image (painted or generated) and see what the MAE puts back."""
from __future__ import annotations

import functools
import math

import numpy as np
import streamlit as st

from common import guarded, image_picker, model_card_view, model_picker, plain
from painter import painted_cells, patch_painter

from mae_core.explore import reconstruct
from mae_core.figures import data_url, panel_image, png_bytes, to_pil
from mae_core.masking import STRATEGIES, make_mask

PAINTER_PX = 336

model, card, model_path = model_picker()
cfg = model.config
image, image_label, image_key = image_picker(cfg)
L, g = cfg.num_patches, cfg.grid_size

st.title("What does the masked autoencoder put back?")
st.caption("Hide patches of the image by painting on the grid or by generating a mask; the encoder sees only the "
           "visible patches, and the decoder fills in the rest.")


# ----------------------------------------------------------------------------- mask state (one source of truth)

def _generate():
    ss = st.session_state
    m = make_mask(ss.mask_strategy, 1, g, ss.mask_ratio, seed=int(ss.mask_seed))
    ss.mask = m[0].to(int).tolist()


def _reroll():
    st.session_state.mask_seed = int(st.session_state.mask_seed) + 1
    _generate()


def _invert():
    st.session_state.mask = [1 - v for v in st.session_state.mask]


def _fill(value: int):
    st.session_state.mask = [value] * L


def _painted():
    cells = painted_cells("painter")
    if cells is not None and len(cells) == L:
        st.session_state.mask = [int(bool(v)) for v in cells]


ss = st.session_state
ss.setdefault("mask_strategy", "random")
ss.setdefault("mask_ratio", 0.75)
ss.setdefault("mask_seed", 0)
if len(ss.get("mask", [])) != L:  # first visit, or a model with another grid
    _generate()


@st.fragment
@guarded
def mask_and_reconstruction():
    controls = st.columns([1.2, 2.4, 1], vertical_alignment="bottom")
    controls[0].selectbox("Strategy", list(STRATEGIES), key="mask_strategy", on_change=_generate,
                          format_func=lambda s: STRATEGIES[s].label,
                          help=" ".join(f"{v.label}: {v.help}." for v in STRATEGIES.values()))
    controls[1].slider("Mask ratio", 0.0, 0.95, step=0.05, key="mask_ratio", on_change=_generate,
                       help="Share of patches hidden; the count is exactly L - int(L × (1 - ratio)).")
    controls[2].number_input("Seed", 0, 10**6, key="mask_seed", on_change=_generate)

    mask = np.array(ss.mask, dtype=bool)
    left, right = st.columns([1, 1.35], gap="large")
    with left:
        if ss.get("painter_bg_key") != image_key:  # the background is encoded once per image, not per stroke
            ss.painter_bg, ss.painter_bg_key = data_url(to_pil(image)), image_key
        patch_painter(ss.painter_bg, ss.mask, g, size=PAINTER_PX, pixelated=cfg.img_size <= 64,
                      key="painter", on_change=_painted)
        with st.container(width=PAINTER_PX):
            b = st.columns(2, gap="small")
            seeded = STRATEGIES[ss.mask_strategy].uses_seed
            b[0].button("Re-roll", icon=":material/casino:", on_click=_reroll, width="stretch", disabled=not seeded,
                        help="Next seed" if seeded else f"{STRATEGIES[ss.mask_strategy].label} masks are the same for "
                                                        f"every seed: nothing to re-roll")
            b[1].button("Invert", icon=":material/flip:", on_click=_invert, width="stretch")
            b = st.columns(2, gap="small")
            b[0].button("Clear", icon=":material/visibility:", on_click=_fill, args=(0,), width="stretch",
                        help="Show every patch")
            b[1].button("Hide all", icon=":material/visibility_off:", on_click=_fill, args=(1,), width="stretch")
    rec = reconstruct(model, image, mask)
    with right:
        n = int(mask.sum())
        m1, m2, m3 = st.columns(3)
        m1.metric("Hidden patches", f"{n} / {L}")
        m2.metric("Mask ratio", f"{n / L:.0%}")
        m3.metric("MSE on hidden", "—" if math.isnan(rec.mse_hidden) else f"{rec.mse_hidden:.4f}",
                  help="Mean squared error in [0, 1] pixel units over the hidden patches"
                       + (" (— : nothing is hidden, so there is nothing to score)" if math.isnan(rec.mse_hidden)
                          else ""))
        if n == 0:
            st.info("Nothing is hidden: paint some patches or raise the ratio. The model still shows what it "
                    "makes of the patches it sees.")
        elif n == L:
            st.warning("Everything is hidden: the encoder sees no patch at all, so the decoder can only draw "
                       "its idea of an average image.")
        if rec.rescaled:
            st.info("This model was trained with the norm-pix target: it predicts each patch's *shape* with mean 0 "
                    "and variance 1. To show colours, each predicted patch is re-scaled with the mean and standard "
                    "deviation of the true patch, so brightness and contrast come from the original.")
        st.image(to_pil(rec.pasted, PAINTER_PX, smooth=False), caption="Reconstruction with the visible patches "
                 "pasted back", width=PAINTER_PX)

    panel = panel_image(rec, size=176)
    st.image(panel, width="stretch")
    st.caption("*reconstruction* is the decoder's output for every patch. The loss is computed on hidden patches "
               "only, so what it draws for the patches it could see is never trained, which is why the paper pastes "
               "the visible patches back. The error map covers hidden patches (visible ones are outlined); "
               + ("MSE on visible patches: — (every patch is hidden)." if math.isnan(rec.mse_visible)
                  else f"MSE on visible patches: {rec.mse_visible:.4f}."))
    # the PNG is encoded only when the button is clicked (deferred data), not on every stroke
    st.download_button("Download this panel (PNG)", icon=":material/download:",
                       data=functools.partial(png_bytes, panel, compress_level=6),
                       file_name=f"mae_{card.get('name', 'model')}_{int(n)}of{L}.png", mime="image/png")


mask_and_reconstruction()

with st.expander("Model card", expanded=False):
    model_card_view(card)
st.caption(f"Image: {plain(image_label)}")
