"""Datasets and image preprocessing.

* Fashion-MNIST from its IDX .gz files ($MAE_DATA_DIR, Debian's dataset-fashion-mnist, a user cache;
  downloaded with a progress bar only when asked and a network exists).
* A class-balanced labelled Fashion-MNIST subset that ships inside the package (works with nothing installed).
* Photos: scikit-image's bundled images; image folders with class subfolders; single uploaded files.

Images are handled as float tensors in [0, 1], shape (C, H, W); the model normalises them itself.
"""
from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
import os
import struct
import threading
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .atomic import atomic_write

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_FILES = {  # official gz files and the MD5s the publisher gives (as torchvision checks them)
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_URL = "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
ASSETS = Path(__file__).resolve().parent / "assets"
SUBSET_PATH = ASSETS / "fashion_mnist_subset.npz"

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
MAX_IMAGE_PIXELS = 40_000_000   # refuse anything larger before decoding it (bounded memory)
MAX_DECODE_BYTES = 200 * 2**20  # what one decode may hold in PIL's own pixel storage
WORKING_SIDE = 1024             # decoded images are shrunk (integer box reduce) until their short side is below 2x this
MIN_IMAGE_SIDE = 8
# Decodes running at once in this process (each holds up to MAX_DECODE_BYTES): more wait their turn.
_DECODE_SLOTS = threading.BoundedSemaphore(max(1, int(os.environ.get("MAE_MAX_DECODES") or 2)))


class DataError(ValueError):
    """A dataset or image that cannot be used, with a message meant for the user."""


def cache_dir() -> Path:
    base = os.environ.get("MAE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mae_explorer")
    return Path(base)


@dataclass
class LabelledImages:
    """A small in-memory labelled dataset: images (N, C, H, W) float in [0, 1], labels (N,) int64."""
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple
    name: str

    def __len__(self):
        return len(self.labels)

    def subset(self, idx) -> "LabelledImages":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return LabelledImages(self.images[idx], self.labels[idx], self.classes, self.name)


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------------

def read_idx(path: Union[str, Path]) -> np.ndarray:
    """Read an IDX file (.gz or raw) into a uint8 array, checking its header against its size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(f"{path}: IDX header promises {expected} bytes of data, file holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def fashion_mnist_search_paths() -> list[Path]:
    paths = []
    if os.environ.get("MAE_DATA_DIR"):
        d = Path(os.environ["MAE_DATA_DIR"])
        paths += [d, d / "fashion-mnist"]
    paths += [DEBIAN_FASHION_MNIST, cache_dir() / "fashion-mnist"]
    return paths


def find_fashion_mnist() -> Optional[Path]:
    for d in fashion_mnist_search_paths():
        if all((d / f).is_file() for f in FASHION_MNIST_FILES):
            return d
    return None


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_fashion_mnist(dest: Optional[Path] = None, progress: bool = True) -> Path:
    """Download the four official files into the cache, checking each against its published MD5
    (``atomic_write``: renamed into place only once its hash is right)."""
    from tqdm.auto import tqdm

    dest = Path(dest or cache_dir() / "fashion-mnist")
    dest.mkdir(parents=True, exist_ok=True)
    for name, md5 in FASHION_MNIST_FILES.items():
        final = dest / name
        if final.is_file() and _md5(final) == md5:
            continue

        def fetch(f, name=name):
            with urllib.request.urlopen(FASHION_MNIST_URL + name, timeout=30) as r:
                total = int(r.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
                    for chunk in iter(lambda: r.read(1 << 16), b""):
                        f.write(chunk)
                        bar.update(len(chunk))

        def check(tmp, name=name, md5=md5):
            got = _md5(tmp)
            if got != md5:
                raise DataError(f"downloaded {name} has MD5 {got}, expected {md5}: refusing to use it")
        try:
            atomic_write(final, fetch, verify=check)
        except OSError as e:
            raise DataError(f"could not download Fashion-MNIST ({name}): {e}. Without a network, install it with "
                            f"'apt-get install dataset-fashion-mnist' or put the four IDX .gz files in $MAE_DATA_DIR."
                            ) from None
    return dest


def load_fashion_mnist(split: str = "train", download: bool = False) -> LabelledImages:
    """The full Fashion-MNIST split ('train': 60k, 'test': 10k) as (N, 1, 28, 28) floats in [0, 1]."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = find_fashion_mnist()
    if root is None:
        if not download:
            looked = ", ".join(str(p) for p in fashion_mnist_search_paths())
            raise DataError(
                "Fashion-MNIST was not found (looked in: " + looked + "). Install it with "
                "'apt-get install dataset-fashion-mnist', put the IDX .gz files in $MAE_DATA_DIR, or allow a "
                "download (--download on the command line). The bundled 2,000-image subset works without it.")
        root = download_fashion_mnist()
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz")
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise DataError(f"{root}: Fashion-MNIST files have unexpected shapes {images.shape} / {labels.shape}")
    imgs = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255)
    return LabelledImages(imgs, torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES,
                          f"Fashion-MNIST {split}")


