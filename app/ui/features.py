"""The Embeddings page's steps, cached for the whole server (arrays: ``cache_resource``): a labelled set, its encoder
features, their 2-D projection, and the scores of the features and of raw pixels. The map and the scores are read
from the results store where they can be keyed by the weights (shipped for the bundled models' defaults); every
computation holds a slot of the server's pool of heavy work."""
from __future__ import annotations

import json

import numpy as np
import streamlit as st

from mae_core.data import SUBSET_PATH, labelled_dataset
from mae_core.embed import encode, raw_pixels, thumbnails
from mae_core.evaluation.precompute import embedding_map, embedding_settings, neighbour_table
from mae_core.metrics import scores

from .caches import get_model
from .heavy import heavy, stored
from .session import wait_for_warm_up

METHOD_NAMES = {"tsne": "t-SNE", "pca": "PCA", "umap": "UMAP"}


@st.cache_resource(show_spinner=False, max_entries=8)
def dataset(source: str, folder: str, size: int, channels: int, n: int):
    return labelled_dataset(source, size, channels, limit=n, seed=0, folder=folder)


def _stored(overrides: str, source: str, folder: str):
    """Whether these results can be keyed by the weights (stored for the server, shipped for the bundled models'
    defaults): a labelled set the server names, the model as its file says."""
    return source != "folder" and not folder and overrides == "{}"


@st.cache_resource(show_spinner=False, max_entries=16)
def features(path: str, overrides: str, source: str, folder: str, n: int, pool: str, mask_ratio: float):
    m, _ = get_model(path, json.loads(overrides))
    ds = dataset(source, folder, m.config.img_size, m.config.in_chans, n)
    bar = st.empty()
    with heavy("encoding these pictures", bar):
        bar.progress(0.0, text="Encoding images…")
        f = encode(m, ds.images, pool, mask_ratio=mask_ratio, seed=0,
                   progress=lambda p: bar.progress(p, text=f"Encoding images… {p:.0%}"))
    bar.empty()
    return f


@st.cache_resource(show_spinner=False, max_entries=16)
def projection(path: str, overrides: str, source: str, folder: str, n: int, pool: str, mask_ratio: float,
               method: str, perplexity: float, seed: int):
    """(xy, seconds the projection took): shipped or stored for the server where it can be keyed, else computed."""
    name = METHOD_NAMES[method]
    bar = st.empty()

    def compute():
        f = features(path, overrides, source, folder, n, pool, mask_ratio)
        wait_for_warm_up()  # project() imports scikit-learn / openTSNE, which a fresh server's warm-up may be loading
        bar.progress(0.0, text=f"Projecting {len(f)} points with {name}…")
        return embedding_map(f, method, perplexity, seed,
                             progress=lambda p: bar.progress(p, text=f"Projecting {len(f)} points with {name}… {p:.0%}"))
    if _stored(overrides, source, folder):
        out = stored(path, "embed-map", embedding_settings(source, n, pool, mask_ratio, method, perplexity, seed),
                     compute, f"the {name} map", bar, "drawing the same map")
    else:
        with heavy(f"the {name} map", bar):
            out = compute()
    bar.empty()
    return np.asarray(out["xy"], dtype=np.float32), float(out["seconds"])


@st.cache_resource(show_spinner=False, max_entries=16)
def quality(path: str, overrides: str, source: str, folder: str, n: int, pool: str, mask_ratio: float):
    def compute():
        f = features(path, overrides, source, folder, n, pool, mask_ratio)
        c = get_model(path, json.loads(overrides))[0].config
        return scores(f, dataset(source, folder, c.img_size, c.in_chans, n).labels.numpy())
    if _stored(overrides, source, folder):
        return stored(path, "embed-scores", embedding_settings(source, n, pool, mask_ratio), compute,
                      "scoring these features")
    with heavy("scoring these features"):
        return compute()


@st.cache_resource(show_spinner=False, max_entries=16)
def neighbours(path: str, overrides: str, source: str, folder: str, n: int, pool: str, mask_ratio: float):
    """(n, 16) indices of each point's nearest others in the encoder's space: stored where the results can be keyed
    (no encoding for the bundled models' defaults), else from the features."""
    def compute():
        return neighbour_table(features(path, overrides, source, folder, n, pool, mask_ratio))
    if _stored(overrides, source, folder):
        table = stored(path, "embed-neighbours", embedding_settings(source, n, pool, mask_ratio), compute,
                       "finding neighbours")
    else:
        table = compute()
    return np.asarray(table, dtype=np.int64)


@st.cache_resource(show_spinner=False, max_entries=8)
def raw_quality(source: str, folder: str, size: int, channels: int, n: int):
    def compute():
        ds = dataset(source, folder, size, channels, n)
        return scores(raw_pixels(ds.images), ds.labels.numpy())
    if source == "fashion-mnist-subset" and (size, channels) == (28, 1):   # keyed by the bundled pictures
        return stored(SUBSET_PATH, "embed-raw-scores", embedding_settings(source, n, "raw", 0.0), compute,
                      "scoring raw pixels")
    with heavy("scoring raw pixels"):
        return compute()


@st.cache_resource(show_spinner=False, max_entries=4)
def thumbs(source: str, folder: str, size: int, channels: int, n: int):
    return thumbnails(dataset(source, folder, size, channels, n).images, 48)
