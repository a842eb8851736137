"""What every page shares: the model picker, the image picker and the caches. UI only; the work is mae_core's."""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import secrets
import string
import time
from pathlib import Path
from typing import Optional

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent

from mae_core.checkpoints import CheckpointError, load_model  # noqa: E402
from mae_core.data import (FASHION_MNIST_CLASSES, PHOTO_ALL, PHOTO_HELDOUT, DataError, load_fashion_mnist_subset,  # noqa: E402
                           load_photo, open_image, prepare_image)
from mae_core.evaluation import cards  # noqa: E402
from mae_core.classroom import policy, uploads, zoo

RUNS_DIR = Path(os.environ.get("MAE_RUNS_DIR", ROOT / "runs"))


PAGES: dict = {}   # url path -> st.Page, filled by main.py each run: pages that link to others (the lesson) use it


@st.cache_resource
def registry():
    """One registry of training runs per server process: runs survive reloads; limits come from the server's
    policy. The in-app fine-tune borrows a slot from it, so it counts against the same limits."""
    from mae_core.classroom.worker import JobRegistry
    return JobRegistry()


def read_only() -> bool:
    """MAE_READ_ONLY, read at each run (the operator's setting; enforced again inside mae_core)."""
    return policy.current().read_only


# --------------------------------------------------------------------------------------------------
# Text from visitors and files is shown as text; who this visitor is
# --------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")


# Streamlit's Markdown (GitHub's autolink extension) makes links of bare "www." words, "scheme://" addresses and
# e-mail addresses even when every Markdown character is escaped. An invisible WORD JOINER after "www" (before its
# dot), after the ":" of "://" and after "@" breaks each of those patterns; the text reads and wraps the same.
_AUTOLINK = re.compile(r"(?i)(www)(?=\.)|(:)(?=//)|(@)")
_JOINER = "\u2060"


def plain(text) -> str:
    """``text`` shown literally by Markdown: no link, image, HTML, emphasis or formula can come from a file name, a
    path or an error message that a visitor or a file chose, not even the links Markdown makes of bare addresses."""
    text = _AUTOLINK.sub(lambda m: m.group(0) + _JOINER, str(text))
    return _MD_SPECIAL.sub(r"\\\1", text)


def reading(r, title: str = "") -> None:
    """A ``mae_core.evaluation.readings.Reading``: its headline in plain words first (after ``title`` in bold, if given), the
    intervals, protocols and exact figures under a Details expander."""
    if not r:
        return
    if r.headline:
        st.markdown((f"**{title}** " if title else "") + "**" + plain(r.headline) + "**")
    if r.details:
        with st.expander("Details", icon=":material/info:"):
            st.markdown(plain(r.details))


def error(prefix: str, detail=None) -> None:
    """An error box: our own ``prefix`` (Markdown allowed) and a ``detail`` that came from elsewhere, as text, with
    server paths cut on a shared server (``policy.public_text``)."""
    st.error(prefix if detail is None else f"{prefix}{plain(policy.public_text(detail))}")


_PATHS = re.compile(r"(?:/[^\s/:'\"()]+)+/([^\s/:'\"()]*)")


def failure_text(e: BaseException) -> str:
    """What a visitor is told about an unexpected error: its kind and first line, with server paths cut to their
    last part (the full traceback goes to the server's log)."""
    first = (str(e).strip().splitlines() or [""])[0][:300]
    first = _PATHS.sub(lambda m: m.group(1) or "/", first)
    kind = {MemoryError: "out of memory", RecursionError: "input nested too deeply",
            PermissionError: "permission denied"}.get(type(e), type(e).__name__)
    return f"{kind}: {first}" if first else kind


