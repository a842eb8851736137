"""The Masked Autoencoder of He et al. (arXiv 2111.06377), built from timm's layers.

Follows facebookresearch/mae ``models_mae.py`` closely (same parameter names, so official weights load
as they are), with two generalisations the app needs:

* an explicit mask may be given instead of a ratio, and samples in one batch may hide different numbers
  of patches (the encoder then pads the visible tokens and masks the padding out of attention);
* channels, image and patch sizes and pixel normalisation are config values, nothing assumes RGB.

Mask contract (same as the official code): shape (N, L), row-major patch order, 1 = hidden, 0 = visible.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block

from . import masking

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)


def _short(value, limit: int = 24) -> str:
    """A value for an error message, cut short: a file's contents are never echoed at length."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit - 1] + "…"


def _block_params(dim: int, mlp_ratio: float) -> int:
    """Parameters of one timm ``Block`` (qkv with bias, no layer scale)."""
    hidden = int(dim * mlp_ratio)
    return (2 * dim                       # norm1
            + 3 * dim * dim + 3 * dim     # qkv
            + dim * dim + dim             # proj
            + 2 * dim                     # norm2
            + dim * hidden + hidden       # fc1
            + hidden * dim + dim)         # fc2


@dataclass
class MAEConfig:
    img_size: int = 28
    patch_size: int = 4
    in_chans: int = 1
    embed_dim: int = 192
    depth: int = 6
    num_heads: int = 3
    decoder_embed_dim: int = 128
    decoder_depth: int = 2
    decoder_num_heads: int = 4
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6  # official MAE: LayerNorm(eps=1e-6); Hugging Face ViTMAE defaults to 1e-12
    norm_pix_loss: bool = False
    pixel_mean: tuple = FASHION_MNIST_MEAN
    pixel_std: tuple = FASHION_MNIST_STD

    def __post_init__(self):
        self.pixel_mean = tuple(float(v) for v in self.pixel_mean)
        self.pixel_std = tuple(float(v) for v in self.pixel_std)
        problems = []
        for name in ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads",
                     "decoder_embed_dim", "decoder_depth", "decoder_num_heads"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {_short(value)}")
        if not problems:
            if self.img_size % self.patch_size:
                problems.append(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
            if self.embed_dim % self.num_heads:
                problems.append(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
            if self.decoder_embed_dim % self.decoder_num_heads:
                problems.append(f"decoder_embed_dim {self.decoder_embed_dim} is not divisible by "
                                f"decoder_num_heads {self.decoder_num_heads}")
            if self.embed_dim % 4 or self.decoder_embed_dim % 4:
                problems.append("embed_dim and decoder_embed_dim must be multiples of 4 (2-D sin-cos embedding)")
            if len(self.pixel_mean) != self.in_chans or len(self.pixel_std) != self.in_chans:
                problems.append(f"pixel_mean/pixel_std need {self.in_chans} value(s) (one per channel), got "
                                f"{len(self.pixel_mean)}/{len(self.pixel_std)}")
            if any(s <= 0 for s in self.pixel_std):
                problems.append("pixel_std values must be positive")
        if problems:
            raise ValueError("invalid MAE config: " + "; ".join(problems))

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size ** 2

    @property
    def patch_dim(self) -> int:
        return self.patch_size ** 2 * self.in_chans

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["pixel_mean"] = list(self.pixel_mean)
        d["pixel_std"] = list(self.pixel_std)
        return d

    # -- sizes, from the configuration alone (nothing allocated): what a server checks before building a model --
    def param_count(self, decoder: bool = True) -> int:
        """Every tensor of the MAE's state dict (learned parameters and the fixed position tables); tested against
        the built model. ``decoder=False``: the encoder's alone."""
        L, pdim, D, Dd = self.num_patches, self.patch_dim, self.embed_dim, self.decoder_embed_dim
        enc = pdim * D + D + D + (L + 1) * D + self.depth * _block_params(D, self.mlp_ratio) + 2 * D
        if not decoder:
            return int(enc)
        dec = (D * Dd + Dd + Dd + (L + 1) * Dd + self.decoder_depth * _block_params(Dd, self.mlp_ratio) + 2 * Dd
               + Dd * pdim + pdim)
        return int(enc + dec)

    def activation_bytes(self) -> int:
        """A rough upper estimate of one image's forward-pass memory in float32: the largest block's tokens times
        their widths (attention, MLP) plus its attention matrix, for the encoder on all tokens and the decoder."""
        T = self.num_patches + 1

        def block(dim, heads):
            return T * dim * (6 + 2 * self.mlp_ratio) + heads * T * T
        return int(4 * (T * self.patch_dim * 2 + max(block(self.embed_dim, self.num_heads),
                                                      block(self.decoder_embed_dim, self.decoder_num_heads))))

    @classmethod
    def from_dict(cls, d: dict) -> "MAEConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            shown = ", ".join(_short(k) for k in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise ValueError(f"unknown MAE config keys: {shown}")
        return cls(**d)


_OFFICIAL_RGB = dict(in_chans=3, pixel_mean=IMAGENET_MEAN, pixel_std=IMAGENET_STD, norm_eps=1e-6,
                     decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0)

PRESETS: dict[str, dict] = {
    # Small models for the bundled data. 28 px / patch 4 gives a 7x7 grid: fine enough to paint on.
    "mae_fmnist_tiny": dict(img_size=28, patch_size=4, in_chans=1, embed_dim=192, depth=6, num_heads=3,
                            decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4,
                            pixel_mean=FASHION_MNIST_MEAN, pixel_std=FASHION_MNIST_STD),
    "mae_fmnist_micro": dict(img_size=28, patch_size=4, in_chans=1, embed_dim=64, depth=2, num_heads=2,
                             decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2,
                             pixel_mean=FASHION_MNIST_MEAN, pixel_std=FASHION_MNIST_STD),
    "mae_photo_small": dict(img_size=64, patch_size=8, in_chans=3, embed_dim=192, depth=6, num_heads=3,
                            decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4,
                            pixel_mean=IMAGENET_MEAN, pixel_std=IMAGENET_STD),
    # The official configurations (facebookresearch/mae models_mae.py).
    "mae_vit_base_patch16": dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, **_OFFICIAL_RGB),
    "mae_vit_large_patch16": dict(img_size=224, patch_size=16, embed_dim=1024, depth=24, num_heads=16, **_OFFICIAL_RGB),
    "mae_vit_huge_patch14": dict(img_size=224, patch_size=14, embed_dim=1280, depth=32, num_heads=16, **_OFFICIAL_RGB),
}


class ModelTooLarge(ValueError):
    """A configuration larger than the caller's ``Limits`` allow."""


@dataclass(frozen=True)
class Limits:
    """What a caller lets ``load_model`` read and build: the largest model (parameters), one image's estimated
    activation memory, and the largest weights file. The library's defaults fit any published MAE (ViT-H: 0.66 B
    parameters); a classroom server passes its operator's (``classroom.policy.current().limits``), whose messages
    name the setting to change (``names``)."""
    max_params: int = 1_000_000_000
    max_activation_bytes: int = 2048 * 2**20
    max_checkpoint_bytes: int = 4096 * 2**20
    names: tuple = ("Limits.max_params", "Limits.max_activation_bytes", "Limits.max_checkpoint_bytes")

    def check(self, config: "MAEConfig", source: str = "this model") -> int:
        """Raise ``ModelTooLarge`` if building ``config`` would exceed these limits; returns its parameter count.
        Computed from the configuration alone, before any tensor of the model exists."""
        v = config.mlp_ratio
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v <= 64):
            raise ModelTooLarge(f"{source}: mlp_ratio must be between 0 and 64")
        n = config.param_count()
        if n > self.max_params:
            raise ModelTooLarge(f"{source}: its configuration declares {n / 1e6:,.0f}M parameters; this server builds "
                                f"models of at most {self.max_params / 1e6:,.0f}M ({self.names[0]})")
        a = config.activation_bytes()
        if a > self.max_activation_bytes:
            raise ModelTooLarge(f"{source}: one image would need about {a / 2**20:,.0f} MB of activations "
                                f"({config.img_size}px in {config.patch_size}px patches); the limit is "
                                f"{self.max_activation_bytes / 2**20:,.0f} MB ({self.names[1]})")
        return n


