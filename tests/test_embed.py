import numpy as np
import pytest
import torch

from mae_core.embed import encode, project
from mae_core.metrics import PROBE_C_GRID, knn_accuracy, linear_probe_accuracy, nearest_neighbours, scores
from mae_core.model import build_model


def _blobs(n=300, d=20, classes=3, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)) * 3
    y = rng.integers(0, classes, n)
    return (centres[y] + rng.normal(size=(n, d)) * spread).astype(np.float32), y


def test_knn_and_probe_high_on_separable_and_chance_on_shuffled():
    x, y = _blobs()
    xt, yt = _blobs(seed=1)
    xt = x[:150] + np.random.default_rng(2).normal(size=(150, 20)).astype(np.float32) * 0.3
    yt = y[:150]
    assert knn_accuracy(x, y, xt, yt, k=20) > 0.97
    assert linear_probe_accuracy(x, y, xt, yt) > 0.97
    rng = np.random.default_rng(3)
    ys = rng.permutation(y)
    xr = rng.normal(size=x.shape).astype(np.float32)
    acc = knn_accuracy(xr, ys, xr[:150] + 0.01, rng.integers(0, 3, 150), k=20)
    assert 0.2 < acc < 0.5
    s = scores(xr, ys)
    assert 0.15 < s["linear_probe"] < 0.55 and s["n_test"] == 75


def test_knn_vote_counts_labels():
    train = np.array([[1, 0], [1, 0.1], [0, 1]], dtype=np.float32)
    assert knn_accuracy(train, np.array([0, 0, 1]), np.array([[1, 0.05], [0.1, 1]], np.float32),
                        np.array([0, 1]), k=1) == 1.0
    # k=3 includes every point: class 0 wins 2 votes to 1 for both queries
    assert knn_accuracy(train, np.array([0, 0, 1]), np.array([[1, 0.05], [0.1, 1]], np.float32),
                        np.array([0, 1]), k=3) == 0.5


def test_nearest_neighbours():
    f = np.eye(4, dtype=np.float32) + 0.01
    nn = nearest_neighbours(f, f[2], k=2)
    assert nn.shape == (1, 2) and nn[0, 0] == 2
    assert nearest_neighbours(f, f[2], k=1, exclude_self=True)[0, 0] != 2


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_shapes_and_seeds(method):
    x, y = _blobs(n=200)
    a = project(x, method, seed=0)
    b = project(x, method, seed=0)
    assert a.shape == (200, 2) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # clusters stay apart in 2-D: kNN in the map is near perfect
    assert knn_accuracy(a, y, a, y, k=5) > 0.95


def test_tsne_sklearn_fallback_and_errors():
    x, _ = _blobs(n=60)
    assert project(x, "tsne", backend="sklearn").shape == (60, 2)
    with pytest.raises(ValueError, match="method must be one of"):
        project(x, "mds")
    with pytest.raises(ValueError, match="at least 3 feature vectors"):
        project(x[:2], "pca")


def test_encode_shapes_determinism_and_masking():
    torch.manual_seed(0)
    m = build_model("mae_fmnist_micro").eval()
    imgs = torch.rand(10, 1, 28, 28)
    f = encode(m, imgs, "cls", batch_size=4)
    assert f.shape == (10, 64) and f.dtype == np.float32
    np.testing.assert_array_equal(f, encode(m, imgs, "cls", batch_size=7))
    assert encode(m, imgs, "both").shape == (10, 128)
    fm = encode(m, imgs, "mean", mask_ratio=0.5, seed=1)
    np.testing.assert_array_equal(fm, encode(m, imgs, "mean", mask_ratio=0.5, seed=1))
    assert not np.allclose(fm, encode(m, imgs, "mean"))
    with pytest.raises(ValueError, match="pool must be one of"):
        encode(m, imgs, "max")


def test_torch_probe_matches_scikit_learn_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    x, y = _blobs(n=600, d=12, classes=4, spread=2.5, seed=4)  # overlapping classes: accuracy well below 1
    xt, yt = x[400:], y[400:]
    x, y = x[:400], y[:400]
    sc = StandardScaler().fit(x)
    ref = LogisticRegression(C=0.5, max_iter=5000, tol=1e-8).fit(sc.transform(x), y)
    ours = linear_probe_accuracy(x, y, xt, yt, C=0.5)
    assert ours == pytest.approx(ref.score(sc.transform(xt), yt), abs=0.006)
    assert 0.4 < ours < 0.98


def test_probe_chooses_its_penalty_on_a_validation_split_of_the_training_set():
    # 30 informative dims + 300 noise dims and few samples: a weak penalty overfits, the chosen one must not
    rng = np.random.default_rng(1)
    n, d_inf, d_noise = 500, 30, 300
    y = rng.integers(0, 3, n)
    centers = rng.normal(0, 0.35, (3, d_inf))
    x = np.concatenate([centers[y] + rng.normal(0, 1, (n, d_inf)), rng.normal(0, 1, (n, d_noise))], 1)
    x = x.astype(np.float32)
    x, y, xt, yt = x[:250], y[:250], x[250:], y[250:]
    details = {}
    auto = linear_probe_accuracy(x, y, xt, yt, details=details)
    weak = linear_probe_accuracy(x, y, xt, yt, C=1.0)
    assert details["C"] < 1.0 and set(details["val_accuracy"]) == set(PROBE_C_GRID)
    assert auto > weak + 0.03
    # the choice depends on the training labels only: scrambling the test labels leaves it alone
    d2 = {}
    linear_probe_accuracy(x, y, xt, rng.permutation(yt), details=d2)
    assert d2["C"] == details["C"]


