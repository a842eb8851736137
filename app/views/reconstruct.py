"""Reconstruct: hide patches of an image (painted or generated) and see what the MAE puts back."""
from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import streamlit as st

from ui.attention import attention_section
from ui.caches import get_model
from ui.images import image_picker
from ui.pickers import comparison_choices, model_card_view, model_picker
from ui.scenes import image_id, model_id, scene_to_url
from ui.session import keep, PAGES, presenting
from ui.text import guarded, plain, reading
from ui import mask_state
from ui.painter import patch_painter
from ui.tables import table
from ui.tiles import exact, image_html, reconstruction_tiles_html, rounded

from mae_core.evaluation import cards
from mae_core.baselines import baseline_reconstruction
from mae_core.evaluation import readings
from mae_core.explore import reconstruct
from mae_core.classroom.glossary import explain
from mae_core.evaluation.figures import data_url, mae_diagram_svg, panel_image, png_bytes, svg_img_html, to_pil
from mae_core.classroom.mask_edit import GENERATED
from mae_core.masking import STRATEGIES

# this file's settings, kept when the visitor looks at another page (ui.session.keep)
keep("mask_strategy", "mask_ratio", "mask_seed", "att_on", "cmp_on", "cmp_model")

PAPER = "https://arxiv.org/abs/2111.06377"

model, card, model_path = model_picker()
cfg = model.config
image, image_label, image_key = image_picker(cfg)
L, g = cfg.num_patches, cfg.grid_size
big = presenting()
# what sits above the painter and below it on the first screen (measured at 1280x800): the painter and the
# reconstruction beside it stay on a laptop's first screen
FIT_BELOW = 300 if big else 400

def lesson_link(where) -> None:
    """The guided tour of the paper from its first step, offered to a first visitor or a class (the sidebar's Lesson
    item goes back to the step last seen)."""
    if "lesson" in PAGES and where.button("Start the lesson", icon=":material/school:", key="start_lesson",
                                          type="tertiary",
                                          help="The paper's story in nine steps on this model, plain words first"):
        st.session_state.lesson_step = 0
        st.switch_page(PAGES["lesson"], query_params={"step": "1", **({"present": "1"} if big else {})})


if big:   # large type at 1024 px: the heading needs the whole width; the link waits at the page's foot
    st.header("What does the MAE put back?", anchor=False, help=explain("patch", "encoder", "decoder", "mask token"))
else:
    _head, _lesson = st.columns([3.3, 1], vertical_alignment="center")
    _head.header("What does the MAE put back?", anchor=False,
                 help=explain("patch", "encoder", "decoder", "mask token"))
    lesson_link(_lesson)
if not big:  # presenter mode: the teacher says it; the lesson's controls must fit one screen
    st.caption("Hide patches by painting on the grid (mouse, touch, or arrow keys and space) or generate a mask; the "
               "encoder sees only the visible patches, the decoder fills in the rest.")

_vs = cards.read(card).baseline_comparison()
if _vs and _vs[0] > _vs[1]:  # say it when this model does not beat a fill with no learning
    st.warning(f"On its held-out images ({plain(cards.read(card).metrics.get('heldout_set', 'held-out set'))}) this "
               f"model's {_vs[2]} ({_vs[0]:.4f}) is worse than classical harmonic inpainting's on the same masks "
               f"({_vs[1]:.4f})"
               + (": it learned from crops of a dozen photos, too little data to learn natural images. For a convincing "
                  "photo demo load the official MAE ViT-L (sidebar: *Official MAE*, a 1.2 GB download where the "
                  "network allows)." if cfg.in_chans == 3 else "."),
               icon=":material/info:")

# ----------------------------------------------------------------------------- mask state (one source of truth)
ss = st.session_state
ed = mask_state.editor(g)