def load_fashion_mnist_subset() -> LabelledImages:
    """The class-balanced 2,000-image labelled subset of the Fashion-MNIST test split shipped in the repo."""
    if not SUBSET_PATH.is_file():
        raise DataError(f"the bundled Fashion-MNIST subset is missing ({SUBSET_PATH}); reinstall the package")
    with np.load(SUBSET_PATH, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    imgs = torch.from_numpy(images).unsqueeze(1).float().div_(255)
    return LabelledImages(imgs, torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES,
                          "Fashion-MNIST subset (bundled)")


def make_fashion_mnist_subset(per_class: int = 200, seed: int = 0, out: Path = SUBSET_PATH) -> Path:
    """Build the bundled subset from the full test split (used once to create the shipped file)."""
    test = load_fashion_mnist("test")
    rng = np.random.default_rng(seed)
    labels = test.labels.numpy()
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])
    idx = idx[rng.permutation(idx.size)]
    images = (test.images[idx, 0] * 255).round().to(torch.uint8).numpy()
    return atomic_write(out, lambda f: np.savez_compressed(f, images=images, labels=labels[idx].astype(np.uint8),
                                                            test_index=idx.astype(np.int32)))


# --------------------------------------------------------------------------------------------------
# Images: opening untrusted files and preparing them for a model
# --------------------------------------------------------------------------------------------------

