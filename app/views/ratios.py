"""Mask ratios: what the ratio and the strategy do at test time, and what the pretraining ratio does.

Only the section on screen computes (a segmented control, not tabs: st.tabs runs every tab's code); the
computations (``ui.sweeps``) show their progress, are stored for the whole server and hold a slot of its pool."""
from __future__ import annotations

import streamlit as st

from ui import charts
from ui.caches import fmnist_subset, get_model
from ui.images import image_picker
from ui.pickers import model_picker
from ui.scenes import image_id, model_id, scene_to_url
from ui.session import keep, presenting
from ui.sweeps import pretraining_rows, strategy_rows, sweep_rows
from ui.text import plain, reading
from ui.tables import table as html_table
from ui.tiles import stacks, tiles

from mae_core.evaluation import cards, figures
from mae_core.checkpoints import list_bundled
from mae_core.explore import reconstruct
from mae_core.datasets import FASHION_MNIST
from mae_core.classroom.glossary import explain
from mae_core.masking import STRATEGIES, make_mask
from mae_core.evaluation.readings import points
from mae_core.evaluation import readings
from mae_core.evaluation.sweep import BASELINE_PREFIX, DEFAULT_RATIOS, csv_text, ratio_strip, strategy_examples
from mae_core.evaluation.comparisons import (last_quarter_gain, probe_history, probe_table, ratio_groups, ratio_series,
                                             strategy_series)

# this file's settings, kept when the visitor looks at another page (ui.session.keep)
keep("ratio_section", "sw_strategies", "sw_images", "sw_seeds", "sw_bands", "sw_classical", "strip_ratios",
     "strip_strategy", "strat_ratio", "strat_seed", "pre_ratio", "pre_seed", "pre_heat", "probe_pool")

RATIOS = DEFAULT_RATIOS
SECTIONS = {"test": "Error against ratio", "strategy": "Strategies compared", "pre": "Pretraining ratio"}

model, card, model_path = model_picker()
cfg = model.config
image, image_label, image_key = image_picker(cfg)

st.header("Mask ratio and masking strategy", anchor=False, help=explain("mask ratio", "patch"))
st.caption("How hard is the task at each ratio, does the strategy matter, and what does the ratio used in "
           "pretraining change? Errors are mean squared errors on the hidden patches, in [0, 1] pixel units.")


def _chart(chart: figures.Chart, png_name: str, key: str, note: str = "", width_px: int = 760):
    """A chart (its picture drawn ``width_px`` wide until pointed at), its note right under it, then its download."""
    charts.show(chart, f"chart_{key}", width_px=width_px, width="stretch")
    if note:
        st.caption(note)
    st.download_button("Figure (PNG)", lambda: figures.to_png(chart), png_name, "image/png",
                       icon=":material/download:", key=f"dl_{key}")


section = st.segmented_control("Section", list(SECTIONS), format_func=SECTIONS.get, key="ratio_section",
                               default=None if "ratio_section" in st.session_state else "test",  # a link set it
                               label_visibility="collapsed") or "test"
scene_to_url(model=model_id(model_path), image=image_id(image_key), section=section)

