import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mae_core import train as tr
from mae_core.checkpoints import load_model
from mae_core.data import DataError
from mae_core.optim import lr_at, param_groups
from mae_core.train import TrainArgs, TrainingError, pretrain

ROOT = Path(__file__).resolve().parent.parent


def _args(tmp_path, **kw):
    base = dict(data="fashion-mnist-subset", preset="mae_fmnist_micro", epochs=2, batch_size=64, lr=2e-3,
                warmup_epochs=0.2, out=str(tmp_path / "run"), progress=False, eval_images=200, log_every=5)
    base.update(kw)
    return TrainArgs(**base)


def test_training_reduces_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    from mae_core.model import build_model
    from mae_core.data import load_fashion_mnist_subset
    m = build_model("mae_fmnist_micro")
    x = m.normalize(load_fashion_mnist_subset().images[:64])
    opt = torch.optim.AdamW(param_groups(m, 0.05), lr=2e-3, betas=(0.9, 0.95))
    losses = []
    for _ in range(30):
        loss = m(x, mask_ratio=0.75, generator=torch.Generator().manual_seed(0)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]


def test_param_groups_skip_decay_on_biases_and_1d():
    from mae_core.model import build_model
    m = build_model("mae_fmnist_micro")
    no_decay, decay = param_groups(m, 0.05)
    assert no_decay["weight_decay"] == 0 and decay["weight_decay"] == 0.05
    assert all(p.ndim <= 1 for p in no_decay["params"])
    assert all(p.ndim > 1 for p in decay["params"])
    n_trainable = sum(1 for p in m.parameters() if p.requires_grad)
    assert len(no_decay["params"]) + len(decay["params"]) == n_trainable  # pos embeds are fixed: excluded


def test_fused_optimizer_makes_the_same_update_as_plain_adamw():
    from mae_core.optim import make_optimizer
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))
    b = copy.deepcopy(a)
    fused = make_optimizer(param_groups(a, 0.05), 1e-2)
    plain = torch.optim.AdamW(param_groups(b, 0.05), lr=1e-2, betas=(0.9, 0.95))
    assert fused.defaults["fused"] is True  # torch >= 2.4 has the fused CPU kernel
    x = torch.randn(32, 8)
    for _ in range(5):
        for m, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_lr_schedule_warmup_then_half_cosine():
    assert lr_at(0.0, 0.1, 1.0, 0.0) == 0.0
    assert lr_at(0.05, 0.1, 1.0, 0.0) == pytest.approx(0.5)
    assert lr_at(0.1, 0.1, 1.0, 0.0) == pytest.approx(1.0)
    assert lr_at(0.55, 0.1, 1.0, 0.0) == pytest.approx(0.5)
    assert lr_at(1.0, 0.1, 1.0, 0.1) == pytest.approx(0.1)


@pytest.mark.slow
def test_pretrain_writes_checkpoint_card_and_metrics(tmp_path):
    seen = []
    card = pretrain(_args(tmp_path, keep_epochs=(1,)), callback=seen.append, callback_every=5)
    assert card["status"] == "finished" and card["epochs"] == 2 and card["steps"] == 50
    assert [h["epoch"] for h in card["history"]] == [1, 2]
    assert card["history"][1]["eval_loss"] < card["history"][0]["eval_loss"] * 1.05
    model, loaded = load_model(tmp_path / "run")
    assert loaded["metrics"]["eval_mask_ratio"] == 0.75 and loaded["peak_lr"] == 2e-3
    assert loaded["mask_ratio"] == 0.75 and loaded["data"]["name"] == "Fashion-MNIST subset"
    lines = [json.loads(l) for l in (tmp_path / "run.metrics.jsonl").read_text().splitlines()]
    assert sum(1 for l in lines if l.get("event") == "epoch_end") == 2 and lines[0]["step"] == 5
    assert (tmp_path / "run.state.pt").is_file()
    assert seen and seen[-1].model is not None and seen[0].images_per_s >= 0
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    # --keep-epochs: epoch 1's weights and card, kept beside the run (the final files moved on to epoch 2)
    snap, snap_card = load_model(tmp_path / "run_epoch1")
    assert snap_card["name"] == "run_epoch1" and snap_card["epochs"] == 1 and snap_card["steps"] == 25
    assert snap_card["history"] == card["history"][:1]
    final = model.state_dict()
    assert snap.state_dict().keys() == final.keys()
    assert any(not torch.equal(v, final[k]) for k, v in snap.state_dict().items())
    assert not (tmp_path / "run_epoch2.safetensors").exists()


