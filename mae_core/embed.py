"""Encoder features and their 2-D projections (t-SNE, PCA, UMAP). The scores of features (kNN, linear probe)
are in ``metrics``; model cards and their measurement in ``evaluation.cards``.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from .data import data_url, to_pil
from .masking import random_mask
from .tsne import tsne_exact, TSNE_SCHEDULE
from . import tsne

POOLS = ("cls", "mean", "both")
METHODS = ("tsne", "pca", "umap")


@torch.no_grad()
def encode(model, images01: torch.Tensor, pool: str = "cls", mask_ratio: float = 0.0, seed: int = 0,
           batch_size: Optional[int] = None, progress: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """Encoder features of images in [0, 1] (N, C, H, W) -> (N, D) float32. With ``mask_ratio`` > 0 the
    encoder sees only a random share of patches (fixed by ``seed``), to probe how robust the features are.
    Batches of 64 on the CPU (they stay in cache: 2,000 Fashion-MNIST images in 4.4 s against 5.6 s at 512 and
    7.3 s in one batch, on 2 cores), 512 on a GPU."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    model.eval()
    device = next(model.parameters()).device
    batch_size = batch_size or (512 if device.type == "cuda" else 64)
    g = torch.Generator().manual_seed(seed)
    out = []
    n = len(images01)
    for i in range(0, n, batch_size):
        x = model.normalize(images01[i:i + batch_size].to(device))
        mask = random_mask(len(x), model.config.grid_size, mask_ratio, seed=g).to(device) if mask_ratio > 0 else None
        out.append(model.encode(x, mask=mask, pool=pool).float().cpu())
        if progress is not None:
            progress(min(1.0, (i + len(x)) / n))
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.embed_dim), np.float32)


TSNE_ENGINE_NAMES = {"exact": "exact forces", "openTSNE": "openTSNE Barnes-Hut", "sklearn": "scikit-learn"}


def tsne_backend(n: int) -> str:
    """exact (numba, up to tsne.EXACT_MAX points), openTSNE (Barnes-Hut) or sklearn: the fastest one installed
    for ``n`` points (TSNE_ENGINE_NAMES has their display names)."""
    if n <= tsne.EXACT_MAX and tsne.available():
        return "exact"
    try:
        import openTSNE  # noqa: F401
        return "openTSNE"
    except ImportError:
        return "sklearn"


# The t-SNE schedule (perplexity-based affinities, PCA initialisation). openTSNE's defaults are 250 iterations of
# early exaggeration (12) then 500 plain ones, at theta 0.5 throughout. Early exaggeration only has to pull the
# clusters apart: its KL has levelled off by iteration 125, and coarse forces (theta 1.0 for Barnes-Hut) do that
# as well, so it gets 125 iterations. The final 500 stay as they are: that is where the fine structure (and the
# KL) is made. Up to tsne.EXACT_MAX points the forces are exact (mae_core.tsne) and theta does not apply.
# bench/tsne.py measures the saving and checks the final KL against the defaults' and scikit-learn's.


def tsne_opentsne(x: np.ndarray, perplexity: float = 30.0, seed: int = 0, n_jobs: int = 2,
                  schedule: Optional[dict] = None, progress: Optional[Callable[[float], None]] = None):
    """openTSNE with TSNE_SCHEDULE. Returns (embedding (N, 2) float32, KL divergence)."""
    from openTSNE import TSNEEmbedding, affinity, initialization
    sch = {**TSNE_SCHEDULE, **(schedule or {})}
    # exact neighbours up to 10,000 points: a brute-force search is faster than building an Annoy index there
    aff = affinity.PerplexityBasedNN(x, perplexity=perplexity, method="exact" if len(x) <= 10_000 else "annoy",
                                     n_jobs=n_jobs, random_state=seed, verbose=False)
    init = initialization.pca(x, random_state=seed)
    total = sch["early_iter"] + sch["iter"]

    def tick(offset):  # openTSNE callbacks reporting the share of all iterations done (None: no callbacks)
        if progress is None:
            return None

        def cb(iteration, error, embedding):
            progress(min(1.0, (offset + iteration) / total))
            return False
        return [cb]
    emb = TSNEEmbedding(init, aff, negative_gradient_method="bh", theta=sch["early_theta"], n_jobs=n_jobs,
                        random_state=seed, verbose=False)
    if sch["early_iter"]:
        emb = emb.optimize(n_iter=sch["early_iter"], exaggeration=sch["exaggeration"], momentum=0.5,
                           theta=sch["early_theta"], callbacks=tick(0), callbacks_every_iters=25)
    emb = emb.optimize(n_iter=sch["iter"], exaggeration=None, momentum=0.8, theta=sch["theta"],
                       callbacks=tick(sch["early_iter"]), callbacks_every_iters=25)
    return np.asarray(emb, dtype=np.float32), float(emb.kl_divergence)


def project(features: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float = 30.0,
            backend: Optional[str] = None, n_jobs: int = 2,
            progress: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """(N, D) -> (N, 2). t-SNE runs on the top 50 principal components (standard practice, and faster) with
    TSNE_SCHEDULE: exact forces (mae_core.tsne, numba) up to tsne.EXACT_MAX points, openTSNE's Barnes-Hut above
    that, scikit-learn's TSNE where neither is installed; ``backend`` forces one of "exact", "openTSNE",
    "sklearn". ``progress`` gets the share of t-SNE iterations done (not with scikit-learn). Returns float32."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"need at least 3 feature vectors of shape (N, D), got {x.shape}")
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ValueError("UMAP is not installed (pip install umap-learn); use t-SNE or PCA") from None
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)
    if method != "tsne":
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    perplexity = float(min(perplexity, (len(x) - 1) / 3))
    if x.shape[1] > 50 and len(x) > 50:
        from sklearn.decomposition import PCA
        x = PCA(n_components=50, random_state=seed).fit_transform(x).astype(np.float32)
    backend = backend or tsne_backend(len(x))
    if backend == "exact":
        return tsne_exact(x, perplexity, seed, progress=progress, n_jobs=n_jobs)[0]
    if backend == "openTSNE":
        return tsne_opentsne(x, perplexity, seed, n_jobs, progress=progress)[0]
    from sklearn.manifold import TSNE
    if backend != "sklearn":
        raise ValueError(f"t-SNE backend must be exact, openTSNE or sklearn, got {backend!r}")
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca",
                learning_rate="auto", n_jobs=n_jobs).fit_transform(x).astype(np.float32)


def raw_pixels(images01: torch.Tensor) -> np.ndarray:
    return images01.reshape(len(images01), -1).numpy().astype(np.float32)


def thumbnails(images01: torch.Tensor, size: int = 56) -> list:
    """PNG data URLs of small thumbnails (for hover tooltips and galleries)."""
    return [data_url(to_pil(x, size)) for x in images01]