def _bytes_per_pixel(mode: str) -> int:
    """PIL's storage per pixel: one byte for 8-bit single-band modes, two for I;16, four for the rest (RGB is
    stored as four bytes too)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


_REDUCE_AS = {"1": "L", "P": "RGBA", "I;16": "I", "I;16L": "I", "I;16B": "I", "I;16N": "I"}


def _reduce(img: Image.Image, factor: int) -> Image.Image:
    """Box-reduce by ``factor``, a strip of rows at a time, so that neither the reduce (which premultiplies RGBA
    into a full-size copy) nor a mode conversion (for modes PIL cannot reduce directly) holds a second full-size
    image."""
    target = _REDUCE_AS.get(img.mode, img.mode)
    w, h = img.size
    out = Image.new(target, (w // factor, h // factor))
    rows = factor * max(1, 256 // factor)
    for y in range(0, (h // factor) * factor, rows):
        band = img.crop((0, y, (w // factor) * factor, min(y + rows, (h // factor) * factor)))
        out.paste((band.convert(target) if band.mode != target else band).reduce(factor), (0, y // factor))
    return out


def open_image(source, max_pixels: int = MAX_IMAGE_PIXELS, working_side: int = WORKING_SIDE) -> Image.Image:
    """Open an image from a path, bytes or a file-like object, safely and in bounded memory.

    The size is checked from the header before any pixel is decoded (decompression bombs are refused),
    PIL's own bomb guard stays on, truncated files are an error (not silently grey), and animated images
    use their first frame. JPEGs are decoded at a reduced scale where that suffices (``draft``); every image
    is then shrunk by an integer box reduce while its short side is at least twice ``working_side``, in its own
    mode, before anything converts it to floats: a 6300x6300 16-bit PNG never becomes a 160 MB float array.
    At most ``MAE_MAX_DECODES`` decodes run at once in the process. ``img.info['original_size']`` keeps the
    size the file declared."""
    name = getattr(source, "name", None) or (str(source) if isinstance(source, (str, Path)) else "the upload")
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        raise DataError(f"{name} is a folder, not an image file")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings(), _DECODE_SLOTS:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(source)
            w, h = img.size
            if w * h > max_pixels:
                raise DataError(f"{name} is {w}x{h} pixels ({w * h / 1e6:.0f} MP); the limit is "
                                f"{max_pixels / 1e6:.0f} MP. Resize it first.")
            if min(w, h) < 1:
                raise DataError(f"{name} has no pixels ({w}x{h})")
            img.seek(0)
            if img.format == "JPEG" and min(w, h) >= 2 * working_side:  # decode at 1/2, 1/4 or 1/8 scale
                factor = min(w, h) // working_side
                img.draft(img.mode, (w // factor, h // factor))
            need = img.size[0] * img.size[1] * _bytes_per_pixel(img.mode)
            if need > MAX_DECODE_BYTES:
                raise DataError(f"{name} would take {need / 2**20:,.0f} MB to decode ({img.mode}, {w}x{h}); the "
                                f"limit is {MAX_DECODE_BYTES / 2**20:,.0f} MB. Resize it first.")
            img.load()
            small = min(img.size)
            if small >= 2 * working_side:
                img = _reduce(img, small // working_side)
            img.info["original_size"] = (w, h)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{name} is too large to decode safely (decompression-bomb guard: {e})") from None
    except UnidentifiedImageError:
        raise DataError(f"{name} is not an image PIL can read (unknown or corrupt format)") from None
    except MemoryError:
        raise DataError(f"{name} could not be decoded: the server is out of memory. Try a smaller image.") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        raise DataError(f"{name} is corrupt or truncated ({e})") from None
    return img


def image_to_array(img: Image.Image, channels: int, background: Optional[int] = None) -> np.ndarray:
    """PIL image of any mode -> float32 array (H, W, channels) in [0, 1].
    16/32-bit greys are scaled by their range; transparency is composited onto ``background`` (0-255): by default
    black for greyscale models (Fashion-MNIST draws light garments on black) and white for RGB ones (photos)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        if mode.startswith("I;16"):
            arr = arr / 65535.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        arr = np.clip(arr, 0, 1)[..., None]
        return arr if channels == 1 else np.repeat(arr, 3, axis=2)
    if mode == "P" and "transparency" in img.info or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
        v = (0 if channels == 1 else 255) if background is None else int(background)
        bg = Image.new("RGBA", img.size, (v, v, v, 255))
        img = Image.alpha_composite(bg, img)
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[..., None] if channels == 1 else arr


def prepare_image(img: Union[Image.Image, np.ndarray], size: int, channels: int) -> torch.Tensor:
    """Any image -> (channels, size, size) float tensor in [0, 1]: resize the short side to ``size``
    (antialiased bicubic), then centre crop. Greyscale is repeated for RGB models; RGB becomes luminance
    for greyscale models."""
    if isinstance(img, np.ndarray):
        img = array_to_pil(img)
    w, h = img.size
    if min(w, h) < MIN_IMAGE_SIDE:
        raise DataError(f"image is only {w}x{h} pixels; at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed")
    if img.mode not in ("L", "RGB"):
        arr = image_to_array(img, channels)
        img = array_to_pil(arr)
    img = img.convert("L" if channels == 1 else "RGB")
    img = ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if channels == 1 else t.permute(2, 0, 1).contiguous()


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """(H, W), (H, W, 1|3|4) uint8/bool/float[0,1] array -> PIL image."""
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise DataError(f"cannot make an image from an array of shape {a.shape}")
    return Image.fromarray(a)