# ----------------------------------------------------------------------------- test-time sweep
def sweep_section() -> None:
    """Error against the test-time ratio, each strategy with the classical fill; one picture at several ratios."""
    c1, c2, c3 = st.columns([2.6, 1, 1] if presenting() else [2, 1, 1])   # three chips whole in large type
    strategies = c1.multiselect("Strategies", list(STRATEGIES), default=list(STRATEGIES), key="sw_strategies",
                                format_func=lambda s: STRATEGIES[s].label)
    n_images = c2.select_slider("Images", [16, 32, 64, 128, 256], value=16, key="sw_images",
                                help="More images and seeds: smoother curves, longer to compute (64 × 3: about 4x)")
    seeds = c3.select_slider("Seeds", [1, 2, 3, 5], value=3, key="sw_seeds")
    if not strategies:
        st.info("Pick at least one strategy.")
    else:
        t1, t2 = st.columns(2)
        bands = t1.toggle("Show the spread (± 1 sd)", key="sw_bands",
                          help="The spread across images and seeds: a band one standard deviation (sd) each side of "
                               "the mean. The strategies' bands overlap: switch them on to see how much one image's "
                               "error varies.")
        classical = t2.toggle("Copying the neighbours", value=True, key="sw_classical",
                              help="The classical baseline. " + explain("inpainting") + " Harmonic inpainting of the "
                                   "same hidden patches (each hidden pixel the mean of its neighbours, no learning), "
                                   "scored the same way: dashed lines")
        rows = sweep_rows(model_path, int(n_images), int(seeds), tuple(strategies), RATIOS, st.empty())
        shown = rows if classical else [r for r in rows if not r["strategy"].startswith(BASELINE_PREFIX)]
        _chart(figures.error_curve_chart(shown, card.get("mask_ratio"), bands=bands), "error_vs_ratio.png", "curve",
               note=f"Mean over {n_images} images × {seeds} seeds" + ("; the band is ± 1 standard deviation across "
                    "them. " if bands else " (switch on the bands for the spread). ") +
                    "Errors need not fall all the way to ratio 0: a model pretrained at a high ratio never saw so "
                    "many visible patches, and with only a few patches hidden the mean rests on few, hard ones.")
        if classical:   # under the chart's own note, so that note is not read as the closed Details' text
            reading(readings.classical_curves(rows, strategies))
        st.download_button("Curves (CSV)", csv_text(rows), "error_vs_ratio.csv", "text/csv",
                           icon=":material/download:")

    st.subheader("One image at several ratios")
    strip_ratios = st.multiselect("Ratios", RATIOS, default=[0.25, 0.5, 0.75, 0.9], key="strip_ratios")
    strip_strategy = st.radio("Strategy", list(STRATEGIES), horizontal=True, key="strip_strategy",
                              format_func=lambda s: STRATEGIES[s].label)
    if strip_ratios:
        strip = ratio_strip(model, image, strip_ratios, strategy=strip_strategy)
        # the share actually hidden: a ratio rounds to whole patches (75% of 49 hides 37, 76%)
        stacks([[(figures.to_pil(rec.masked, 160), f"{rec.n_hidden}/{rec.mask.size} hidden ({rec.ratio:.0%})"),
                 (figures.to_pil(rec.pasted, 160), f"MSE {rec.mse_hidden:.3f}")] for _, rec in strip], 180,
               testid="ratio-strip")
        if strategies:
            st.caption("One picture with one set of masks: its errors can go against the curve above, which "
                       f"averages {n_images} images × {seeds} seeds.")
        st.download_button("Strip (PNG)", lambda: figures.png_bytes(figures.strip_image(strip)), "ratio_strip.png",
                           "image/png", icon=":material/download:", key="dl_strip")



