import numpy as np
import pytest
import torch

from mae_core.baselines import baseline_errors, baseline_reconstruction, inpaint
from mae_core.data import load_fashion_mnist_subset
from mae_core.kept import Kept
from mae_core.model import build_model


def _holes(n=2, size=28, patch=4, hidden=37, seed=0):
    g = size // patch
    rng = np.random.default_rng(seed)
    masks = torch.zeros(n, g * g, dtype=torch.bool)
    for i in range(n):
        masks[i, rng.choice(g * g, hidden, replace=False)] = True
    return masks


def test_visible_pixels_are_kept_and_smooth_images_are_filled_almost_exactly():
    m = build_model("mae_fmnist_micro")
    masks = torch.zeros(2, 49, dtype=torch.bool)
    masks[0, [8, 9, 10, 16, 17, 18, 24, 25, 26]] = True     # a 3x3 block of patches away from the image's edge
    masks[1, [11, 12, 19, 32, 38, 40]] = True
    pix = m.mask_to_pixels(masks)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 28), torch.linspace(0, 1, 28), indexing="ij")
    ramp = (0.2 + 0.3 * xx + 0.4 * yy).expand(2, 1, 28, 28).clone()   # linear: harmonic, so the exact fill
    out = inpaint(ramp, pix)
    assert torch.equal(out[~pix], ramp[~pix])
    assert (out - ramp).abs().max() < 0.01
    edge = inpaint(ramp, m.mask_to_pixels(_holes()))                     # holes on the edge: a flat edge, still close
    assert (edge - ramp).abs().mean() < 0.05
    flat = torch.full((2, 1, 28, 28), 0.37)
    assert (inpaint(flat, pix) - 0.37).abs().max() < 1e-5
    assert inpaint(flat, torch.ones_like(pix)).eq(0.5).all()            # nothing visible: mid grey


def test_the_fill_is_harmonic_each_hidden_pixel_the_mean_of_its_four_neighbours():
    m = build_model("mae_fmnist_micro")
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    pix = m.mask_to_pixels(_holes(2, hidden=30, seed=2))
    out = inpaint(x, pix, iters=3000).numpy()[:, 0]
    p = np.pad(out, ((0, 0), (1, 1), (1, 1)), mode="edge")          # the image's border repeats outwards
    neighbours = (p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]) / 4
    hidden = pix.numpy()[:, 0]
    assert np.abs(out - neighbours)[hidden].max() < 1e-4                # the discrete Laplace equation holds
    assert np.abs(out - neighbours)[~hidden].max() > 0.1                 # (visible pixels are data, not solved)


def test_errors_are_scored_like_the_mae_and_beat_a_blank_fill():
    m = build_model("mae_fmnist_micro")
    x = load_fashion_mnist_subset().images[:16]
    masks = _holes(16, seed=1)
    err = baseline_errors(m, x, masks)
    pix = m.mask_to_pixels(masks)
    blank = torch.where(pix, torch.zeros_like(x), x)
    blank_err = ((m.patchify(blank) - m.patchify(x)) ** 2).mean(-1)
    blank_err = ((blank_err * masks).sum(1) / masks.sum(1)).numpy()
    assert err.shape == (16,) and (err < blank_err).mean() > 0.8 and err.mean() < blank_err.mean()
    matched = baseline_errors(m, x, masks, matched=True)
    assert matched.shape == (16,) and np.isfinite(matched).all()
    filled, mse, mse_m = baseline_reconstruction(m, x[0], masks[0].numpy())
    assert filled.shape == (1, 28, 28) and mse == pytest.approx(err[0])
    assert np.isnan(baseline_reconstruction(m, x[0], np.zeros(49, bool))[1])


def test_rgb_and_larger_images():
    m = build_model("mae_photo_small")
    x = torch.rand(3, 3, 64, 64)
    masks = _holes(3, size=64, patch=8, hidden=48)
    out = inpaint(x, m.mask_to_pixels(masks))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_one_images_fill_is_remembered_per_image_and_mask(monkeypatch):
    """Every visitor of a page opens on the same image and mask: the fill is made once, and the copy handed out
    cannot change the remembered one; another mask or image is filled anew."""
    import mae_core.baselines as b
    m = build_model("mae_fmnist_micro")
    x = load_fashion_mnist_subset().images[:2]
    masks = _holes(2, seed=3)
    monkeypatch.setattr(b, "_kept", Kept(lambda: b.KEPT))
    calls = []
    real = b.inpaint
    monkeypatch.setattr(b, "inpaint", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = baseline_reconstruction(m, x[0], masks[0].numpy())
    n = len(calls)
    first[0].fill_(9.0)                                                  # the caller's copy, not the kept one
    again = baseline_reconstruction(m, x[0].clone(), masks[0].numpy())
    assert len(calls) == n and again[1:] == first[1:] and float(again[0].max()) <= 1.0
    baseline_reconstruction(m, x[0], masks[1].numpy())
    baseline_reconstruction(m, x[1], masks[0].numpy())
    assert len(calls) == 3 * n
    assert again[1] == pytest.approx(float(baseline_errors(m, x[:1], masks[:1])[0]))
