"""Train: pretrain a small MAE from the browser and watch it learn."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from ui.caches import registry, RUNS_DIR
from ui.scenes import scene_to_url
from ui.session import is_operator, keep, read_only, visitor_id
from ui.text import error, guarded, plain, server_path_input
from ui.training import (BATCH, data_choices, estimate, EVAL_IMAGES, LR, MASK_RATIO, NORM_PIX, preset_choices, PRESETS,
                         when)

from mae_core.classroom import policy
from mae_core.evaluation import figures
from mae_core.evaluation.figures import training_strip
from mae_core.classroom.glossary import explain
from mae_core.data import DataError
from mae_core.datasets import DATASETS
from mae_core.train import TrainArgs, describe_device
from mae_core.classroom.worker import RunNotAllowed

# this file's settings, kept when the visitor looks at another page (ui.session.keep)
keep("operator_key", "tr_data", "tr_folder", "tr_preset", "tr_ratio", "tr_normpix", "tr_budget_kind", "tr_epochs",
     "tr_minutes", "tr_batch", "tr_lr", "tr_name")

PRESET_HELP = ("Parameters in millions. Micro and tiny: 28 px greyscale, 7×7 patches of 4 px; micro learns "
               "recognisable reconstructions in about 2 minutes on 2 CPU cores, tiny is about 10x slower per image "
               "and learns better features. Photo: 64 px RGB, 8×8 patches of 8 px.")


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s")


st.header("Pretrain a masked autoencoder", anchor=False)
scene_to_url()  # no scene on this page: a link to it is just the page
st.caption("A small MAE learns in minutes on a laptop CPU: start a run and watch blurry blobs turn into garments. "
           "Finished and stopped runs appear in every page's model picker under *Trained here*.")

READ_ONLY = read_only()
if READ_ONLY:
    st.info("This server is read-only (MAE_READ_ONLY): training is disabled. Runs trained earlier are still listed.")

ME = visitor_id()
if policy.current().operator_key:
    with st.sidebar.expander("Operator"):
        st.text_input("Operator key", type="password", key="operator_key",
                      help="The server's MAE_OPERATOR_KEY: lets you stop and delete any run")
OPERATOR = is_operator()

# ----------------------------------------------------------------------------- the form
if not READ_ONLY:
    with st.container(border=True):
        c1, c2, c3 = st.columns([1.4, 1, 1])
        data_opts = data_choices()
        data = c1.selectbox("Data", list(data_opts), format_func=data_opts.get, key="tr_data",
                            help="The 60,000 training images when Debian's dataset-fashion-mnist is installed")
        folder = ""
        if DATASETS[data].takes_path:
            folder = server_path_input(c1, "Folder (one subfolder per class)", "tr_folder", "Image folders") or ""
        preset = c2.selectbox("Model size", preset_choices(data), format_func=PRESETS.get, key="tr_preset",
                              help=PRESET_HELP)
        mask_ratio = c3.slider("Mask ratio", 0.1, 0.95, MASK_RATIO, 0.05, key="tr_ratio", help=explain("mask ratio"))
        c4, c5, c6 = st.columns(3)
        norm_pix = c4.toggle("Norm-pix target", NORM_PIX, key="tr_normpix",
                             help=explain("norm-pix", "reconstruction target") + " The paper's better representation; "
                                  "reconstructions are re-scaled to show them.")
        budget_kind = c5.radio("Budget", ["minutes", "epochs"], horizontal=True, key="tr_budget_kind",
                               help="Minutes: the learning-rate schedule runs on the clock and the run ends on time")
        if budget_kind == "epochs":
            epochs = c5.number_input("Epochs", 1, 400, 2, key="tr_epochs")
            minutes = None
        else:
            minutes = c5.number_input("Minutes", 0.5, float(policy.current().max_run_minutes), 2.0, 0.5, key="tr_minutes",
                                      help=f"At most {policy.current().max_run_minutes:g} on this server "
                                           "(MAE_MAX_RUN_MINUTES); a run on epochs is stopped and saved at that limit too")
            epochs = 400
        batch = c6.select_slider("Batch size", [32, 64, 128, 256, 512], value=BATCH, key="tr_batch")
        lr = c6.select_slider("Learning rate", [1e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3], value=LR, key="tr_lr",
                              format_func=lambda v: f"{v:g}")
        suggested = f"{preset.replace('mae_', '')}_r{int(round(mask_ratio * 100))}{'_normpix' if norm_pix else ''}"
        if st.session_state.get("tr_name_auto", True) or not st.session_state.get("tr_name"):
            st.session_state["tr_name"] = suggested  # follows the settings until the visitor types a name

        def _typed():
            st.session_state["tr_name_auto"] = st.session_state.get("tr_name", "") in ("", suggested)
        name = st.text_input("Run name", key="tr_name", on_change=_typed, max_chars=48,
                             help="Letters, digits, _ and -; a name already in use gets a number added")
        data_arg = f"{data}:{folder}" if DATASETS[data].takes_path else data
        est_col, start_col = st.columns([2, 1], vertical_alignment="center")  # room for "Start training" at 1024 px
        data_ok = not DATASETS[data].takes_path or bool(folder)   # a run on data that cannot even be timed would only fail
        if data_ok:
            try:
                est = estimate(data_arg, preset, mask_ratio, norm_pix, batch, box=est_col.empty())
                sec, steps_ep = est.seconds_per_epoch, est.steps_per_epoch
                where = describe_device(TrainArgs())
                if budget_kind == "epochs":
                    say = f"{epochs} epoch{'s' if epochs != 1 else ''} ≈ **{_fmt_s(sec * epochs)}** ({_fmt_s(sec)} per epoch)"
                else:
                    n_ep = minutes * 60 / sec
                    say = (f"in {_fmt_s(minutes * 60)}: about **{n_ep:,.1f} epochs** ({n_ep * steps_ep:,.0f} steps of "
                           f"{batch})" if n_ep >= 1 else f"in {_fmt_s(minutes * 60)}: about **{n_ep:.0%} of one epoch** "
                           f"({n_ep * steps_ep:,.0f} steps of {batch}; an epoch takes {_fmt_s(sec)})")
                est_col.caption(f"{say.capitalize()} on {where}, timed on this server {when(est.timed_at)} (other "
                                f"runs on the server slow it down).")
            except (DataError, ValueError, OSError) as e:
                data_ok = False
                with est_col:
                    error("", e)
        if start_col.button("Start training", type="primary", icon=":material/play_arrow:", width="stretch",
                            disabled=not data_ok):
            safe = registry().unique_name(name, RUNS_DIR)
            args = TrainArgs(data=data_arg, preset=preset, mask_ratio=float(mask_ratio), norm_pix_loss=bool(norm_pix),
                             epochs=int(epochs), time_budget=float(minutes) if minutes else None,
                             batch_size=int(batch), lr=float(lr), warmup_epochs=0.2 if minutes is None else 0.05,
                             out=str(RUNS_DIR / safe), progress=False, eval_images=EVAL_IMAGES, log_every=10)
            try:
                RUNS_DIR.mkdir(parents=True, exist_ok=True)
                job = registry().start(args, name=safe, owner=ME)
                st.session_state["tr_last_job"] = job.id
                st.toast(f"Started {safe}")
            except (RunNotAllowed, policy.NotAllowed, RuntimeError, ValueError, OSError) as e:
                error("", e)

# ----------------------------------------------------------------------------- the runs
jobs = registry().jobs(viewer=ME, operator=OPERATOR)
if not jobs:
    st.info("No run has been started on this server yet.")


def _draw(job_id: str):
    job = registry().get(job_id)
    if job is None:  # deleted meanwhile
        return
    s = job.snapshot()
    mine = registry().can_control(job, ME, OPERATOR)
    icon = {"queued": ":material/schedule:", "running": ":material/autorenew:", "starting": ":material/hourglass_top:",
            "stopped": ":material/pause_circle:", "finished": ":material/check_circle:", "failed": ":material/error:"}
    head = st.columns([2.2, 1.2, 1.2], vertical_alignment="center")   # "Resume" whole at 1024 px
    phase = f" ({s.phase}…)" if s.phase and s.phase != "training" else ""
    head[0].markdown(f"### {icon.get(s.status, '')} {plain(s.name)} — {s.status}{phase}"
                     + ("" if mine else " · *another visitor's run*"))
    if s.status == "queued":
        ahead = registry().queue_position(job_id) or 0
        st.info(f"Server busy: {ahead} run{'s' if ahead > 1 else ''} ahead of this one in the queue." if ahead else
                "Server busy: this run starts as soon as a running one ends.")
    budget = s.args.get("time_budget")
    if s.phase == "preparing data" and not s.step:
        st.progress(0.0, text="Preparing the data and the model…")
    elif budget:  # a budget in minutes is shown as time: the step count has no fixed end
        st.progress(min(1.0, s.elapsed / (60 * budget)),
                    text=f"{_fmt_s(s.elapsed)} of {_fmt_s(60 * budget)} · step {s.step:,} · epoch {s.epoch + 1} · "
                         f"{s.images_per_s:,.0f} img/s")
    else:
        st.progress(s.step / s.total_steps if s.total_steps else 0.0,
                    text=f"step {s.step:,} / {s.total_steps:,} · epoch {s.epoch} · {s.images_per_s:,.0f} img/s · "
                         f"elapsed {_fmt_s(s.elapsed)} · ETA {_fmt_s(s.eta)}")
    if mine and s.status in ("queued", "running", "starting") and s.phase != "saving":
        head[1].button("Stop", icon=":material/stop:", key=f"stop_{job_id}", width="stretch",
                       on_click=lambda: registry().stop(job_id, ME, OPERATOR),
                       help="Stops after the current step and saves a checkpoint")
    if (mine and s.status in ("stopped", "failed") and not job.pending and s.checkpoint and Path(s.checkpoint).exists()
            and not READ_ONLY):
        if head[1].button("Resume", icon=":material/play_arrow:", key=f"resume_{job_id}", width="stretch"):
            try:
                new = registry().resume(job_id, ME, OPERATOR)
                st.session_state["tr_last_job"] = new.id
                st.rerun()
            except (RunNotAllowed, policy.NotAllowed, RuntimeError, ValueError) as e:
                error("", e)
    if mine and not READ_ONLY and s.status in ("stopped", "failed", "finished") and not job.pending:
        if head[2].button("Delete", icon=":material/delete:", key=f"delete_{job_id}", width="stretch",
                          help="Remove this run and its files"):
            try:
                registry().delete(job_id, ME, OPERATOR)
                st.rerun()
            except (RunNotAllowed, policy.NotAllowed, OSError) as e:
                error("", e)
    for note in s.notes:
        st.warning(plain(note), icon=":material/warning:")
    if s.error:
        error("Training stopped: ", s.error + (f"\n\nThe last good checkpoint is kept: {policy.public_path(s.checkpoint)}"
                                               if s.checkpoint else ""))
    if s.recons and s.originals is not None:   # the whole width: seen from the back of a room
        st.image(training_strip(s.originals, s.masked, s.recons[-1], scale=4), width="stretch",
                 caption=f"Held-out images: original, masked (amber = hidden), reconstruction at step "
                         f"{s.recon_steps[-1]:,}")
    elif s.status in ("running", "starting"):
        st.caption("Reconstructions appear after the first few steps…")
    if len(s.recons) > 1:   # also the whole width: 8 images of 28 px in half a page were 39 px tall
        k = st.slider("Reconstructions over time", 0, len(s.recons) - 1, len(s.recons) - 1,
                      key=f"hist_{job_id}", format="snapshot %d")
        st.image(np.repeat(np.repeat(np.concatenate(list(s.recons[k]), axis=1), 4, 0), 4, 1), width="stretch",
                 caption=f"Reconstructions at step {s.recon_steps[k]:,}")
    if s.losses:
        pts = s.losses[::max(1, len(s.losses) // 400)] + s.losses[-1:]   # a light chart, redrawn each second
        steps, losses = zip(*pts)
        st.plotly_chart(figures.to_plotly(figures.loss_chart(steps, losses)), width="stretch", key=f"loss_{job_id}")
    if s.status in ("finished", "stopped") and s.checkpoint and not job.pending:
        st.success(f"Saved {plain(Path(s.checkpoint).name)}: pick it under *Trained here* on the other pages.")


for job in jobs[:6]:
    jid = job.id
    with st.container(border=True):
        if job.pending:
            # every 2 s: each redraw costs the server and the browser CPU that the training thread would use
            st.fragment(run_every=2.0)(guarded(_draw))(jid)
        else:
            guarded(_draw)(jid)
