"""Reading and writing weights. ``load_model(path_or_name)`` is the one door for every supported format:

1. our own: ``NAME.safetensors`` + ``NAME.json`` model card;
2. official facebookresearch/mae ``.pth`` files: ``{'model': sd}`` (visualize / ``_full``) and training
   checkpoints ``{'model', 'optimizer', 'epoch', 'scaler', 'args'}``;
3. Hugging Face ViTMAE folders (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``), with both
   the transformers 4.x and 5.x decoder key names;
4. encoder-only weights (official ``mae_pretrain_vit_*.pth``, timm ``*.mae``): embeddings only.

Nothing here unpickles code: ``.pth``/``.bin`` files go through ``torch.load(weights_only=True)`` with only
``argparse.Namespace`` allowed beyond tensors and plain containers.
"""
from __future__ import annotations

import sys
import argparse
import json
import math
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Optional, Union

import torch

from .atomic import atomic_write, atomic_write_json  # noqa: F401  (part of this module's API)
from .model import MAEConfig, MaskedAutoencoderViT, IMAGENET_MEAN, IMAGENET_STD, Limits, ModelTooLarge

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
FORMAT_VERSION = 1

# Official head counts by width (they cannot be read from tensor shapes).
OFFICIAL_HEADS = {768: 12, 1024: 16, 1280: 16}
OFFICIAL_DECODER_HEADS = {512: 16}


class CheckpointError(ValueError):
    """A weights file that cannot be loaded; the message says what is wrong with it."""


class CheckpointWarning(UserWarning):
    """A weights file that loads but should not be trusted as it is (e.g. NaN weights)."""


# --------------------------------------------------------------------------------------------------
# Our own format
# --------------------------------------------------------------------------------------------------

def _stem(path: Union[str, Path]) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


FIXED_TENSORS = ("pos_embed", "decoder_pos_embed")  # fixed sin-cos tables: always stored in float32


def save_model(model: MaskedAutoencoderViT, path: Union[str, Path], card: Optional[dict] = None,
               dtype: Optional[torch.dtype] = None) -> Path:
    """Write ``PATH.safetensors`` and ``PATH.json`` (the model card) atomically. Returns the .safetensors path.
    The weights are written first: a card always describes weights that are complete on disk. ``dtype``
    (e.g. torch.float16) stores the learned floating-point tensors at that precision, halving the file; they
    load back into float32."""
    from safetensors.torch import save

    stem = _stem(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: (v.to(dtype) if v.is_floating_point() and k not in FIXED_TENSORS else v) for k, v in state.items()}
    blob = save(state, metadata={"format": "mae_explorer", "version": str(FORMAT_VERSION)})
    weights = atomic_write(stem.with_suffix(".safetensors"), lambda f: f.write(blob))
    full_card = dict(card or {})
    full_card["format"] = "mae_explorer"
    full_card["format_version"] = FORMAT_VERSION
    full_card["config"] = model.config.to_dict()
    full_card["weights_dtype"] = str(dtype or torch.float32).replace("torch.", "")
    full_card.setdefault("name", stem.name)
    atomic_write_json(stem.with_suffix(".json"), full_card)
    return weights


