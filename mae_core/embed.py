"""Encoder features and what to do with them: 2-D projections (t-SNE, PCA, UMAP) and the two standard
read-outs of representation quality, kNN and a linear probe.

    python -m mae_core.embed card checkpoints/fmnist_r75   # measure kNN / probe on Fashion-MNIST, write the card
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .masking import random_mask

POOLS = ("cls", "mean", "both")
METHODS = ("tsne", "pca", "umap")


@torch.no_grad()
def encode(model, images01: torch.Tensor, pool: str = "cls", mask_ratio: float = 0.0, seed: int = 0,
           batch_size: int = 512, progress: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """Encoder features of images in [0, 1] (N, C, H, W) -> (N, D) float32. With ``mask_ratio`` > 0 the
    encoder sees only a random share of patches (fixed by ``seed``), to probe how robust the features are."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    model.eval()
    device = next(model.parameters()).device
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
    from . import tsne
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
TSNE_SCHEDULE = {"early_iter": 125, "early_theta": 1.0, "exaggeration": 12.0, "iter": 500, "theta": 0.5}


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
        from .tsne import tsne_exact
        return tsne_exact(x, perplexity, seed, progress=progress, n_jobs=n_jobs)[0]
    if backend == "openTSNE":
        return tsne_opentsne(x, perplexity, seed, n_jobs, progress=progress)[0]
    from sklearn.manifold import TSNE
    if backend != "sklearn":
        raise ValueError(f"t-SNE backend must be exact, openTSNE or sklearn, got {backend!r}")
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca",
                learning_rate="auto", n_jobs=n_jobs).fit_transform(x).astype(np.float32)


def _normalise_rows(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return torch.nn.functional.normalize(t, dim=1)


def nearest_neighbours(features: np.ndarray, query: np.ndarray, k: int = 8, exclude_self: bool = False) -> np.ndarray:
    """Indices (Q, k) of the k most cosine-similar rows of ``features`` for each query row."""
    f, q = _normalise_rows(features), _normalise_rows(np.atleast_2d(query))
    sims = q @ f.T
    if exclude_self:
        sims[sims > 1 - 1e-6] = -2  # exact duplicates of the query (itself)
    return torch.topk(sims, min(k, f.shape[0]), dim=1).indices.numpy()


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, k: int = 20,
                 chunk: int = 1024) -> float:
    """Majority vote of the k cosine-nearest training points (ties go to the nearer class). Returns accuracy."""
    tr, te = _normalise_rows(train_x), _normalise_rows(test_x)
    ytr = torch.as_tensor(np.asarray(train_y), dtype=torch.long)
    n_cls = int(max(ytr.max(), int(np.max(test_y)))) + 1
    k = min(k, len(tr))
    correct = 0
    for i in range(0, len(te), chunk):
        sims, idx = torch.topk(te[i:i + chunk] @ tr.T, k, dim=1)
        votes = torch.zeros(len(idx), n_cls)
        votes.scatter_add_(1, ytr[idx], torch.ones_like(sims) + 1e-3 * sims)  # similarity breaks ties only
        pred = votes.argmax(1).numpy()
        correct += int((pred == np.asarray(test_y)[i:i + chunk]).sum())
    return correct / len(te)


PROBE_C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _fit_logreg(x: torch.Tensor, y: torch.Tensor, n_cls: int, C: float, max_iter: int, tol: float,
                init=None):
    n, d = x.shape
    w = (init[0].clone() if init is not None else torch.zeros(d, n_cls)).requires_grad_(True)
    b = (init[1].clone() if init is not None else torch.zeros(n_cls)).requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-9,
                            history_size=20, line_search_fn="strong_wolfe")
    reg = 0.5 / (C * n)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + reg * (w * w).sum()
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def _accuracy(x: torch.Tensor, y: np.ndarray, wb) -> float:
    with torch.no_grad():
        return float(((x @ wb[0] + wb[1]).argmax(1).numpy() == np.asarray(y)).mean())