def guarded(fn):
    """Run a page (or a fragment) so that an error it did not expect is shown as one clear message, not a
    traceback; what the visitor made (model, image, mask: all in session state) is kept."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the page's boundary; st.stop/st.rerun are not Exceptions
            logging.getLogger("mae_explorer").exception("page error")
            st.error(f"Something went wrong here ({plain(failure_text(e))}). Your model, image and mask are kept; "
                     f"change a setting or reload the page to go on.", icon=":material/error:")
            return None
    return run


def server_path_input(where, label: str, key: str, what: str = "Paths on this server") -> Optional[str]:
    """A text box for a file or folder on the server, confined to the folders the operator allows
    (``policy.confine``). Returns the resolved path, "" while nothing is typed, or None when the path is refused
    or such paths are turned off (the reason is shown in ``where``)."""
    pol = policy.current()
    if not pol.allowed_dirs:
        where.info(f"{what} are turned off on this server (the operator can allow folders with MAE_ALLOWED_DIRS).")
        return None
    typed = where.text_input(label, key=key, help=f"Inside: {policy.allowed_text(pol)}")
    if not typed.strip():
        return ""
    try:
        return str(policy.confine(typed, pol))
    except policy.NotAllowed as e:
        where.error(plain(e))
        return None


# Presenter mode: larger type, developer chrome hidden, less padding, so a lesson's controls fit a projector.
_PRESENTER_CSS = """<style>
html { font-size: 19px; }
[data-testid="stToolbarActions"], [data-testid="stMainMenu"], [data-testid="stAppDeployButton"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding-top: 0.6rem !important; padding-bottom: 2rem !important; }
[data-testid="stMainBlockContainer"] h2 { padding-top: 0.4rem; }
[data-testid="stHeader"] { height: 2.6rem; min-height: 0; background: transparent; pointer-events: none; }
[data-testid="stHeader"] [data-testid="stExpandSidebarButton"] { pointer-events: auto; }   /* the sidebar reopens */
[data-testid="stSidebar"][data-collapsed="true"] ~ div [data-testid="stMainBlockContainer"] {
  padding-top: 2.6rem !important; }   /* ...and its button does not sit on the page's heading */
.stPlotlyChart { font-size: 1rem; }
</style>"""


# Every visit: on a narrow screen (a 1024 px projector with the sidebar open) Streamlit's wide padding leaves the
# page 560 px for its columns, and labels were cut ("Rando", "Re…", "Hidden pat…"); a smaller margin gives them room.
_BASE_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 3.6rem; }   /* was 6rem: the painter starts on a laptop's screen */
[data-testid="stMain"] { overflow-anchor: none; }   /* a rerun must not make the browser scroll (a map clicked at
                                                       1024x768 was scrolled 616 px out of view) */
@media (max-width: 1366px) {
  [data-testid="stMainBlockContainer"] { padding-left: 1.5rem !important; padding-right: 1.5rem !important; }
}
</style>"""


def presenter_mode() -> bool:
    """The sidebar's Presenter toggle, also set by ``?present=1`` in the URL (a teacher's bookmark). The URL keeps
    the parameter while it is on, across pages, so a reload or a shared link opens in presenter mode."""
    ss = st.session_state
    if "presenter" not in ss:
        ss.presenter = st.query_params.get("present", "").lower() in ("1", "true", "on", "yes")

    def sync():
        if ss.presenter:
            st.query_params["present"] = "1"
        else:
            st.query_params.pop("present", None)
    st.sidebar.toggle("Presenter mode", key="presenter", on_change=sync,
                      help="Large type and painter, no developer menu: for a projector. Bookmark the page with "
                           "?present=1 to open it this way.")
    st.html(_BASE_CSS)
    if ss.presenter:
        if st.query_params.get("present") != "1":
            st.query_params["present"] = "1"  # page switches drop query parameters: put it back
        st.html(_PRESENTER_CSS)
    return bool(ss.presenter)


def presenting() -> bool:
    return bool(st.session_state.get("presenter"))