def _safetensors_header(path: Path, limits: Limits) -> dict:
    """The header of a safetensors file (tensor name -> dtype, shape, offsets), read and checked without reading
    any tensor: every way it can be broken is a specific message."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    _check_file_size(path, size, limits)
    if size < 8:
        raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes, not even a header length)")
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        if hlen > size - 8:
            raise CheckpointError(f"{path}: truncated or not a safetensors file (header claims {hlen} bytes, "
                                  f"file has {size - 8})")
        if hlen > 100 * 2**20:  # safetensors' own limit
            raise CheckpointError(f"{path}: corrupt safetensors header (claims {hlen:,} bytes)")
        try:
            header = json.loads(f.read(hlen))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise CheckpointError(f"{path}: corrupt safetensors header (not valid JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    data_len = size - 8 - hlen
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offs = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)):
            raise CheckpointError(f"{path}: corrupt safetensors header (tensor {name!r} has no valid offsets)")
        if offs[1] > data_len or offs[0] > offs[1]:
            raise CheckpointError(f"{path}: truncated safetensors file: tensor {name!r} needs bytes up to "
                                  f"{offs[1]}, only {data_len} present")
    return {k: v for k, v in header.items() if k != "__metadata__"}


def _read_safetensors(path: Path, limits: Limits) -> dict:
    """Load a safetensors file, turning every way it can be broken into a specific message."""
    from safetensors.torch import load_file

    _safetensors_header(path, limits)
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for sizes that lie, bad dtypes, ...
        raise CheckpointError(f"{path}: corrupt safetensors file ({e})") from None


def _held_bytes(state: dict) -> int:
    return sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))


# Building a model costs 4 bytes a parameter. A file may hold its weights at half precision, so a real checkpoint's
# model costs about twice the file; a file much smaller than the model it declares is refused before anything is
# built (a 16-byte file declaring 0.8 B parameters cost 3 GB and 13-16 s when the check came after building).
BUILD_SLACK_BYTES = 64 * 2**20


def _check_weights_cover(config: MAEConfig, held_bytes: int, path, decoder: bool = True) -> None:
    need = config.param_count(decoder=decoder)
    if need * 4 > max(BUILD_SLACK_BYTES, 4 * held_bytes):
        raise CheckpointError(
            f"{path}: its configuration declares {need / 1e6:,.1f}M parameters ({need * 4 / 2**20:,.0f} MB to build) "
            f"but the file holds only {held_bytes / 2**20:,.1f} MB of weights; refused before building anything")


def _build(config: MAEConfig, path, held_bytes: int, limits: Limits, decoder: bool = True) -> MaskedAutoencoderViT:
    """The model for ``config``, after checking that its size is within this server's limits and that the file
    holds about the weights it declares (nothing is allocated for a configuration that is too large, nor for a
    few bytes of file that declare a big model)."""
    try:
        limits.check(config, str(path))
    except ModelTooLarge as e:
        raise CheckpointError(str(e)) from None
    _check_weights_cover(config, held_bytes, path, decoder)
    return MaskedAutoencoderViT(config)


def _check_file_size(path: Path, size: int, limits: Limits) -> None:
    limit = limits.max_checkpoint_bytes
    if size > limit:
        raise CheckpointError(f"{path}: {size / 2**20:,.0f} MB is larger than this server reads "
                              f"({limit / 2**20:,.0f} MB, {limits.names[2]})")


MAX_JSON_BYTES = 4 * 2**20  # model cards and configs are a few kB


def _read_small_json(path: Path, what: str):
    """A JSON file that describes a model (our card, a Hugging Face config): size checked before reading, and
    every way it can be broken is one message."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise CheckpointError(f"{path}: {what} is {size / 2**20:,.0f} MB; a real one is a few kB")
        return json.loads(path.read_text())
    except OSError as e:
        raise CheckpointError(f"{path}: {what} cannot be read ({e.strerror or type(e).__name__})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: {what} is not valid JSON "
                              f"({'nested too deeply' if isinstance(e, RecursionError) else str(e)[:80]})") from None


def _load_own(stem: Path, limits: Limits, **overrides):
    weights, card_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not card_path.is_file():
        raise CheckpointError(f"{weights}: model card {card_path.name} is missing beside the weights")
    card = _read_small_json(card_path, "the model card")
    if not isinstance(card, dict) or not isinstance(card.get("config"), dict):
        raise CheckpointError(f"{card_path}: the model card has no 'config' section")
    try:
        config = MAEConfig.from_dict({**card["config"], **overrides})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{card_path}: invalid config in the model card ({e})") from None
    header = _safetensors_header(weights, limits)    # sizes from the header alone, before the model or the tensors exist
    held = sum(info["data_offsets"][1] - info["data_offsets"][0] for info in header.values())
    model = _build(config, card_path, held, limits)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in _read_safetensors(weights, limits).items()}
    _load_state(model, state, weights)
    card = {**card, "source": str(weights)}
    return model, card


