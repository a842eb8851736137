import dataclasses

import numpy as np
import pytest
import torch

from mae_core.masking import random_mask
from mae_core.model import (MAEConfig, MaskedAutoencoderViT, build_model, patchify, preset_config,
                            sincos_pos_embed_2d, unpatchify)
from reference_mae import OfficialMAE


def _reference_for(model: MaskedAutoencoderViT) -> OfficialMAE:
    c = model.config
    ref = OfficialMAE(c.img_size, c.patch_size, c.in_chans, c.embed_dim, c.depth, c.num_heads, c.decoder_embed_dim,
                      c.decoder_depth, c.decoder_num_heads, c.mlp_ratio, norm_pix_loss=c.norm_pix_loss)
    ref.load_state_dict(model.state_dict())
    return ref.eval()


@pytest.mark.parametrize("norm_pix", [False, True])
@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.0])
def test_matches_official_code_for_same_weights_and_mask(tiny_config, norm_pix, ratio):
    torch.manual_seed(1)
    model = MaskedAutoencoderViT(dataclasses.replace(tiny_config, norm_pix_loss=norm_pix)).eval()
    with torch.no_grad():  # perturb every weight so equality is not an accident of the init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ref = _reference_for(model)
    imgs = torch.randn(3, 3, 16, 16)
    noise = torch.rand(3, 16)
    with torch.no_grad():
        loss_r, pred_r, mask_r = ref(imgs, ratio, noise)
        if ratio == 0.0:
            mask_r = torch.zeros_like(mask_r)
        out = model(imgs, mask=mask_r)
    assert torch.equal(out.mask, mask_r)
    torch.testing.assert_close(out.pred, pred_r, rtol=1e-5, atol=1e-5)
    if ratio > 0:
        torch.testing.assert_close(out.loss, loss_r, rtol=1e-5, atol=1e-6)
    else:
        assert torch.isnan(out.loss)  # nothing hidden: the masked MSE is undefined


def test_random_masking_with_generator_matches_official(tiny_model):
    ref = _reference_for(tiny_model)
    imgs = torch.randn(4, 3, 16, 16)
    g = torch.Generator().manual_seed(7)
    noise = torch.rand(4, 16, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = tiny_model(imgs, mask_ratio=0.75, generator=g)
        loss_r, pred_r, mask_r = ref(imgs, 0.75, noise)
    assert torch.equal(out.mask, mask_r)
    torch.testing.assert_close(out.pred, pred_r, rtol=1e-5, atol=1e-5)
    # and the standalone mask maker gives the same mask from the same seed
    assert torch.equal(random_mask(4, 4, 0.75, seed=7), mask_r.bool())


def test_output_contract_shapes_and_counts(tiny_model):
    imgs = torch.randn(5, 3, 16, 16)
    out = tiny_model(imgs, mask_ratio=0.75)
    assert out.pred.shape == (5, 16, 4 * 4 * 3)
    assert out.mask.shape == (5, 16)
    assert out.loss.ndim == 0
    assert torch.all(out.mask.sum(1) == 16 - int(16 * 0.25))


def test_explicit_mask_wins_over_ratio(tiny_model):
    imgs = torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :3] = True
    out = tiny_model(imgs, mask=mask, mask_ratio=0.9)
    assert torch.equal(out.mask.bool(), mask)


def test_variable_hidden_counts_in_one_batch_equal_per_sample_runs(tiny_model):
    imgs = torch.randn(4, 3, 16, 16)
    mask = torch.zeros(4, 16, dtype=torch.bool)
    mask[0, [1, 5, 9]] = True           # 3 hidden
    mask[1, :] = True; mask[1, 7] = False  # 15 hidden
    mask[2, ::2] = True                 # 8 hidden
    mask[3, :] = True                   # everything hidden
    with torch.no_grad():
        batch = tiny_model(imgs, mask=mask)
        for i in range(4):
            single = tiny_model(imgs[i:i + 1], mask=mask[i:i + 1])
            torch.testing.assert_close(batch.pred[i:i + 1], single.pred, rtol=1e-5, atol=1e-5)
        feats = tiny_model.encode(imgs, mask=mask, pool="mean")
        for i in range(3):
            torch.testing.assert_close(feats[i:i + 1], tiny_model.encode(imgs[i:i + 1], mask=mask[i:i + 1], pool="mean"),
                                       rtol=1e-5, atol=1e-5)


def test_results_do_not_depend_on_visible_token_order(tiny_model):
    imgs = torch.randn(2, 3, 16, 16)
    mask = random_mask(2, 4, 0.5, seed=3)
    ids_keep, _ = tiny_model.ids_from_mask(mask)
    shuffled = ids_keep[:, torch.randperm(ids_keep.shape[1])]
    with torch.no_grad():
        a = tiny_model.forward_decoder(tiny_model.forward_encoder(imgs, ids_keep, None), ids_keep, None)
        b = tiny_model.forward_decoder(tiny_model.forward_encoder(imgs, shuffled, None), shuffled, None)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_loss_counts_hidden_patches_only(tiny_model):
    imgs = torch.randn(2, 3, 16, 16)
    mask = random_mask(2, 4, 0.75, seed=0)
    with torch.no_grad():
        out = tiny_model(imgs, mask=mask)
        target = tiny_model.target(imgs)
        per_patch = ((out.pred - target) ** 2).mean(-1)
        manual = per_patch[mask].mean()
    torch.testing.assert_close(out.loss, manual)
    # changing the pixels of a visible patch's target cannot change the loss through the target
    assert not torch.allclose(per_patch[~mask].mean(), manual)


