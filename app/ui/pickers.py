"""The sidebar's model picker: bundled, trained here, official, uploaded, or a path on the server; the models a
comparison may use, and the card's table. The image picker is ``images``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import streamlit as st

from mae_core.checkpoints import CheckpointError
from mae_core.classroom import policy, uploads, zoo
from mae_core.data import DataError
from mae_core.evaluation import cards

from . import caches
from .caches import get_model
from .session import _chosen, keep, read_only, visitor_id
from .tables import table
from .text import error, failure_text, plain, server_path_input

keep("model_source", "bundled_choice", "run_choice", "official_name", "model_path")

def _official_source() -> Optional[str]:
    names = list(zoo.OFFICIAL_VISUALIZE)
    name = st.selectbox("Official checkpoint", names, format_func=lambda n: zoo.OFFICIAL_VISUALIZE[n][0],
                        key="official_name")
    if zoo.is_downloaded(name):
        return str(zoo.official_path(name))
    mb = zoo.OFFICIAL_VISUALIZE[name][1]
    st.caption(f"Not downloaded yet (about {mb} MB, cached in {plain(policy.public_path(zoo.official_dir()))}).")
    if read_only():
        st.info("This server is read-only: downloads are disabled.")
        return None
    if st.button(f"Download ({mb} MB)", key="official_download"):
        bar = st.progress(0.0, text="Connecting…")

        def progress(done, total):
            frac = done / total if total else 0.0
            bar.progress(min(1.0, frac), text=f"{done / 1e6:.0f} / {(total or 0) / 1e6:.0f} MB")
        try:
            zoo.download_official(name, progress)
        except CheckpointError as e:
            bar.empty()
            st.error(str(e))
            return None
        bar.empty()
        return str(zoo.official_path(name))
    return None


def _candidate_from_widgets() -> Optional[str]:
    sources = ["Bundled", "Trained here", "Official MAE", "Upload", "Path on this server"]
    source = st.radio("Source", sources, key="model_source", horizontal=True, label_visibility="collapsed",
                      on_change=_chosen)
    if source == "Bundled":
        choices = zoo.bundled_choices()
        if not choices:
            st.warning("No bundled checkpoints found in checkpoints/.")
            return None
        label = st.selectbox("Bundled model", list(choices), key="bundled_choice", on_change=_chosen)
        return choices[label]
    if source == "Trained here":
        runs = zoo.user_runs(caches.RUNS_DIR)
        if not runs:
            st.caption(f"No runs in {plain(policy.public_path(caches.RUNS_DIR))} yet.")
            return None
        return runs[st.selectbox("Run", list(runs), key="run_choice", on_change=_chosen)]
    if source == "Official MAE":
        return _official_source()
    if source == "Upload":
        if read_only():
            st.info("This server is read-only: uploading weights is turned off.")
            return None
        files = st.file_uploader("Checkpoint files", type=["safetensors", "json", "pth", "pt", "bin"],
                                 accept_multiple_files=True, key="ckpt_upload",
                                 max_upload_size=max(1, uploads.quota_bytes() // 2**20),
                                 help="Our format: the .safetensors file and its .json card together. "
                                      "Official MAE: one .pth file.")
        if not files:
            return None
        blobs = [(f.name, f.getbuffer()) for f in files]
        failed = st.session_state.setdefault("failed_uploads", {})
        why = failed.get(uploads.content_key(blobs))
        if why:   # it failed to load before and was not kept: say so again, store nothing
            error("", why)
            return None
        try:
            return str(uploads.save_checkpoint_upload(blobs, visitor_id()))
        except (CheckpointError, uploads.UploadError, policy.NotAllowed, OSError) as e:
            error("", e)
            return None
    return server_path_input(st, "File or Hugging Face folder", "model_path") or None


def _override_inputs(message: str) -> dict:
    """When a file cannot say its head counts or target, ask for them."""
    out = {}
    with st.container(border=True):
        st.caption("This file does not say everything; fill in what it cannot tell:")
        if "num_heads" in message:
            out["num_heads"] = st.number_input("Encoder heads", 1, 64, 12, key="ov_heads")
            out["decoder_num_heads"] = st.number_input("Decoder heads", 1, 64, 16, key="ov_dec_heads")
        if "norm_pix_loss" in message:
            out["norm_pix_loss"] = st.checkbox("Trained with the norm-pix target", key="ov_normpix")
    return out


def model_picker():
    """Sidebar model choice. Returns (model, card, path) of the last model that loaded; a file that fails
    shows its error and the previous model stays in use."""
    with st.sidebar:
        st.subheader("Model")
        candidate = _candidate_from_widgets()
        if candidate:
            overrides = st.session_state.get("overrides", {}).get(candidate, {})
            try:
                get_model(candidate, overrides)
                st.session_state["active_model"] = candidate
                seen = st.session_state.setdefault("loaded_models", [])
                if candidate not in seen:  # offered again as the second model of a comparison
                    seen.append(candidate)
                    del seen[:-8]
                st.session_state["active_overrides"] = overrides
            except Exception as e:  # noqa: BLE001 - loading a file is a boundary: say why, keep the previous model
                msg = str(e) if isinstance(e, (CheckpointError, DataError, policy.NotAllowed)) else \
                    f"this file could not be loaded ({failure_text(e)})"
                error("", msg)
                asks = "num_heads" in msg or "norm_pix_loss" in msg
                if not asks and uploads.discard(Path(candidate)):   # an upload that does not load is not kept
                    failed = st.session_state.setdefault("failed_uploads", {})
                    failed[Path(candidate).parent.name] = msg
                    while len(failed) > 16:
                        failed.pop(next(iter(failed)))
                if asks:
                    ov = _override_inputs(msg)
                    if st.button("Load with these settings", key="ov_apply"):
                        st.session_state.setdefault("overrides", {})[candidate] = ov
                        st.rerun()
                if st.session_state.get("active_model"):
                    st.caption("Still using the previous model.")
        path = st.session_state.get("active_model")
        if path is None:
            choices = zoo.bundled_choices()
            if not choices:
                st.error("No model is available: the bundled checkpoints are missing.")
                st.stop()
            path = st.session_state["active_model"] = next(iter(choices.values()))
        model, card = get_model(path, st.session_state.get("active_overrides"))
        for w in card.get("warnings", []):
            st.warning(plain(w), icon=":material/warning:")
        c = model.config
        st.caption(f"**{plain(zoo.model_label(card) if card.get('data') else Path(path).name)}** — "
                   f"{c.img_size}px, {c.grid_size}×{c.grid_size} patches of {c.patch_size}px, "
                   f"{'RGB' if c.in_chans == 3 else 'greyscale'}, {model.num_params() / 1e6:.1f}M parameters")
    return model, card, path


def comparison_choices(current: str, config) -> tuple[dict, list]:
    """Models that can be compared with the one in use on the same image and mask: the bundled ones, this server's
    runs and every model this visitor loaded (from any source the picker offers). Returns (label -> path of those
    with the same image size, patch size and channels, [why each other one cannot be compared])."""
    found = {}
    for label, path in zoo.bundled_choices().items():
        found.setdefault(path, label)
    for label, path in zoo.user_runs(caches.RUNS_DIR).items():
        found.setdefault(path, "Trained here: " + label)
    for path in st.session_state.get("loaded_models", []):
        found.setdefault(path, Path(path).name)
    ok, not_ok = {}, []
    for path, label in found.items():
        if path == current:
            continue
        try:
            other, _ = get_model(path)
        except Exception as e:  # noqa: BLE001 - a file that no longer loads is skipped with its reason
            not_ok.append(f"{label}: {failure_text(e)}")
            continue
        o, c = other.config, config
        if (o.img_size, o.patch_size, o.in_chans) != (c.img_size, c.patch_size, c.in_chans):
            not_ok.append(f"{label}: {o.img_size} px, {o.grid_size}×{o.grid_size} patches, "
                          f"{'RGB' if o.in_chans == 3 else 'greyscale'} (this model: {c.img_size} px, "
                          f"{c.grid_size}×{c.grid_size}, {'RGB' if c.in_chans == 3 else 'greyscale'})")
        else:
            ok[label] = path
    return ok, not_ok


def model_card_view(card: dict):
    """The facts of a model card worth reading, in a compact table (read through the card schema)."""
    c = cards.read(card)
    rows = {}
    if c.data_name:
        rows["Data"] = c.data_name
    if c.mask_ratio is not None:
        rows["Pretraining mask ratio"] = c.mask_ratio
    if c.mask_strategy != "random":
        rows["Pretraining masks"] = c.mask_strategy
    if c.epochs:
        rows["Epochs"] = c.epochs
    if c.wall_time_s is not None:
        rows["Training time (s)"] = c.wall_time_s
    rows["Format"] = c.format
    if c.extra.get("source"):
        rows["File"] = Path(c.extra["source"]).name
    if c.norm_pix_loss is not None:
        rows["Target"] = "norm-pix (per-patch normalised)" if c.norm_pix_loss else "pixels"
    if c.arch_changes:
        rows["Changed from the preset"] = c.arch_text()
    if c.heldout_mse_pixels is not None:
        matched = c.metrics.get("heldout_eval_mse_matched")
        if c.norm_pix_loss:  # its "pixel" error already uses the true patch statistics: it is a shape MSE
            rows["Held-out pixel MSE @75%"] = "n/a (a norm-pix model predicts shape only)"
            rows["Held-out shape MSE @75% (comparable)"] = f"{c.heldout_mse_pixels:.4f}"
        else:
            rows["Held-out pixel MSE @75%"] = f"{c.heldout_mse_pixels:.4f}"
            if matched is not None:
                rows["Held-out shape MSE @75% (comparable)"] = f"{matched:.4f}"
    for pool in ("cls", "mean", "both"):
        if c.probe(pool) is not None:
            rows[f"Linear probe / kNN ({pool})"] = f"{c.probe(pool):.1%} / {c.knn(pool):.1%}"
    raw = c.raw_pixel_baseline
    if raw:
        rows["Raw pixels: probe / kNN"] = f"{raw['linear_probe']:.1%} / {raw['knn']:.1%}"
    if c.command:
        rows["Command"] = c.command
    table({"": list(rows), "value": [str(v) for v in rows.values()]}, header=False)


