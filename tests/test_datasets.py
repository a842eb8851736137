"""The dataset registry: every consumer (training, the probe during training, fine-tuning, the Train page) reads
DATASETS, so a dataset registered once is usable everywhere."""
import dataclasses

import pytest
import torch

from mae_core import datasets
from mae_core.data import DataError, LabelledImages
from mae_core.datasets import DATASETS, Dataset, build_data, get_dataset, labelled, labelled_names
from mae_core.model import preset_config
from mae_core.train import TrainArgs


def test_every_data_name_resolves_and_a_wrong_one_lists_them():
    assert set(DATASETS) == {"fashion-mnist", "fashion-mnist-subset", "photos", "folder"}
    assert get_dataset("folder:/tmp/x").name == "folder" and get_dataset("photos").name == "photos"
    for bad in ("mnist", "folder", "photos:/tmp"):
        with pytest.raises(DataError, match=r"use fashion-mnist, fashion-mnist-subset, photos, folder:PATH"):
            get_dataset(bad)
    assert labelled_names() == ["fashion-mnist", "fashion-mnist-subset"]
    with pytest.raises(DataError, match="photos has no labels"):
        labelled("photos")


def test_build_data_checks_the_model_fits_the_images():
    args = TrainArgs(data="fashion-mnist-subset", preset="mae_fmnist_micro", eval_images=40)
    train, ev, augment, desc = build_data(args, args.model_config())
    assert train.shape == (1600, 1, 28, 28) and ev.shape == (40, 1, 28, 28) and desc["name"] == "Fashion-MNIST subset"
    photo = dataclasses.replace(args, preset="mae_photo_small")
    with pytest.raises(DataError, match=r"28x28 with 1 channel\(s\); preset mae_photo_small expects 64px with 3"):
        build_data(photo, photo.model_config())
    assert DATASETS["fashion-mnist"].fits(preset_config("mae_fmnist_tiny"))
    assert not DATASETS["fashion-mnist"].fits(preset_config("mae_photo_small"))
    assert DATASETS["photos"].fits(preset_config("mae_fmnist_tiny"))          # resized to any model


def test_a_registered_dataset_trains_probes_and_fine_tunes_without_other_edits(monkeypatch):
    from mae_core.evaluation.finetune import FinetuneArgs, labelled_split
    from mae_core.train import ProbeSet
    g = torch.Generator().manual_seed(0)
    toy = LabelledImages(torch.rand(60, 1, 28, 28, generator=g), torch.arange(60) % 3, ("a", "b", "c"), "toy")
    monkeypatch.setitem(DATASETS, "toy", Dataset(
        "toy", "Toy (60)", lambda args, config: (toy.images, toy.images[:8], lambda x, g: x, {"name": "toy"}),
        labelled=lambda: (toy, toy), size=28, channels=1, presets="mae_fmnist"))
    args = TrainArgs(data="toy", preset="mae_fmnist_micro", probe_images=(20, 20))
    assert build_data(args, args.model_config())[0].shape == (60, 1, 28, 28)
    probe = ProbeSet(args)
    assert len(probe.x_train) == 20 and len(probe.x_test) == 20
    x_tr, y_tr, x_te, y_te, desc = labelled_split(FinetuneArgs(data="toy", train_images=30, test_images=30))
    assert len(x_tr) == 30 and len(x_te) == 30 and desc == "30 images of toy; scored on 30 others"   # one set, split in two
    assert "toy" in labelled_names() and datasets.get_dataset("toy").label == "Toy (60)"