# --------------------------------------------------------------------------------------------------
# torch .pth / .bin files (never unpickling code)
# --------------------------------------------------------------------------------------------------

def safe_torch_load(path: Path, limits: Limits = Limits()):
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    _check_file_size(path, size, limits)
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: truncated or corrupt PyTorch file (broken zip archive)")
        _check_archive(path, limits)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        wanted = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", msg)
        if wanted:
            raise CheckpointError(
                f"{path}: refused: this pickle asks to run or build code ({wanted.group(1)}). It is not a plain "
                f"weights file; it was not executed.") from None
        detail = re.search(r"Unsupported (operand|class|persistent id)[^\n]*", msg)
        raise CheckpointError(f"{path}: not a valid PyTorch checkpoint "
                              f"({detail.group(0)[:120] if detail else 'unreadable pickle'})") from None
    except Exception as e:  # the unpickler raises many types (KeyError, RuntimeError, EOFError...) on garbage
        raise CheckpointError(f"{path}: truncated, corrupt or not a PyTorch checkpoint "
                              f"({str(e).splitlines()[0][:160]})") from None


def _check_archive(path: Path, limits: Limits) -> None:
    """Bound what unpacking a .pth archive could allocate: the sizes its entries declare, added up, before any
    entry is read (a few-kB file of compressed zeros must not expand to gigabytes)."""
    limit = limits.max_checkpoint_bytes
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: truncated or corrupt PyTorch file ({e})") from None
    if len(infos) > 100_000:
        raise CheckpointError(f"{path}: the archive holds {len(infos):,} entries; a checkpoint has far fewer")
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise CheckpointError(f"{path}: the archive unpacks to {total / 2**20:,.0f} MB, more than this server reads "
                              f"({limit / 2**20:,.0f} MB, {limits.names[2]})")


