"""Embeddings: where a labelled dataset's images land in the encoder's space (t-SNE / PCA / UMAP), with the
images behind the points, their nearest neighbours and kNN / linear-probe scores."""
from __future__ import annotations

import html
import json
import time

import numpy as np
import streamlit as st

from ui import charts
from ui.caches import get_model, registry
from ui.features import METHOD_NAMES, dataset, neighbours, projection, quality, raw_quality, thumbs
from ui.pickers import model_picker
from ui.scenes import model_id, scene_to_url
from ui.session import keep, model_chosen, read_only, visitor_id
from ui.text import error, plain, reading, server_path_input
from ui.tables import table
from ui.tiles import tiles

from mae_core.evaluation import cards, figures, readings
from mae_core.classroom import policy, zoo
from mae_core.checkpoints import CheckpointError
from mae_core.datasets import FASHION_MNIST
from mae_core.classroom.glossary import explain
from mae_core.evaluation.finetune import FinetuneArgs, FinetuneError, run as finetune_run
from mae_core.evaluation.readings import mode_label
from mae_core.data import DataError, find_fashion_mnist
from mae_core.embed import TSNE_ENGINE_NAMES, tsne_backend
from mae_core.explore import reconstruct
from mae_core.evaluation.figures import to_pil
from mae_core.classroom.worker import RunNotAllowed
from mae_core.masking import random_mask

# this file's settings, kept when the visitor looks at another page (ui.session.keep)
keep("emb_source", "emb_folder", "emb_n", "emb_pool", "emb_mask", "emb_method", "emb_perplexity", "emb_seed",
     "emb_hover", "emb_tool", "emb_point", "emb_k", "emb_compare")

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#1f77b4", "#17becf"]  # Tableau 10 (+2): distinct hues for the 10 classes
POOL_NAMES = {"cls": "cls token", "mean": "mean of patch tokens", "both": "cls + mean"}

ss = st.session_state
if not model_chosen():  # until the visitor picks a model: the best-founded comparison (said on the first visit)
    best = zoo.best_representation()
    labels = {p: lab for lab, p in zoo.bundled_choices().items()}
    if best and best["path"] in labels:
        ss.model_source, ss.bundled_choice = "Bundled", labels[best["path"]]
        if not ss.get("emb_defaults_done"):
            ss.setdefault("emb_pool", best["pool"])
            ss.emb_best_note = (f"Opened on **{plain(best['label'])}**, the bundled model with the strongest "
                                f"representation: linear probe {best['probe']:.1%} on the full Fashion-MNIST test "
                                f"split, with {POOL_NAMES[best['pool']]} features. Pick any other model in the "
                                "sidebar.")
ss.emb_defaults_done = True

model, card, model_path = model_picker()
cfg = model.config

st.header("What the encoder has learned", anchor=False, help=explain("encoder", "t-SNE"))
st.caption("Each point is one image, placed by its encoder features; colours are classes the model never saw "
           "during pretraining. Click a point (or switch to box or lasso and drag), or type an image number, to see "
           "the images.")
if ss.get("emb_best_note"):   # kept for this visit of the page (main.py drops it on another page): a note that
    #                            vanished on the first click moved the map up, and the browser scrolled it away
    st.info(ss.emb_best_note, icon=":material/verified:")

