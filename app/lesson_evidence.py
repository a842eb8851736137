"""The lesson's steps 5-9: why hide so much (the ratio against copying the neighbours), what the encoder learned (two
maps), how much to hide while training (Figure 5), fine-tuning against a frozen encoder (the paper's headline), and the
full pages to go on with. Predict first where a step asks a question: the answer shows after the student commits to
a guess."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.caches import get_model
from ui.heavy import gate
from ui.scenes import image_id, model_id
from ui.session import keep, PAGES, read_only
from ui.text import plain
from lesson_steps import Ctx, details
from ui.tiles import rounded, tiles

from mae_core.evaluation import cards, figures, readings
from mae_core.classroom import lesson, zoo
from mae_core.baselines import baseline_reconstruction
from mae_core.checkpoints import list_bundled
from mae_core.explore import reconstruct
from mae_core.evaluation.readings import mode_label
from mae_core.datasets import FASHION_MNIST
from mae_core.classroom.glossary import explain
from mae_core.classroom.scenes import to_params
from mae_core.evaluation.comparisons import probe_table, ratio_judgement, ratio_series

# this file's settings, kept when the visitor looks at another page (ui.session.keep)
keep("lesson_best_map", "lesson_class", "lesson_pick_ratio", "lesson_pick_ft", "lesson_ratio")



def _fashion(cx: Ctx) -> bool:
    return FASHION_MNIST.fits(cx.cfg)


def _needs_fashion(what: str) -> None:
    st.info(f"This step {what} of labelled Fashion-MNIST pictures, so it needs a Fashion-MNIST model: pick one of "
            "the bundled ones in the sidebar (the lesson opens on one).", icon=":material/info:")


# ----------------------------------------------------------------------------- 5. why hide so much
@st.cache_data(show_spinner="Measuring both fills at every ratio…", max_entries=8)
def _curve(path: str, mtime: float) -> list:
    return lesson.curve(path, get_model(path)[0], keep=not read_only(), gate=gate("drawing the curve"))   # shipped, else once for the server


def ratio(cx: Ctx) -> None:
    c = cx.cfg
    st.session_state.setdefault("lesson_ratio", 75)
    r = st.slider("Share of patches hidden", 10, 90, step=5, key="lesson_ratio", format="%d%%",
                  help=explain("mask ratio")) / 100
    from mae_core.masking import make_mask
    mask = make_mask("random", 1, c.grid_size, float(r), seed=0)[0].numpy().astype(bool)
    rec = reconstruct(cx.model, cx.image, mask)
    filled, _, _ = baseline_reconstruction(cx.model, cx.image, mask)
    e_mae = lesson.hidden_error(rec.pasted, cx.image, mask, c.patch_size)
    e_cls = lesson.hidden_error(filled, cx.image, mask, c.patch_size)
    left, right = st.columns([1.25, 1], gap="small")
    with left:
        tiles([(rec.masked, f"{int(mask.sum())} of {c.num_patches} hidden"),
               (rec.pasted, f"the MAE<br>error {rounded(e_mae)}"),
               (filled, f"copying the neighbours<br>error {rounded(e_cls)}")], 150, testid="lesson-ratio")
    fashion = FASHION_MNIST.fits(c)
    with right:
        if fashion:
            rows = _curve(cx.path, Path(cx.path).stat().st_mtime if Path(cx.path).is_file() else 0.0)
            ch = figures.error_curve_chart(rows, bands=False)
            ch.title, ch.height = "", 250 if cx.big else 270
            ch.xlabel, ch.ylabel = "share of patches hidden", "error on hidden pixels"
            ch.refs.append(figures.RefLine(float(r), "", orient="v", dash="dot"))
            fig = figures.to_plotly(ch)
            for tr in fig.data:   # plain names, as the tiles beside it say; the classical fill grey
                if tr.name and figures.COPYING in tr.name:
                    tr.name = figures.COPYING
                    tr.line.color = tr.marker.color = "#6b7280"
                elif tr.name:
                    tr.name = "the MAE"
            fig.update_layout(margin=dict(l=10, r=10, t=30, b=10), xaxis_tickformat=".0%",
                              legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom", title=None,
                                          font=dict(size=12)))
            st.plotly_chart(fig, width="stretch", key="lesson_curve")
            st.caption(f"Each point: the average over {lesson.CURVE_IMAGES} pictures (the pictures beside it: "
                       "this one).")
    lower = e_mae < e_cls
    things = "clothes" if fashion else "things"
    st.markdown(f"With few patches hidden, copying the neighbours does as well as the MAE, or better. Hide more, and "
                f"only a model that knows what {things} look like can fill in. Here, with {r:.0%} hidden: "
                f"**{'the MAE is closer' if lower else 'copying the neighbours is closer'}**.")
    details("Both fills are scored the same way: the mean squared error over the hidden pixels (0 black, 1 white; "
            "lower is closer). "
            + ("The chart: solid line the MAE, dashed line copying the neighbours, dotted line your ratio; random "
               f"masks on the first {lesson.CURVE_IMAGES} bundled Fashion-MNIST test pictures, one mask each per ratio (the Mask ratios "
               "page has more pictures, seeds and strategies). " if fashion else
               "The curve is drawn for Fashion-MNIST models only. ")
            + "Copying the neighbours is harmonic inpainting: every hidden pixel becomes the average of its "
            "neighbours, no learning. The paper hides 75%: a task too hard to solve by copying, so the model must "
            "learn about whole objects.")


# ----------------------------------------------------------------------------- 6. what the encoder learned
@st.cache_data(show_spinner="Drawing both maps (a few seconds, once)…", max_entries=8)
def _maps(path: str, mtime: float, _model) -> dict:
    return lesson.maps(path, _model, keep=not read_only(), gate=gate("drawing both maps"))   # shipped for the bundled models, else once per server


def _map_figure(xy, labels, classes, highlight, title: str, height: int):
    chart = figures.map_chart(xy, labels, classes, title=title, height=height, highlight=highlight, ids=False,
                              legend=False, size=6)
    return figures.to_plotly(chart)


def learned(cx: Ctx) -> None:
    if not _fashion(cx):
        _needs_fashion("draws a map")
        return
    best = zoo.best_representation()
    path, model, card = cx.path, cx.model, cx.card
    if best and Path(best["path"]) != Path(cx.path) and st.toggle(
            "Show the bundled model that sorts best", key="lesson_best_map",
            help=f"Another of the bundled models ({best['label']}): the one whose features a simple classifier "
                 "sorts best"):
        model, card = get_model(best["path"])
        path = best["path"]
    m = _maps(path, Path(path).stat().st_mtime if Path(path).is_file() else 0.0, model)
    classes = m["classes"]
    c1, c2 = st.columns([1, 2.6], vertical_alignment="center")
    pick = c1.selectbox("Light up one kind", ["all", *classes], key="lesson_class")
    highlight = None if pick in (None, "all") else pick
    c2.html("<div data-testid='lesson-legend' style='display:flex;flex-wrap:wrap;gap:2px 12px;font-size:0.85rem'>"
            + "".join(f"<span><span style='display:inline-block;width:10px;height:10px;border-radius:5px;"
                      f"background:{figures.PALETTE[k % 10]};margin-right:4px'></span>{name}</span>"
                      for k, name in enumerate(classes)) + "</div>")
    h = 240 if cx.big else 300
    a, b = st.columns(2, gap="small")
    a.plotly_chart(_map_figure(m["model_xy"], m["labels"], classes, highlight, "The encoder's map", h),
                   width="stretch", key="lesson_map_model", config={"displayModeBar": False})
    b.plotly_chart(_map_figure(m["raw_xy"], m["labels"], classes, highlight, "Raw pixels' map", h),
                   width="stretch", key="lesson_map_raw", config={"displayModeBar": False})
    mine, raw = m["model_agree"], m["raw_agree"]
    d = 100 * (mine - raw)
    how = ("clearly more often than" if d >= 5 else "a little more often than" if d >= 1 else
           "about as often as" if d > -1 else "less often than")
    st.markdown(f"**The same kinds land together {how} with raw pixels: {mine:.0%} of each picture's {m['k']} "
                f"nearest neighbours show the same kind of thing, against {raw:.0%}.** Each dot is one picture; the "
                "model was never told what they show.")
    card = cards.read(card)
    raw_card = card.raw_pixel_baseline
    details(f"Maps: t-SNE of {m['n']} bundled Fashion-MNIST test pictures (50 of each kind), from the encoder's "
            f"features ({m['features']}, every patch visible) and from the raw 784 pixels. Nearest neighbours: the "
            f"{m['k']} most similar pictures by cosine similarity, the picture itself left out, averaged over all "
            f"{m['n']}." + (f" The full test on this model's card (fit on 60,000 pictures, scored on 10,000): linear "
                            f"probe {card.probe('both'):.1%} against {raw_card['linear_probe']:.1%} for raw pixels; "
                            f"kNN {card.knn('both'):.1%} against {raw_card['knn']:.1%}."
                            if card.probe("both") is not None and raw_card.get("linear_probe") else "")
            + " " + explain("t-SNE"))


# ----------------------------------------------------------------------------- predict first, then the evidence
def _predict(key: str, question: str, options: list, labels: dict) -> bool:
    """A question with a Reveal button; True once revealed. The student's pick stays in ``lesson_pick_<key>``."""
    ss = st.session_state
    done = ss.get(f"lesson_revealed_{key}", False)
    st.pills(question, options, format_func=labels.get, key=f"lesson_pick_{key}", disabled=done)
    st.button("Reveal", type="primary", icon=":material/visibility:", key=f"lesson_show_{key}",
              disabled=done or ss.get(f"lesson_pick_{key}") is None,
              on_click=lambda: ss.update({f"lesson_revealed_{key}": True}),
              help="Pick an answer first")
    return done