def _load_state(model: MaskedAutoencoderViT, state: dict, path, allow_missing_decoder: bool = False):
    """Strict load with messages that say what does not fit."""
    own = model.state_dict()
    if allow_missing_decoder:
        own = {k: v for k, v in own.items() if k in state or not _is_decoder_key(k)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if k in state
             and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shapes differ: " + ", ".join(f"{k} {a} vs model {b}" for k, a, b in wrong[:4]))
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
        raise CheckpointError(f"{path}: weights do not fit this MAE architecture ({'; '.join(parts)})")
    model.load_state_dict(state, strict=not allow_missing_decoder)


def _is_decoder_key(k: str) -> bool:
    return k.startswith(("decoder", "mask_token"))


def _count_blocks(state: dict, prefix: str, path="the file") -> int:
    """Number of blocks ``prefix0..prefixN-1`` in ``state``. The indices must run 0..N-1 without gaps, so a
    key such as ``blocks.300000.x`` cannot make anything loop or allocate 300,000 times."""
    ids = set()
    for k in state:
        if k.startswith(prefix):
            head = k[len(prefix):].split(".")[0]
            if not (head.isdigit() and len(head) <= 6):
                raise CheckpointError(f"{path}: key {k[:60]!r} has no valid block number")
            ids.add(int(head))
    if not ids:
        return 0
    n = max(ids) + 1
    if n != len(ids):
        missing = sorted(set(range(n)) - ids)
        raise CheckpointError(f"{path}: {prefix}N blocks are numbered up to {n - 1} but {len(missing):,} are "
                              f"missing (e.g. {prefix}{missing[0]}); the file is incomplete or not an MAE")
    return n


def _infer_config(state: dict, path, *, args=None, norm_eps: float = 1e-6, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                  **overrides) -> MAEConfig:
    """Sizes from tensor shapes (official key names); heads from presets or overrides."""
    if "patch_embed.proj.weight" not in state or "pos_embed" not in state:
        raise CheckpointError(f"{path}: not an MAE / ViT checkpoint (no patch_embed.proj.weight or pos_embed)")
    w = state["patch_embed.proj.weight"]
    embed_dim, in_chans, patch = int(w.shape[0]), int(w.shape[1]), int(w.shape[2])
    num_patches = int(state["pos_embed"].shape[1]) - 1
    grid = int(round(math.sqrt(num_patches)))
    if grid * grid != num_patches:
        raise CheckpointError(f"{path}: pos_embed has {num_patches} patch positions, not a square grid")
    depth = _count_blocks(state, "blocks.", path)
    has_decoder = "decoder_pred.weight" in state
    if depth and "blocks.0.mlp.fc1.weight" not in state:
        raise CheckpointError(f"{path}: weights do not fit this MAE architecture (blocks.0.mlp.fc1.weight is missing)")
    mlp_ratio = float(state["blocks.0.mlp.fc1.weight"].shape[0]) / embed_dim if depth else 4.0
    cfg = dict(img_size=grid * patch, patch_size=patch, in_chans=in_chans, embed_dim=embed_dim, depth=depth,
               mlp_ratio=mlp_ratio, norm_eps=norm_eps,
               pixel_mean=tuple(mean) if in_chans == 3 else (0.5,) * in_chans,
               pixel_std=tuple(std) if in_chans == 3 else (0.5,) * in_chans)
    if args is not None and getattr(args, "norm_pix_loss", None) is not None:
        cfg["norm_pix_loss"] = bool(args.norm_pix_loss)
    elif has_decoder and "norm_pix_loss" not in overrides:
        # The official visualize checkpoints use the pixel target, the *_full ones norm-pix; others can't tell.
        name = Path(str(path)).name
        if "visualize" in name:
            cfg["norm_pix_loss"] = False
        elif "_full" in name:
            cfg["norm_pix_loss"] = True
        else:
            raise CheckpointError(
                f"{path}: whether this decoder predicts raw or per-patch normalised pixels cannot be read from "
                f"the file; pass it, e.g. load_model(path, norm_pix_loss=True)")
    if has_decoder:
        cfg["decoder_embed_dim"] = int(state["decoder_embed.weight"].shape[0])
        cfg["decoder_depth"] = _count_blocks(state, "decoder_blocks.", path)
    else:  # placeholder decoder, never used for reconstruction
        cfg.update(decoder_embed_dim=512, decoder_depth=1, decoder_num_heads=16)
    cfg["num_heads"] = overrides.pop("num_heads", None) or OFFICIAL_HEADS.get(embed_dim)
    if has_decoder:
        cfg["decoder_num_heads"] = overrides.pop("decoder_num_heads", None) or \
            OFFICIAL_DECODER_HEADS.get(cfg["decoder_embed_dim"])
    else:
        overrides.pop("decoder_num_heads", None)
    unknown = [k for k in ("num_heads", "decoder_num_heads") if cfg.get(k) is None]
    if unknown:
        raise CheckpointError(
            f"{path}: head counts cannot be read from tensor shapes and widths {embed_dim}/"
            f"{cfg.get('decoder_embed_dim')} match no official preset; pass them, e.g. "
            f"load_model(path, num_heads=..., decoder_num_heads=...)")
    cfg.update(overrides)
    try:
        return MAEConfig(**cfg)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None


def _from_official_state(state: dict, path, source_format: str, limits: Limits, args=None, **overrides):
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith("module.") for k in state):  # saved from a DDP wrapper
        state = {k.removeprefix("module."): v for k, v in state.items()}
    if "cls_token" not in state and "patch_embed.proj.weight" in state:
        raise CheckpointError(f"{path}: a ViT without a cls token is not an MAE encoder")
    if "head.weight" in state or "fc_norm.weight" in state:
        # fine-tuned classifiers: keep the encoder, drop the head
        state = {k: v for k, v in state.items() if not k.startswith(("head.", "fc_norm."))}
    empty = next((k for k, v in state.items() if v.numel() == 0), None)
    if empty is not None:   # shapes are read as sizes below: a zero-byte tensor must not declare a huge model
        raise CheckpointError(f"{path}: tensor {empty} is empty (shape {tuple(state[empty].shape)}); not MAE weights")
    config = _infer_config(state, path, args=args, **overrides)
    has_decoder = "decoder_pred.weight" in state
    model = _build(config, path, _held_bytes(state), limits, decoder=has_decoder)
    # the fixed sin-cos tables may be missing: encoder-only files carry the encoder's only (the unused decoder keeps
    # its init), and transformers computes the decoder's at init; the built model has them, exactly
    state.setdefault("decoder_pos_embed", model.decoder_pos_embed.detach().clone())
    _load_state(model, state, path, allow_missing_decoder=not has_decoder)
    model.has_decoder = has_decoder
    card = {"format": source_format, "source": str(path), "config": config.to_dict(),
            "has_decoder": has_decoder}
    if args is not None:
        card["train_args"] = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    return model, card