@pytest.mark.slow
def test_stop_after_replays_a_run_up_to_a_kept_epoch(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    full = pretrain(_args(a, keep_epochs=(1,)))
    part = pretrain(_args(b, keep_epochs=(1,), stop_after=1))
    assert part["status"] == "stopped" and part["epochs"] == 1 and (b / "run.state.pt").is_file()
    timeless = lambda h: {k: v for k, v in h.items() if k != "elapsed_s"}  # noqa: E731
    assert timeless(part["history"][0]) == timeless(full["history"][0])     # the same losses, to the last bit
    snap_a, snap_b = load_model(a / "run_epoch1")[0].state_dict(), load_model(b / "run_epoch1")[0].state_dict()
    assert all(torch.equal(v, snap_b[k]) for k, v in snap_a.items())      # the replay's snapshot is the run's
    done = pretrain(_args(b, keep_epochs=(1,), resume=True))
    assert done["status"] == "finished" and done["steps"] == full["steps"]
    got, ref = load_model(b / "run")[0].state_dict(), load_model(a / "run")[0].state_dict()
    assert all(torch.equal(v, got[k]) for k, v in ref.items())


def test_keep_epochs_must_fall_within_the_run(capsys):
    assert tr.parse_args(["--epochs", "24", "--keep-epochs", "18", "12", "18"]).keep_epochs == (12, 18)
    with pytest.raises(SystemExit):
        tr.parse_args(["--epochs", "24", "--keep-epochs", "30"])
    assert "--keep-epochs takes epochs from 1 to --epochs (24); got 30" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tr.parse_args(["--epochs", "24", "--stop-after", "0"])
    assert "--stop-after takes an epoch from 1 to --epochs (24); got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_stop_then_resume_equals_uninterrupted_run(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir(), b.mkdir()
    pretrain(_args(a))
    ref = load_model(a / "run")[0].state_dict()
    last = {"step": 0}

    def track(info):
        last["step"] = info.step
    card = pretrain(_args(b), callback=track, callback_every=1, should_stop=lambda: last["step"] >= 33)
    assert card["status"] == "stopped" and card["steps"] == 33 and card["epochs"] == 1
    card = pretrain(_args(b, resume=True))
    assert card["status"] == "finished" and card["steps"] == 50
    got = load_model(b / "run")[0].state_dict()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_nan_loss_stops_with_step_and_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    orig = tr.MaskedAutoencoderViT.forward_loss

    def poisoned(self, imgs, pred, mask):
        if self.training:
            calls["n"] += 1
        loss = orig(self, imgs, pred, mask)
        return loss * float("nan") if calls["n"] >= 30 else loss
    monkeypatch.setattr(tr.MaskedAutoencoderViT, "forward_loss", poisoned)
    with pytest.raises(TrainingError, match=r"loss became nan at step 29 \(epoch 2\).*run.safetensors \(epoch 1, step 25\)"):
        pretrain(_args(tmp_path))
    model, card = load_model(tmp_path / "run")  # the epoch-1 checkpoint is intact and finite
    assert card["epochs"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.slow
def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mae_core.train", "--data", "folder:/does/not/exist",
                        "--preset", "mae_fmnist_micro", "--out", str(tmp_path / "x"), "--no-progress"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "error: /does/not/exist is not a folder" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "mae_core.train", "--mask-ratio", "1.5"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--mask-ratio must be in [0, 1)" in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_device_cuda_without_a_gpu_is_a_message(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mae_core.train", "--data", "fashion-mnist-subset", "--preset",
                        "mae_fmnist_micro", "--device", "cuda", "--out", str(tmp_path / "x"), "--no-progress"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--device cuda: PyTorch sees no CUDA GPU" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.safetensors").exists()


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "mae_core.train", "--data", "fashion-mnist-subset", "--preset",
                          "mae_fmnist_micro", "--epochs", "200", "--batch-size", "32", "--out", str(out),
                          "--no-progress", "--log-every", "2"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = out.with_suffix(".metrics.jsonl")
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text().strip()):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert "stopped" in stdout and "--resume" in stdout
    model, card = load_model(out)
    assert card["status"] == "stopped" and card["steps"] > 0
    assert out.with_suffix(".state.pt").is_file()


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "mae_core.train", "--data", "fashion-mnist-subset", "--preset", "mae_fmnist_micro",
                        "--epochs", "1", "--batch-size", "32", "--out", str(out), "--no-progress", "--threads", "1",
                        "--device", "cpu"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    model, card = load_model(out)
    assert card["world_size"] == 2 and card["global_batch"] == 64
    assert card["steps"] == 1600 // 2 // 32  # each rank sees half the data
    assert card["peak_lr"] == pytest.approx(1.5e-4 * 64 / 256)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.json", "ddp.metrics.jsonl", "ddp.safetensors",
                                                           "ddp.state.pt"]


class _WhoLoads(torch.utils.data.Dataset):
    """Each item is the id of the process that made it."""

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return torch.full((1,), os.getpid(), dtype=torch.int64), 0