# The settings a visitor expects to find again after a look at another page: Streamlit forgets a widget's value at
# the end of any run that does not draw it (every page but its own, and the pages without the sidebar's pickers),
# but keeps a value the script writes back itself (its "interrupt the widget clean-up" recipe). Values only:
# buttons, uploads, chart selections and the painter (its mask lives in the page's own state) cannot be written.
KEPT_SETTINGS = (
    # sidebar pickers (the Train page draws neither; the Embeddings page has no image picker)
    "model_source", "bundled_choice", "run_choice", "official_name", "model_path",
    "img_source_1", "img_source_3", "img_class", "img_index", "img_photo",
    # Reconstruct (the attention view's block and head depend on the model's depth: they start afresh)
    "mask_strategy", "mask_ratio", "mask_seed", "att_on", "att_part", "att_rollout", "cmp_on", "cmp_model",
    # Mask ratios
    "ratio_section", "sw_strategies", "sw_images", "sw_seeds", "sw_bands", "sw_classical", "strip_ratios",
    "strip_strategy", "strat_ratio", "strat_seed", "pre_ratio", "pre_seed", "pre_heat", "probe_pool",
    # Embeddings
    "emb_source", "emb_folder", "emb_n", "emb_pool", "emb_mask", "emb_method", "emb_perplexity", "emb_seed",
    "emb_hover", "emb_tool", "emb_point", "emb_k", "emb_compare",
    # Train (the operator's key too: typed once per visit, not once per look at the page)
    "operator_key", "tr_data", "tr_folder", "tr_preset", "tr_ratio", "tr_normpix", "tr_budget_kind", "tr_epochs",
    "tr_minutes", "tr_batch", "tr_lr", "tr_name",
    # Lesson (its step, guess and reveals live in the page's own state)
    "lesson_patch", "lesson_numbers", "lesson_stage", "lesson_ratio", "lesson_class", "lesson_pick_ratio",
    "lesson_pick_ft", "lesson_best_map",
)


def keep_settings_across_pages() -> None:
    """Write each kept setting back before the page runs, so leaving its page does not reset it (a visitor who
    set 1,000 points on Embeddings and looked at Reconstruct came back to 2,000 and a fresh t-SNE). The model is
    kept once the visitor has picked one; until then each page opens on its own default (Reconstruct the pixel
    model, Embeddings the one with the strongest representation), not on the one another page chose."""
    ss = st.session_state
    for key in KEPT_SETTINGS:
        if key in ss:
            ss[key] = ss[key]
    if not model_chosen():
        for key in ("model_source", "bundled_choice"):
            ss.pop(key, None)


VISITOR_COOKIE = "mae_visitor"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _visitor_cookie() -> Optional[str]:
    """The visitor cookie this browser sent when the session opened (None without one, or outside a browser)."""
    try:
        value = st.context.cookies.get(VISITOR_COOKIE)
    except Exception:  # noqa: BLE001 - no request behind this session (a test harness)
        return None
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def visitor_id() -> str:
    """Who this visitor is: one token per browser, kept in a cookie (``remember_visitor``), so every tab and every
    reload of one browser is one visitor, and its runs and upload quota count once. A link never carries it: a
    shared address hands over a scene, not control of a run."""
    ss = st.session_state
    tok = ss.get("owner_token")
    if tok is None:
        ss["owner_token"] = tok = _visitor_cookie() or secrets.token_urlsafe(18)
    return tok


def remember_visitor() -> None:
    """Give this browser the visitor cookie when it came without one. The browser sends its cookies when a session
    opens, so the server reads them then (``st.context.cookies``); a script sets it, readable by this site only."""
    tok = visitor_id()
    st.query_params.pop("tk", None)   # an old address's token: it names no one any more
    if _visitor_cookie() == tok:
        return
    with st.sidebar:
        st.html(f"<script>document.cookie = '{VISITOR_COOKIE}={tok}; path=/; max-age=2592000; SameSite=Strict';"
                "</script>", unsafe_allow_javascript=True)


def is_operator() -> bool:
    return policy.current().is_operator(st.session_state.get("operator_key"))


@st.cache_resource(show_spinner=False)
def _upload_janitor():
    """Clean old uploads at start-up, then at most hourly (each page run asks)."""
    return {"last": 0.0}


def clean_uploads_now_and_then() -> None:
    state = _upload_janitor()
    if time.time() - state["last"] > 3600:
        state["last"] = time.time()
        try:
            uploads.clean_old()
        except OSError:
            pass


