"""MAE Explorer: `streamlit run app/main.py`. Streamlit puts this folder on sys.path (so pages import ``ui``);
``mae_core`` is installed (pip install -e .).

This file is read twice over: `streamlit run` imports it once to find the server (``app``, an ``st.App`` whose
start warms the server up before the first visitor: ui/server.py), then runs it as the script of every visit."""
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

HERE = Path(__file__).resolve().parent


def visit() -> None:
    """One run of the app for a visitor: settings, the page navigation, the page."""
    st.set_page_config(page_title="MAE Explorer", page_icon="🧩", layout="wide")
    from ui.server import wait_for_imports
    wait_for_imports()

    from ui.scenes import scene_from_url, scenes_menu
    from ui.session import (clean_uploads_now_and_then, keep_settings_across_pages, PAGES, presenter_mode,
                            remember_visitor, warm_up)
    from ui.text import guarded
    from mae_core.classroom import policy

    if policy.current().shared:  # a class's server: no tracebacks, no developer menu
        st.set_option("client.showErrorDetails", "none")
        st.set_option("client.toolbarMode", "viewer")
    clean_uploads_now_and_then()
    presenter_mode()
    remember_visitor()   # one visitor per browser (a cookie); links carry no identity
    warm_up()

    pages = {
        "": st.Page(str(HERE / "views" / "reconstruct.py"), title="Reconstruct", icon=":material/auto_fix_high:",
                    default=True),
        "lesson": st.Page(str(HERE / "views" / "lesson.py"), title="Lesson", icon=":material/school:"),
        "ratios": st.Page(str(HERE / "views" / "ratios.py"), title="Mask ratios", icon=":material/tune:"),
        "embeddings": st.Page(str(HERE / "views" / "embeddings.py"), title="Embeddings",
                              icon=":material/scatter_plot:"),
        "train": st.Page(str(HERE / "views" / "train.py"), title="Train", icon=":material/model_training:"),
    }
    PAGES.update(pages)
    nav = st.navigation(list(pages.values()))
    if nav.url_path != "embeddings":
        st.session_state.pop("emb_best_note", None)   # the Embeddings page's first-visit note lasts that visit only
    guarded(scenes_menu)(pages)
    guarded(scene_from_url)()
    keep_settings_across_pages()
    guarded(nav.run)()


if get_script_run_ctx(suppress_warning=True) is None:   # imported by `streamlit run` for its server, not run for a visit
    from ui import server
    app = st.App(__file__, lifespan=server.lifespan, routes=server.routes())
else:
    visit()