@pytest.mark.slow
def test_tsne_schedule_reports_progress_and_matches_the_default_schedules_kl():
    pytest.importorskip("openTSNE")
    from mae_core.embed import TSNE_SCHEDULE, tsne_opentsne
    x, _ = _blobs(n=800, d=30, classes=6, spread=1.5, seed=5)  # overlapping enough for a non-trivial KL
    seen = []
    emb, kl = tsne_opentsne(x, 30.0, seed=0, n_jobs=1, progress=seen.append)
    assert emb.shape == (800, 2) and np.isfinite(emb).all()
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len(seen) == (TSNE_SCHEDULE["early_iter"] + TSNE_SCHEDULE["iter"]) // 25
    # openTSNE's defaults: 250 exaggerated iterations and 500 more, all at theta 0.5
    _, kl_default = tsne_opentsne(x, 30.0, seed=0, n_jobs=1, schedule={"early_iter": 250, "early_theta": 0.5})
    assert kl <= kl_default * 1.01
    # and the page's entry point reports the same progress
    seen2 = []
    project(x, "tsne", seed=0, progress=seen2.append, n_jobs=1)
    assert seen2[-1] == 1.0


def test_bootstrap_interval_covers_the_accuracy_and_pairs_shrink_it():
    from mae_core.metrics import bootstrap_ci, pack_bools, unpack_bools
    rng = np.random.default_rng(0)
    a = rng.random(5000) < 0.88
    lo, hi = bootstrap_ci(a)
    # binomial standard error sqrt(.88*.12/5000) = 0.0046: a 95% interval is about +-0.009 around the mean
    assert lo < a.mean() < hi and 0.014 < hi - lo < 0.022
    b = a.copy()
    flip = rng.choice(5000, 100, replace=False)
    b[flip] = ~b[flip]                     # a baseline that differs on 100 of 5,000 images
    dlo, dhi = bootstrap_ci(a, b)
    assert dlo <= a.mean() - b.mean() <= dhi and dhi - dlo < (hi - lo) / 2  # paired: far tighter
    assert bootstrap_ci(a, seed=3) != (lo, hi) and bootstrap_ci(a) == (lo, hi)  # seeded, reproducible
    with pytest.raises(ValueError, match="same test rows"):
        bootstrap_ci(a, b[:10])
    assert (unpack_bools(pack_bools(a), 5000) == a).all()


def test_scores_report_each_test_rows_result():
    from mae_core.metrics import knn_accuracy, linear_probe_accuracy
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    for fn in (knn_accuracy, linear_probe_accuracy):
        det = {}
        acc = fn(x[:300], y[:300], x[300:], y[300:], details=det)
        assert det["correct"].shape == (100,) and det["correct"].mean() == acc and acc > 0.8


def test_score_reading_says_who_wins_and_why_mae_may_lose():
    from mae_core.evaluation.readings import score_reading
    win = score_reading({"knn": 0.86, "linear_probe": 0.88, "n_test": 10000}, {"knn": 0.84, "linear_probe": 0.846},
                        "both", epochs=24)
    assert win.startswith("MAE features beat raw pixels by 3.4 points on the linear probe and beat them by 2.0 on kNN")
    assert win.endswith("on kNN.") and "noise" not in win and "fine-tuned" not in win   # no claim the table beside it can contradict
    lose = score_reading({"knn": 0.684, "linear_probe": 0.782, "n_test": 500}, {"knn": 0.71, "linear_probe": 0.792},
                         "cls", epochs=3)
    assert "trail raw pixels by 1.0 points" in lose and "split is small" in lose and "cls token" in lose
    assert "only 3 epochs" in lose and "within noise" in lose


def test_best_representation_picks_the_strongest_probe_on_the_cards():
    from mae_core.classroom.zoo import best_representation
    cards = [{"name": "a", "path": "a.safetensors", "data": {"name": "Fashion-MNIST"}, "mask_ratio": 0.75,
              "embedding_metrics": {"linear_probe_cls": 0.80, "linear_probe_both": 0.85, "knn_both": 0.8}},
             {"name": "b", "path": "b.safetensors", "data": {"name": "Fashion-MNIST"}, "mask_ratio": 0.75,
              "embedding_metrics": {"linear_probe_mean": 0.87, "knn_mean": 0.83}},
             {"name": "p", "path": "p.safetensors", "data": {"name": "scikit-image photos"},
              "embedding_metrics": {"linear_probe_both": 0.99}}]
    best = best_representation(cards)
    assert (best["name"], best["pool"], best["probe"], best["knn"]) == ("b", "mean", 0.87, 0.83)
    assert best_representation([]) is None


def test_finetune_results_fall_back_to_a_bundled_model_and_say_whose_they_are():
    from mae_core.classroom.zoo import finetune_results
    rows = {"rows": [{"mode": "logreg", "accuracy": 0.8}], "protocol": "p"}
    tuned = {"name": "t", "mask_ratio": 0.75, "norm_pix_loss": True, "epochs": 24, "finetune": rows}
    bare = {"name": "b", "mask_ratio": 0.75, "norm_pix_loss": True, "epochs": 24}
    assert finetune_results(tuned, [bare]) == (rows, None)                     # its own results first
    assert finetune_results(bare, [bare, tuned]) == (rows, "75% · norm-pix · 24 ep")
    assert finetune_results(bare, [bare, {**tuned, "finetune": {"rows": []}}]) == ({}, None)
