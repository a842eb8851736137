import gzip
import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from mae_core import data
from mae_core.data import (DataError, ImageFolderDataset, load_fashion_mnist_subset, open_image, prepare_image,
                           read_idx)


def _png(arr, mode=None, fmt="PNG", **kw):
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format=fmt, **kw) if mode else Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_bundled_subset_is_class_balanced():
    s = load_fashion_mnist_subset()
    assert s.images.shape == (2000, 1, 28, 28) and s.images.dtype == torch.float32
    assert torch.equal(s.labels.bincount(), torch.full((10,), 200))
    assert 0 <= float(s.images.min()) and float(s.images.max()) <= 1
    assert abs(float(s.images.mean()) - 0.286) < 0.02  # Fashion-MNIST's mean pixel
    assert s.classes[9] == "Ankle boot"


def test_read_idx_roundtrip_and_errors(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + arr.tobytes()
    with gzip.open(tmp_path / "a.gz", "wb") as f:
        f.write(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(DataError, match="promises 24 bytes of data, file holds 23"):
        read_idx(tmp_path / "short")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04" + raw[4:])
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(tmp_path / "bad")


def test_missing_fashion_mnist_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    monkeypatch.setenv("MAE_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"not found \(looked in: .*nowhere.*apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist("test")


def test_full_fashion_mnist_when_installed():
    if data.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    test = data.load_fashion_mnist("test")
    assert test.images.shape == (10000, 1, 28, 28)
    assert torch.equal(test.labels.bincount(), torch.full((10,), 1000))
    # the bundled subset really is drawn from the test split
    with np.load(data.SUBSET_PATH) as z:
        idx = z["test_index"][:50]
    sub = load_fashion_mnist_subset()
    torch.testing.assert_close(sub.images[:50], test.images[idx])


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "I;16", "CMYK", "LA", "1", "F"])
@pytest.mark.parametrize("channels", [1, 3])
def test_prepare_image_handles_every_mode(mode, channels):
    rgb = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(rgb)
    if mode == "I;16":
        img = Image.fromarray((np.random.default_rng(0).random((40, 60)) * 65535).astype(np.uint16))
    else:
        img = img.convert(mode)
    t = prepare_image(img, 32, channels)
    assert t.shape == (channels, 32, 32) and t.dtype == torch.float32
    assert 0 <= float(t.min()) and float(t.max()) <= 1 and float(t.std()) > 0.01


def test_prepare_image_resizes_short_side_and_centre_crops():
    a = np.zeros((100, 300), dtype=np.uint8)
    a[:, 100:200] = 255  # the white centre third becomes the whole crop
    t = prepare_image(Image.fromarray(a), 20, 1)
    assert float(t[:, :, 2:-2].min()) > 0.95
    t3 = prepare_image(Image.fromarray(a), 20, 3)
    torch.testing.assert_close(t3[0], t3[1])


def test_transparency_composited_on_the_background_of_the_models_data():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)  # fully transparent black
    t = prepare_image(Image.fromarray(rgba, "RGBA"), 16, 3)
    assert float(t.min()) > 0.99                  # photos (RGB models): white
    rgba[5:15, 5:15] = (255, 255, 255, 255)       # an opaque white garment on a transparent sheet
    g = prepare_image(Image.fromarray(rgba, "RGBA"), 20, 1)
    assert float(g[0, 0, 0]) < 0.01 and float(g[0, 10, 10]) > 0.99   # Fashion-MNIST (greyscale): light on black


def test_open_image_errors(tmp_path):
    with pytest.raises(DataError, match="not an image PIL can read"):
        open_image(b"this is not an image at all")
    png = _png((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    with pytest.raises(DataError, match="corrupt or truncated"):
        open_image(png[: len(png) // 2])
    with pytest.raises(DataError, match="is 64x64 pixels .* the limit is"):
        open_image(png, max_pixels=1000)
    with pytest.raises(DataError, match="is a folder"):
        open_image(tmp_path)
    with pytest.raises(DataError, match="at least 8x8"):
        prepare_image(open_image(_png(np.zeros((1, 1), dtype=np.uint8))), 28, 1)


def test_animated_gif_uses_first_frame():
    frames = [Image.fromarray(np.full((16, 16), v, dtype=np.uint8)) for v in (10, 250)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    t = prepare_image(open_image(buf.getvalue()), 16, 1)
    assert float(t.mean()) < 0.1


def test_image_folder(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            (tmp_path / cls / f"{i}.png").write_bytes(_png(np.full((20, 20, 3), 40 * i, dtype=np.uint8)))
    (tmp_path / "dogs" / "broken.png").write_bytes(b"nope")
    ds = ImageFolderDataset(tmp_path, 16, 3)
    assert ds.classes == ("cats", "dogs") and len(ds) == 7
    li = ds.load_all()
    assert li.images.shape == (6, 3, 16, 16) and li.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert len(li.skipped) == 1 and "broken.png" in li.skipped[0]
    with pytest.raises(DataError, match="is not a folder"):
        data.list_image_folder(tmp_path / "missing")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no images"):
        data.list_image_folder(tmp_path / "empty")


def test_photos_and_held_out_crops():
    ev = data.photo_eval_set(32, 3, crops_per_photo=2)
    assert ev.shape == (6, 3, 32, 32)
    assert torch.equal(ev, data.photo_eval_set(32, 3, crops_per_photo=2))
    assert not set(data.PHOTO_HELDOUT) & set(data.PHOTO_TRAIN)