def tensor_to_uint8(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8 for display."""
    a = img.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    return a[0].numpy() if a.shape[0] == 1 else a.permute(1, 2, 0).numpy()


def to_pil(img01: torch.Tensor, size: Optional[int] = None, smooth: bool = False) -> Image.Image:
    im = Image.fromarray(tensor_to_uint8(img01))
    if size and im.size[0] != size:
        im = im.resize((size, size), Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST)
    return im.convert("RGB")


def png_bytes(im: Image.Image, compress_level: int = 1) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def data_url(im: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode("ascii")


def load_image_file(source, size: int, channels: int) -> torch.Tensor:
    return prepare_image(open_image(source), size, channels)


# --------------------------------------------------------------------------------------------------
# Photos (scikit-image's bundled images) and image folders
# --------------------------------------------------------------------------------------------------

# Public-domain / CC0 natural images that ship inside scikit-image (no download). The last few are held out
# from training so the photo model is evaluated on photographs it never saw.
PHOTO_TRAIN = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
               "retina", "colorwheel", "brick", "grass", "gravel", "moon", "clock", "coins")
PHOTO_HELDOUT = ("camera", "page", "microaneurysms")
PHOTO_ALL = PHOTO_TRAIN + PHOTO_HELDOUT


def load_photo(name: str) -> Image.Image:
    import skimage.data

    if name not in PHOTO_ALL:
        raise DataError(f"unknown bundled photo {name!r}; choose one of: {', '.join(PHOTO_ALL)}")
    return array_to_pil(getattr(skimage.data, name)())


class RandomCropPhotos(torch.utils.data.Dataset):
    """Random resized crops (with horizontal flips) of a few large photos: ``length`` samples per epoch."""

    def __init__(self, names: Sequence[str], size: int, channels: int, length: int = 4096,
                 scale=(0.05, 0.6), seed: int = 0):
        self.arrays = [np.asarray(image_to_array(load_photo(n), channels)) for n in names]
        self.size, self.channels, self.length, self.scale, self.seed = size, channels, length, scale, seed
        self.epoch = 0

    def __len__(self):
        return self.length

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        a = self.arrays[rng.integers(len(self.arrays))]
        h, w = a.shape[:2]
        area = h * w * rng.uniform(*self.scale)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        ch = int(min(h, max(8, round(np.sqrt(area / aspect)))))
        cw = int(min(w, max(8, round(np.sqrt(area * aspect)))))
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = torch.from_numpy(np.ascontiguousarray(a[top:top + ch, left:left + cw])).permute(2, 0, 1)
        crop = torch.nn.functional.interpolate(crop[None], size=(self.size, self.size), mode="bilinear",
                                               antialias=True, align_corners=False)[0].clamp(0, 1)
        if rng.random() < 0.5:
            crop = crop.flip(-1)
        return crop, 0


def photo_eval_set(size: int, channels: int, names: Sequence[str] = PHOTO_HELDOUT, crops_per_photo: int = 16,
                   seed: int = 123) -> torch.Tensor:
    """A fixed set of crops from held-out photos, for honest evaluation of the photo model."""
    ds = RandomCropPhotos(names, size, channels, length=crops_per_photo * len(names), seed=seed)
    return torch.stack([ds[i][0] for i in range(len(ds))])


MAX_FOLDER_ENTRIES = 200_000   # a folder walk stops here: pointing at "/" must not walk the whole disk


def list_image_folder(root: Union[str, Path], max_entries: int = MAX_FOLDER_ENTRIES
                      ) -> tuple[list[Path], list[int], tuple]:
    """Files and labels of a folder whose subfolders are classes (images directly inside form one class).
    Unreadable subfolders are skipped, symlinked folders are not followed, and a walk that meets more than
    ``max_entries`` entries stops with an error."""
    root = Path(root)
    try:
        if not root.is_dir():
            raise DataError(f"{root} is not a folder")
        classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError as e:
        raise DataError(f"{root} cannot be read ({e.strerror or type(e).__name__})") from None
    files, labels = [], []
    seen = len(classes)
    if seen > max_entries:
        raise DataError(f"{root} holds more than {max_entries:,} files and folders; point at a smaller folder of images")
    groups = [(root / c, i) for i, c in enumerate(classes)] or [(root, 0)]
    for d, label in groups:
        found = []
        for dirpath, dirnames, filenames in os.walk(d, onerror=lambda e: None, followlinks=False):
            dirnames[:] = [n for n in dirnames if not n.startswith(".")]
            seen += len(dirnames) + len(filenames)
            if seen > max_entries:
                raise DataError(f"{root} holds more than {max_entries:,} files and folders; point at a smaller "
                                f"folder of images")
            found += [Path(dirpath) / n for n in filenames if Path(n).suffix.lower() in IMAGE_EXTENSIONS]
        for p in sorted(found):
            files.append(p)
            labels.append(label)
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in it or its subfolders")
    return files, labels, tuple(classes) or (root.name,)


def _readable(path: Path) -> bool:
    """Whether an image file decodes, remembered per (path, size, modification time): the run, its time estimate
    and its reconstruction snapshots each build the same folder's data, and only the first pays for decoding."""
    try:
        st = path.stat()
    except OSError:
        return False
    return _readable_cached(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=MAX_FOLDER_ENTRIES)
def _readable_cached(path: str, size: int, mtime_ns: int) -> bool:
    try:
        open_image(path)
        return True
    except DataError:
        return False


class ImageFolderDataset(torch.utils.data.Dataset):
    """An image folder with class subfolders, prepared to a model's size and channels. Unreadable files are
    reported by name rather than crashing a long job."""

    def __init__(self, root, size: int, channels: int, transform: Optional[Callable] = None):
        self.files, self.labels, self.classes = list_image_folder(root)
        self.size, self.channels, self.transform = size, channels, transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        try:
            x = load_image_file(self.files[i], self.size, self.channels)
        except DataError as e:
            raise DataError(f"{self.files[i]}: {e}") from None
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]

    def drop_unreadable(self) -> list[Path]:
        """Decode every file once and keep only the readable ones; return the files dropped. Raises DataError
        when none is left."""
        good, dropped = [], []
        for f, y in zip(self.files, self.labels):
            if _readable(f):
                good.append((f, y))
            else:
                dropped.append(f)
        if not good:
            raise DataError(f"none of the {len(dropped)} images in the folder could be read (e.g. "
                            f"{', '.join(p.name for p in dropped[:3])})")
        self.files, self.labels = [f for f, _ in good], [y for _, y in good]
        return dropped

    def load_all(self, limit: Optional[int] = None, seed: int = 0) -> LabelledImages:
        idx = np.arange(len(self))
        if limit is not None and limit < len(idx):
            idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
        images, labels, skipped = [], [], []
        for i in idx:
            try:
                x, y = self[int(i)]
            except DataError as e:
                skipped.append(str(e))
                continue
            images.append(x)
            labels.append(y)
        if not images:
            raise DataError("no readable images in the folder: " + "; ".join(skipped[:3]))
        out = LabelledImages(torch.stack(images), torch.tensor(labels), self.classes, str(self.files[0].parents[1]))
        out.skipped = skipped
        return out


