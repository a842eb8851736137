"""Untrusted files, faults and bad networks: each protection has a test that fails without it."""
import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mae_core import data
from mae_core.classroom import zoo
from mae_core.checkpoints import CheckpointError, load_model
from mae_core.data import DataError, open_image, prepare_image

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- images

def _png_header_only(w, h):
    """A valid PNG signature and IHDR claiming w x h, then one tiny IDAT: a decompression-bomb shape."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_huge_image_is_refused_from_its_header_without_decoding():
    import tracemalloc
    tracemalloc.start()
    with pytest.raises(DataError, match="too large to decode safely .*400000000 pixels"):
        open_image(_png_header_only(20000, 20000))  # PIL's own guard (over twice its limit) fires first
    with pytest.raises(DataError, match="is 9000x9000 pixels \\(81 MP\\); the limit is 40 MP"):
        open_image(_png_header_only(9000, 9000))    # under PIL's hard limit: our header check refuses it
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20  # decoding it would take 400 MB


def test_pil_bomb_guard_stays_on(monkeypatch):
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 10**12)  # even if our own limit is lifted ...
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)    # ... PIL's guard still refuses, as an error
    with pytest.raises(DataError, match="too large to decode safely|pixels"):
        open_image(_png_header_only(200, 200), max_pixels=10**12)


def test_truncated_jpeg_and_non_image_with_image_extension(tmp_path):
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(buf, "JPEG")
    with pytest.raises(DataError, match="corrupt or truncated"):
        open_image(buf.getvalue()[:600])
    fake = tmp_path / "holiday.jpg"
    fake.write_text("<html>not really a photo</html>")
    with pytest.raises(DataError, match="holiday.jpg is not an image PIL can read"):
        open_image(fake)


def test_cmyk_16bit_and_tiny_images():
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # red in CMYK
    t = prepare_image(open_image(_save(cmyk, "JPEG")), 16, 3)
    assert t[0].mean() > 0.8 and t[1].mean() < 0.3
    deep = Image.fromarray((np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16))
    t = prepare_image(open_image(_save(deep, "PNG")), 16, 1)
    assert t.min() < 0.1 and t.max() > 0.9
    with pytest.raises(DataError, match="only 1x1 pixels"):
        prepare_image(open_image(_save(Image.new("L", (1, 1)), "PNG")), 28, 1)


def _save(im, fmt):
    b = io.BytesIO()
    im.save(b, fmt)
    return b.getvalue()


# ----------------------------------------------------------------------------- downloads

class _FakeResponse(io.BytesIO):
    def __init__(self, payload, length=None):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload) if length is None else length)}

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_fashion_mnist_download_checks_published_md5(tmp_path, monkeypatch):
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(b"tampered bytes"))
    with pytest.raises(DataError, match="has MD5 .* expected 8d4fb7e6c68d591d4c3dfef9ec88bf0d: refusing"):
        data.download_fashion_mnist(tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # nothing half-downloaded or wrong is left


def test_no_network_gives_a_clear_message(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise OSError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="could not download Fashion-MNIST.*apt-get install dataset-fashion-mnist"):
        data.download_fashion_mnist(tmp_path, progress=False)
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match="could not download mae_visualize_vit_base.pth.*another machine"):
        zoo.download_official("mae_visualize_vit_base", opener=offline)
    assert not zoo.is_downloaded("mae_visualize_vit_base")


def test_official_download_is_verified_before_entering_the_cache(tmp_path, monkeypatch, tiny_model):
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path))
    junk = b"PK\x03\x04 not really a zip"
    with pytest.raises(CheckpointError):
        zoo.download_official("mae_visualize_vit_base", opener=lambda u, timeout: _FakeResponse(junk))
    assert not zoo.is_downloaded("mae_visualize_vit_base") and not list((tmp_path / "official").glob("*"))
    buf = io.BytesIO()
    torch.save({"model": tiny_model.state_dict()}, buf)
    with pytest.raises(CheckpointError, match="connection closed after"):
        zoo.download_official("mae_visualize_vit_base",
                              opener=lambda u, timeout: _FakeResponse(buf.getvalue()[:100], length=len(buf.getvalue())))
    got = []
    # a good file (our tiny model in the official layout; heads unknown -> it must say so, and not be cached)
    with pytest.raises(CheckpointError, match="head counts"):
        zoo.download_official("mae_visualize_vit_base", progress=lambda d, t: got.append(d),
                              opener=lambda u, timeout: _FakeResponse(buf.getvalue()))
    assert got and not zoo.is_downloaded("mae_visualize_vit_base")


def test_official_download_success_path(tmp_path, monkeypatch):
    from mae_core.model import MAEConfig, MaskedAutoencoderViT
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path))
    m = MaskedAutoencoderViT(MAEConfig(img_size=32, patch_size=16, in_chans=3, embed_dim=768, depth=1, num_heads=12,
                                       decoder_embed_dim=512, decoder_depth=1, decoder_num_heads=16,
                                       pixel_mean=(0.5,) * 3, pixel_std=(0.5,) * 3))
    buf = io.BytesIO()
    torch.save({"model": m.state_dict()}, buf)
    path = zoo.download_official("mae_visualize_vit_base", opener=lambda u, timeout: _FakeResponse(buf.getvalue()))
    assert path.is_file() and zoo.is_downloaded("mae_visualize_vit_base")
    assert len(path.with_suffix(".sha256").read_text().split()[0]) == 64
    model, card = load_model(path)
    assert model.config.norm_pix_loss is False and card["format"] == "official-mae"


# ----------------------------------------------------------------------------- training faults

@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "mae_core.train", "--data", "fashion-mnist-subset", "--preset", "mae_fmnist_micro",
           "--epochs", "4", "--batch-size", "32", "--lr", "2e-3", "--out", str(out), "--no-progress", "--log-every", "1"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = out.with_suffix(".metrics.jsonl")
    deadline = time.time() + 180
    # wait until the first epoch is saved and the second is under way
    while time.time() < deadline:
        text = metrics.read_text() if metrics.is_file() else ""
        if '"event": "epoch_end"' in text and '"epoch": 1.' in text.split('"event": "epoch_end"')[-1]:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    model, card = load_model(out)  # the last checkpoint on disk is complete and loads
    assert card["epochs"] == 1 and card["steps"] == 50
    r = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    model, card = load_model(out)
    assert card["status"] == "finished" and card["epochs"] == 4 and card["steps"] == 200