def explainer():
    """The paper in a paragraph, and this model's MAE drawn with its real sizes for the current mask."""
    with st.expander("What is a masked autoencoder? (with this model's numbers)", icon=":material/school:"):
        st.markdown(
            f"A **masked autoencoder** ([He et al., 2021]({PAPER})) learns about images by filling in what is hidden. "
            "The image is cut into square patches and most of them are removed. The **encoder**, a Vision Transformer, "
            "sees only the visible patches (no placeholders: that is what makes it cheap). A small **decoder** gets the "
            "encoded visible patches plus one shared, learned *mask token* for every hidden patch, and predicts every "
            "patch's pixels. The **loss** is the mean squared error on the hidden patches only. After pretraining, "
            "only the encoder is kept: its outputs are the representation (see the Embeddings page).")
        st.html(svg_img_html(mae_diagram_svg(cfg, ed.n_hidden), "How this MAE processes an image"))
        st.markdown("**The panels below:** *original*; *masked* (what the encoder is given); *reconstruction* (the "
                    "decoder's output for every patch, including the visible ones it was never trained to copy); "
                    "*reconstruction + visible* (the paper's figures: visible patches pasted back); *error per patch* "
                    "(hidden patches only, on the colour scale shown).")


def _mask_controls():
    """Strategy, ratio, seed and Re-roll / Generate, and the sentence that describes the mask on screen."""
    controls = st.columns([1.2, 2.2, 1, 1.1] if not big else [1.2, 1.8, 1, 1.5], vertical_alignment="bottom")
    controls[0].selectbox("Strategy", list(STRATEGIES), key="mask_strategy", on_change=mask_state.generate,
                          format_func=lambda s: STRATEGIES[s].label,
                          help=" ".join(f"{v.label}: {v.help}." for v in STRATEGIES.values()))
    controls[1].slider("Ratio to generate", 0.0, 0.95, step=0.05, key="mask_ratio", on_change=mask_state.settings_changed,
                       help=explain("mask ratio") + " Share of patches a generated mask hides (exactly L - int(L × (1 - ratio)) of them). "
                            "A painted mask keeps its own count until you press Generate.")
    controls[2].number_input("Seed", 0, 10**6, key="mask_seed", on_change=mask_state.settings_changed)
    seeded = STRATEGIES[ss.mask_strategy].uses_seed
    if ed.source == GENERATED:
        controls[3].button("Re-roll", icon=":material/casino:", on_click=mask_state.reroll, width="stretch",
                           disabled=not seeded, key="reroll",
                           help="A new random mask (next seed)" if seeded else
                           f"{STRATEGIES[ss.mask_strategy].label} masks are the same for every seed: nothing to "
                           "re-roll")
    else:
        controls[3].button("Generate", icon=":material/casino:", on_click=mask_state.generate, width="stretch", type="primary",
                           key="generate", help="Replace the painted mask with a generated one (strategy, ratio, "
                                                "seed above). Undo brings the painting back.")
    with st.container(key="mask_source"):
        st.markdown(f"{':material/brush:' if ed.source != GENERATED else ':material/casino:'} {plain(ed.describe())}")


def _edit_buttons():
    """Undo, Redo, Invert, Clear, Hide all."""
    b = st.columns(5, gap="small")
    b[0].button("Undo", icon=":material/undo:", on_click=mask_state.history, args=("undo",), disabled=not ed.undo_stack,
                width="stretch",
                key="undo", help="Undo the last change of the mask (stroke, generate, invert, clear)")
    b[1].button("Redo", icon=":material/redo:", on_click=mask_state.history, args=("redo",), disabled=not ed.redo_stack,
                width="stretch",
                key="redo")
    b[2].button("Invert", icon=":material/flip:", on_click=ed.invert, width="stretch", key="invert",
                help="Hidden patches become visible and visible ones hidden")
    b[3].button("Clear", icon=":material/visibility:", on_click=ed.fill, args=(0,), width="stretch", key="clear",
                help="Show every patch")
    b[4].button("Hide all", on_click=ed.fill, args=(1,), width="stretch", key="hide_all", help="Hide every patch")