# ----------------------------------------------------------------------------- strategies (Figure 6)
def strategy_section() -> None:
    """The strategies on one picture, their errors at one ratio, and the models pretrained with each (Figure 6)."""
    ratio = st.slider("Mask ratio", 0.05, 0.95, 0.75, 0.05, key="strat_ratio")
    seed = st.number_input("Seed", 0, 10**6, 0, key="strat_seed")
    ex = strategy_examples(model, image, float(ratio), seed=int(seed))
    per_row = min(3, len(ex))
    items = list(ex.items())
    for start in range(0, len(items), per_row):  # every registered strategy gets a place
        cols = st.columns(per_row)
        for col, (s, rec) in zip(cols, items[start:start + per_row]):
            with col:
                st.markdown(f"**{STRATEGIES[s].label}** — {rec.n_hidden}/{rec.mask.size} hidden")
                tiles([(figures.to_pil(rec.masked, 200), "masked"),
                       (figures.to_pil(rec.pasted, 200), f"filled in: MSE {rec.mse_hidden:.3f}")], 200,
                      testid="strategy-pair", min_px=70)
    st.download_button("Images (PNG)", lambda: figures.png_bytes(figures.strategies_image(ex)),
                       f"strategies_{ratio:.2f}.png", "image/png", icon=":material/download:", key="dl_strat")
    n_images, seeds = int(st.session_state.get("sw_images", 16)), int(st.session_state.get("sw_seeds", 3))
    rows = sweep_rows(model_path, n_images, seeds, tuple(STRATEGIES), RATIOS, st.empty())  # as above
    rows = [r for r in rows if not r["strategy"].startswith(BASELINE_PREFIX)]
    _chart(figures.strategy_bars_chart(rows, float(ratio), n_images, seeds), f"strategies_{ratio:.2f}_bars.png",
           "bars", note="The paper (Figure 6) reports block masking as the harder task at the same ratio (large "
           "regions with nothing to copy from) and the regular grid as the easier one (every hidden patch keeps "
           f"visible neighbours). Compare with this model, at this grid size. The bars are means over {n_images} "
           "images: the one picture above can differ from them.")

    st.subheader("Pretrained with each strategy (the paper's Figure 6)")
    trio = strategy_series(list_bundled())
    if len(trio) < 2:
        st.info("The test above masks one model three ways: it shows how hard each task is, not what each strategy "
                "teaches. The paper's point is about *pretraining*: grid masking is an easy task that gives worse "
                "representations, block masking is hard and also worse. Models pretrained with block and grid masks "
                "(same budget as the random one) are not bundled yet: `bash checkpoints/train_bundled.sh "
                "fmnist_block75 fmnist_grid75` makes them.")
    else:
        rows = strategy_rows(tuple((s, c["path"]) for s, c in trio.items()))
        first = cards.read(next(iter(trio.values())))
        st.markdown(f"{len(trio)} models that differ only in the masking strategy used in pretraining "
                    f"({plain(first.preset or '?')}, {'norm-pix' if first.norm_pix_loss else 'pixel'} target, "
                    f"{first.epochs} epochs, ratio {first.mask_ratio:.2f}).")
        task_chart, probe_chart = figures.strategy_pretraining_charts(
            rows, raw_probe=first.raw_pixel_baseline.get("linear_probe"))
        left, right = st.columns(2)
        with left:   # half the width: pictures drawn at it, so their type is read at its own size
            _chart(task_chart, "strategies_pretrained_task.png", "strat_task", width_px=380)
        with right:
            _chart(probe_chart, "strategies_pretrained_probe.png", "strat_probe", width_px=380)
        table = {"pretrained with": [STRATEGIES[r["strategy"]].label for r in rows],
                 "error on its own masks": [f"{r['own_error']:.4f}" for r in rows],
                 "error on random masks": [f"{r['random_error']:.4f}" for r in rows],
                 "linear probe": [readings.with_interval(r["probe"], r.get("probe_ci")) for r in rows],
                 "kNN": [f"{r['knn']:.1%}" for r in rows]}
        if any(r.get("vs_random_ci") for r in rows):
            table["probe vs random, paired"] = [
                "reference" if r["strategy"] == "random" else
                points(r["probe"], rows[0]["probe"], None, r["vs_random_ci"]) if r.get("vs_random_ci") else ""
                for r in rows]
        html_table(table)
        raw = first.raw_pixel_baseline.get("linear_probe")
        st.caption("Errors: shape MSE on hidden patches at the pretraining ratio, 64 bundled test images × 2 seeds "
                   "(lower = easier task). Probe and kNN: the model cards (cls + mean features, 60k / 10k split, 95% "
                   "bootstrap intervals; paired: the interval of the difference to random on the same test images)"
                   + (f"; raw pixels score {raw:.1%} on the same probe (dashed line)." if raw else "."))
        reading(readings.strategy(rows))