@st.cache_resource(show_spinner=False)
def warm_up():
    """Once per server: load what the first Embeddings visit would otherwise wait for (openTSNE, scikit-learn,
    the compiled t-SNE kernels), in a background thread, while the first visitor looks at another page. Returns
    the thread."""
    import threading

    # pandas first, here: the thread's openTSNE pulls it in through scikit-learn while the page's plotly imports it
    # too, and two threads importing pandas at once can meet it half-initialised ("partially initialized module
    # 'pandas' has no attribute 'Series'", seen on a fresh server's first Mask ratios visit)
    import pandas  # noqa: F401
    from mae_core import tsne
    imported = threading.Event()

    def work():
        try:   # first what the Embeddings page's projections import, then the kernels
            import sklearn.decomposition  # noqa: F401
            if tsne.available():
                import openTSNE.affinity  # noqa: F401
                import openTSNE.initialization  # noqa: F401
        except ImportError:
            pass
        finally:
            imported.set()
        tsne.warm_up()

    t = threading.Thread(target=work, name="mae-warm-up", daemon=True)
    t.imported = imported
    t.start()
    return t


def wait_for_warm_up(timeout: float = 30.0) -> None:
    """Let the warm-up thread finish its imports before a page imports the same modules (scikit-learn, openTSNE):
    a module initialised by two threads at once can be seen half-built. The page wants them anyway, so waiting
    costs nothing it would not pay itself; the kernels' compile that follows is not waited for (PCA needs none)."""
    warm_up().imported.wait(timeout)

# --------------------------------------------------------------------------------------------------
# Caches
# --------------------------------------------------------------------------------------------------

@st.cache_resource(max_entries=6, show_spinner="Loading model…")
def _cached_model(path: str, mtime: float, overrides_json: str):
    model, card = load_model(path, limits=policy.current().limits, **json.loads(overrides_json))
    for p in model.parameters():  # shared by every session: frozen, eval mode, never mutated
        p.requires_grad_(False)
    return model, card


def get_model(path: str, overrides: Optional[dict] = None):
    p = Path(path)
    mtime = p.stat().st_mtime if p.exists() else 0.0
    return _cached_model(str(p), mtime, json.dumps(overrides or {}, sort_keys=True))


@st.cache_resource(show_spinner=False)
def fmnist_subset():
    return load_fashion_mnist_subset()


@st.cache_resource(show_spinner=False)
def photo(name: str):
    return load_photo(name)


# --------------------------------------------------------------------------------------------------
# Model picker
# --------------------------------------------------------------------------------------------------

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


def _chosen():
    """The visitor picked a model: pages stop choosing one for them (see the Embeddings page's default)."""
    st.session_state["model_chosen"] = True


def model_chosen() -> bool:
    return bool(st.session_state.get("model_chosen"))


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
        runs = zoo.user_runs(RUNS_DIR)
        if not runs:
            st.caption(f"No runs in {plain(policy.public_path(RUNS_DIR))} yet.")
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
    for label, path in zoo.user_runs(RUNS_DIR).items():
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
    st.table({"": list(rows), "value": [str(v) for v in rows.values()]})


# --------------------------------------------------------------------------------------------------
# Image picker
# --------------------------------------------------------------------------------------------------

def _set_image(key: str, tensor, label: str, note: str = ""):
    st.session_state["image"] = {"key": key, "tensor": tensor, "label": label, "note": note}


