"""One visitor's session: presenter mode, who the visitor is (a cookie), the settings each page keeps across
pages, and the server's one-off chores (old uploads, the warm-up of what the Embeddings page imports)."""
from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Optional

import streamlit as st

from mae_core.classroom import policy, uploads

PAGES: dict = {}   # url path -> st.Page, filled by main.py each run: pages that link to others (the lesson) use it


def read_only() -> bool:
    """MAE_READ_ONLY, read at each run (the operator's setting; enforced again inside mae_core)."""
    return policy.current().read_only


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
/* ui.charts: a chart's picture says it can be explored; once pointed at, the interactive chart's element comes
   under it and the picture lies over that until plotly has drawn, then gives way (the box keeps the chart's height;
   plotly measures its own place); the component that waits for the pointer takes no room */
[class*="st-key-chartbox_"] { position: relative; }
[class*="st-key-chartbox_"]:has(.stPlotlyChart, [data-testid="stSkeleton"]) > [data-testid="stElementContainer"]:has(
  [data-testid="stImage"]) { position: absolute; top: 0; left: 0; right: 0; z-index: 3; background: #fff; }
[class*="st-key-chartbox_"]:has(.js-plotly-plot) > [data-testid="stElementContainer"]:has([data-testid="stImage"]) {
  display: none; }
[class*="st-key-chartbox_"]:has([data-testid="stImage"]):not(:has(.js-plotly-plot))::after {
  content: "Point at the chart to explore it"; position: absolute; top: 2px; right: 6px; z-index: 4;
  font-size: 0.75rem; color: #6b7280; pointer-events: none; }
[class*="st-key-chartbox_"][data-touched]:has([data-testid="stImage"]):not(:has(.js-plotly-plot)) { cursor: progress; }
[class*="st-key-chartbox_"][data-touched]:has([data-testid="stImage"]):not(:has(.js-plotly-plot))::after {
  content: "Loading the interactive chart…"; }
[class*="st-key-touch_"] { display: none; }
/* ui.tables: a small table of text, as Streamlit draws st.table */
.mae-table-wrap { overflow-x: auto; margin-bottom: 0.5rem; }
.mae-table { border-collapse: collapse; width: auto; min-width: min(100%, 36rem); font-size: 0.875rem;
  line-height: 1.4; }   /* as wide as its text (a 2-column table is not spread over 1,400 px), wrapping when narrow */
.mae-table th, .mae-table td { border-bottom: 1px solid rgba(49, 51, 63, 0.1); padding: 0.35rem 0.75rem;
  text-align: left; vertical-align: top; font-weight: 400; }
.mae-table .num { text-align: right; font-variant-numeric: tabular-nums; }
.mae-table thead th { color: rgba(49, 51, 63, 0.78); }   /* 6:1 on white: readable on a projector */
.mae-table tbody th { color: rgba(49, 51, 63, 0.85); }
.mae-nb { white-space: nowrap; }
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
# Each page registers its own (``keep`` at its top); the sidebar's pickers register theirs.
KEPT_SETTINGS: set = set()


def keep(*keys: str) -> None:
    """Register widget keys whose values outlive a look at another page (a page calls it once, at its top)."""
    KEPT_SETTINGS.update(keys)


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


def _chosen():
    """The visitor picked a model: pages stop choosing one for them (see the Embeddings page's default)."""
    st.session_state["model_chosen"] = True


def model_chosen() -> bool:
    return bool(st.session_state.get("model_chosen"))
