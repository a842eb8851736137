"""How good a model is, measured: masked-patch errors on held-out images, and the representation scores
(kNN and linear probe) of encoder features. No pictures, no files: numbers from arrays."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .masking import random_mask
from .baselines import baseline_errors


@torch.no_grad()
def evaluate(model, images01: torch.Tensor, mask_ratio: float = 0.75, seed: int = 0,
             batch_size: int = 500, baseline: bool = False) -> dict:
    """Masked-patch error on held-out images with fixed random masks: in the model's target space (the loss)
    and in [0, 1] pixel units; ``eval_mse_matched``: the pixel error with every predicted patch given the true
    patch's mean and std, the one figure comparable between pixel-target and norm-pix models. ``baseline``: also
    harmonic inpainting's errors on the very same masks (``eval_harmonic_mse``, ``eval_harmonic_mse_matched``)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    tot_loss = tot_pix = tot_match = tot_n = 0.0
    base, base_m = [], []
    for i in range(0, len(images01), batch_size):
        x01 = images01[i:i + batch_size].to(device)
        mask = random_mask(len(x01), model.config.grid_size, mask_ratio, seed=g).to(device)
        out, _, per_patch = model.reconstruct_pixels(x01, mask)
        m = out.mask
        tot_loss += float(out.loss) * float(m.sum())
        tot_pix += float((per_patch * m).sum())
        if not model.config.norm_pix_loss:
            per_patch = model.pixels_from_pred(out.pred, x01, matched=True)[1]
        tot_match += float((per_patch * m).sum())
        tot_n += float(m.sum())
        if baseline:
            w = m.sum(1).double().cpu().numpy()  # every image hides the same count: a plain mean, weighted anyway
            base.append((baseline_errors(model, x01.cpu(), mask.cpu()) * w, w))
            base_m.append(baseline_errors(model, x01.cpu(), mask.cpu(), matched=True) * w)
    model.train(was_training)
    out = {"eval_loss": tot_loss / tot_n, "eval_mse_pixels": tot_pix / tot_n, "eval_mse_matched": tot_match / tot_n,
           "eval_mask_ratio": mask_ratio}
    if baseline:
        wsum = sum(float(w.sum()) for _, w in base)
        out["eval_harmonic_mse"] = sum(float(e.sum()) for e, _ in base) / wsum
        out["eval_harmonic_mse_matched"] = sum(float(e.sum()) for e in base_m) / wsum
    return out