def test_loader_workers_give_the_same_batches_and_clear_errors(tmp_path):
    from PIL import Image

    from mae_core.data import ImageFolderDataset, RandomCropPhotos
    from mae_core.train import Batches, loader_workers
    photos = RandomCropPhotos(("coffee", "chelsea"), 32, 3, length=48, seed=3)
    for epoch, start in ((0, 0), (1, 2)):  # start > 0: a resumed epoch
        plain = list(Batches(photos, 8, 0, 1, 5).epoch(epoch, start=start))
        loaded = list(Batches(photos, 8, 0, 1, 5, workers=2).epoch(epoch, start=start))
        assert len(plain) == len(loaded) == 6 - start
        for a, b in zip(plain, loaded):
            assert a.shape == (8, 3, 32, 32) and torch.equal(a, b)
    # an unreadable file met in a loader process is reported by name, as in the training process
    for i in range(6):
        Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(tmp_path / f"ok{i}.png")
    (tmp_path / "zz_broken.png").write_bytes(b"not a png")
    ds = ImageFolderDataset(tmp_path, 16, 3)
    with pytest.raises(DataError) as e:
        for _ in Batches(ds, 7, 0, 1, 0, workers=2).epoch(0):
            pass
    assert "zz_broken.png" in str(e.value) and "Traceback" not in str(e.value)
    # the items really come from other processes
    pids = {int(b[0, 0]) for b in Batches(_WhoLoads(), 4, 0, 1, 0, workers=2).epoch(0)}
    assert pids and os.getpid() not in pids
    assert {int(b[0, 0]) for b in Batches(_WhoLoads(), 4, 0, 1, 0).epoch(0)} == {os.getpid()}
    assert loader_workers(None, torch.device("cpu")) == 0 and loader_workers(3, torch.device("cpu")) == 3
    with pytest.raises(ValueError, match="--workers must be >= 0"):
        loader_workers(-1, torch.device("cpu"))


def test_pretraining_masks_follow_the_strategy(tmp_path, monkeypatch):
    """--mask-strategy grid: every training step's mask comes from the grid maker (the paper's Figure 6 models)."""
    import mae_core.train as train
    seen = []
    real = train.make_mask

    def spy(strategy, n, grid, ratio, seed=None):
        m = real(strategy, n, grid, ratio, seed=seed)
        seen.append((strategy, n, int(m[0].sum())))
        return m
    monkeypatch.setattr(train, "make_mask", spy)
    card = pretrain(TrainArgs(data="fashion-mnist-subset", preset="mae_fmnist_micro", epochs=1, batch_size=400,
                              mask_strategy="grid", out=str(tmp_path / "g"), progress=False, eval_images=20))
    assert seen == [("grid", 400, 37)] * 4 and card["mask_strategy"] == "grid"


def test_probe_every_scores_the_encoder_into_the_history(tmp_path):
    """--probe-every 2 with 3 epochs: scores after epoch 2 and at the end (3), none after epoch 1; the scores are
    accuracies on disjoint fixed images, recorded in the card's history and the metrics log."""
    card = pretrain(_args(tmp_path, epochs=3, batch_size=500, probe_every=2, probe_images=(300, 200)))
    probed = [h["epoch"] for h in card["history"] if "probe_both" in h]
    assert probed == [2, 3]
    assert card["probe_protocol"].startswith("every 2 epochs and at the end: 300 ")
    last = card["history"][-1]
    for k in ("probe_both", "probe_mean", "knn_both"):
        assert 0.1 <= last[k] <= 1.0  # ten classes: better than nothing is >0.1; a fraction, not a percent
    logged = [json.loads(l) for l in (tmp_path / "run.metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged if "probe_both" in r] == [2, 3]
    ps = tr.ProbeSet(_args(tmp_path, probe_every=1, probe_images=(300, 200)))
    assert len(ps.x_train) == 300 and len(ps.x_test) == 200
    # the subset is split in two: no image is both fitted on and scored
    rows = lambda x: {r.tobytes() for r in (x.numpy().reshape(len(x), -1) * 255).round().astype("uint8")}  # noqa: E731
    assert len(rows(ps.x_train)) == 300 and not rows(ps.x_train) & rows(ps.x_test)


def test_probe_needs_labelled_data(tmp_path):
    with pytest.raises(TrainingError, match="labelled data"):
        tr.ProbeSet(_args(tmp_path, data="photos", probe_every=1))


def test_the_command_line_is_generated_from_train_args():
    """One option per TrainArgs field: no flags means the defaults, and every field can be set from the command
    line (a new field needs no second edit in the parser)."""
    import dataclasses
    from mae_core.train import build_parser, parse_args
    assert dataclasses.asdict(parse_args([])) == {**dataclasses.asdict(TrainArgs()), "probe_images": [10000, 5000],
                                                  "keep_epochs": ()}
    dests = {a.dest for a in build_parser()._actions} - {"help"}
    assert dests == {f.name for f in dataclasses.fields(TrainArgs)} - {"overrides"} | {"set"}
    a = parse_args("--norm-pix --no-progress --mask-strategy grid --lr 2e-3 --keep-epochs 3 1 --epochs 4 "
                   "--set decoder_depth=4 --probe-images 100 50 --time-budget 1.5".split())
    assert (a.norm_pix_loss, a.progress, a.mask_strategy, a.lr, a.keep_epochs) == (True, False, "grid", 2e-3, (1, 3))
    assert a.overrides == {"decoder_depth": 4} and list(a.probe_images) == [100, 50] and a.time_budget == 1.5
    with pytest.raises(SystemExit):
        parse_args(["--mask-strategy", "spiral"])