def _scores(rec, mask):
    """The hidden count and the errors of the MAE and of the classical fill on this mask, read in plain words first;
    returns the classical fill (shown in the row of tiles)."""
    n = rec.n_hidden
    filled, base_mse, base_matched = baseline_reconstruction(model, image, mask)
    m = st.columns(4)
    m[0].metric("Hidden patches", f"{n} / {L}", help=f"{n / L:.0%} of the patches are hidden. " + explain("patch"))
    if rec.rescaled:
        m[1].metric("Pixel MSE", "n/a", help="This norm-pix model predicts each patch's shape (mean 0, variance 1), "
                    "not its brightness: a plain pixel error does not exist for it.")
    else:
        m[1].metric("Pixel MSE", rounded(rec.mse_hidden),
                    help=f"Mean squared error over the hidden patches, image in [0, 1]: {exact(rec.mse_hidden)}"
                         + (" (— : nothing is hidden, nothing to score)" if math.isnan(rec.mse_hidden) else ""))
    m[2].metric("Shape MSE", rounded(rec.mse_hidden_matched),
                help=f"{exact(rec.mse_hidden_matched)}: the same error after giving every predicted hidden patch the true patch's mean and standard "
                     "deviation. Norm-pix models can only be scored this way, so this is the number to compare "
                     "between a pixel model and a norm-pix model. " + explain("norm-pix"))
    mine, theirs = (rec.mse_hidden_matched, base_matched) if rec.rescaled else (rec.mse_hidden, base_mse)
    m[3].metric("Inpainting MSE", rounded(theirs),
                help=f"{exact(theirs)}. " + explain("inpainting") + " Here: harmonic inpainting of the same hidden patches (each hidden pixel becomes the "
                     "mean of its neighbours, no learning), scored like the model's "
                     + ("shape MSE." if rec.rescaled else "pixel MSE."))
    if n and mine == mine and theirs == theirs:
        reading(readings.one_picture(mine, theirs, "shape" if rec.rescaled else "pixel"))
    if n == 0:
        st.info("Nothing is hidden, so there is nothing to score: paint some patches or generate a mask. The model "
                "still shows what it makes of the patches it sees.")
    elif n == L:
        st.warning("Everything is hidden: the encoder sees no patch at all, so the decoder can only draw its idea "
                   "of an average image.")
    if rec.rescaled:
        st.caption("Norm-pix model: it predicts each patch's *shape*; to show it, each predicted patch is re-scaled "
                   "with the mean and standard deviation of the true patch, so brightness and contrast come from the "
                   "original.")
    return filled


def _downloads(rec, n: int):
    """The panel as PNGs, drawn only when a button is clicked."""
    name = card.get("name", "model")
    d = st.columns(2)
    # PNGs are drawn and encoded only when a button is clicked (deferred data), not on every stroke
    d[0].download_button("Panel (PNG)", icon=":material/download:", key="dl_panel", width="stretch",
                         data=lambda: png_bytes(panel_image(rec, size=224), compress_level=6),
                         file_name=f"mae_{name}_{n}of{L}.png", mime="image/png")
    d[1].download_button("Large panel for slides", icon=":material/download:", key="dl_panel_large", width="stretch",
                         data=lambda: png_bytes(panel_image(rec, size=448), compress_level=6),
                         file_name=f"mae_{name}_{n}of{L}_large.png", mime="image/png",
                         help="448 px per tile (about 2,300 px wide), text sized for a projector")