def test_norm_pix_target_is_per_patch_standardised(tiny_config):
    m = MaskedAutoencoderViT(dataclasses.replace(tiny_config, norm_pix_loss=True))
    imgs = torch.rand(2, 3, 16, 16) * 3 + 1
    t = m.target(imgs)
    torch.testing.assert_close(t.mean(-1), torch.zeros(2, 16), atol=1e-5, rtol=0)
    # unbiased variance, as official: the unbiased std of each target patch is 1 (up to eps)
    torch.testing.assert_close(t.std(-1, unbiased=True), torch.ones(2, 16), atol=1e-3, rtol=0)
    # pred_to_images undoes it exactly when the prediction equals the target
    torch.testing.assert_close(m.pred_to_images(t, imgs), imgs, atol=1e-4, rtol=0)


def test_patchify_roundtrip_and_layout():
    imgs = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    x = patchify(imgs, 4)
    assert x.shape == (2, 4, 16)
    assert torch.equal(x[0, 1], imgs[0, 0, :4, 4:].reshape(-1))  # second patch = top-right, row-major
    assert torch.equal(unpatchify(x, 4, 1), imgs)
    rgb = torch.randn(3, 3, 12, 12)
    assert torch.equal(unpatchify(patchify(rgb, 3), 3, 3), rgb)


def test_sincos_embedding_values():
    e = sincos_pos_embed_2d(8, 3, cls_token=True)
    assert e.shape == (10, 8)
    assert np.all(e[0] == 0)
    # patch (row 0, col 1): first half encodes the column (w), second half the row (h)
    w_half = e[1 + 1, :4]
    np.testing.assert_allclose(w_half, [np.sin(1.0), np.sin(1.0 / 100), np.cos(1.0), np.cos(1.0 / 100)], rtol=1e-6)
    np.testing.assert_allclose(e[1 + 1, 4:], [0, 0, 1, 1], atol=1e-7)


def test_init_follows_official(tiny_model):
    c = tiny_model.config
    assert torch.all(tiny_model.decoder_pred.bias == 0)
    assert not tiny_model.pos_embed.requires_grad and not tiny_model.decoder_pos_embed.requires_grad
    np.testing.assert_allclose(tiny_model.pos_embed[0].numpy(), sincos_pos_embed_2d(c.embed_dim, c.grid_size))
    torch.manual_seed(0)
    big = MaskedAutoencoderViT(dataclasses.replace(c, embed_dim=256, decoder_embed_dim=256, num_heads=4, decoder_num_heads=4))
    assert abs(float(big.cls_token.detach().std()) - 0.02) < 0.006
    assert abs(float(big.mask_token.detach().std()) - 0.02) < 0.006
    w = big.blocks[0].mlp.fc1.weight  # xavier uniform bound sqrt(6 / (fan_in + fan_out))
    bound = (6 / (w.shape[0] + w.shape[1])) ** 0.5
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound


def test_encoder_features(tiny_model):
    imgs = torch.randn(3, 3, 16, 16)
    assert tiny_model.encode(imgs, pool="cls").shape == (3, 32)
    assert tiny_model.encode(imgs, pool="mean").shape == (3, 32)
    both = tiny_model.encode(imgs, pool="both")
    assert both.shape == (3, 64)
    torch.testing.assert_close(both[:, :32], tiny_model.encode(imgs, pool="cls"))
    masked = tiny_model.encode(imgs, mask=random_mask(3, 4, 0.75, seed=1), pool="cls")
    assert not torch.allclose(masked, both[:, :32])
    with pytest.raises(ValueError, match="pool must be"):
        tiny_model.encode(imgs, pool="max")


def test_single_channel_model_and_presets():
    m = build_model("mae_fmnist_micro")
    out = m(torch.randn(2, 1, 28, 28))
    assert out.pred.shape == (2, 49, 16)
    for name in ("mae_vit_base_patch16", "mae_vit_large_patch16", "mae_vit_huge_patch14"):
        c = preset_config(name)
        assert (c.decoder_embed_dim, c.decoder_depth, c.decoder_num_heads) == (512, 8, 16)
    assert preset_config("mae_vit_huge_patch14").num_patches == 256


def test_bad_inputs_have_clear_errors(tiny_model):
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, 16, 16\)"):
        tiny_model(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 16\)"):
        tiny_model(torch.randn(2, 3, 16, 16), mask=torch.zeros(2, 15))
    with pytest.raises(ValueError, match="0 \\(visible\\) or 1 \\(hidden\\)"):
        tiny_model(torch.randn(1, 3, 16, 16), mask=torch.full((1, 16), 0.5))
    with pytest.raises(ValueError, match=r"mask ratio must be in \[0, 1\)"):
        tiny_model(torch.randn(1, 3, 16, 16), mask_ratio=1.0)
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        MAEConfig(img_size=30, patch_size=4)
    with pytest.raises(ValueError, match="pixel_mean/pixel_std need 3"):
        MAEConfig(in_chans=3, pixel_mean=(0.5,), pixel_std=(0.5,))
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("nope")