def image_picker(config):
    """Choose an image for the model; returns (tensor (C, H, W) in [0, 1], label). A bad upload leaves the
    previous image in place."""
    size, ch = config.img_size, config.in_chans
    sources = ["Fashion-MNIST", "Photos", "Upload"]
    default = 0 if ch == 1 else 1
    with st.sidebar:
        st.subheader("Image")
        source = st.radio("Image source", sources, index=default, key=f"img_source_{ch}", horizontal=True,
                          label_visibility="collapsed")
        if source == "Fashion-MNIST":
            ds = fmnist_subset()
            cls = st.selectbox("Class", ["any"] + list(FASHION_MNIST_CLASSES), key="img_class")
            pool = list(range(len(ds))) if cls == "any" else \
                [i for i, y in enumerate(ds.labels.tolist()) if y == FASHION_MNIST_CLASSES.index(cls)]
            if st.button("Random image", icon=":material/casino:", key="img_random"):
                import random
                st.session_state["img_index"] = random.randrange(len(pool))
            st.session_state["img_index"] = min(st.session_state.get("img_index", 0), len(pool) - 1)
            idx = st.number_input("Image number", 0, len(pool) - 1, key="img_index",
                                  help="Counted within the chosen class" if cls != "any" else None)
            i = pool[int(idx)]
            t = prepare_image(_subset_pil(ds, i), size, ch)
            name = FASHION_MNIST_CLASSES[int(ds.labels[i])]
            # one number, the one the visitor typed, and what it counts
            label = (f"Fashion-MNIST {name} #{int(idx)} of {len(pool)}" if cls != "any" else
                     f"Fashion-MNIST #{int(idx)} of {len(pool)} ({name})")
            _set_image(f"fmnist:{i}:{size}:{ch}", t, label)
        elif source == "Photos":
            name = st.selectbox("Photo", PHOTO_ALL, key="img_photo",
                                format_func=lambda n: f"{n} (held out from training)" if n in PHOTO_HELDOUT else n,
                                help="The bundled photo model trained on crops of the others")
            _set_image(f"photo:{name}:{size}:{ch}", prepare_image(photo(name), size, ch), f"photo: {name}")
        else:
            up = st.file_uploader("Image file", type=None, key="img_upload", max_upload_size=50,
                                  help="PNG, JPEG, GIF, TIFF, WebP, BMP… resized and centre-cropped to the model's size")
            if up is not None:
                key = f"upload:{hashlib.sha256(up.getbuffer()).hexdigest()[:16]}:{size}:{ch}"
                cur = st.session_state.get("image")
                if not cur or cur["key"] != key:
                    try:
                        pil = open_image(up)  # its error messages name the file
                        grey = pil.mode in ("1", "L", "LA", "I", "I;16", "F")
                        note = f"Resized from {pil.size[0]}×{pil.size[1]} to {size}×{size}. "
                        if grey and ch == 3:
                            note += "Greyscale: its grey level fills all three channels of this RGB model."
                        elif not grey and ch == 1:
                            note += "Colour: converted to luminance for this greyscale model."
                        _set_image(key, prepare_image(pil, size, ch), f"upload: {up.name}", note)
                    except DataError as e:
                        error("", e)
                        if cur:
                            st.caption("Still showing the previous image.")
        cur = st.session_state.get("image")
        if cur is None or not cur["key"].endswith(f":{size}:{ch}"):
            # the model changed size or channels: bring the image along
            _set_image(f"photo:astronaut:{size}:{ch}" if ch == 3 else f"fmnist:0:{size}:{ch}",
                       prepare_image(photo("astronaut"), size, ch) if ch == 3 else
                       prepare_image(_subset_pil(fmnist_subset(), 0), size, ch),
                       "photo: astronaut" if ch == 3 else "Fashion-MNIST #0")
            cur = st.session_state["image"]
        if cur.get("note") and source == "Upload":
            st.caption(cur["note"])
    return cur["tensor"], cur["label"], cur["key"]


def _subset_pil(ds, i: int):
    from mae_core.data import array_to_pil
    return array_to_pil((ds.images[i, 0].numpy() * 255).round().astype("uint8"))


# --------------------------------------------------------------------------------------------------
# Lesson scenes: a page's state in the URL (mae_core.classroom.scenes), prepared scenes in the sidebar
# --------------------------------------------------------------------------------------------------

def model_ids() -> dict:
    """Model ids a link can name -> path: bundled names, and ``run:NAME`` for this server's runs."""
    ids = {Path(p).stem: p for p in zoo.bundled_choices().values()}
    ids.update({"run:" + Path(p).stem: p for p in zoo.user_runs(RUNS_DIR).values()})
    return ids


def model_id(path) -> Optional[str]:
    return next((i for i, p in model_ids().items() if p == str(path)), None)


def image_id(image_key: str) -> Optional[tuple]:
    kind, _, rest = image_key.partition(":")
    val = rest.split(":")[0]
    return ("fm", int(val)) if kind == "fmnist" else ("ph", val) if kind == "photo" else None


def _label_of(path: str) -> tuple:
    """(picker source, label) that selects ``path`` in the sidebar's model picker."""
    for label, p in zoo.bundled_choices().items():
        if p == path:
            return "Bundled", label
    for label, p in zoo.user_runs(RUNS_DIR).items():
        if p == path:
            return "Trained here", label
    return None, None


