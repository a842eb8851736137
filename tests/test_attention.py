"""Attention maps: weights recomputed from the model's own numerics, checked against the blocks' outputs."""
import numpy as np
import pytest
import torch

from mae_core.attention import attention_grid, attention_maps, attention_rollout, explicit_attention
from mae_core.explore import reconstruct
from mae_core.model import build_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("mae_fmnist_micro").eval()


def _mask(hidden=37, seed=0):
    m = np.zeros(49, bool)
    m[np.random.default_rng(seed).choice(49, hidden, replace=False)] = True
    return m


def test_shapes_and_rows_sum_to_one(model):
    img, mask = torch.rand(1, 28, 28), _mask()
    maps = attention_maps(model, img, mask)
    c = model.config
    assert len(maps.encoder) == c.depth and len(maps.decoder) == c.decoder_depth
    assert maps.encoder[0].shape == (c.num_heads, 1 + 12, 1 + 12)
    assert maps.decoder[0].shape == (c.decoder_num_heads, 50, 50)
    assert maps.visible.tolist() == np.flatnonzero(~mask).tolist()
    for w in maps.encoder + maps.decoder:
        assert torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5) and (w >= 0).all()
    grid, cls_share = attention_grid(maps, "encoder", block=-1, query="cls")
    assert grid.shape == (7, 7) and np.isnan(grid.reshape(-1)[mask]).all()       # hidden patches: never seen
    assert np.nansum(grid) + cls_share == pytest.approx(1.0, abs=1e-5)
    dec, _ = attention_grid(maps, "decoder", block=0, head=1, query=int(np.flatnonzero(mask)[0]))
    assert not np.isnan(dec).any()                                                # the decoder sees every patch


def test_recomputed_weights_give_each_blocks_attention_output(model):
    """The weights are the ones the forward pass used: weights @ v, projected, equals what timm's (fused)
    attention returned for the same input, block by block."""
    outs = []
    for blk in list(model.blocks) + list(model.decoder_blocks):
        def hook(module, args, output):
            w, mine = explicit_attention(module, args[0])
            outs.append((w, mine, output))
        h = blk.attn.register_forward_hook(hook)
        try:
            model(model.normalize(torch.rand(2, 1, 28, 28)), mask=torch.as_tensor(np.stack([_mask(), _mask(seed=1)])))
        finally:
            h.remove()
    assert len(outs) == model.config.depth + model.config.decoder_depth
    for w, mine, theirs in outs:
        assert torch.allclose(mine, theirs, atol=1e-5), (mine - theirs).abs().max()


def test_collecting_maps_does_not_change_the_outputs(model):
    img, mask = torch.rand(1, 28, 28), _mask()
    before = reconstruct(model, img, mask)
    attention_maps(model, img, mask)
    after = reconstruct(model, img, mask)
    assert torch.equal(before.reconstruction, after.reconstruction)
    assert all(not blk.attn._forward_hooks for blk in model.blocks)                # hooks removed


def test_forced_uniform_attention_is_uniform_and_rollout_stays_uniform():
    """Zero query and key projections make every logit equal: each query spreads its attention evenly."""
    torch.manual_seed(0)
    m = build_model("mae_fmnist_micro").eval()
    for blk in list(m.blocks) + list(m.decoder_blocks):
        d = blk.attn.attn_dim
        with torch.no_grad():
            blk.attn.qkv.weight[:2 * d] = 0
            blk.attn.qkv.bias[:2 * d] = 0
    mask = _mask(hidden=29)                                                        # 20 visible + cls = 21 tokens
    maps = attention_maps(m, torch.rand(1, 28, 28), mask)
    grid, cls_share = attention_grid(maps, "encoder", query=int(maps.visible[3]))
    assert cls_share == pytest.approx(1 / 21) and np.nanmax(np.abs(grid - 1 / 21)) < 1e-6
    # rollout of d uniform blocks, each mixed half-half with the residual identity: (1 - 2^-d) U + 2^-d I
    d = len(maps.encoder)
    roll = attention_rollout(maps.encoder)
    expected = (1 - 0.5 ** d) * torch.full((21, 21), 1 / 21) + 0.5 ** d * torch.eye(21)
    assert torch.allclose(roll, expected, atol=1e-6)
    g, cls_roll = attention_grid(maps, "encoder", query="cls", rollout=True)
    assert cls_roll == pytest.approx(float(expected[0, 0])) and np.nanmax(np.abs(g - float(expected[0, 1]))) < 1e-6
    dec, dcls = attention_grid(maps, "decoder", head=0, query="cls")
    assert np.abs(dec - 1 / 50).max() < 1e-6 and dcls == pytest.approx(1 / 50)


def test_rollout_of_one_block_is_half_identity():
    w = torch.tensor([[[0.5, 0.5], [0.2, 0.8]]])
    assert torch.allclose(attention_rollout([w]), torch.tensor([[0.75, 0.25], [0.1, 0.9]]))
    two = attention_rollout([w, w])
    assert torch.allclose(two, attention_rollout([w]) @ attention_rollout([w]))


def test_bad_requests_say_what_is_wrong(model):
    mask = _mask()
    maps = attention_maps(model, torch.rand(1, 28, 28), mask)
    hidden = int(np.flatnonzero(mask)[0])
    with pytest.raises(ValueError, match=f"patch {hidden} is hidden"):
        attention_grid(maps, "encoder", query=hidden)
    with pytest.raises(ValueError, match="block must be in 0..1"):
        attention_grid(maps, "encoder", block=5)
    with pytest.raises(ValueError, match="head must be in 0..1"):
        attention_grid(maps, "encoder", head=2)
    with pytest.raises(ValueError, match="part must be"):
        attention_grid(maps, "middle")
    with pytest.raises(ValueError, match="channel"):
        attention_maps(model, torch.rand(3, 28, 28), mask)