# ----------------------------------------------------------------------------- pretraining ratio (Figure 5)
def pretraining_section() -> None:
    """The models pretrained at different ratios: probe against ratio (Figure 5), errors, convergence."""
    bundled = list_bundled()   # read once: every reading below takes its cards from it
    groups, series = ratio_groups(bundled), ratio_series(bundled)
    if len(series) < 2:
        st.info("The bundled Fashion-MNIST ratio series is not available.")
    else:
        first = cards.read(series[0])
        st.markdown(f"{len(series)} models that differ only in the mask ratio used in pretraining "
                    f"({plain(first.preset or '?')}, {'norm-pix' if first.norm_pix_loss else 'pixel'} target, "
                    f"{first.epochs} epochs each), on the **same image with the same masks**. Under each picture: the "
                    "ratio its model was pretrained at, in bold, and its shape MSE (each patch given its true mean "
                    "and contrast), comparable across targets.")
        if len(groups) > 1:
            others = ["{} at {}".format(desc, ", ".join(f"{float(c['mask_ratio']):.0%}" for c in g))
                      for desc, g in groups[1:]]
            st.caption("Also bundled, not in this series: " + "; ".join(others)
                       + ". A series with more ratios than this one takes its place here.")
        c1, c2 = st.columns([3, 1])
        test_ratio = c1.slider("Mask ratio at test time", 0.05, 0.95, 0.75, 0.05, key="pre_ratio")
        pre_seed = c2.number_input("Seed", 0, 10**6, 0, key="pre_seed")
        img = image if FASHION_MNIST.fits(cfg) else fmnist_subset().images[0]
        mk = make_mask("random", 1, 7, float(test_ratio), seed=int(pre_seed))[0]
        side = [(f"pretrained {float(c['mask_ratio']):.0%}", reconstruct(get_model(c["path"])[0], img, mk))
                for c in series]   # the PNG's captions; the page's: the ratio in bold, its error below
        tiles([(figures.to_pil(img, 150), "original")]
              + [(figures.to_pil(rec.pasted, 150), f"<b>{name.split()[-1]}</b><br>MSE {rec.mse_hidden_matched:.3f}")
                 for name, rec in side], 150, testid="pretrained-side-by-side", min_px=80)
        st.download_button("Side by side (PNG)", lambda: figures.png_bytes(figures.side_by_side_image(img, side)),
                           "pretraining_side_by_side.png", "image/png", icon=":material/download:", key="dl_side")

        st.subheader("Error by pretraining ratio × test ratio")
        if st.toggle("Show the heatmap (each model's error at 19 test ratios)", key="pre_heat"):
            paths = tuple((c["path"], float(c["mask_ratio"])) for c in series)
            grid = pretraining_rows(paths)
            _chart(figures.heatmap_chart([r for _, r in paths], RATIOS, grid), "pretraining_heatmap.png", "heat")
            st.caption("Each row is one model (random masks, 64 images × 2 seeds). Read a column to see which "
                       "pretraining ratio reconstructs best at that test ratio.")

        st.subheader("Representation quality against pretraining ratio")
        rows = probe_table(series)
        if not rows:
            st.info("These model cards carry no kNN / linear-probe metrics yet "
                    "(python -m mae_core.evaluation.cards measure checkpoints/NAME).")
        else:
            pool = st.radio("Features", ["both", "cls", "mean"], horizontal=True, key="probe_pool",
                            format_func={"both": "cls + mean of patches", "cls": "cls token",
                                         "mean": "mean of patch tokens"}.get)
            _chart(figures.probe_chart(rows, pool), "probe_vs_ratio.png", "probe")
            st.caption("The small-scale analogue of the paper's Figure 5. Fit on the 60k training images, scored "
                       "on the 10k test images (error bars: 95% bootstrap intervals where the cards have them); the "
                       "dashed lines are raw pixels scored by the same code.")
            reading(readings.ratio(series, pool))
        reading(readings.target(bundled), "Reconstruction target.")   # Table 1d, where two models differ so
        reading(readings.decoder(bundled), "Decoder depth.")            # Table 1a, where the decoder's depth differs
        # every bundled model that scored its encoder during training, in this series or not
        curves = [(cards.read(c).short_label, probe_history(c)) for c in bundled]
        curves = [(n, p) for n, p in curves if len(p) >= 2]
        if curves:
            st.subheader("Had training converged?")
            _chart(figures.probe_epochs_chart(curves), "probe_vs_epochs.png", "probe_epochs")
            gains = [(n, last_quarter_gain(p)) for n, p in curves if last_quarter_gain(p) is not None]
            reading(readings.convergence(bundled, gains))


{"test": sweep_section, "strategy": strategy_section, "pre": pretraining_section}[section]()