# ----------------------------------------------------------------------------- settings
with st.container(border=True):
    c1, c2, c3, c4 = st.columns([1.6, 1, 1.2, 1.2])
    sources = {"fashion-mnist-subset": "Bundled 2,000", "folder": "Image folder"}
    if find_fashion_mnist() is not None:
        sources = {"fashion-mnist-subset": sources["fashion-mnist-subset"],
                   "fashion-mnist-test": "Test set 10,000", "folder": "Image folder"}
    source = c1.selectbox("Images", list(sources), format_func=sources.get, key="emb_source",
                          help="Bundled 2,000: a class-balanced part of the Fashion-MNIST test set shipped with the app; "
                               "Test set 10,000: all of it (when Debian's dataset-fashion-mnist is installed); or a "
                               "folder with one subfolder per class")
    folder = None
    if source == "folder":
        folder = server_path_input(c1, "Folder with one subfolder per class", "emb_folder", "Image folders")
        if folder is None:
            st.stop()
        folder = folder or None
    max_n = {"fashion-mnist-subset": 2000, "fashion-mnist-test": 10000}.get(source, 5000)
    n_points = c2.number_input("Points", 100, max_n, min(2000, max_n), step=100, key="emb_n")
    pool = c3.selectbox("Feature", ["cls", "mean", "both"], key="emb_pool",
                        format_func=POOL_NAMES.get, help=explain("encoder", "cls token", "token"))
    mask_ratio = c4.slider("Hide patches before encoding", 0.0, 0.9, 0.0, 0.05, key="emb_mask",
                           help="0: the encoder sees the whole image. Above 0: a random share of patches is hidden, "
                                "to see how robust the features are.")
    c5, c6, c7, c8 = st.columns([1.4, 0.9, 0.9, 1.6])   # "Thumbnails" whole at 1024 px in presenter mode
    methods = ["tsne", "pca"]
    try:
        import umap  # noqa: F401
        methods.append("umap")
    except ImportError:
        pass
    method = c5.radio("Projection", methods, horizontal=True, key="emb_method",
                      format_func=METHOD_NAMES.get, help=explain("t-SNE") + " PCA keeps the directions in which the "
                      "features vary most: faster, and its distances are honest, but classes overlap more.")
    perplexity = c6.number_input("Perplexity", 5, 100, 30, key="emb_perplexity", disabled=method != "tsne")
    seed = c7.number_input("Seed", 0, 10**6, 0, key="emb_seed")
    hover_images = c8.toggle("Thumbnails", key="emb_hover",
                             help="Show each point's image when the pointer is over it (the map is then drawn with "
                                  "Altair, whose tooltips can hold images)")




ov = json.dumps(st.session_state.get("active_overrides") or {}, sort_keys=True)
key = (model_path, ov, source, folder or "", int(n_points), pool, float(mask_ratio))
try:
    ds = dataset(source, folder or "", cfg.img_size, cfg.in_chans, int(n_points))
    t0 = time.time()
    xy, t_proj = projection(*key, method, float(perplexity), int(seed))
    elapsed = time.time() - t0
except (DataError, OSError) as e:
    error("", e)
    st.stop()
labels = ds.labels.numpy()
classes = list(ds.classes)

# ----------------------------------------------------------------------------- the map
left, right = st.columns([1.7, 1], gap="large")
with left:
    if hover_images:
        import altair as alt
        import pandas as pd
        df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "class": [classes[i] for i in labels],
                           "index": np.arange(len(labels)),
                           "image": thumbs(source, folder or "", cfg.img_size, cfg.in_chans, int(n_points))})
        chart = alt.Chart(df).mark_circle(size=28, opacity=0.8).encode(
            x=alt.X("x", axis=None), y=alt.Y("y", axis=None),
            color=alt.Color("class", scale=alt.Scale(domain=classes, range=list(figures.PALETTE[:len(classes)]))),
            tooltip=["image", "class", "index"]).properties(height=560).interactive()
        st.altair_chart(chart, width="stretch")
        selected = []
        st.caption("Hover a point to see its image. Turn thumbnails off to select points.")
    else:
        tool = st.segmented_control("Select with", ["Click", "Box", "Lasso"], default="Click", key="emb_tool",
                                    help="Click: a click selects the point under the cursor (shift-click adds "
                                         "more; dragging pans). Box / Lasso: drag to select a region.") or "Click"
        event = charts.show(figures.map_chart(xy, labels, classes), "emb_chart",
                            dict(dragmode={"Click": "pan", "Box": "select", "Lasso": "lasso"}[tool]), width_px=520,
                            on_select="rerun", selection_mode=("points", "box", "lasso"), width="stretch")
        pts = (event or {}).get("selection", {}).get("points", []) if event else []
        selected = sorted({int(p["customdata"]) for p in pts if "customdata" in p})
    proj_name = METHOD_NAMES[method]
    if method == "tsne":
        proj_name += f" ({TSNE_ENGINE_NAMES[tsne_backend(len(labels))]}, perplexity {perplexity:g})"
    dims = cfg.embed_dim * (2 if pool == "both" else 1)
    st.caption(f"{len(labels)} points · {proj_name} of {dims}-d {POOL_NAMES[pool]} features"
               f"{f' of images with {mask_ratio:.0%} of patches hidden' if mask_ratio else ''} · "
               f"{elapsed:.1f} s this time (the projection took {t_proj:.1f} s and is cached for these settings)")