@st.fragment
@guarded
def mask_and_reconstruction():
    if not big:
        explainer()
    _mask_controls()
    mask = np.array(ed.mask, dtype=bool)
    rec = reconstruct(model, image, mask)
    left, right = st.columns(2, gap="medium")
    with left:
        if ss.get("painter_bg_key") != image_key:  # the background is encoded once per image, not per stroke
            ss.painter_bg, ss.painter_bg_key = data_url(to_pil(image)), image_key
        patch_painter(ss.painter_bg, ed.mask, g, max_px=680 if big else 560, pixelated=cfg.img_size <= 64,
                      key="painter", on_change=mask_state.painted, fit_below=FIT_BELOW)
    with right:
        # as wide as the painter beside it (100% of the column, at most the painter's cap), pixels kept sharp
        st.html(image_html(rec.pasted, "Reconstruction, visible patches pasted back", 680 if big else 560, cfg,
                          testid="mae-reconstruction", fit_below=FIT_BELOW))

    _edit_buttons()

    n, filled = rec.n_hidden, _scores(rec, mask)

    compare_section(rec, n)
    painted = ed.source != GENERATED
    scene_to_url(model=model_id(model_path), image=image_id(image_key), mask=ed.mask if painted else None,
                 strategy=None if painted else ss.mask_strategy, ratio=None if painted else ss.mask_ratio,
                 seed=None if painted else int(ss.mask_seed),
                 compare=model_id(ss["cmp_path"]) if ss.get("cmp_on") and ss.get("cmp_path") else None)
    st.html(reconstruction_tiles_html(rec, filled, cfg))
    st.caption("MSE on visible patches: — (every patch is hidden)." if math.isnan(rec.mse_visible)
               else f"MSE on visible patches: {rec.mse_visible:.3f}: the loss ignores them, so the model was never "
                    "trained to copy them (hence the paper pastes them back).")
    _downloads(rec, n)
    if st.toggle("Attention maps: what the transformer looks at", key="att_on",
                 help=explain("attention", "token", "cls token") + " For this image and mask: the attention weights "
                      "of any block and head, for the cls token or a patch you click, and the rollout over all blocks"):
        attention_section(model, str(model_path), image, image_key, mask, big)
    if big:
        explainer()
        lesson_link(st)


def compare_section(rec, n: int):
    """A second model on the same image and mask: both reconstructions, comparable errors, one panel to download."""
    if not st.toggle("Compare with a second model", key="cmp_on",
                     help="The same image and the same mask through another model with the same patch grid"):
        return
    choices, refused = comparison_choices(model_path, cfg)
    if not choices:
        st.info("No other model has this model's image size and patch grid. " + " ".join(plain(r) for r in refused))
        return
    want = ss.pop("scene_compare", None)
    if want:  # a link or a prepared scene named the second model
        ss.cmp_model = next((lab for lab, p in choices.items() if p == want), ss.get("cmp_model"))
    label = st.selectbox("Second model", list(choices), key="cmp_model")
    other, other_card = get_model(choices[label])
    rec2 = reconstruct(other, image, np.array(ed.mask, dtype=bool))
    name1 = cards.read(card).short_label if card.get("data") else Path(model_path).name
    a, b = st.columns(2, gap="medium")
    for col, r, lab in ((a, rec, name1), (b, rec2, label)):
        col.html(image_html(r.pasted, f"{html.escape(lab)}: visible patches pasted back", 420, cfg))
    rows = {"model": [name1, label], "target": ["norm-pix" if r.rescaled else "pixels" for r in (rec, rec2)],
            "pixel MSE": ["n/a" if r.rescaled else rounded(r.mse_hidden) for r in (rec, rec2)],
            "shape MSE (comparable)": [rounded(r.mse_hidden_matched) for r in (rec, rec2)]}
    table(rows)
    better = (rec.mse_hidden_matched, rec2.mse_hidden_matched)
    if n and all(v == v for v in better):
        winner = name1 if better[0] < better[1] else label
        st.caption(f"On this image and mask, {plain(winner)} has the lower shape MSE ({min(better):.3f} against "
                   f"{max(better):.3f}). One image says little: the Mask ratios page averages over many. "
                   + ("Pixel MSEs exist only for pixel-target models; a norm-pix model is scored on shape alone."
                      if rec.rescaled != rec2.rescaled else ""))
    if refused:
        with st.popover("Why are some models missing?"):
            for r in refused:
                st.markdown("- " + plain(r))
    ss["cmp_path"] = choices[label]
    st.download_button("Both models, one panel (PNG)", icon=":material/download:", key="dl_cmp",
                       data=lambda: png_bytes(panel_image(rec, size=224, rows=[(name1, rec), (label, rec2)]),
                                              compress_level=6),
                       file_name=f"mae_compare_{n}of{L}.png", mime="image/png")


mask_and_reconstruction()

with st.expander("Model card", expanded=False):
    model_card_view(card)
st.caption(f"Image: {plain(image_label)}")