def _load_pth(path: Path, limits: Limits, **overrides):
    obj = safe_torch_load(path, limits)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(obj).__name__}, not a dict of weights)")
    args = obj.get("args") if isinstance(obj.get("args"), argparse.Namespace) else None
    if "model" in obj and isinstance(obj["model"], dict):
        fmt = "official-mae-train" if "optimizer" in obj else "official-mae"
        state = obj["model"]
    elif "state_dict" in obj and isinstance(obj["state_dict"], dict):
        fmt, state = "state-dict", obj["state_dict"]
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        fmt, state = "state-dict", obj
    else:
        raise CheckpointError(f"{path}: a PyTorch file, but holds no model weights (keys: "
                              f"{', '.join(list(map(str, obj))[:6])})")
    if any(k.startswith(("vit.", "decoder.decoder_")) for k in state):
        return _from_hf_state(state, {}, path, limits, **overrides)
    if args is not None and getattr(args, "input_size", None) and "pos_embed" in state:
        n = int(state["pos_embed"].shape[1]) - 1
        p = int(state["patch_embed.proj.weight"].shape[2]) if "patch_embed.proj.weight" in state else None
        if p and int(round(math.sqrt(n))) * p != int(args.input_size):
            raise CheckpointError(f"{path}: args.input_size={args.input_size} disagrees with the weights' "
                                  f"{int(round(math.sqrt(n))) * p} px")
    return _from_official_state(state, path, fmt, limits, args=args, **overrides)


# --------------------------------------------------------------------------------------------------
# Hugging Face ViTMAE
# --------------------------------------------------------------------------------------------------

_HF_LAYER_PARTS = {  # official name -> the names used by the three ViTMAE layouts seen in the wild
    "attn.q": ("attention.attention.query", "attention.q_proj"),
    "attn.k": ("attention.attention.key", "attention.k_proj"),
    "attn.v": ("attention.attention.value", "attention.v_proj"),
    "attn.proj": ("attention.output.dense", "attention.o_proj"),
    "norm1": ("layernorm_before",),
    "norm2": ("layernorm_after",),
    "mlp.fc1": ("intermediate.dense", "mlp.fc1"),
    "mlp.fc2": ("output.dense", "mlp.fc2"),
}
_HF_ENCODER_PREFIXES = ("encoder.layer.", "layers.")
_HF_DECODER_PREFIXES = ("decoder.decoder_layers.", "decoder.decoder_encoder.layer.")


