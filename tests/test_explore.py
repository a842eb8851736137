import numpy as np
import pytest
import torch

from mae_core.baselines import baseline_reconstruction
from mae_core.checkpoints import load_model
from mae_core.explore import HIDDEN_RGB, reconstruct
from mae_core.evaluation.readings import versus_classical
from mae_core.evaluation.figures import data_url, error_map_image, panel_image, png_bytes
from mae_core.masking import random_mask
from mae_core.model import build_model
from mae_core.metrics import masked_errors


@pytest.fixture(scope="module")
def micro():
    torch.manual_seed(0)
    return build_model("mae_fmnist_micro").eval()


def test_reconstruction_views_and_numbers(micro):
    img = torch.rand(1, 28, 28)
    mask = random_mask(1, 7, 0.6, seed=1)[0]
    rec = reconstruct(micro, img, mask)
    pix = micro.mask_to_pixels(mask[None])[0]
    assert torch.equal(rec.pasted[~pix], img[~pix])            # visible pixels are the original
    # the masked view is RGB: hidden pixels in the hidden colour (never a shade of the image's own greys), visible
    # ones the original in all three channels
    assert rec.masked.shape == (3, 28, 28)
    for c in range(3):
        assert torch.allclose(rec.masked[c][pix[0]], torch.tensor(HIDDEN_RGB[c]))
        assert torch.equal(rec.masked[c][~pix[0]], img[0][~pix[0]])
    assert len(set(HIDDEN_RGB)) == 3                           # a hue, not a grey
    assert torch.equal(rec.pasted[pix], rec.reconstruction[pix])
    assert rec.n_hidden == int(mask.sum()) and rec.ratio == pytest.approx(mask.float().mean().item())
    assert rec.error_map.shape == (7, 7)
    # the page's number is the sweep's number for the same image and mask
    assert rec.mse_hidden == pytest.approx(float(masked_errors(micro, img[None], mask[None])[0]), rel=1e-5)
    assert rec.mse_hidden == pytest.approx(float(rec.error_map.reshape(-1)[mask.numpy()].mean()), rel=1e-5)


def test_nothing_or_everything_hidden(micro):
    img = torch.rand(1, 28, 28)
    none = reconstruct(micro, img, np.zeros(49, bool))
    assert np.isnan(none.mse_hidden) and not np.isnan(none.mse_visible)
    every = reconstruct(micro, img, np.ones(49, bool))
    assert np.isnan(every.mse_visible) and every.mse_hidden > 0


def test_wrong_image_for_model_is_a_clear_error(micro):
    with pytest.raises(ValueError, match=r"has 3 channel\(s\) but the model expects 1 \(greyscale\)"):
        reconstruct(micro, torch.rand(3, 28, 28), np.zeros(49, bool))
    with pytest.raises(ValueError, match="is 32x32 but the model expects 28x28"):
        reconstruct(micro, torch.rand(1, 32, 32), np.zeros(49, bool))
    with pytest.raises(ValueError, match="painted cell grid is 4x4 but the model's patch grid is 7x7"):
        reconstruct(micro, torch.rand(1, 28, 28), np.zeros(16, bool))


def test_pictures(micro):
    rec = reconstruct(micro, torch.rand(1, 28, 28), random_mask(1, 7, 0.75, seed=0)[0])
    panel = panel_image(rec, size=100)
    assert panel.size[0] == 5 * 100 + 6 * 8 and panel.size[1] > 100
    png = png_bytes(panel)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert data_url(panel).startswith("data:image/png;base64,")
    em = np.asarray(error_map_image(rec.error_map, rec.mask, 70))
    visible = np.flatnonzero(~rec.mask)[0]
    r, c = divmod(int(visible), 7)
    assert tuple(em[r * 10 + 5, c * 10 + 5]) == (176, 176, 176)  # visible patches are light grey, off the scale


def test_matched_error_compares_pixel_and_norm_pix_models_on_equal_terms():
    """matched=True gives a pixel model's prediction the norm-pix treatment: a prediction that is the true
    patch up to brightness and contrast scores 0, as a perfect norm-pix prediction does."""
    import torch
    from mae_core.model import build_model
    from mae_core.explore import reconstruct
    torch.manual_seed(0)
    m = build_model("mae_fmnist_micro").eval()
    x01 = torch.rand(2, 1, 28, 28)
    mask = torch.zeros(2, 49, dtype=torch.bool)
    mask[:, :30] = True
    x = m.normalize(x01)
    true = m.patchify(x)
    fake = type("Out", (), {})()

    def forward(imgs, mask=None, **kw):  # the "model" predicts each true patch at half contrast, shifted by 0.3
        fake.pred, fake.mask, fake.loss = true * 0.5 + 0.3, mask, torch.tensor(0.0)
        return fake
    m.forward = forward
    plain = m.reconstruct_pixels(x01, mask)[2]
    matched = m.reconstruct_pixels(x01, mask, matched=True)[2]
    assert plain[mask].mean() > 1e-3 and matched.max() < 1e-9
    rec = reconstruct(build_model("mae_fmnist_micro").eval(), x01[0], mask[0])
    assert rec.mse_hidden_matched > 0 and rec.mse_hidden_matched != rec.mse_hidden
    normpix = build_model("mae_fmnist_micro", norm_pix_loss=True).eval()
    r2 = reconstruct(normpix, x01[0], mask[0])
    assert r2.mse_hidden_matched == r2.mse_hidden  # norm-pix errors are already matched


def test_evaluate_scores_the_baseline_on_the_same_masks():
    import torch
    from mae_core.baselines import baseline_errors
    from mae_core.masking import random_mask
    from mae_core.metrics import evaluate
    from mae_core.model import build_model
    torch.manual_seed(0)
    m = build_model("mae_fmnist_micro").eval()
    x = torch.rand(30, 1, 28, 28)
    ev = evaluate(m, x, 0.75, seed=3, batch_size=12, baseline=True)
    g = torch.Generator().manual_seed(3)
    masks = torch.cat([random_mask(len(x[i:i + 12]), 7, 0.75, seed=g) for i in range(0, 30, 12)])
    assert ev["eval_harmonic_mse"] == pytest.approx(baseline_errors(m, x, masks).mean(), rel=1e-6)
    assert "eval_harmonic_mse" not in evaluate(m, x, 0.75)


def test_a_single_colour_image_compares_with_the_classical_fill_without_dividing_by_zero():
    # a black upload: harmonic inpainting of a constant image is exact (error 0)
    model, _ = load_model("fmnist_r75")
    black = torch.zeros(1, 28, 28)
    mask = np.zeros(49, dtype=bool)
    mask[:37] = True
    rec = reconstruct(model, black, mask)
    _, base_mse, _ = baseline_reconstruction(model, black, mask)
    assert base_mse == 0.0
    text = versus_classical(rec.mse_hidden, base_mse)
    assert "exact" in text or "like the classical fill" in text
    assert versus_classical(0.0, 0.0).endswith("easy to guess.")
    assert "25% below" in versus_classical(0.03, 0.04) and "50% above" in versus_classical(0.06, 0.04, "shape")