def pretraining(cx: Ctx) -> None:
    series = ratio_series(list_bundled())
    rows = probe_table(series)
    if len(rows) < 2:
        st.info("The bundled series of models pretrained at different ratios is not available here.")
        return
    ratios = [r["ratio"] for r in rows]
    first = cards.read(series[0])
    if not st.session_state.get("lesson_revealed_ratio"):   # after the reveal the answer needs the room
        st.markdown(f"{len(rows)} copies of the same model played the hiding game the same way ({first.epochs} "
                    "passes over 60,000 pictures), each hiding a different share of every picture. Then a simple "
                    "program learned to sort what each encoder says about a picture into the 10 kinds of clothing.")
    done = _predict("ratio", "Which share hidden while training taught the encoder best?", ratios,
                    {r: f"{r:.0%}" for r in ratios})
    if not done:
        details("Each model's encoder is frozen and tested: a simple classifier (a linear probe) learns the 10 "
                "kinds from its features on 60,000 pictures and is scored on 10,000 others. " + explain("linear probe"))
        return
    ch = figures.probe_chart(rows, "both")   # the simple classifier only: the headline speaks of it
    ch.lines, ch.refs = ch.lines[:1], ch.refs[:1]
    ch.lines[0].name, ch.refs[0].label = "the encoder's features", f"raw pixels: {ch.refs[0].value:.0f}% right"
    ch.ylabel, ch.xlabel = "% sorted right", "share hidden while training"
    ch.y_range, ch.height = (75.0, 95.0), 230 if cx.big else 280   # not cut close: gaps of a point look small
    fig = figures.to_plotly(ch)
    fig.update_layout(margin=dict(l=10, r=10, t=30, b=10), xaxis_tickformat=".0%", xaxis_tickvals=ratios,
                      legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom", title=None, font=dict(size=12)))
    j = ratio_judgement(series)
    r = readings.ratio(series, judgement=j)
    pick = st.session_state.get("lesson_pick_ratio")
    said = [f"**{r.headline}**"]
    if pick is not None:
        said.append(readings.ratio_pick(pick, j))
    if j and j["spread"] is not None:
        said.append(f"Training the very same model twice can change its score by about {j['spread']:.0%} of the "
                    "pictures, so gaps that small could swap.")
    st.markdown(" ".join(said))
    st.plotly_chart(fig, width="stretch", key="lesson_fig5")
    details(f"{len(rows)} models trained the same way ({first.epochs} epochs of the 60,000 training pictures), each "
            "hiding a different share. The chart's little bars: where each score would likely land on other test "
            "pictures (95% bootstrap intervals); the dashed line: raw pixels sorted by the same classifier. "
            + r.details + " Protocol: linear probe on cls + mean features, fit on the 60k training split, scored on "
            "the 10k test split.")


def finetune(cx: Ctx) -> None:
    found = list_bundled()   # read once: whose results, and that model's own probe
    ft, ft_from = zoo.finetune_results(cx.card, found)
    if not ft:
        st.info("No bundled model carries fine-tuning results here.")
        return
    rows = [r for r in ft["rows"] if r["mode"] in ("full", "logreg", "scratch") or r["mode"].startswith("last-")]
    plain_names = {"full": "tune the whole encoder", "logreg": "train only a last layer",
                   "scratch": "no pretraining", "last-1": "tune the last block too"}
    names = {r["mode"]: plain_names.get(r["mode"], mode_label(r["mode"])) for r in rows}
    short = {"full": "tune the whole<br>encoder", "logreg": "train only<br>a last layer",
             "scratch": "no<br>pretraining", "last-1": "tune the last<br>block too"}
    n = ft.get("args", {}).get("train_images")
    if not st.session_state.get("lesson_revealed_ft"):   # the story before the question, as on the last step
        st.markdown("After the hiding game (pretraining), the encoder sees pictures with their names for the first "
                    "time. Keep it as it is and train only a last layer on top? Tune its last block (its top layer) "
                    "too? Tune the whole encoder? Or skip the hiding game and learn from the names alone (no "
                    "pretraining)?")
    done = _predict("ft", f"With {n:,} labelled pictures, which scores best?" if n else "Which scores best?",
                    [r["mode"] for r in rows], names)
    if not done:
        details(explain("fine-tuning", "linear probe"))
        return
    ch = figures.Chart("", "", "% right", height=220 if cx.big else 280)
    ch.bars = figures.Bars([short.get(r["mode"], names[r["mode"]]) for r in rows], [100 * r["accuracy"] for r in rows], None,
                           ["#4f46e5" if r["mode"] != "scratch" else "#9ca3af" for r in rows],
                           intervals=[(100 * r["ci95"][0], 100 * r["ci95"][1]) for r in rows])
    ch.y_range = (0.0, 100.0)   # from zero: a bar's height is its score
    fig = figures.to_plotly(ch)
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10))
    r = readings.finetune_of(ft)
    pick = st.session_state.get("lesson_pick_ft")
    st.markdown(f"**{r.headline}**" + (" " + readings.finetune_pick(pick, rows, names[pick]) if pick else "")
                + (" (Measured on another of the bundled models.)" if ft_from else ""))
    fig.update_traces(text=[f"{100 * r_['accuracy']:.0f}%" for r_ in rows], textposition="inside",
                      insidetextanchor="middle", textfont=dict(size=18, color="white"), selector=dict(type="bar"))
    st.plotly_chart(fig, width="stretch", key="lesson_ft")
    details(r.details + " " + readings.finetune_budget(n, "the last step's scores", "Every bar", "labelled pictures")
            + readings.head_below_probe(ft["rows"], zoo.bundled_card(ft.get("checkpoint"), found), "the last step's", n))
    if ft_from:
        st.caption(f"Measured on another of the bundled models ({plain(ft_from)}): the one in the sidebar has no "
                   "fine-tuning results. Every bar but “no pretraining” (the same network from random weights) "
                   "starts from that model, so compare the bars with each other.")
    with st.expander("Protocol"):
        st.markdown(plain(ft.get("protocol", "")) + ".")


