"""Lesson scenes: a page's state in the address bar (``mae_core.classroom.scenes``), and the prepared scenes in the
sidebar."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import streamlit as st

from mae_core.classroom import zoo
from mae_core.classroom.scenes import PARAMS, SceneError, load_scenes, parse as scene_parse, to_params
from mae_core.data import PHOTO_ALL

from . import caches, charts
from .caches import fmnist_subset, get_model
from .text import plain

def model_ids() -> dict:
    """Model ids a link can name -> path: bundled names, and ``run:NAME`` for this server's runs."""
    ids = {Path(p).stem: p for p in zoo.bundled_choices().values()}
    ids.update({"run:" + Path(p).stem: p for p in zoo.user_runs(caches.RUNS_DIR).values()})
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
    for label, p in zoo.user_runs(caches.RUNS_DIR).items():
        if p == path:
            return "Trained here", label
    return None, None


def apply_scene(params) -> list:
    """Put a scene's state into the session (before any widget is drawn); returns the notices for bad values."""
    ids = model_ids()
    named = {params.get("m"), params.get("cmp")}
    sizes = {i: (get_model(p)[0].config.num_patches if i in named else 0) for i, p in ids.items()}
    sc = scene_parse(params, sizes, photos=PHOTO_ALL, n_fmnist=len(fmnist_subset()))
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
        ss.pop("scene_note_shown", None)   # a new scene: its note not shown yet
        if scene["note"]:
            ss["scene_note"] = scene["note"]
        keep = {k: v for k, v in st.query_params.items() if k == "present"}
        st.switch_page(pages[scene["page"]], query_params={**keep, **scene["params"]})
    # the scene's note stays until the visitor acts: a rerun that only turns the charts interactive keeps it
    redrawn = ss.pop(charts.REDRAWN, False)
    if ss.get("scene_note_shown") and not redrawn:
        ss.pop("scene_note", None)
        ss.pop("scene_note_shown")
    note = ss.get("scene_note")
    if note:
        ss["scene_note_shown"] = True
        st.info(plain(note), icon=":material/school:")
