"""The Reconstruct page's attention section: what one query token attends to, per block and head, or rolled out
over all blocks. The work is mae_core.attention's; this file only lays it out."""
from __future__ import annotations

import numpy as np
import streamlit as st

from .session import keep
from .text import plain
from .painter import patch_picker, picked_cell

from mae_core.attention import attention_grid, attention_maps
from mae_core.evaluation.figures import attention_image, data_url, error_ramp_css
from mae_core.classroom.glossary import explain

# this file's settings, kept when the visitor looks at another page (ui.session.keep)
keep("att_part", "att_rollout")


@st.cache_data(show_spinner=False, max_entries=8)
def _maps(_model, model_key: str, image_key: str, mask_key: str, _image, _mask):
    return attention_maps(_model, _image, _mask)


def _pick():
    cell = picked_cell("att_picker")
    if cell is not None:
        st.session_state.att_query = cell


def attention_section(model, model_key: str, image, image_key: str, mask: np.ndarray, big: bool = False):
    ss = st.session_state
    cfg = model.config
    if big:   # large type: two rows of two, or "mean of heads" and "Rollout" are cut at 1024 px
        c = [*st.columns(2, vertical_alignment="bottom"), *st.columns(2, vertical_alignment="bottom")]
    else:
        c = st.columns([1.5, 1.5, 1.3, 1.0], vertical_alignment="bottom")   # "Decoder" whole at 1024 px
    part = c[0].segmented_control("Transformer", ["encoder", "decoder"], default="encoder", key="att_part",
                                  format_func=str.capitalize, help=explain("encoder", "decoder", "mask token")) \
        or "encoder"
    depth = cfg.depth if part == "encoder" else cfg.decoder_depth
    heads = cfg.num_heads if part == "encoder" else cfg.decoder_num_heads
    rollout = c[3].toggle("Rollout", key="att_rollout",
                          help=explain("rollout") + " Attention rollout (Abnar & Zuidema, 2020): the blocks' head-averaged attention, each "
                               "mixed half-half with the residual path, multiplied through every block. A rough "
                               "estimate of how information flows from the patches to the query over the whole stack.")
    block = c[1].slider("Block", 1, depth, depth, key=f"att_block_{part}", disabled=rollout or depth == 1) \
        if depth > 1 else 1
    head_opts = ["mean"] + list(range(heads))
    head = c[2].selectbox("Head", head_opts, key=f"att_head_{part}",
                          format_func=lambda h: "mean of heads" if h == "mean" else f"head {h + 1}")
    ss.setdefault("att_query", "cls")
    query = ss.att_query
    L = cfg.num_patches
    if query != "cls" and (not isinstance(query, int) or not 0 <= query < L):
        query = ss.att_query = "cls"
    if part == "encoder" and query != "cls" and mask[query]:
        st.info(f"Patch {query} is hidden, so the encoder has no token for it: showing the cls token's attention. "
                "Pick a visible patch, or look at the decoder, which has a token for every patch.")
        query = "cls"

    maps = _maps(model, model_key, image_key, "".join("1" if v else "0" for v in mask), image, mask)
    h = None if head == "mean" else int(head)
    grid, cls_share = attention_grid(maps, part, block=block - 1, head=h, query=query, rollout=rollout)
    left, right = st.columns([1, 1], gap="medium")
    with left:
        where = "all blocks (rollout)" if rollout else f"block {block} of {depth}"
        who = "the cls token" if query == "cls" else f"patch {query} (row {query // cfg.grid_size + 1}, column " \
                                                     f"{query % cfg.grid_size + 1})"
        patch_picker(data_url(attention_image(image, grid, 420, None if query == "cls" else query)), cfg.grid_size,
                     max_px=560 if big else 460, selected=-1 if query == "cls" else query, key="att_picker",
                     on_change=_pick, hint="Click a patch (or arrow keys + Enter) to make it the query.")
        st.button("Back to the cls token", key="att_cls", icon=":material/token:", disabled=query == "cls",
                  on_click=lambda: ss.update(att_query="cls"))
    with right:
        vmax = float(np.nanmax(grid)) if np.isfinite(grid).any() else 1.0
        st.markdown(f"**What {plain(who)} attends to**, {part}, {where}, "
                    f"{'mean of heads' if h is None else f'head {h + 1}'}.")
        st.html(f"<div data-testid='att-scale' style='font-size:0.8rem;color:#374151;max-width:320px'>"
                f"<div style='height:12px;border-radius:3px;background:{error_ramp_css()}'></div>"
                f"<div style='display:flex;justify-content:space-between'><span>0</span><span>{vmax:.3f}</span></div>"
                "<div style='color:#6b7280'>attention weight (a query's weights over all tokens sum to 1)"
                + ("; hatched = hidden, the encoder never saw it" if part == "encoder" else "") + "</div></div>")
        st.caption(("Weight the cls token puts on itself" if query == "cls" else
                    f"Weight patch {query} puts on the cls token") + f": {cls_share:.3f}. "
                   + ("The encoder's tokens are the visible patches only; hidden patches have no token. "
                      if part == "encoder" else
                      "In the decoder, hidden patches are mask tokens: their rows show where the decoder looks to fill "
                      "them in. ")
                   + "Attention is one signal among many (the MLPs and residual paths carry the rest): read it as a "
                     "hint, not an explanation.")
        if not rollout and heads > 1:
            st.markdown("**Every head** of this block, same query:")
            per_row = 4
            for start in range(0, heads, per_row):
                cols = st.columns(per_row)
                for i, col in enumerate(cols):
                    hh = start + i
                    if hh >= heads:
                        break
                    g_h, _ = attention_grid(maps, part, block=block - 1, head=hh, query=query)
                    col.image(attention_image(image, g_h, 140, None if query == "cls" else query),
                              caption=f"head {hh + 1}", width="stretch")