# ----------------------------------------------------------------------------- 9. your turn
def your_turn(cx: Ctx) -> None:
    ss = st.session_state
    model = model_id(cx.path)
    scene = to_params(model=model, image=image_id(cx.image_key), mask=[int(v) for v in cx.mask])
    keep = {"present": "1"} if ss.get("presenter") else {}
    goes = [("", "Paint your own masks", ":material/brush:", "the lesson's picture, mask and model", scene),
            ("ratios", "Try every mask ratio", ":material/tune:", "the error at every ratio, over many pictures",
             {**{k: v for k, v in scene.items() if k in ("m", "img")}, "sec": "test"}),
            ("embeddings", "Explore the map", ":material/scatter_plot:", "the lesson's picture and its neighbours",
             {**{k: v for k, v in scene.items() if k == "m"},
              **({"pt": scene["img"].split(":")[1]} if scene.get("img", "").startswith("fm:") else {})}),
            ("train", "Train your own MAE", ":material/model_training:", "a small one trains in minutes", {})]
    cols = st.columns(2)
    for k, (page, label, icon, what, params) in enumerate(goes):
        with cols[k % 2].container(border=True):
            if st.button(label, icon=icon, key=f"lesson_go_{page or 'reconstruct'}", width="stretch",
                         type="primary" if k == 0 else "secondary") and page in PAGES:
                st.switch_page(PAGES[page], query_params={**keep, **params})
            st.caption(what)
    st.markdown("You have seen the whole idea: hide most of a picture, learn to fill it in, keep the encoder. "
                "Now try it yourself: every page opens on the lesson's model, and the first on its picture and mask.")
    details("The paper: K. He, X. Chen, S. Xie, Y. Li, P. Dollár, R. Girshick, *Masked Autoencoders Are Scalable "
            "Vision Learners*, CVPR 2022 ([arXiv 2111.06377](https://arxiv.org/abs/2111.06377)). This app's models "
            "are small copies trained on Fashion-MNIST on a laptop CPU; the model cards (Reconstruct page) say how.")
