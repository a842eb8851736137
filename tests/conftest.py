import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MAE_CACHE_DIR", str(ROOT / ".pytest_cache" / "mae_cache"))
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_config():
    from mae_core.model import MAEConfig
    return MAEConfig(img_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=2, num_heads=2,
                     decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
                     pixel_mean=(0.5, 0.5, 0.5), pixel_std=(0.25, 0.25, 0.25))


@pytest.fixture
def tiny_model(tiny_config):
    from mae_core.model import MaskedAutoencoderViT
    torch.manual_seed(0)
    return MaskedAutoencoderViT(tiny_config).eval()
