"""Exact t-SNE for the sizes the app projects (up to EXACT_MAX points), compiled with numba.

Barnes-Hut (openTSNE) approximates the repulsive forces with a quad tree rebuilt every iteration; at a few
thousand points that tree costs more than simply summing all N^2 pairs in one fused, vectorised loop: on the
2-core dev machine 7 ms per iteration for 5,000 points against 25 ms for openTSNE's Barnes-Hut at theta 0.5, and
the forces are exact, so the final KL divergence is lower too. Affinities (perplexity-based, exact nearest
neighbours) and the PCA initialisation are openTSNE's, and the optimiser is openTSNE's gradient descent (gains,
momentum, learning rate N / exaggeration, step norm clipped at 5, recentred each step), so the maps match what
openTSNE would make.

The gradient, without the constant factor 4 (openTSNE's convention; its learning rate absorbs it):
    dC/dy_i = sum_j p_ij w_ij (y_i - y_j) - (1/Z) sum_j w_ij^2 (y_i - y_j),   w_ij = 1 / (1 + |y_i - y_j|^2),
    Z = sum_{k != l} w_kl.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

import numpy as np

# Above this the O(N^2) sum stops paying against Barnes-Hut's O(N log N): on 2 cores exact was 2.0x faster at
# 5,000 points, 1.55x at 10,000 and 1.08x at 20,000 (bench/tsne.py, results in bench/results/tsne*.json).
EXACT_MAX = 15_000
# The schedule every t-SNE engine here runs: early exaggeration at a coarse theta, then the main phase.
TSNE_SCHEDULE = {"early_iter": 125, "early_theta": 1.0, "exaggeration": 12.0, "iter": 500, "theta": 0.5}
MAX_STEP_NORM = 5.0  # openTSNE's default: no point moves further than this in one step

# numba's workqueue threading layer (its fallback where neither TBB nor OpenMP is found) aborts the whole process
# when two Python threads launch parallel kernels at once, and Streamlit runs each session in its own thread: so
# every call into the kernels holds this lock (tests/test_tsne.py pins that layer and checks).
_KERNEL_LOCK = threading.Lock()
_kernels = None


def available() -> bool:
    """True when numba (the compiler) and openTSNE (affinities, initialisation) are installed."""
    try:
        import numba  # noqa: F401
        import openTSNE  # noqa: F401
    except ImportError:
        return False
    return True


def _compile():
    """Define the numba kernels on first use (numba caches the machine code on disk between processes)."""
    global _kernels
    if _kernels is not None:
        return _kernels
    from numba import njit, prange

    @njit(parallel=True, fastmath=True, cache=True)
    def gradient(y, indptr, indices, pdata, exaggeration, out):
        """Writes dC/dy into ``out`` (N, 2); returns Z. P is CSR (indptr, indices, pdata), symmetric, sums to 1."""
        n = y.shape[0]
        yx = y[:, 0].copy()
        yy = y[:, 1].copy()
        zrow = np.zeros(n)
        one = np.float32(1.0)
        for i in prange(n):  # repulsion: every pair, in one fused pass per row
            xi, yi = yx[i], yy[i]
            z, fx, fy = np.float32(0.0), np.float32(0.0), np.float32(0.0)
            for j in range(n):
                dx, dy = xi - yx[j], yi - yy[j]
                w = one / (one + dx * dx + dy * dy)
                z += w
                w2 = w * w
                fx += w2 * dx
                fy += w2 * dy
            zrow[i] = z - 1.0  # minus the j == i term (w_ii = 1)
            out[i, 0] = fx
            out[i, 1] = fy
        zsum = zrow.sum()
        for i in prange(n):  # attraction: the neighbours in P only
            xi, yi = yx[i], yy[i]
            ax, ay = np.float32(0.0), np.float32(0.0)
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                dx, dy = xi - yx[j], yi - yy[j]
                w = pdata[k] * exaggeration / (one + dx * dx + dy * dy)
                ax += w * dx
                ay += w * dy
            out[i, 0] = ax - out[i, 0] / zsum
            out[i, 1] = ay - out[i, 1] / zsum
        return zsum

    @njit(parallel=True, cache=True)
    def kl_divergence(y, indptr, indices, pdata):
        """KL(P || Q) over all pairs, in float64."""
        n = y.shape[0]
        zrow = np.zeros(n)
        prow = np.zeros(n)
        for i in prange(n):
            xi, yi = np.float64(y[i, 0]), np.float64(y[i, 1])
            z = 0.0
            for j in range(n):
                dx, dy = xi - y[j, 0], yi - y[j, 1]
                z += 1.0 / (1.0 + dx * dx + dy * dy)
            zrow[i] = z - 1.0
            s = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                p = np.float64(pdata[k])
                if p > 0:
                    dx, dy = xi - y[j, 0], yi - y[j, 1]
                    s += p * (np.log(p) + np.log(1.0 + dx * dx + dy * dy))
            prow[i] = s
        return prow.sum() + np.log(zrow.sum())

    _kernels = (gradient, kl_divergence)
    return _kernels


def warm_up() -> None:
    """Import openTSNE and load the compiled kernels (from numba's disk cache, or compile them) with a tiny
    problem, so that the first real t-SNE a visitor asks for does not pay for it (about 1.5 s on 2 cores)."""
    if not available():
        return
    rng = np.random.default_rng(0)
    tsne_exact(rng.normal(size=(60, 8)).astype(np.float32), perplexity=5,
               schedule={"early_iter": 2, "iter": 2})


def _csr(P):
    P = P.tocsr()
    return (P.indptr.astype(np.int64), P.indices.astype(np.int64), P.data.astype(np.float32))


def kl_divergence(P, y: np.ndarray) -> float:
    """Exact KL(P || Q) of the embedding ``y`` (N, 2) for the affinities ``P`` (scipy sparse, symmetric, sum 1)."""
    _, kl = _compile()
    with _KERNEL_LOCK:
        return float(kl(np.ascontiguousarray(y, dtype=np.float32), *_csr(P)))


def gradient(P, y: np.ndarray, exaggeration: float = 1.0) -> tuple[np.ndarray, float]:
    """(dC/dy (N, 2) float32, Z) for the embedding ``y`` and affinities ``P``: see the module's docstring."""
    grad, _ = _compile()
    out = np.empty((len(y), 2), np.float32)
    with _KERNEL_LOCK:
        z = grad(np.ascontiguousarray(y, dtype=np.float32), *_csr(P), np.float32(exaggeration), out)
    return out, float(z)


def optimize(P, y: np.ndarray, n_iter: int, exaggeration: float = 1.0, momentum: float = 0.8,
             learning_rate: Optional[float] = None, state: Optional[dict] = None,
             callback: Optional[Callable[[int], None]] = None, callback_every: int = 25) -> np.ndarray:
    """``n_iter`` steps of openTSNE's gradient descent (delta-bar-delta gains, momentum); returns the new
    embedding, centred at 0 after each step. ``state`` carries the gains and the last update from one phase to
    the next, as one openTSNE embedding does. ``callback(i)`` is called every ``callback_every`` iterations."""
    grad, _ = _compile()
    y = np.array(y, dtype=np.float32, order="C")
    lr = np.float32(learning_rate if learning_rate is not None else len(y) / exaggeration)
    state = {} if state is None else state
    gains = state.setdefault("gains", np.ones_like(y))
    update = state.setdefault("update", np.zeros_like(y))
    g = np.empty_like(y)
    csr = _csr(P)
    ex = np.float32(exaggeration)
    for it in range(1, n_iter + 1):
        with _KERNEL_LOCK:
            grad(y, *csr, ex, g)
        flipped = np.sign(g) != np.sign(update)
        gains[...] = np.where(flipped, gains + 0.2, gains * 0.8 + 0.01)
        update[...] = momentum * update - lr * gains * g
        norms = np.sqrt((update * update).sum(1, keepdims=True))
        np.divide(update * MAX_STEP_NORM, norms, out=update, where=norms > MAX_STEP_NORM)
        y += update
        y -= y.mean(0)
        if callback is not None and it % callback_every == 0:
            callback(it)
    return y


def tsne_exact(x: np.ndarray, perplexity: float = 30.0, seed: int = 0, schedule: Optional[dict] = None,
               progress: Optional[Callable[[float], None]] = None, n_jobs: int = 2) -> tuple[np.ndarray, float]:
    """t-SNE of ``x`` (N, D) with exact forces: openTSNE's affinities and PCA initialisation, then
    ``schedule["early_iter"]`` iterations with early exaggeration and ``schedule["iter"]`` plain ones.
    Returns (embedding (N, 2) float32, exact KL divergence)."""
    from openTSNE import affinity, initialization

    sch = {**TSNE_SCHEDULE, **(schedule or {})}
    P = affinity.PerplexityBasedNN(x, perplexity=perplexity, method="exact", n_jobs=n_jobs, random_state=seed,
                                   verbose=False).P
    y = initialization.pca(x, random_state=seed)
    total = sch["early_iter"] + sch["iter"]

    def report(offset):
        return None if progress is None else (lambda it: progress(min(1.0, (offset + it) / total)))
    state: dict = {}
    if sch["early_iter"]:
        y = optimize(P, y, sch["early_iter"], exaggeration=sch["exaggeration"], momentum=0.5, state=state,
                     callback=report(0))
    y = optimize(P, y, sch["iter"], exaggeration=1.0, momentum=0.8, state=state, callback=report(sch["early_iter"]))
    return y, kl_divergence(P, y)