@torch.no_grad()
def masked_errors(model, images01: torch.Tensor, masks: torch.Tensor, batch_size: int = 512,
                  matched: bool = False) -> np.ndarray:
    """Per-image MSE over hidden patches, in [0, 1] pixel units (norm-pix predictions re-scaled with the true
    patch statistics; ``matched``: every model's patches re-scaled so, comparable across targets).
    images01 (N, C, H, W), masks (N, L) bool. Returns (N,) float64."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images01), batch_size):
        o, _, per_patch = model.reconstruct_pixels(images01[i:i + batch_size].to(device),
                                                   masks[i:i + batch_size].to(device), matched=matched)
        mf = o.mask
        out.append(((per_patch * mf).sum(1) / mf.sum(1).clamp(min=1)).double().cpu())
    return torch.cat(out).numpy()


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
                 chunk: int = 1024, details: Optional[dict] = None) -> float:
    """Majority vote of the k cosine-nearest training points (ties go to the nearer class). Returns accuracy;
    ``details``, if given, receives ``correct``: one bool per test row (for confidence intervals)."""
    tr, te = _normalise_rows(train_x), _normalise_rows(test_x)
    ytr = torch.as_tensor(np.asarray(train_y), dtype=torch.long)
    n_cls = int(max(ytr.max(), int(np.max(test_y)))) + 1
    k = min(k, len(tr))
    hits = []
    for i in range(0, len(te), chunk):
        sims, idx = torch.topk(te[i:i + chunk] @ tr.T, k, dim=1)
        votes = torch.zeros(len(idx), n_cls)
        votes.scatter_add_(1, ytr[idx], torch.ones_like(sims) + 1e-3 * sims)  # similarity breaks ties only
        hits.append(votes.argmax(1).numpy() == np.asarray(test_y)[i:i + chunk])
    correct = np.concatenate(hits)
    if details is not None:
        details["correct"] = correct
    return float(correct.mean())


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


def _correct(x: torch.Tensor, y: np.ndarray, wb) -> np.ndarray:
    with torch.no_grad():
        return (x @ wb[0] + wb[1]).argmax(1).numpy() == np.asarray(y)


def _accuracy(x: torch.Tensor, y: np.ndarray, wb) -> float:
    return float(_correct(x, y, wb).mean())


def linear_probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                          C="auto", max_iter: int = 500, tol: float = 1e-6, val_fraction: float = 0.1,
                          seed: int = 0, details: Optional[dict] = None) -> float:
    """Multinomial logistic regression on standardised features: the objective of scikit-learn's
    LogisticRegression(C=C) (L2 penalty ||W||^2 / (2C) plus the summed cross-entropy), minimised with full-batch
    L-BFGS in torch (same optimum, about 10-50x faster than scikit-learn's lbfgs on 60k x 384 here).

    C="auto" (the default) picks C from PROBE_C_GRID by accuracy on a held-out ``val_fraction`` of the training
    set (a path from strong to weak regularisation, each fit warm-started from the last), then refits on the
    whole training set: the test set is never looked at. ``details``, if given, receives the chosen C, the
    validation accuracies, ``correct`` (one bool per test row, for confidence intervals) and ``linear``: the fitted
    classifier as (W, b) on the raw features (logits = x @ W + b), the standardisation folded in."""
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
    correct = _correct(xte, test_y, wb)
    if details is not None:
        details["correct"] = correct
        w_raw = wb[0] / std[:, None]        # the same classifier on the raw features: x @ w_raw + b_raw
        details["linear"] = (w_raw, wb[1] - mean @ w_raw)
    return float(correct.mean())


def bootstrap_ci(correct: np.ndarray, baseline: Optional[np.ndarray] = None, n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple:
    """Percentile bootstrap interval of an accuracy over the test set (rows resampled with replacement).
    With ``baseline`` (the same test rows scored by another method), the interval of the *difference*
    accuracy - baseline accuracy, paired row by row, which is much tighter than two separate intervals."""
    c = np.asarray(correct, dtype=np.float64)
    if baseline is not None:
        b = np.asarray(baseline, dtype=np.float64)
        if b.shape != c.shape:
            raise ValueError(f"paired bootstrap needs the same test rows: {c.shape} vs {b.shape}")
        c = c - b
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for i in range(0, n_boot, 250):  # in chunks: 250 x N indices at a time
        idx = rng.integers(0, len(c), size=(min(250, n_boot - i), len(c)))
        stats[i:i + len(idx)] = c[idx].mean(1)
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def clear_difference(ci_a=None, ci_b=None, paired=None) -> Optional[bool]:
    """Whether two accuracies differ clearly: the paired interval of a - b (same test images) excludes 0 when it is
    given; otherwise the two separate intervals do not overlap (stricter). None when there is nothing to judge by."""
    if paired is not None:
        return bool(paired[0] > 0 or paired[1] < 0)
    if ci_a is None or ci_b is None:
        return None
    return bool(ci_a[0] > ci_b[1] or ci_b[0] > ci_a[1])


def pack_bools(b: np.ndarray) -> str:
    """A bool vector as a hex string (10,000 test rows: 2,500 characters), for storing in a JSON card."""
    return np.packbits(np.asarray(b, dtype=bool)).tobytes().hex()


def unpack_bools(s: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(s), dtype=np.uint8))[:n].astype(bool)


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
