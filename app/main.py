"""MAE Explorer: `streamlit run app/main.py`. Streamlit puts this folder on sys.path (so pages import
``common``); ``mae_core`` is installed (pip install -e .)."""
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="MAE Explorer", page_icon="🧩", layout="wide")

from ui.scenes import scene_from_url, scenes_menu
from ui.session import (clean_uploads_now_and_then, keep_settings_across_pages, PAGES, presenter_mode, remember_visitor,
                        warm_up)
from ui.text import guarded
from mae_core.classroom import policy  # noqa: E402

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
    "embeddings": st.Page(str(HERE / "views" / "embeddings.py"), title="Embeddings", icon=":material/scatter_plot:"),
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