# ----------------------------------------------------------------------------- selection and one point
SAME = "<b style='color:#15803d'>✓</b> "    # a neighbour of the same class, and of another, seen from the back
OTHER = "<b style='color:#b91c1c'>✗</b> "
with right:
    if len(selected) > 1:   # one clicked point is shown below as the chosen image: not twice
        counts = zip(*np.unique(labels[selected], return_counts=True))
        st.markdown(f"**{len(selected)} selected:** " + plain(", ".join(
            f"{classes[c].replace('-', '‑')} {n}" for c, n in counts)))   # a hyphen that does not break
        show = selected[:12]
        tiles([(to_pil(ds.images[idx], 64), "") for idx in show], 48, testid="emb-selected", min_px=36, grid=True)
        if len(selected) > len(show):
            st.caption(f"Showing {len(show)} of {len(selected)}.")
    if selected:
        if st.session_state.get("emb_last_selection") != selected:  # a new selection: show its first point
            st.session_state["emb_last_selection"] = selected
            st.session_state["emb_point"] = selected[0]
    st.session_state["emb_point"] = min(int(st.session_state.get("emb_point", 0)), len(labels) - 1)
    point = st.number_input("Image number", 0, len(labels) - 1, key="emb_point",
                            help="Select a point on the map, or type its number")
    scene_to_url(model=model_id(model_path), point=int(point))  # a link to this point on this map
    k = st.slider("Neighbours", 4, 16, 8, key="emb_k")
    mask = random_mask(1, cfg.grid_size, 0.75, seed=int(point))[0]
    rec = reconstruct(model, ds.images[point], mask)
    names = [html.escape(c) for c in classes]   # captions are HTML here: a folder's class name is text
    tiles([(to_pil(ds.images[point], 140), f"#{point} {names[labels[point]]}"),
           (to_pil(rec.pasted, 140), f"filled in, 75% hidden: shape MSE {rec.mse_hidden_matched:.3f}")], 140,
          testid="emb-point")
    nn_idx = neighbours(*key)[point][:k]
    st.markdown(f"**{k} most similar images** to the encoder: nearest in all {dims} numbers it keeps per "
                "image, not on the 2-D map")
    # as many to a row as fit whole (fixed columns broke "Sneaker" mid-word at 1024 px)
    tiles([(to_pil(ds.images[j], 72), (SAME if labels[j] == labels[point] else OTHER) + names[labels[j]])
           for j in nn_idx], 96, testid="emb-neighbours", min_px=56, grid=True)
    agree = float(np.mean(labels[nn_idx] == labels[point]))
    st.caption(f"{agree:.0%} of the neighbours share the class of #{point}.")

# ----------------------------------------------------------------------------- scores
st.subheader("How separable are the classes?", help=explain("linear probe", "kNN"))
mq = quality(*key)
st.caption(f"Protocol: {POOL_NAMES[pool]} features of these {int(n_points)} images; kNN (k=20, cosine) and a "
           f"logistic-regression probe (L2 penalty chosen on held-out training points), fit on {mq['n_train']} of the "
           f"points and scored on the other {mq['n_test']}; raw pixels scored by the same code as the baseline.")
others = {lab: p for lab, p in zoo.bundled_choices().items() if p != model_path}
compare = st.selectbox("Compare with", ["(none)"] + list(others), key="emb_compare")
rows = {"this model": mq, "raw pixels": raw_quality(source, folder or "", cfg.img_size, cfg.in_chans,
                                                    int(n_points))}
if compare != "(none)":
    other_path = others[compare]
    om, _ = get_model(other_path)
    if (om.config.img_size, om.config.in_chans) != (cfg.img_size, cfg.in_chans):
        st.warning("That model takes images of another size or channel count; its scores use its own preprocessing "
                   "of the same images.")
    rows[compare] = quality(other_path, "{}", source, folder or "", int(n_points), pool, float(mask_ratio))
table({"": list(rows), "kNN accuracy": [f"{r['knn']:.1%}" for r in rows.values()],
       "linear probe": [f"{r['linear_probe']:.1%}" for r in rows.values()],
       "train / test": [f"{r['n_train']} / {r['n_test']}" for r in rows.values()]})