def _hf_to_official(state: dict) -> dict:
    """Map ViTMAEForPreTraining keys onto the official names; separate q/k/v become one fused qkv.

    Three layouts load: hub files written by transformers 4.x (``vit.encoder.layer.N.attention.attention.query``,
    ``decoder.decoder_layers.N``), files saved by transformers 5 (``decoder.decoder_encoder.layer.N``) and the
    module names of recent transformers 5 releases (``vit.layers.N.attention.q_proj``, ``mlp.fc1``)."""
    s = {k.removeprefix("vit."): v for k, v in state.items()}
    out = {
        "cls_token": s.get("embeddings.cls_token"),
        "pos_embed": s.get("embeddings.position_embeddings"),
        "patch_embed.proj.weight": s.get("embeddings.patch_embeddings.projection.weight"),
        "patch_embed.proj.bias": s.get("embeddings.patch_embeddings.projection.bias"),
        "norm.weight": s.get("layernorm.weight"),
        "norm.bias": s.get("layernorm.bias"),
    }

    def first(src: str, names, part: str):
        for n in names:
            v = s.get(f"{src}.{n}.{part}")
            if v is not None:
                return v
        return None

    def convert_layers(prefixes, dst_prefix: str):
        prefix = next((p for p in prefixes if any(k.startswith(p) for k in s)), None)
        if prefix is None:
            return
        for i in range(_count_blocks(s, prefix, "the Hugging Face weights")):
            src, dst = f"{prefix}{i}", f"{dst_prefix}{i}"
            for part in ("weight", "bias"):
                q, k, v = (first(src, _HF_LAYER_PARTS[n], part) for n in ("attn.q", "attn.k", "attn.v"))
                if q is not None and k is not None and v is not None:
                    out[f"{dst}.attn.qkv.{part}"] = torch.cat([q, k, v], dim=0)
                for name in ("attn.proj", "norm1", "norm2", "mlp.fc1", "mlp.fc2"):
                    out[f"{dst}.{name}.{part}"] = first(src, _HF_LAYER_PARTS[name], part)

    convert_layers(_HF_ENCODER_PREFIXES, "blocks.")
    convert_layers(_HF_DECODER_PREFIXES, "decoder_blocks.")
    for name in ("decoder_embed.weight", "decoder_embed.bias", "decoder_norm.weight", "decoder_norm.bias",
                 "decoder_pred.weight", "decoder_pred.bias", "mask_token", "decoder_pos_embed"):
        out[name] = s.get("decoder." + name)
    return {k: v for k, v in out.items() if v is not None}


def _from_hf_state(state: dict, hf_config: dict, path, limits: Limits, **overrides):
    official = _hf_to_official(state)
    if "patch_embed.proj.weight" not in official:
        raise CheckpointError(f"{path}: not a ViTMAE checkpoint (no embeddings.patch_embeddings weights)")
    if "pos_embed" in official and official["pos_embed"].ndim == 2:
        official["pos_embed"] = official["pos_embed"].unsqueeze(0)
    kw = dict(norm_eps=float(hf_config.get("layer_norm_eps", 1e-12)))
    if "num_attention_heads" in hf_config:
        kw["num_heads"] = int(hf_config["num_attention_heads"])
    if "decoder_num_attention_heads" in hf_config:
        kw["decoder_num_heads"] = int(hf_config["decoder_num_attention_heads"])
    if "norm_pix_loss" in hf_config:
        kw["norm_pix_loss"] = bool(hf_config["norm_pix_loss"])
    if "decoder_pred.weight" not in official:
        kw.pop("decoder_num_heads", None)
    kw.update(overrides)
    model, card = _from_official_state(official, path, "huggingface-vitmae", limits, **kw)
    card["hf_config"] = {k: v for k, v in hf_config.items() if isinstance(v, (int, float, str, bool))}
    return model, card


def _load_hf_folder(folder: Path, limits: Limits, **overrides):
    cfg_path = folder / "config.json"
    hf_config = _read_small_json(cfg_path, "the Hugging Face config")
    if not isinstance(hf_config, dict):
        raise CheckpointError(f"{cfg_path}: the Hugging Face config is not a JSON object")
    mt = hf_config.get("model_type")
    if mt not in (None, "vit_mae"):
        raise CheckpointError(f"{folder}: a Hugging Face {mt!r} model, not ViTMAE (model_type 'vit_mae')")
    if (folder / "model.safetensors").is_file():
        state = _read_safetensors(folder / "model.safetensors", limits)
    elif (folder / "pytorch_model.bin").is_file():
        state = safe_torch_load(folder / "pytorch_model.bin", limits)
    else:
        raise CheckpointError(f"{folder}: Hugging Face folder without model.safetensors or pytorch_model.bin")
    return _from_hf_state(state, hf_config, folder, limits, **overrides)


