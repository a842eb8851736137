"""The datasets a model trains and is scored on, in one registry (like ``masking``'s strategies): each is a
frozen ``Dataset`` registered once; training (``build_data``), the encoder's probe during training, fine-tuning
and the pages' lists all loop over ``DATASETS``. Adding a dataset means one ``register_dataset`` call here (and
its test).

``--data`` names one: ``fashion-mnist`` (60,000 + 10,000, Debian's package or a download), ``fashion-mnist-subset``
(2,000 bundled images, split in two), ``photos`` (random crops of scikit-image's photographs), ``folder:PATH``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from .data import (PHOTO_HELDOUT, PHOTO_TRAIN, DataError, ImageFolderDataset, LabelledImages, RandomCropPhotos,
                   find_fashion_mnist, fashion_mnist_search_paths, fmnist_augment, load_fashion_mnist,
                   load_fashion_mnist_subset, photo_augment, photo_eval_set, skipped_note)


@dataclass(frozen=True)
class Dataset:
    """``build(args, config)`` -> (train source, eval images (N, C, H, W) in [0, 1], augment, description dict);
    ``labelled()`` -> (train, test) ``LabelledImages`` for probes and fine-tuning (the same object twice when one
    set is split in two), None for unlabelled data; ``size``/``channels``: the images' own shape (None: resized
    to the model's); ``presets``: the start of the preset names that fit it."""
    name: str
    label: str
    build: Callable
    labelled: Optional[Callable] = None
    available: Callable[[], bool] = lambda: True
    size: Optional[int] = None
    channels: Optional[int] = None
    presets: str = "mae_photo"
    takes_path: bool = False     # named as NAME:PATH

    def fits(self, config) -> bool:
        """Whether a model of ``config`` sees these images as they are (always, for resized data)."""
        return self.size is None or (config.img_size == self.size and config.in_chans == self.channels)


DATASETS: dict[str, Dataset] = {}


def register_dataset(d: Dataset) -> Dataset:
    DATASETS[d.name] = d
    return d


def get_dataset(data: str) -> Dataset:
    """The dataset a ``--data`` value names (``folder:PATH`` names ``folder``)."""
    d = DATASETS.get(str(data).split(":", 1)[0])
    if d is None or (d.takes_path and ":" not in str(data)) or (not d.takes_path and ":" in str(data)):
        names = ", ".join(f"{n}:PATH" if v.takes_path else n for n, v in DATASETS.items())
        raise DataError(f"unknown --data {data!r}: use {names}")
    return d


def labelled_names() -> list:
    """The datasets with labels: what a probe and a fine-tune can use."""
    return [n for n, d in DATASETS.items() if d.labelled is not None]


def labelled(data: str) -> tuple:
    d = get_dataset(data)
    if d.labelled is None:
        raise DataError(f"{data} has no labels; labelled data: {', '.join(labelled_names())}")
    return d.labelled()


def build_data(args, config):
    """Returns (train source, eval images (N, C, H, W) in [0, 1], augment fn, description dict) for ``args.data``."""
    d = get_dataset(args.data)
    if not d.fits(config):
        raise DataError(f"{d.label} is {d.size}x{d.size} with {d.channels} channel(s); preset {args.preset} expects "
                        f"{config.img_size}px with {config.in_chans} channel(s)")
    return d.build(args, config)


def _eval_draw(test: LabelledImages, n: int) -> torch.Tensor:
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(1234))[:n]
    return test.images[idx]


def missing_fashion_mnist_message() -> str:
    return ("Fashion-MNIST was not found (looked in: " + ", ".join(map(str, fashion_mnist_search_paths())) +
            "). Install it with 'apt-get install dataset-fashion-mnist', pass --download where a network exists, "
            "or train on the bundled subset with --data fashion-mnist-subset.")


def _fashion_mnist(args, config):
    if not (find_fashion_mnist() or args.download):
        raise DataError(missing_fashion_mnist_message())
    train, test = load_fashion_mnist("train", download=args.download), load_fashion_mnist("test")
    return train.images, _eval_draw(test, args.eval_images), fmnist_augment, \
        {"name": "Fashion-MNIST", "train": "train split (60,000)", "eval": "test split"}


def _fashion_mnist_subset(args, config):
    sub = load_fashion_mnist_subset()
    train, test = sub.subset(range(0, 1600)), sub.subset(range(1600, 2000))
    return train.images, _eval_draw(test, args.eval_images), fmnist_augment, \
        {"name": "Fashion-MNIST subset", "train": "bundled subset 0-1599", "eval": "bundled subset 1600-1999"}


def _photos(args, config):
    ds = RandomCropPhotos(PHOTO_TRAIN, config.img_size, config.in_chans, length=args.photo_samples, seed=args.seed)
    return ds, photo_eval_set(config.img_size, config.in_chans), photo_augment, \
        {"name": "scikit-image photos", "train": "random resized crops of " + ", ".join(PHOTO_TRAIN),
         "eval": "fixed crops of held-out " + ", ".join(PHOTO_HELDOUT)}


def _folder_augment(x, g):
    flip = torch.rand(x.shape[0], generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _folder(args, config):
    root = args.data.split(":", 1)[1]
    ds = ImageFolderDataset(root, config.img_size, config.in_chans)
    skipped = ds.drop_unreadable()  # a corrupt file is skipped, not the run's end
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1234))
    n_eval = min(args.eval_images, max(1, len(ds) // 10))
    ev = torch.stack([ds[int(i)][0] for i in perm[:n_eval]])
    desc = {"name": f"image folder {root}", "train": f"{len(ds)} images", "eval": f"{n_eval} images of it"}
    if skipped:
        desc.update(skipped=len(skipped), skipped_examples=[Path(f).name for f in skipped[:3]])
        if args.progress:
            print(skipped_note(desc), file=sys.stderr)
    return ds, ev, _folder_augment, desc


def _subset_both():
    sub = load_fashion_mnist_subset()
    return sub, sub


FASHION_MNIST = register_dataset(Dataset(
    "fashion-mnist", "Fashion-MNIST (60,000)", _fashion_mnist,
    labelled=lambda: (load_fashion_mnist("train"), load_fashion_mnist("test")),
    available=lambda: find_fashion_mnist() is not None, size=28, channels=1, presets="mae_fmnist"))
register_dataset(Dataset("fashion-mnist-subset", "Fashion-MNIST (bundled 1,600)", _fashion_mnist_subset,
                         labelled=_subset_both, size=28, channels=1, presets="mae_fmnist"))
register_dataset(Dataset("photos", "Photos (scikit-image)", _photos))
register_dataset(Dataset("folder", "Image folder…", _folder, takes_path=True))
