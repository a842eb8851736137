"""The Embeddings page's steps, cached for the whole server (arrays: ``cache_resource``): a labelled set, its encoder
features, their 2-D projection, and the scores of the features and of raw pixels."""
from __future__ import annotations

import json
import time

import streamlit as st

from mae_core.data import labelled_dataset
from mae_core.embed import encode, project, raw_pixels, thumbnails
from mae_core.metrics import scores

from .caches import get_model
from .session import wait_for_warm_up

METHOD_NAMES = {"tsne": "t-SNE", "pca": "PCA", "umap": "UMAP"}


@st.cache_resource(show_spinner=False, max_entries=8)
def dataset(source: str, folder: str, size: int, channels: int, n: int):
    return labelled_dataset(source, size, channels, limit=n, seed=0, folder=folder)


@st.cache_resource(show_spinner=False, max_entries=16)
def features(path: str, overrides: str, source: str, folder: str, n: int, pool: str, mask_ratio: float):
    m, _ = get_model(path, json.loads(overrides))
    ds = dataset(source, folder, m.config.img_size, m.config.in_chans, n)
    bar = st.progress(0.0, text="Encoding images…")
    f = encode(m, ds.images, pool, mask_ratio=mask_ratio, seed=0,
               progress=lambda p: bar.progress(p, text=f"Encoding images… {p:.0%}"))
    bar.empty()
    return f


@st.cache_resource(show_spinner=False, max_entries=16)
def projection(path: str, overrides: str, source: str, folder: str, n: int, pool: str, mask_ratio: float,
               method: str, perplexity: float, seed: int):
    f = features(path, overrides, source, folder, n, pool, mask_ratio)
    wait_for_warm_up()  # project() imports scikit-learn / openTSNE, which a fresh server's warm-up may be loading
    name = METHOD_NAMES[method]
    bar = st.progress(0.0, text=f"Projecting {len(f)} points with {name}…")
    t = time.time()
    xy = project(f, method, seed=seed, perplexity=perplexity,
                 progress=lambda p: bar.progress(p, text=f"Projecting {len(f)} points with {name}… {p:.0%}"))
    bar.empty()
    return xy, time.time() - t


@st.cache_resource(show_spinner=False, max_entries=16)
def quality(path: str, overrides: str, source: str, folder: str, n: int, pool: str, mask_ratio: float):
    f = features(path, overrides, source, folder, n, pool, mask_ratio)
    c = get_model(path, json.loads(overrides))[0].config
    return scores(f, dataset(source, folder, c.img_size, c.in_chans, n).labels.numpy())


@st.cache_resource(show_spinner=False, max_entries=8)
def raw_quality(source: str, folder: str, size: int, channels: int, n: int):
    ds = dataset(source, folder, size, channels, n)
    return scores(raw_pixels(ds.images), ds.labels.numpy())


@st.cache_resource(show_spinner=False, max_entries=4)
def thumbs(source: str, folder: str, size: int, channels: int, n: int):
    return thumbnails(dataset(source, folder, size, channels, n).images, 48)
