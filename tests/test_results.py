"""Results computed once for the whole server: shipped or cached per weights and settings, one computation per key."""
import json
import shutil
import threading
import time

import pytest

from mae_core.evaluation import precompute, results
from mae_core.checkpoints import CHECKPOINT_DIR


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A copy of a bundled model's weights, an empty shipped folder and an empty cache."""
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "SHIPPED_DIR", tmp_path / "shipped")
    results.clear_memory()
    w = tmp_path / "m.safetensors"
    shutil.copy(CHECKPOINT_DIR / "fmnist_r50.safetensors", w)
    return w


def test_computed_once_then_read_back_from_the_cache(store):
    calls = []
    value = results.get(store, "demo", {"n": 3}, lambda: calls.append(1) or {"rows": [1, 2, 3]})
    assert value == {"rows": [1, 2, 3]} and calls == [1]
    assert results.get(store, "demo", {"n": 3}, lambda: pytest.fail("computed twice")) == value
    files = list((store.parent / "cache" / "results").iterdir())
    assert len(files) == 1 and json.loads(files[0].read_text())["weights_sha256"] == results.weights_sha256(store)
    # other settings are another result
    assert results.get(store, "demo", {"n": 4}, lambda: "four") == "four"


def test_a_shipped_result_is_used_and_a_retrained_model_drops_it(store):
    results.ship(store, "demo", {"n": 3}, "shipped")
    assert results.get(store, "demo", {"n": 3}, lambda: pytest.fail("computed a shipped result")) == "shipped"
    assert results.get(store, "demo", {"n": 5}, lambda: "other settings") == "other settings"
    data = bytearray(store.read_bytes())                               # the model is retrained: one byte differs
    data[-1] ^= 1
    time.sleep(0.01)
    store.write_bytes(bytes(data))
    assert results.lookup(store, "demo", {"n": 3}) is None
    assert results.get(store, "demo", {"n": 3}, lambda: "fresh") == "fresh"


def test_a_broken_or_foreign_file_is_no_result(store):
    results.ship(store, "demo", {"n": 3}, "shipped")
    path = results.shipped_path(store, "demo")
    path.write_text("{")
    assert results.lookup(store, "demo", {"n": 3}) is None
    path.write_text(json.dumps({"format": 1, "kind": "other", "weights_sha256": results.weights_sha256(store),
                                "settings": {"n": 3}, "value": "x"}))
    assert results.lookup(store, "demo", {"n": 3}) is None


