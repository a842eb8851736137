"""The exact t-SNE engine (mae_core.tsne): its gradient and KL against a dense reference, its optimiser against
openTSNE's, the engine choice, and calls from several threads at once (as Streamlit sessions make them)."""
import threading

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("numba")
pytest.importorskip("openTSNE")

from mae_core import tsne  # noqa: E402
from mae_core.embed import TSNE_SCHEDULE, tsne_backend, project, tsne_opentsne  # noqa: E402
from test_embed import _blobs as blobs  # noqa: E402


def _blobs(n, seed=5):
    """Six overlapping classes in 30-d: enough overlap for a non-trivial KL (test_embed's generator)."""
    return blobs(n=n, d=30, classes=6, spread=1.5, seed=seed)


def _random_problem(n=150, seed=0):
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=0.08, random_state=seed, format="csr")
    P = A + A.T
    P.setdiag(0)
    P.eliminate_zeros()
    P = P / P.sum()
    return P.tocsr(), (rng.normal(size=(n, 2)) * 3).astype(np.float32)


def _dense_reference(P, y, exaggeration):
    """The t-SNE gradient (openTSNE's convention, no factor 4) and KL from dense float64 matrices."""
    y = y.astype(np.float64)
    diff = y[:, None, :] - y[None, :, :]
    w = 1.0 / (1.0 + (diff ** 2).sum(-1))
    np.fill_diagonal(w, 0.0)
    Z = w.sum()
    Pd = P.toarray()
    grad = ((exaggeration * Pd * w)[..., None] * diff).sum(1) - ((w * w)[..., None] * diff).sum(1) / Z
    nz = Pd > 0
    kl = float((Pd[nz] * np.log(Pd[nz] / (w[nz] / Z))).sum())
    return grad, Z, kl


@pytest.mark.parametrize("exaggeration", [1.0, 12.0])
def test_gradient_and_kl_match_a_dense_reference(exaggeration):
    P, y = _random_problem()
    grad, Z = tsne.gradient(P, y, exaggeration)
    ref_grad, ref_Z, ref_kl = _dense_reference(P, y, exaggeration)
    assert Z == pytest.approx(ref_Z, rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-4 * np.abs(ref_grad).max())
    assert tsne.kl_divergence(P, y) == pytest.approx(ref_kl, rel=1e-9)


def test_optimiser_takes_openTSNE_s_steps():
    """Same affinities, start, schedule and step rule (gains and momentum carried from the exaggerated phase to
    the plain one): the exact engine and openTSNE's Barnes-Hut at theta 0 (exact too) take the same steps. The
    start is spread to unit scale: at the PCA initialisation's 1e-4 scale openTSNE's quad tree is no longer exact."""
    from openTSNE import TSNEEmbedding, affinity, initialization
    x, _ = _blobs(300)
    aff = affinity.PerplexityBasedNN(x, perplexity=30, method="exact", n_jobs=1, random_state=0, verbose=False)
    init = initialization.pca(x, random_state=0) * 1e4
    state = {}
    ours = tsne.optimize(aff.P, init, 10, exaggeration=12.0, momentum=0.5, state=state)
    ours = tsne.optimize(aff.P, ours, 10, exaggeration=1.0, momentum=0.8, state=state)
    theirs = TSNEEmbedding(init, aff, negative_gradient_method="bh", theta=0.0, n_jobs=1, random_state=0,
                           verbose=False).optimize(n_iter=10, exaggeration=12, momentum=0.5)
    theirs = np.asarray(theirs.optimize(n_iter=10, momentum=0.8))
    moved = np.abs(theirs - init).max()
    assert moved > 0.5
    # a reset of the momentum between the phases would be off by 25-40% of the movement
    np.testing.assert_allclose(ours, theirs, atol=1e-5 * moved)


@pytest.mark.slow
def test_exact_tsne_reports_progress_and_matches_barnes_hut_kl():
    x, _ = _blobs(800)
    seen = []
    emb, kl = tsne.tsne_exact(x, 30.0, seed=0, progress=seen.append)
    assert emb.shape == (800, 2) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len(seen) == (TSNE_SCHEDULE["early_iter"] + TSNE_SCHEDULE["iter"]) // 25
    emb2, kl2 = tsne.tsne_exact(x, 30.0, seed=0)
    np.testing.assert_array_equal(emb, emb2)  # deterministic for a seed
    # the same schedule with Barnes-Hut forces ends at about the same KL (both measured exactly): t-SNE is not
    # convex, so either may end a little lower (exact 0.974 against Barnes-Hut 0.968 on one CPU, the other way round
    # on another); a wrong exact gradient would end far higher
    from openTSNE import affinity
    P = affinity.PerplexityBasedNN(x, perplexity=30, method="exact", n_jobs=1, random_state=0, verbose=False).P
    emb_bh, _ = tsne_opentsne(x, 30.0, seed=0, n_jobs=1)
    assert kl <= 1.01 * tsne.kl_divergence(P, emb_bh)
    assert kl == pytest.approx(tsne.kl_divergence(P, emb))


def test_project_uses_the_exact_engine_up_to_its_limit():
    assert tsne_backend(tsne.EXACT_MAX) == "exact"
    assert tsne_backend(tsne.EXACT_MAX + 1) == "openTSNE"
    x, _ = _blobs(200)
    a = project(x, "tsne", seed=0)
    b = project(x, "tsne", seed=0, backend="exact")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="backend must be exact, openTSNE or sklearn"):
        project(x, "tsne", backend="fast")
    assert project(x[:5], "tsne").shape == (5, 2)  # tiny inputs: perplexity is clipped to what they allow


def test_calls_from_several_threads_at_once_give_each_its_own_result():
    xs = [_blobs(400, seed=s)[0] for s in (1, 2, 3)]
    alone = [tsne.tsne_exact(x, 30.0, seed=0, schedule={"early_iter": 25, "iter": 50})[0] for x in xs]
    got, errors = [None] * 3, []

    def run(i):
        try:
            got[i] = tsne.tsne_exact(xs[i], 30.0, seed=0, schedule={"early_iter": 25, "iter": 50})[0]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for a, b in zip(alone, got):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_threads_are_safe_even_on_numba_s_workqueue_layer():
    """numba's workqueue layer (what it falls back to without TBB or OpenMP) aborts the whole process when two
    threads launch parallel kernels at once; the kernel lock must prevent that. Run in a child process pinned to
    that layer: without the lock it exits with SIGABRT (134)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    code = """
import threading, numba, numpy as np
from mae_core import tsne
xs = [np.random.default_rng(s).normal(size=(300, 20)).astype(np.float32) for s in (1, 2, 3)]
ts = [threading.Thread(target=tsne.tsne_exact, args=(x, 30.0, 0), kwargs={"schedule": {"early_iter": 20, "iter": 40}})
      for x in xs]
[t.start() for t in ts]
[t.join() for t in ts]
print("layer", numba.threading_layer())
"""
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "layer workqueue" in r.stdout