# --------------------------------------------------------------------------------------------------
# The one door
# --------------------------------------------------------------------------------------------------

def list_bundled() -> list[dict]:
    """Model cards of the checkpoints that ship in checkpoints/, sorted by name."""
    out = []
    for card_path in sorted(CHECKPOINT_DIR.glob("*.json")):
        if not card_path.with_suffix(".safetensors").is_file():
            continue
        try:
            card = json.loads(card_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        card.setdefault("name", card_path.stem)
        card["path"] = str(card_path.with_suffix(".safetensors"))
        out.append(card)
    return out


def resolve(path_or_name: Union[str, Path]) -> Path:
    p = Path(path_or_name).expanduser()
    if p.exists():
        return p
    for cand in (_stem(p).with_suffix(".safetensors"), CHECKPOINT_DIR / f"{path_or_name}.safetensors"):
        if cand.is_file():
            return cand
    names = ", ".join(c["name"] for c in list_bundled()) or "none bundled"
    raise CheckpointError(f"no such checkpoint file or bundled model: {path_or_name!r} (bundled: {names})")


def load_model(path_or_name: Union[str, Path], device: Union[str, torch.device] = "cpu", *,
               limits: Limits = Limits(), **overrides):
    """Load any supported weights. Returns (model in eval mode, card). ``overrides`` fill config values the
    file cannot tell (num_heads, decoder_num_heads, norm_pix_loss, pixel_mean, pixel_std, norm_eps). ``limits``:
    the largest file and model to read and build (checked before anything is allocated); a server passes its
    operator's."""
    path = resolve(path_or_name)
    if not (path.is_dir() or path.is_file()):
        raise CheckpointError(f"{path} is not a regular file or folder")
    if path.is_dir():
        if (path / "config.json").is_file():
            model, card = _load_hf_folder(path, limits, **overrides)
        else:
            raise CheckpointError(f"{path} is a folder but not a Hugging Face model folder (no config.json)")
    elif path.suffix == ".json" or (path.suffix == ".safetensors" and path.with_suffix(".json").is_file()):
        model, card = _load_own(_stem(path), limits, **overrides)
    elif path.suffix == ".safetensors":
        state = _read_safetensors(path, limits)
        if any(k.startswith(("vit.", "embeddings.")) for k in state):
            model, card = _from_hf_state(state, {}, path, limits, **overrides)
        else:
            model, card = _from_official_state(state, path, "safetensors-state-dict", limits, **overrides)
    else:
        model, card = _load_pth(path, limits, **overrides)
    bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        msg = (f"{Path(path).name}: {len(bad)} weight tensor(s) hold NaN or infinite values (e.g. {bad[0]}); its "
               f"outputs will be NaN. The file may come from a run that diverged.")
        warnings.warn(msg, CheckpointWarning, stacklevel=2)
        card = {**card, "warnings": [*card.get("warnings", []), msg]}
    model.card = card
    return model.to(device).eval(), card


def main(argv=None) -> int:
    """``python -m mae_core.checkpoints half PATH...``: rewrite our checkpoints with float16 weights."""
    p = argparse.ArgumentParser(prog="python -m mae_core.checkpoints")
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("half", help="store a checkpoint's learned weights in float16 (half the size)")
    h.add_argument("paths", nargs="+")
    args = p.parse_args(argv)
    for path in args.paths:
        try:
            model, card = load_model(path)
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        card = {k: v for k, v in card.items() if k != "source"}
        out = save_model(model, _stem(Path(path)), card, dtype=torch.float16)
        print(f"{out}: {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