def linear_probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                          C="auto", max_iter: int = 500, tol: float = 1e-6, val_fraction: float = 0.1,
                          seed: int = 0, details: Optional[dict] = None) -> float:
    """Multinomial logistic regression on standardised features: the objective of scikit-learn's
    LogisticRegression(C=C) (L2 penalty ||W||^2 / (2C) plus the summed cross-entropy), minimised with full-batch
    L-BFGS in torch (same optimum, about 10-50x faster than scikit-learn's lbfgs on 60k x 384 here).

    C="auto" (the default) picks C from PROBE_C_GRID by accuracy on a held-out ``val_fraction`` of the training
    set (a path from strong to weak regularisation, each fit warm-started from the last), then refits on the
    whole training set: the test set is never looked at. ``details``, if given, receives the chosen C and the
    validation accuracies."""
    xtr = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32))
    xte = torch.from_numpy(np.ascontiguousarray(test_x, dtype=np.float32))
    mean, std = xtr.mean(0), xtr.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    ytr_np = np.asarray(train_y)
    ytr = torch.as_tensor(ytr_np, dtype=torch.long)
    n_cls = int(max(int(ytr.max()), int(np.max(test_y)))) + 1
    init = None
    if C == "auto":
        fit_idx, val_idx = split_indices(len(ytr_np), val_fraction, seed)
        if len(val_idx) < 10 or len(fit_idx) < 10:
            C = 1.0  # too few samples to choose: the usual default
        else:
            fit_idx, val_idx = torch.from_numpy(fit_idx), torch.from_numpy(val_idx)
            val_acc, fits, wb = {}, {}, None
            for c in PROBE_C_GRID:
                wb = fits[c] = _fit_logreg(xtr[fit_idx], ytr[fit_idx], n_cls, c, max_iter, tol, init=wb)
                val_acc[c] = _accuracy(xtr[val_idx], ytr_np[val_idx.numpy()], wb)
            C = max(PROBE_C_GRID, key=lambda c: (val_acc[c], -c))  # ties go to the stronger penalty
            init = fits[C]  # the refit on all training data starts from the chosen fit (same optimum, sooner)
            if details is not None:
                details["val_accuracy"] = val_acc
    if details is not None:
        details["C"] = float(C)
    wb = _fit_logreg(xtr, ytr, n_cls, float(C), max_iter, tol, init=init)
    return _accuracy(xte, test_y, wb)


def raw_pixels(images01: torch.Tensor) -> np.ndarray:
    return images01.reshape(len(images01), -1).numpy().astype(np.float32)


def split_indices(n: int, test_fraction: float = 0.25, seed: int = 0):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return perm[n_test:], perm[:n_test]


def scores(features: np.ndarray, labels: np.ndarray, test_fraction: float = 0.25, seed: int = 0, k: int = 20) -> dict:
    """kNN and linear-probe accuracy on a held-out split of one labelled set (used by the app)."""
    labels = np.asarray(labels)
    tr, te = split_indices(len(labels), test_fraction, seed)
    return {"knn": knn_accuracy(features[tr], labels[tr], features[te], labels[te], k=k),
            "linear_probe": linear_probe_accuracy(features[tr], labels[tr], features[te], labels[te]),
            "n_train": int(len(tr)), "n_test": int(len(te))}


def thumbnails(images01: torch.Tensor, size: int = 56) -> list:
    """PNG data URLs of small thumbnails (for hover tooltips and galleries)."""
    from .figures import data_url, to_pil
    return [data_url(to_pil(x, size)) for x in images01]


# --------------------------------------------------------------------------------------------------
# Model-card metrics on the full Fashion-MNIST split (train on 60k, score on the 10k test set)
# --------------------------------------------------------------------------------------------------

RAW_BASELINE_PATH = Path(__file__).resolve().parent.parent / "checkpoints" / "raw_pixel_baseline.json"