def apply_scene(params) -> list:
    """Put a scene's state into the session (before any widget is drawn); returns the notices for bad values."""
    from mae_core.classroom import scenes
    ids = model_ids()
    named = {params.get("m"), params.get("cmp")}
    sizes = {i: (get_model(p)[0].config.num_patches if i in named else 0) for i, p in ids.items()}
    sc = scenes.parse(params, sizes, photos=PHOTO_ALL, n_fmnist=len(fmnist_subset()))
    ss = st.session_state
    if sc.model:
        ss["model_chosen"] = True
        source, label = _label_of(ids[sc.model])
        ss["model_source"] = source
        ss["bundled_choice" if source == "Bundled" else "run_choice"] = label
    if sc.image:  # the image picker keeps one source per channel count: set both, whichever model is in use
        if sc.image[0] == "fm":
            ss["img_source_1"] = ss["img_source_3"] = "Fashion-MNIST"
            ss["img_class"], ss["img_index"] = "any", sc.image[1]
        else:
            ss["img_source_1"] = ss["img_source_3"] = "Photos"
            ss["img_photo"] = sc.image[1]
    for attr, key in (("strategy", "mask_strategy"), ("ratio", "mask_ratio"), ("seed", "mask_seed"),
                      ("point", "emb_point"), ("section", "ratio_section")):
        if getattr(sc, attr) is not None:
            ss[key] = getattr(sc, attr)
    if sc.ratio is not None:
        ss["strat_ratio"] = max(0.05, sc.ratio)  # the strategies slider starts at 0.05
    if sc.mask is not None:
        ss["scene_mask"] = sc.mask
    elif sc.strategy or sc.ratio is not None or sc.seed is not None:
        ss["scene_generate"] = True
    if sc.compare:
        ss["cmp_on"], ss["scene_compare"] = True, ids[sc.compare]
    return sc.notices


def _scene_signature(params) -> tuple:
    from mae_core.classroom.scenes import PARAMS
    return tuple(sorted((k, params.get(k)) for k in PARAMS if params.get(k) is not None))


def scene_from_url() -> None:
    """On a first visit, or when the URL's scene parameters changed (a bookmark, a shared link), apply them."""
    ss = st.session_state
    sig = _scene_signature(st.query_params)
    if sig and ss.get("scene_sig") != sig:
        ss["scene_sig"] = sig
        ss["scene_notices"] = apply_scene(dict(sig))
    for n in ss.pop("scene_notices", []):
        st.warning(plain(n) + " The page's default is used instead.", icon=":material/link_off:")


def scene_to_url(**state) -> None:
    """Write this page's state into the URL (replacing the scene parameters, keeping the others), so the address bar
    is always a link to what is on screen."""
    from mae_core.classroom.scenes import PARAMS, to_params
    new = to_params(**state)
    q = st.query_params
    for k in PARAMS:
        if k not in new and k in q:
            del q[k]
    for k, v in new.items():
        if q.get(k) != v:
            q[k] = v
    st.session_state["scene_sig"] = _scene_signature(new)


def scenes_menu(pages: dict) -> None:
    """The sidebar's prepared scenes (mae_core/assets/scenes.json): picking one opens its page in that state."""
    from mae_core.classroom.scenes import SceneError, load_scenes
    ss = st.session_state
    try:
        scenes = load_scenes()
    except SceneError as e:
        st.sidebar.caption(f"Lesson scenes unavailable: {plain(e)}")
        return

    def pick():
        ss["pending_scene"] = ss.get("scene_choice")
        ss["scene_choice"] = None
    st.sidebar.selectbox("Lesson scenes", [s["title"] for s in scenes], index=None, key="scene_choice",
                         placeholder="Open a prepared scene…", on_change=pick,
                         help="Prepared moments for a lesson. Every page also keeps its state in the address bar: "
                              "bookmark or share it to come back to exactly this scene.")
    title = ss.pop("pending_scene", None)
    if title:
        scene = next(s for s in scenes if s["title"] == title)
        ss["scene_sig"] = _scene_signature(scene["params"])
        ss["scene_notices"] = apply_scene(scene["params"])
        if scene["note"]:
            ss["scene_note"] = scene["note"]
        keep = {k: v for k, v in st.query_params.items() if k == "present"}
        st.switch_page(pages[scene["page"]], query_params={**keep, **scene["params"]})
    note = ss.pop("scene_note", None)
    if note:
        st.info(plain(note), icon=":material/school:")
