"""MAE Explorer's library: the masked autoencoder, masks, weights, data, training and embeddings.

Importing it downloads nothing and imports no UI code."""
from .checkpoints import CheckpointError, load_model, save_model
from .masking import block_mask, grid_mask, make_mask, painted_mask, random_mask
from .model import MAEConfig, MAEOutput, MaskedAutoencoderViT, PRESETS, build_model, preset_config

__all__ = ["CheckpointError", "load_model", "save_model", "block_mask", "grid_mask", "make_mask", "painted_mask",
           "random_mask", "MAEConfig", "MAEOutput", "MaskedAutoencoderViT", "PRESETS", "build_model", "preset_config"]
