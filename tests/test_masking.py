import numpy as np
import pytest
import torch

from mae_core.masking import (STRATEGIES, block_mask, grid_mask, invert, make_mask, mask_to_grid, num_hidden,
                              painted_mask, random_keep_ids, random_mask, register_strategy, unregister_strategy)


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95])
@pytest.mark.parametrize("grid", [4, 7, 14])
def test_exact_hidden_count_for_every_strategy(ratio, grid):
    L = grid * grid
    expected = L - int(L * (1 - ratio))
    for strategy in STRATEGIES:
        m = make_mask(strategy, 3, grid, ratio, seed=5)
        assert m.shape == (3, L) and m.dtype == torch.bool
        assert torch.all(m.sum(1) == expected), (strategy, m.sum(1))
    assert num_hidden(L, ratio) == expected


def test_random_is_per_sample_and_reproducible():
    a = random_mask(8, 7, 0.75, seed=1)
    b = random_mask(8, 7, 0.75, seed=1)
    c = random_mask(8, 7, 0.75, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(r.tolist()) for r in a}) == 8  # each sample has its own mask
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(random_mask(2, 7, 0.5, seed=g1), random_mask(2, 7, 0.5, seed=g2))


def test_random_is_uniform_over_positions():
    m = random_mask(4000, 4, 0.75, seed=0).float().mean(0)
    assert torch.all((m - 0.75).abs() < 0.03)


def test_block_masks_are_compact():
    m = block_mask(50, 14, 0.5, seed=0).view(50, 14, 14).numpy()
    # blocks: far more hidden-hidden neighbour pairs than random masks at the same ratio
    def same_neighbours(x):
        return (x[:, 1:, :] & x[:, :-1, :]).sum() + (x[:, :, 1:] & x[:, :, :-1]).sum()
    r = random_mask(50, 14, 0.5, seed=0).view(50, 14, 14).numpy()
    assert same_neighbours(m) > 1.4 * same_neighbours(r)
    assert torch.equal(block_mask(2, 7, 0.6, seed=3), block_mask(2, 7, 0.6, seed=3))


def test_grid_period_two_is_the_papers_pattern():
    m = grid_mask(1, 8, period=2).view(8, 8).numpy()
    keep = ~m
    assert keep.sum() == 16 and m.mean() == 0.75
    assert keep[::2, ::2].all() and not keep[1::2].any() and not keep[:, 1::2].any()
    # ratio-driven grid at 75% on an even grid is the same pattern
    assert torch.equal(grid_mask(1, 8, 0.75), grid_mask(1, 8, period=2))
    # and at 50% a checkerboard
    half = grid_mask(1, 8, 0.5).view(8, 8).numpy()
    assert all(half[i, j] != half[i, j + 1] for i in range(8) for j in range(7))
    off = grid_mask(1, 6, period=3, offset=(1, 2)).view(6, 6).numpy()
    assert (~off).sum() == 4 and not off[1, 2] and not off[4, 5]


def test_painted_masks():
    cells = np.zeros((7, 7), dtype=bool)
    cells[2, 3] = cells[6, 6] = True
    m = painted_mask(cells, grid=7)
    assert m.shape == (1, 49) and m[0, 2 * 7 + 3] and m[0, 48] and m.sum() == 2
    assert torch.equal(painted_mask([17, 48], grid=7), m)
    assert torch.equal(painted_mask(cells.reshape(-1).astype(int).tolist()), m)
    np.testing.assert_array_equal(mask_to_grid(m), cells)
    assert torch.equal(invert(m), ~m)


@pytest.mark.parametrize("call, message", [
    (lambda: random_mask(1, 7, 1.0), r"mask ratio must be in \[0, 1\)"),
    (lambda: random_mask(1, 7, -0.1), r"mask ratio must be in \[0, 1\)"),
    (lambda: block_mask(1, 7, float("nan")), r"mask ratio must be in \[0, 1\)"),
    (lambda: grid_mask(1, 7, "x"), "mask ratio must be a number"),
    (lambda: random_mask(1, 0, 0.5), "grid must be a positive integer"),
    (lambda: random_mask(0, 7, 0.5), "number of masks must be a positive integer"),
    (lambda: painted_mask([]), "painted mask is empty"),
    (lambda: painted_mask(None), "painted mask is empty"),
    (lambda: painted_mask(np.zeros((3, 4))), "must be square"),
    (lambda: painted_mask(np.zeros(10)), "square number of cells"),
    (lambda: painted_mask(np.zeros((7, 7)), grid=14), "painted cell grid is 7x7 but the model's patch grid is 14x14"),
    (lambda: painted_mask(np.full((2, 2), 2)), "0 \\(visible\\) or 1 \\(hidden\\)"),
    (lambda: painted_mask([50], grid=7), "out of range"),
    (lambda: make_mask("spiral", 1, 7), "unknown mask strategy"),
])
def test_bad_input_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_registry_holds_each_strategy_once_with_what_the_app_needs():
    assert list(STRATEGIES) == ["random", "block", "grid"]
    for s in STRATEGIES.values():
        assert s.label and s.colour.startswith("#") and s.help
    assert STRATEGIES["grid"].uses_seed is False           # the same mask for every seed
    assert torch.equal(make_mask("grid", 1, 7, 0.75, seed=1), make_mask("grid", 1, 7, 0.75, seed=2))


def test_random_mask_and_the_models_masking_are_one_function():
    from mae_core.model import MaskedAutoencoderViT
    assert MaskedAutoencoderViT.random_keep_ids is random_keep_ids
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    ids = random_keep_ids(3, 49, 0.75, g1)
    m = random_mask(3, 7, 0.75, seed=g2)
    assert ids.shape == (3, 12) and all(not m[i, ids[i]].any() for i in range(3)) and int(m.sum()) == 3 * 37


def _checker(n, grid, ratio=0.75, seed=None):
    """A throwaway strategy for the test below: a checkerboard, then more cells until the count is right."""
    L = grid * grid
    hide = L - int(L * (1 - ratio))
    order = sorted(range(L), key=lambda i: ((i // grid + i % grid) % 2, i))
    m = torch.zeros(L, dtype=torch.bool)
    m[order[:hide]] = True
    return m.unsqueeze(0).expand(n, -1).clone()


@pytest.fixture
def checker():
    register_strategy("checker", _checker, "Checkerboard", "#a16207", "Every other patch, like a chessboard",
                      uses_seed=False)
    yield
    unregister_strategy("checker")


@pytest.mark.slow
def test_a_new_strategy_is_one_registration_and_both_pages_show_it(checker, app_page):
    """Adding a strategy touches masking.py only: the Reconstruct page offers it, the Mask ratios page sweeps it,
    compares it with the others and draws it in its own colour."""
    assert int(make_mask("checker", 2, 7, 0.75).sum()) == 2 * 37
    rec = app_page("reconstruct.py")
    assert "Checkerboard" in rec.selectbox(key="mask_strategy").options
    rec.selectbox(key="mask_strategy").set_value("checker").run()
    assert rec.session_state["mask_editor"].mask == _checker(1, 7)[0].int().tolist()
    assert next(b for b in rec.button if b.label == "Re-roll").disabled      # no seed: nothing to re-roll
    ratios = app_page("ratios.py", sw_images=16, sw_seeds=1, ratio_section="strategy")
    shown = [m.value.split(" — ")[0] for m in ratios.markdown if " hidden" in m.value]
    assert shown == ["**Random**", "**Block**", "**Grid**", "**Checkerboard**"]
    assert not ratios.exception