# --------------------------------------------------------------------------------------------------
# Labelled sets prepared for a model (the embedding explorer)
# --------------------------------------------------------------------------------------------------

LABELLED_SOURCES = ("fashion-mnist-subset", "fashion-mnist-test", "folder")


def labelled_dataset(source: str, size: int, channels: int, limit: Optional[int] = None, seed: int = 0,
                     folder: Optional[str] = None) -> LabelledImages:
    """A labelled image set at a model's size and channels, with at most ``limit`` images, class-balanced draws
    for Fashion-MNIST (a fixed seed keeps the same images across visits)."""
    if source == "fashion-mnist-subset":
        ds = load_fashion_mnist_subset()
    elif source == "fashion-mnist-test":
        ds = load_fashion_mnist("test")
    elif source == "folder":
        if not folder:
            raise DataError("choose an image folder (one subfolder per class)")
        return ImageFolderDataset(folder, size, channels).load_all(limit=limit, seed=seed)
    else:
        raise DataError(f"unknown dataset {source!r}; choose one of: {', '.join(LABELLED_SOURCES)}")
    if limit is not None and limit < len(ds):
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(ds), limit, replace=False))
        ds = ds.subset(idx)
    if (size, channels) != (28, 1):
        imgs = torch.stack([prepare_image(array_to_pil((x[0].numpy() * 255).round().astype(np.uint8)), size, channels)
                            for x in ds.images])
        ds = LabelledImages(imgs, ds.labels, ds.classes, ds.name)
    return ds