def fashion_mnist_card_metrics(model, k: int = 20, log=print) -> dict:
    from .data import load_fashion_mnist
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    ytr, yte = train.labels.numpy(), test.labels.numpy()
    out = {"protocol": "features of the unmasked 28px image; fit on the 60k train split, scored on the 10k test "
                       f"split; kNN: k={k} cosine majority vote; probe: logistic regression on standardised features, "
                       "its L2 penalty C chosen on 10% of the train split held out"}
    t = time.time()
    both_tr, both_te = encode(model, train.images, "both"), encode(model, test.images, "both")
    d = model.config.embed_dim
    log(f"  encoded {len(both_tr) + len(both_te)} images in {time.time() - t:.0f} s")
    for pool in POOLS:
        t = time.time()
        sl = {"cls": slice(0, d), "mean": slice(d, 2 * d), "both": slice(0, 2 * d)}[pool]
        ftr, fte = both_tr[:, sl], both_te[:, sl]
        out[f"knn_{pool}"] = knn_accuracy(ftr, ytr, fte, yte, k=k)
        det = {}
        out[f"linear_probe_{pool}"] = linear_probe_accuracy(ftr, ytr, fte, yte, details=det)
        out[f"linear_probe_{pool}_C"] = det["C"]
        log(f"  {pool}: kNN {out[f'knn_{pool}']:.4f}  probe {out[f'linear_probe_{pool}']:.4f}  ({time.time() - t:.0f} s)")
    return out


def raw_pixel_baseline(k: int = 20, log=print) -> dict:
    if RAW_BASELINE_PATH.is_file():
        return json.loads(RAW_BASELINE_PATH.read_text())
    from .checkpoints import atomic_write_json
    from .data import load_fashion_mnist
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    ftr, fte = raw_pixels(train.images), raw_pixels(test.images)
    ytr, yte = train.labels.numpy(), test.labels.numpy()
    res = {"knn": knn_accuracy(ftr, ytr, fte, yte, k=k), "knn_5": knn_accuracy(ftr, ytr, fte, yte, k=5),
           "protocol": "raw 784 pixels in [0,1], same kNN / probe code as the model cards"}
    det = {}
    res["linear_probe"] = linear_probe_accuracy(ftr, ytr, fte, yte, details=det)
    res["linear_probe_C"] = det["C"]
    log(f"  raw pixels: kNN(20) {res['knn']:.4f}  kNN(5) {res['knn_5']:.4f}  probe {res['linear_probe']:.4f}")
    atomic_write_json(RAW_BASELINE_PATH, res)
    return res


def update_card(path: str, log=print) -> dict:
    """Measure held-out reconstruction and (for Fashion-MNIST models) kNN / probe metrics; write them into
    the model card."""
    from .checkpoints import atomic_write_json, load_model, _stem
    from .train import evaluate
    from .data import photo_eval_set, load_fashion_mnist

    model, card = load_model(path)
    stem = _stem(Path(path))
    card_path = stem.with_suffix(".json")
    card = json.loads(card_path.read_text())
    c = model.config
    if c.in_chans == 1 and c.img_size == 28:
        test = load_fashion_mnist("test")
        card.setdefault("metrics", {}).update(
            {f"heldout_{k}": v for k, v in evaluate(model, test.images, 0.75, seed=0).items()})
        card["metrics"]["heldout_set"] = "Fashion-MNIST test split (10,000), random masks at 0.75, seed 0"
        card["embedding_metrics"] = fashion_mnist_card_metrics(model, log=log)
        card["raw_pixel_baseline"] = raw_pixel_baseline(log=log)
    else:
        ev = photo_eval_set(c.img_size, c.in_chans)
        card.setdefault("metrics", {}).update(
            {f"heldout_{k}": v for k, v in evaluate(model, ev, 0.75, seed=0).items()})
        card["metrics"]["heldout_set"] = "48 fixed crops of held-out scikit-image photos, random masks at 0.75"
    atomic_write_json(card_path, card)
    return card


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mae_core.embed", description="Embedding metrics for model cards")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("card", help="measure a checkpoint and write the metrics into its model card")
    c.add_argument("paths", nargs="+")
    args = p.parse_args(argv)
    from .checkpoints import CheckpointError
    from .data import DataError
    for path in args.paths:
        print(f"measuring {path}")
        try:
            card = update_card(path)
        except (CheckpointError, DataError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(json.dumps({k: card.get(k) for k in ("metrics", "embedding_metrics")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