def preset_config(name: str, **overrides) -> MAEConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return MAEConfig(**{**PRESETS[name], **overrides})


# --------------------------------------------------------------------------------------------------
# Fixed 2-D sin-cos position embeddings (MoCo v3 / official MAE util/pos_embed.py semantics)
# --------------------------------------------------------------------------------------------------

def _sincos_1d(embed_dim: int, pos: np.ndarray) -> np.ndarray:
    omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_pos_embed_2d(embed_dim: int, grid_size: int, cls_token: bool = True) -> np.ndarray:
    """(grid*grid [+1], embed_dim); the first half of the channels encodes the column (w), the second the row (h)."""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # w goes first, as in the official code
    emb = np.concatenate([_sincos_1d(embed_dim // 2, grid[0]), _sincos_1d(embed_dim // 2, grid[1])], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)
    return emb.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# patchify / unpatchify
# --------------------------------------------------------------------------------------------------

def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, p*p*C), row-major patches, pixels in (p, q, c) order as official."""
    n, c, h, w = imgs.shape
    p = patch_size
    if h != w or h % p:
        raise ValueError(f"images must be square with a side divisible by {p}, got {h}x{w}")
    g = h // p
    x = imgs.reshape(n, c, g, p, g, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, g * g, p * p * c)


def unpatchify(x: torch.Tensor, patch_size: int, in_chans: int) -> torch.Tensor:
    """(N, L, p*p*C) -> (N, C, H, W)."""
    n, l, d = x.shape
    p = patch_size
    g = int(round(math.sqrt(l)))
    if g * g != l or d != p * p * in_chans:
        raise ValueError(f"cannot unpatchify shape {tuple(x.shape)} with patch {p} and {in_chans} channel(s)")
    x = x.reshape(n, g, g, p, p, in_chans)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(n, in_chans, g * p, g * p)


def patch_norm_stats(target: torch.Tensor, eps: float = 1e-6):
    """Per-patch mean and std as the norm-pix loss uses them (unbiased variance, as official)."""
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return mean, (var + eps) ** 0.5


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------

@dataclass
class MAEOutput:
    loss: torch.Tensor          # scalar: MSE over hidden patches (NaN when nothing is hidden)
    pred: torch.Tensor          # (N, L, p*p*C) in the target space (normalised pixels, or per-patch normalised)
    mask: torch.Tensor          # (N, L) float, 1 = hidden
    latent: Optional[torch.Tensor] = field(default=None, repr=False)  # (N, 1 + Lk, D) encoder output


def _block_supports_attn_mask() -> bool:
    return "attn_mask" in inspect.signature(Block.forward).parameters


class MaskedAutoencoderViT(nn.Module):
    """MAE with a ViT encoder that sees visible patches only and a light decoder with mask tokens."""

    def __init__(self, config: MAEConfig):
        super().__init__()
        self.config = c = config
        self.card: dict = {}
        norm_layer = partial(nn.LayerNorm, eps=c.norm_eps)

        # encoder
        self.patch_embed = PatchEmbed(c.img_size, c.patch_size, c.in_chans, c.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.num_patches + 1, c.embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([
            Block(c.embed_dim, c.num_heads, c.mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(c.depth)])
        self.norm = norm_layer(c.embed_dim)

        # decoder
        self.decoder_embed = nn.Linear(c.embed_dim, c.decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, c.num_patches + 1, c.decoder_embed_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(c.decoder_embed_dim, c.decoder_num_heads, c.mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(c.decoder_depth)])
        self.decoder_norm = norm_layer(c.decoder_embed_dim)
        self.decoder_pred = nn.Linear(c.decoder_embed_dim, c.patch_dim, bias=True)

        self.register_buffer("pixel_mean", torch.tensor(c.pixel_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(c.pixel_std).view(1, -1, 1, 1), persistent=False)
        self.has_decoder = True  # False for encoder-only weights (see checkpoints.py)
        self._attn_mask_ok = _block_supports_attn_mask()
        self.initialize_weights()

    # -- init ------------------------------------------------------------------------------------
    def initialize_weights(self):
        c = self.config
        self.pos_embed.data.copy_(torch.from_numpy(sincos_pos_embed_2d(c.embed_dim, c.grid_size)).unsqueeze(0))
        self.decoder_pos_embed.data.copy_(
            torch.from_numpy(sincos_pos_embed_2d(c.decoder_embed_dim, c.grid_size)).unsqueeze(0))
        # the patch projection is initialised like a linear layer on the flattened patch
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # -- pixels ----------------------------------------------------------------------------------
    def normalize(self, imgs01: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the model's input space."""
        return (imgs01 - self.pixel_mean) / self.pixel_std

    def denormalize(self, imgs: torch.Tensor) -> torch.Tensor:
        return imgs * self.pixel_std + self.pixel_mean

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        return patchify(imgs, self.config.patch_size)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        return unpatchify(x, self.config.patch_size, self.config.in_chans)

    def target(self, imgs: torch.Tensor) -> torch.Tensor:
        target = self.patchify(imgs)
        if self.config.norm_pix_loss:
            mean, std = patch_norm_stats(target)
            target = (target - mean) / std
        return target

    def pred_to_images(self, pred: torch.Tensor, imgs: torch.Tensor) -> torch.Tensor:
        """Predictions -> normalised images. For a norm-pix model each patch is re-scaled with the mean and
        std of the true patch (the only way to show colours; the model itself never predicts them)."""
        if self.config.norm_pix_loss:
            mean, std = patch_norm_stats(self.patchify(imgs))
            pred = pred * std + mean
        return self.unpatchify(pred)

    @torch.no_grad()
    def reconstruct_pixels(self, imgs01: torch.Tensor, mask, matched: bool = False):
        """Images in [0, 1] and a mask -> (model output, reconstruction in [0, 1] pixel units (not clamped),
        per-patch MSE against the input in those units (N, L)). The one place that turns predictions back
        into pixels for metrics and pictures alike.

        ``matched=True`` gives every model the norm-pix treatment (see ``pixels_from_pred``), so a norm-pix model's
        error (which always uses the true statistics) can be compared with a pixel model's."""
        x = self.normalize(imgs01)
        out = self(x, mask=mask)
        rec01, per_patch = self.pixels_from_pred(out.pred, imgs01, x, matched)
        return out, rec01, per_patch

    def pixels_from_pred(self, pred: torch.Tensor, imgs01: torch.Tensor, x: Optional[torch.Tensor] = None,
                         matched: bool = False):
        """Predictions (N, L, D) -> (images in [0, 1] pixel units, per-patch MSE against ``imgs01``). ``matched``:
        a pixel-target model's predicted patches are first normalised by their own mean and std, then every
        model's patches take the true patch's mean and std, so the error measures each patch's *shape* only, the
        same way for both kinds of model."""
        x = self.normalize(imgs01) if x is None else x
        if matched and not self.config.norm_pix_loss:
            mean, std = patch_norm_stats(pred)
            mean_t, std_t = patch_norm_stats(self.patchify(x))
            rec = self.unpatchify((pred - mean) / std * std_t + mean_t)
        else:
            rec = self.pred_to_images(pred, x)
        rec01 = self.denormalize(rec)
        return rec01, ((self.patchify(rec01) - self.patchify(imgs01)) ** 2).mean(-1)

    def mask_to_pixels(self, mask: torch.Tensor) -> torch.Tensor:
        """(N, L) patch mask -> (N, C, H, W) bool pixel mask."""
        m = mask.to(torch.float32).unsqueeze(-1).expand(-1, -1, self.config.patch_dim)
        return self.unpatchify(m).bool()

    # -- masking ---------------------------------------------------------------------------------
    def _check_imgs(self, imgs: torch.Tensor):
        c = self.config
        if imgs.ndim != 4 or imgs.shape[1] != c.in_chans or imgs.shape[2] != c.img_size or imgs.shape[3] != c.img_size:
            raise ValueError(f"expected images of shape (N, {c.in_chans}, {c.img_size}, {c.img_size}), "
                             f"got {tuple(imgs.shape)}")

    def _check_mask(self, mask: torch.Tensor, n: int) -> torch.Tensor:
        L = self.config.num_patches
        if not isinstance(mask, torch.Tensor):
            mask = torch.as_tensor(np.asarray(mask))
        if mask.ndim == 1:
            mask = mask.unsqueeze(0)
        if mask.ndim != 2 or mask.shape[1] != L or mask.shape[0] not in (1, n):
            raise ValueError(f"mask must have shape ({n}, {L}) (1 = hidden), got {tuple(mask.shape)}")
        if mask.dtype != torch.bool and not torch.all((mask == 0) | (mask == 1)):
            raise ValueError("mask values must be 0 (visible) or 1 (hidden)")
        return mask.to(torch.bool).expand(n, L)

    random_keep_ids = staticmethod(masking.random_keep_ids)  # the one random-masking function

    # -- encoder ---------------------------------------------------------------------------------
    def _run_blocks(self, blocks, x, key_valid: Optional[torch.Tensor]):
        if key_valid is None:
            for blk in blocks:
                x = blk(x)
            return x
        if not self._attn_mask_ok:  # pragma: no cover - older timm without attn_mask
            raise RuntimeError("this timm version cannot mask attention; upgrade timm (>= 1.0.20)")
        attn_mask = key_valid[:, None, None, :]  # (N, 1, 1, S): True = may be attended to
        for blk in blocks:
            x = blk(x, attn_mask=attn_mask)
        return x

    def forward_encoder(self, imgs: torch.Tensor, ids_keep: torch.Tensor, keep_valid: Optional[torch.Tensor]):
        """Encode the kept patches. ids_keep: (N, Lk) patch indices fed to the encoder, in any order;
        keep_valid: (N, Lk) bool, False for padding slots (None when every slot is real)."""
        x = self.patch_embed(imgs)
        x = x + self.pos_embed[:, 1:, :]
        x = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        key_valid = None
        if keep_valid is not None:
            key_valid = torch.cat([torch.ones_like(keep_valid[:, :1]), keep_valid], dim=1)
        x = self._run_blocks(self.blocks, x, key_valid)
        return self.norm(x)

    def forward_decoder(self, latent: torch.Tensor, ids_keep: torch.Tensor, keep_valid: Optional[torch.Tensor]):
        n, lk = ids_keep.shape
        L = self.config.num_patches
        x = self.decoder_embed(latent)
        # Put every encoded token back at its patch position; hidden (and padded) positions get the mask token.
        seq = torch.cat([x[:, 1:, :], self.mask_token.expand(n, L, -1)], dim=1)   # (N, Lk + L, D)
        # src[n, j] = which entry of seq goes to patch j. An extra dummy column L absorbs padded slots.
        src = (lk + torch.arange(L + 1, device=x.device)).expand(n, L + 1).clone()
        slots = torch.arange(lk, device=x.device).expand(n, lk)
        dest = ids_keep if keep_valid is None else torch.where(keep_valid, ids_keep, L)
        src.scatter_(1, dest, slots)
        src = src[:, :L]
        x_ = torch.gather(seq, 1, src.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        x = self._run_blocks(self.decoder_blocks, x, None)
        x = self.decoder_norm(x)
        return self.decoder_pred(x)[:, 1:, :]

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        loss = ((pred - self.target(imgs)) ** 2).mean(dim=-1)  # per-patch MSE
        return (loss * mask).sum() / mask.sum()                 # hidden patches only (NaN if none)

    # -- public API ------------------------------------------------------------------------------
    def ids_from_mask(self, mask: torch.Tensor):
        """(N, L) bool mask -> ids_keep (N, Lk) ascending visible indices, keep_valid (None if all rows equal)."""
        visible = ~mask
        counts = visible.sum(1)
        lk = int(counts.max()) if counts.numel() else 0
        order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)  # visible first, ascending
        ids_keep = order[:, :lk]
        if bool((counts == lk).all()):
            return ids_keep, None
        keep_valid = torch.arange(lk, device=mask.device).unsqueeze(0) < counts.unsqueeze(1)
        return ids_keep, keep_valid

    def forward(self, imgs: torch.Tensor, mask=None, mask_ratio: float = 0.75,
                generator: Optional[torch.Generator] = None) -> MAEOutput:
        """imgs: (N, C, H, W) normalised images. An explicit mask (N, L) or (L,) wins over mask_ratio."""
        self._check_imgs(imgs)
        n, L = imgs.shape[0], self.config.num_patches
        if mask is not None:
            mask_b = self._check_mask(mask, n).to(imgs.device)
            ids_keep, keep_valid = self.ids_from_mask(mask_b)
        else:
            ids_keep = masking.random_keep_ids(n, L, mask_ratio, generator, imgs.device)
            keep_valid = None
            mask_b = masking.keep_ids_to_mask(ids_keep, L)
        if not self.has_decoder:
            raise RuntimeError(
                "these weights hold only the encoder, so they cannot reconstruct. Load a decoder-bearing file "
                "instead: an official 'mae_visualize_vit_*.pth' or 'mae_pretrain_vit_*_full.pth', a Hugging Face "
                "ViTMAEForPreTraining folder, or one of our own checkpoints.")
        latent = self.forward_encoder(imgs, ids_keep, keep_valid)
        pred = self.forward_decoder(latent, ids_keep, keep_valid)
        mask_f = mask_b.to(pred.dtype)
        loss = self.forward_loss(imgs, pred, mask_f)
        return MAEOutput(loss=loss, pred=pred, mask=mask_f, latent=latent)

    @torch.no_grad()
    def encode(self, imgs: torch.Tensor, mask=None, pool: str = "cls") -> torch.Tensor:
        """Encoder features, without gradients (embeddings, probes): pool='cls' (cls token), 'mean' (mean of
        visible patch tokens) or 'both' (the two concatenated). Without a mask the encoder sees every patch."""
        return self.features(imgs, mask, pool)

    def features(self, imgs: torch.Tensor, mask=None, pool: str = "cls") -> torch.Tensor:
        """``encode`` with gradients, for fine-tuning the encoder."""
        self._check_imgs(imgs)
        n, L = imgs.shape[0], self.config.num_patches
        if mask is None:
            mask_b = torch.zeros(n, L, dtype=torch.bool, device=imgs.device)
        else:
            mask_b = self._check_mask(mask, n).to(imgs.device)
        ids_keep, keep_valid = self.ids_from_mask(mask_b)
        latent = self.forward_encoder(imgs, ids_keep, keep_valid)
        cls, tokens = latent[:, 0], latent[:, 1:]
        if keep_valid is None:
            mean = tokens.mean(1) if tokens.shape[1] else torch.zeros_like(cls)
        else:
            w = keep_valid.to(tokens.dtype).unsqueeze(-1)
            mean = (tokens * w).sum(1) / w.sum(1).clamp(min=1)
        if pool == "cls":
            return cls
        if pool == "mean":
            return mean
        if pool == "both":
            return torch.cat([cls, mean], dim=1)
        raise ValueError(f"pool must be 'cls', 'mean' or 'both', got {pool!r}")

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_model(config_or_preset, **overrides) -> MaskedAutoencoderViT:
    if isinstance(config_or_preset, str):
        config = preset_config(config_or_preset, **overrides)
    elif isinstance(config_or_preset, MAEConfig):
        config = dataclasses.replace(config_or_preset, **overrides) if overrides else config_or_preset
    else:
        raise TypeError("build_model takes a preset name or an MAEConfig")
    return MaskedAutoencoderViT(config)