# --------------------------------------------------------------------------------------------------
# Training data: which images, their augmentation, and batches (used by train.py)
# --------------------------------------------------------------------------------------------------

def fmnist_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A mild random crop for 28 px garments: scale 0.85-1.0, shift up to 2 px, horizontal flip; batched."""
    n = x.shape[0]
    scale = 0.85 + 0.15 * torch.rand(n, generator=generator)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def photo_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x  # crops and flips are drawn by RandomCropPhotos itself


def _stack_images(items):
    return torch.stack([x for x, _ in items])


class Batches:
    """Index batches over a tensor or a Dataset, sharded per rank (DistributedSampler semantics). With
    ``workers`` > 0 a Dataset's items (decoding, random crops) are made in that many loader processes; the
    batches are the same as without, since every item depends on (seed, epoch, index) only."""

    def __init__(self, source, batch_size: int, rank: int, world: int, seed: int, workers: int = 0):
        self.source, self.batch_size, self.rank, self.world, self.seed = source, batch_size, rank, world, seed
        self.workers = workers  # used for Datasets only: a tensor is indexed in place
        n = len(source)
        self.per_rank = n // world
        if self.per_rank < 1:
            raise DataError(f"only {n} training images for {world} processes")
        self.steps_per_epoch = max(1, self.per_rank // batch_size)

    def epoch(self, epoch: int, start: int = 0):
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        perm = torch.randperm(len(self.source), generator=g)[: self.per_rank * self.world]
        mine = perm[self.rank::self.world]
        if hasattr(self.source, "set_epoch"):
            self.source.set_epoch(epoch)
        index_batches = [mine[s * self.batch_size:(s + 1) * self.batch_size].tolist()
                         for s in range(start, self.steps_per_epoch)]
        if isinstance(self.source, torch.Tensor):
            for idx in index_batches:
                yield self.source[idx]
        elif self.workers == 0:
            for idx in index_batches:
                yield _stack_images([self.source[i] for i in idx])
        else:
            loader = torch.utils.data.DataLoader(self.source, batch_sampler=index_batches, num_workers=self.workers,
                                                 collate_fn=_stack_images, pin_memory=torch.cuda.is_available())
            try:
                yield from loader
            except DataError as e:  # re-raised from a worker with its traceback in the text: keep the message
                last = str(e).strip().splitlines()[-1]
                raise DataError(last.split("DataError: ", 1)[-1]) from None


def loader_workers(requested: Optional[int], device: torch.device) -> int:
    """Loader processes: as asked, else 0 on the CPU (the cores are busy training) and up to 8 on a GPU, where
    decoding in the training process would leave it waiting. Never from a thread other than the main one
    (the app trains in a thread of a server process, which must not fork)."""
    if requested is not None:
        if requested < 0:
            raise ValueError(f"--workers must be >= 0, got {requested}")
        return requested
    if device.type != "cuda" or threading.current_thread() is not threading.main_thread():
        return 0
    return max(0, min(8, (os.cpu_count() or 1) // max(1, torch.cuda.device_count()) - 1))


def skipped_note(desc: dict) -> str:
    n, ex = desc["skipped"], desc["skipped_examples"]
    return (f"{n} unreadable image{'s' if n != 1 else ''} skipped (e.g. {', '.join(ex)}); training on the "
            f"{desc['train']}.")