def test_visitors_asking_for_the_same_result_at_once_compute_it_once(store):
    calls, waited, out = [], [], []
    started = threading.Event()

    def slow():
        calls.append(1)
        started.set()
        time.sleep(0.5)
        return "done"

    def visitor(first):
        if not first:
            started.wait(5)
        out.append(results.get(store, "slow", {}, slow, on_wait=waited.append))
    threads = [threading.Thread(target=visitor, args=(i == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == ["done"] * 4 and calls == [1]
    assert waited and all(n >= 1 for n in waited)                    # the others were told someone is at it


def test_a_read_only_cache_still_returns_the_result(store, monkeypatch, tmp_path):
    def refuse(*a, **k):
        raise OSError("read-only file system")
    monkeypatch.setattr(results, "atomic_write", refuse)
    assert results.get(store, "demo", {"n": 1}, lambda: 7) == 7


def test_the_page_defaults_of_every_bundled_model_are_shipped():
    """Each strategy's curves (one file each, so changing the strategies reuses the others), and for the
    Fashion-MNIST models the Embeddings page's default map, score table and neighbours, and raw pixels' scores."""
    from mae_core.checkpoints import list_bundled, load_model
    from mae_core.data import SUBSET_PATH
    from mae_core.datasets import FASHION_MNIST
    from mae_core.evaluation.sweep import sweep_settings
    d = precompute.EMBED_DEFAULTS
    for card in list_bundled():
        cfg = load_model(card["path"])[0].config
        for s in ("random", "block", "grid"):
            rows = results.lookup(card["path"], f"sweep-{s}", sweep_settings(cfg, strategies=(s,)))
            assert rows and {r["strategy"] for r in rows} == {s, "harmonic:" + s}, (card["name"], s)
        if not FASHION_MNIST.fits(cfg):
            continue
        xy = results.lookup(card["path"], "embed-map", precompute.embedding_settings(**d))
        assert xy and len(xy["xy"]) == d["n"], card["name"]
        plain = precompute.embedding_settings(d["source"], d["n"], d["pool"], 0.0)
        sc = results.lookup(card["path"], "embed-scores", plain)
        assert 0.5 < sc["linear_probe"] < 1 and sc["n_test"] == 500, card["name"]
        nn = results.lookup(card["path"], "embed-neighbours", plain)
        assert len(nn) == d["n"] and len(nn[0]) == precompute.NEIGHBOURS and 0 not in nn[0]   # not itself
    raw = results.lookup(SUBSET_PATH, "embed-raw-scores", precompute.embedding_settings(d["source"], d["n"], "raw", 0.0))
    assert 0.5 < raw["linear_probe"] < 1


def test_precompute_refuses_an_unknown_name(capsys):
    assert precompute.main(["no_such_model"]) == 2
    assert "no bundled model named no_such_model" in capsys.readouterr().err


@pytest.mark.slow
def test_a_shipped_sweep_equals_a_fresh_one():
    """The shipped curves are what the page would compute: a change to the sweep must be followed by a new
    `python -m mae_core.evaluation.precompute`."""
    from mae_core.checkpoints import load_model
    from mae_core.evaluation.sweep import PAGE_IMAGES, PAGE_SEEDS, DEFAULT_RATIOS, STRATEGIES, eval_images, sweep, sweep_settings
    path = CHECKPOINT_DIR / "fmnist_r50.safetensors"
    model, _ = load_model(path)
    shipped = [r for s in STRATEGIES
               for r in results.lookup(path, f"sweep-{s}", sweep_settings(model.config, strategies=(s,)))]
    fresh = sweep(model, eval_images(model.config, PAGE_IMAGES), DEFAULT_RATIOS, tuple(STRATEGIES), PAGE_SEEDS,
                  baseline=True).rows   # all strategies at once, in small batches: the same numbers
    assert sweep(model, eval_images(model.config, 4), (0.5,), ("grid",), 2, batch_size=3).rows[0]["mean"] == \
        pytest.approx(sweep(model, eval_images(model.config, 4), (0.5,), ("grid",), 2).rows[0]["mean"], rel=1e-6)
    assert len(shipped) == len(fresh)
    for a, b in zip(shipped, fresh):
        assert (a["strategy"], a["ratio"], a["n_hidden"]) == (b["strategy"], b["ratio"], b["n_hidden"])
        assert a["mean"] == pytest.approx(b["mean"], rel=1e-4, abs=1e-7)


def test_a_server_that_writes_nothing_keeps_nothing_and_the_cache_is_bounded(store, monkeypatch):
    assert results.get(store, "demo", {"n": 1}, lambda: 1, keep=False) == 1
    assert not (store.parent / "cache" / "results").exists()
    # in memory only: a rerun of the page computes nothing, and memory is bounded too
    assert results.get(store, "demo", {"n": 1}, lambda: pytest.fail("computed again"), keep=False) == 1
    monkeypatch.setattr(results, "MEMORY", 3)
    for n in range(2, 6):
        results.get(store, "demo", {"n": n}, lambda: n, keep=False)
    assert results.get(store, "demo", {"n": 1}, lambda: "again", keep=False) == "again"   # the oldest was dropped
    results.clear_memory()
    monkeypatch.setattr(results, "MAX_CACHED", 20)
    for n in range(30):
        results.get(store, "demo", {"n": n}, lambda: n)
    kept = list((store.parent / "cache" / "results").glob("*.json"))
    assert 10 <= len(kept) <= 21


def test_a_computation_runs_inside_the_callers_gate(store):
    """The classroom server bounds heavy work with a pool: ``gate`` is entered around the computation only, not
    around a stored result."""
    import contextlib
    entered = []

    @contextlib.contextmanager
    def gate():
        entered.append("in")
        yield
        entered.append("out")
    assert results.get(store, "demo", {"n": 9}, lambda: entered.append("compute") or 9, gate=gate) == 9
    assert entered == ["in", "compute", "out"]
    results.clear_memory()
    assert results.get(store, "demo", {"n": 9}, lambda: pytest.fail("computed"), gate=gate) == 9
    assert entered == ["in", "compute", "out"]


def test_the_comparisons_rows_are_shipped_and_equal_fresh_ones():
    """Each Fashion-MNIST model's line of the pretraining-ratio heatmap and its strategy errors are shipped, and are
    what the page would compute."""
    from mae_core.checkpoints import list_bundled, load_model
    from mae_core.data import load_fashion_mnist_subset
    from mae_core.evaluation.sweep import (COMPARE_IMAGES, DEFAULT_RATIOS, heat_row, heat_settings, strategy_errors,
                                           strategy_settings)
    fashion = [c for c in list_bundled() if c["name"].startswith("fmnist_")]
    for card in fashion:
        row = results.lookup(card["path"], "heat-row", heat_settings())
        assert row and len(row) == len(DEFAULT_RATIOS) and all(0 < e < 1 for e in row), card["name"]
        errs = results.lookup(card["path"], "strategy-errors",
                              strategy_settings(card.get("mask_strategy", "random"), float(card["mask_ratio"])))
        assert errs and set(errs) == {"own_error", "random_error"}, card["name"]
    grid = next(c for c in fashion if c["name"] == "fmnist_grid75")
    model, _ = load_model(grid["path"])
    imgs = load_fashion_mnist_subset().images[:COMPARE_IMAGES]
    shipped = results.lookup(grid["path"], "strategy-errors", strategy_settings("grid", 0.75))
    fresh = strategy_errors(model, "grid", 0.75, imgs)
    assert shipped == pytest.approx(fresh, rel=1e-4)
    assert fresh["own_error"] < fresh["random_error"]   # grid masks leave every hidden patch a visible neighbour
    assert results.lookup(grid["path"], "heat-row", heat_settings())[:3] == \
        pytest.approx(heat_row(model, imgs, DEFAULT_RATIOS[:3]), rel=1e-4)