reading(readings.scores(mq, rows["raw pixels"], pool, cards.read(card).epochs))

full = cards.read(card)
if full.probe(pool) is not None and full.raw_pixel_baseline:
    em, raw = full.embedding_metrics, cards.raw_baseline(card)
    st.markdown(f"**On the full split** (this model's card: fit on 60,000 training images, scored on the 10,000 test "
                f"images, {POOL_NAMES[pool]}):")
    table({"": ["this model", "raw pixels"],
           **{head: [readings.with_interval(em[f"{k}_{pool}"], em.get(f"{k}_{pool}_ci")),
                     readings.with_interval(raw[k], raw.get(f"{k}_ci"))]
              for head, k in (("kNN accuracy", "knn"), ("linear probe", "linear_probe"))}})
    reading(readings.full_split(card, pool))

# ----------------------------------------------------------------------------- fine-tuning
st.subheader("Linear probe or fine-tuning?", help=explain("linear probe", "fine-tuning"))
ft, ft_from = zoo.finetune_results(card)   # another bundled model's when this one has none, named
_ft_n = (ft or {}).get("args", {}).get("train_images")
st.caption("The paper's headline: with the same labelled images, fine-tuning the whole encoder beats a linear head on "
           "its frozen features. "
           + readings.finetune_budget(_ft_n, "the full-split probe")
           + (readings.head_below_probe(ft["rows"], card, "the full-split probe's", _ft_n)   # its own probe, as shown
              if ft and not ft_from and pool == "both" else ""))
WAYS = ("The ways: a linear head on the frozen encoder's mean of patch tokens (logistic regression, penalty "
        "chosen on validation; the full-split table reads the features chosen above), then the same classifier (mean "
        "of patch tokens, LayerNorm, linear head starting from that best head) trained with one budget with the last "
        "blocks tuned (partial), everything tuned (full), and the same ViT from random weights (scratch).")


def finetune_table(results: dict) -> None:
    """A fine-tuning result: its reading (with what a longer run of it found), then one row per mode with its 95%
    interval, weights trained and time."""
    reading(readings.finetune_of(results))
    rows = results["rows"]
    table({"": [mode_label(r["mode"]) for r in rows],
           "accuracy": [readings.with_interval(r["accuracy"], r["ci95"]) for r in rows],
           "trained weights": [f"{r['trainable_params']:,}" for r in rows],
           "time": [f"{r['train_s']:,.0f}\u00a0s" for r in rows]})


if ft_from:
    st.info(f"This model's card has no fine-tuning results yet; shown: those of the bundled **{plain(ft_from)}**. "
            "Run a short one for this model below.", icon=":material/info:")
if ft:
    finetune_table(ft)
    st.caption(WAYS + " Protocol: " + plain(ft.get("protocol", "")))
else:
    st.caption("This model's card has no fine-tuning results yet; run a short one here, or from the command line: "
               "`python -m mae_core.evaluation.finetune CHECKPOINT --out results.json`.")
if FASHION_MNIST.fits(cfg) and read_only():
    st.caption("This server is read-only (MAE_READ_ONLY): fine-tuning here is turned off.")
elif FASHION_MNIST.fits(cfg) and st.button("Run a quick fine-tune here (about a minute)",
                                                             icon=":material/play_arrow:", key="ft_run"):
    bar = st.progress(0.0, text="Fine-tuning…")
    modes = ("logreg", "last-1", "full", "scratch")
    try:
        with registry().slot(visitor_id(), "the fine-tune"):   # counts against the server's training limits
            res = finetune_run(FinetuneArgs(checkpoint=model_path, modes=modes, data="fashion-mnist-subset",
                                            train_images=800, test_images=1000, epochs=3, batch_size=64),
                               progress=lambda m, f: bar.progress((modes.index(m) + f) / len(modes),
                                                                  text=f"Fine-tuning: {m}"),
                               log=lambda *a: None)
    except RunNotAllowed as e:
        bar.empty()
        st.warning(f"Not now: {plain(e)}.", icon=":material/hourglass_top:")
    except policy.NotAllowed as e:
        bar.empty()
        error("", e)
    except (FinetuneError, CheckpointError) as e:
        error("", e)
    else:
        bar.empty()
        finetune_table(res)
        st.caption("Quick run: " + plain(res["protocol"]) + ". Small data and three epochs: the intervals are wide.")
