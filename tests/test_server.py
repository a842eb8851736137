"""A shared classroom server: every path, size and run a visitor can name is bounded and owned.

Each test tries one attack and asserts both the message the visitor gets and that nothing was read,
allocated, stopped or written."""
import json
import os
import re
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch

from mae_core.classroom import policy, uploads
from mae_core.checkpoints import CheckpointError, load_model, save_model
from mae_core.model import Limits, MAEConfig, MaskedAutoencoderViT, preset_config
from mae_core.train import TrainArgs
from mae_core.classroom.worker import JobRegistry, RunNotAllowed, safe_run_name

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shared(monkeypatch):
    """A shared server with no folders allowed (the default there)."""
    for k in ("MAE_ALLOWED_DIRS", "MAE_READ_ONLY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MAE_SHARED", "1")


# ----------------------------------------------------------------------------- paths a visitor names

PROBES = ["/etc/shadow", "/etc/passwd", "/root/.ssh/id_rsa", "/proc/self/environ", "/dev/zero", "/no/such/file",
          "/", "/etc", "../../../../etc/passwd"]


def test_paths_are_off_on_a_shared_server_by_default(shared):
    for p in PROBES:
        with pytest.raises(policy.NotAllowed) as e:
            policy.confine(p)
        assert str(e.value) == policy.PATHS_OFF


def test_paths_outside_the_allowed_folders_all_get_one_message(monkeypatch, tmp_path):
    allowed = tmp_path / "teacher"
    allowed.mkdir()
    (allowed / "model.safetensors").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("not for visitors")
    os.symlink(tmp_path / "secret.txt", allowed / "link.txt")          # a symlink leading out
    os.symlink("/etc", allowed / "etc")
    monkeypatch.setenv("MAE_ALLOWED_DIRS", str(allowed))
    messages = set()
    for p in PROBES + [str(tmp_path / "secret.txt"), str(allowed / "link.txt"), str(allowed / "etc" / "passwd"),
                       str(allowed / ".." / "secret.txt"), "../secret.txt", str(tmp_path / "missing")]:
        with pytest.raises(policy.NotAllowed) as e:
            policy.confine(p)
        messages.add(str(e.value))
    assert len(messages) == 1, messages          # existing, missing, unreadable, devices: indistinguishable
    assert "not inside a folder this server allows" in messages.pop()
    assert policy.confine(str(allowed / "model.safetensors")) == (allowed / "model.safetensors").resolve()
    assert policy.confine("model.safetensors") == (allowed / "model.safetensors").resolve()  # relative to the root


def test_local_default_is_the_projects_own_folders(monkeypatch):
    for k in ("MAE_ALLOWED_DIRS", "MAE_READ_ONLY", "MAE_SHARED"):
        monkeypatch.delenv(k, raising=False)
    pol = policy.current()
    assert (ROOT / "checkpoints").resolve() in pol.allowed_dirs
    assert policy.confine(str(ROOT / "checkpoints" / "fmnist_r75.safetensors"))
    with pytest.raises(policy.NotAllowed):
        policy.confine("/etc/passwd")


def test_a_json_card_with_foreign_values_is_not_echoed(tmp_path):
    secret = "root:$6$abcdefghijklmnopqrstuvwxyz0123456789:19000:0:99999:7:::"
    (tmp_path / "x.json").write_text(json.dumps({"config": {"img_size": secret, "depth": secret}}))
    (tmp_path / "x.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError) as e:
        load_model(tmp_path / "x.safetensors")
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in str(e.value)
    assert "img_size must be a positive integer" in str(e.value)


def _app(monkeypatch, tmp_path, env: dict):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MAE_RUNS_DIR", str(tmp_path / "runs"))
    for k in ("MAE_ALLOWED_DIRS", "MAE_READ_ONLY", "MAE_SHARED"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    return app


def test_model_path_box_is_off_on_a_shared_server(monkeypatch, tmp_path):
    app = _app(monkeypatch, tmp_path, {"MAE_SHARED": "1"})
    app.radio(key="model_source").set_value("Path on this server").run()
    assert not app.exception
    assert not [t for t in app.text_input if t.key == "model_path"]   # nothing to type into
    assert any("turned off" in i.value for i in app.info)


def test_model_path_box_refuses_probes_alike_and_keeps_the_model(monkeypatch, tmp_path):
    allowed = tmp_path / "teacher"
    allowed.mkdir()
    app = _app(monkeypatch, tmp_path, {"MAE_SHARED": "1", "MAE_ALLOWED_DIRS": str(allowed)})
    before = app.session_state["active_model"]
    app.radio(key="model_source").set_value("Path on this server").run()
    seen = set()
    for probe in ["/etc/shadow", "/root/.ssh/id_rsa", "/dev/zero", "/no/such/thing", str(tmp_path)]:
        app.text_input(key="model_path").input(probe).run()
        assert not app.exception
        errs = [e.value for e in app.error]
        assert len(errs) == 1
        seen.add(errs[0])
        assert app.session_state["active_model"] == before
    assert len(seen) == 1 and "not inside a folder this server allows" in seen.pop()


# ----------------------------------------------------------------------------- sizes bounded before allocation

def test_param_count_from_the_config_equals_the_built_model(tiny_config):
    for cfg in (tiny_config, preset_config("mae_fmnist_tiny"), preset_config("mae_photo_small"),
                MAEConfig(img_size=32, patch_size=8, in_chans=3, embed_dim=48, depth=3, num_heads=4, mlp_ratio=2.5,
                          decoder_embed_dim=24, decoder_depth=2, decoder_num_heads=3,
                          pixel_mean=(0.5,) * 3, pixel_std=(0.5,) * 3)):
        built = sum(t.numel() for t in MaskedAutoencoderViT(cfg).state_dict().values())
        assert cfg.param_count() == built
        enc = sum(t.numel() for k, t in MaskedAutoencoderViT(cfg).state_dict().items()
                  if not k.startswith(("decoder", "mask_token")))
        assert cfg.param_count(decoder=False) == enc
    assert 600e6 < preset_config("mae_vit_huge_patch14").param_count() < policy.current().max_params


def _card(tmp_path, **cfg_changes):
    cfg = preset_config("mae_fmnist_micro").to_dict()
    cfg.update(cfg_changes)
    (tmp_path / "bomb.json").write_text(json.dumps({"config": cfg}))
    (tmp_path / "bomb.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    return tmp_path / "bomb.safetensors"


@pytest.mark.parametrize("changes, message", [
    (dict(embed_dim=65536, num_heads=16, depth=64), "MAE_MAX_PARAMS"),
    (dict(decoder_embed_dim=65536, decoder_num_heads=16, decoder_depth=512), "MAE_MAX_PARAMS"),
    (dict(img_size=1024, patch_size=4), "MAE_MAX_ACTIVATION_MB"),
    (dict(mlp_ratio=1e9), "mlp_ratio must be between 0 and 64"),
])
def test_a_small_card_declaring_a_huge_model_is_refused_before_allocation(tmp_path, changes, message):
    path = _card(tmp_path, **changes)
    assert path.stat().st_size < 100
    tracemalloc.start()
    t = time.time()
    with pytest.raises(CheckpointError, match=message):
        load_model(path, limits=policy.current().limits)   # as the app loads: the server's limits
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20 and time.time() - t < 2


def test_the_size_limit_is_the_operators(tmp_path, monkeypatch):
    model = MaskedAutoencoderViT(preset_config("mae_fmnist_micro"))
    save_model(model, tmp_path / "m")
    monkeypatch.setenv("MAE_MAX_PARAMS", "1000")
    with pytest.raises(CheckpointError, match=r"declares 0M parameters.*at most 0M \(MAE_MAX_PARAMS\)"):
        load_model(tmp_path / "m.safetensors", limits=policy.current().limits)
    # the library itself does not read the server's settings: a notebook's load_model keeps its own limits
    assert load_model(tmp_path / "m.safetensors")[0].num_params() > 1000
    with pytest.raises(CheckpointError, match=r"at most 0M \(Limits.max_params\)"):
        load_model(tmp_path / "m.safetensors", limits=Limits(max_params=1000))
    monkeypatch.delenv("MAE_MAX_PARAMS")
    assert load_model(tmp_path / "m.safetensors", limits=policy.current().limits)[0].num_params() > 1000


def test_the_core_library_does_not_import_the_classroom_layer():
    import ast
    core = [p for p in (ROOT / "mae_core").glob("*.py")]
    assert len(core) > 10
    for p in core:
        tree = ast.parse(p.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names} | \
                {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & {"policy", "classroom", "evaluation"}, p.name


def test_hugging_face_layer_index_bomb_does_not_loop(tmp_path):
    from safetensors.torch import save_file
    model = MaskedAutoencoderViT(preset_config("mae_fmnist_micro"))
    sd = {"vit.embeddings.patch_embeddings.projection.weight": model.patch_embed.proj.weight.detach(),
          "vit.embeddings.position_embeddings": model.pos_embed.detach(),
          "vit.embeddings.cls_token": model.cls_token.detach(),
          "vit.encoder.layer.300000.layernorm_before.weight": torch.zeros(64)}
    save_file(sd, str(tmp_path / "model.safetensors"))
    t = time.time()
    with pytest.raises(CheckpointError, match=r"numbered up to 300000 but 300,000 are missing"):
        load_model(tmp_path / "model.safetensors")
    assert time.time() - t < 2


def test_official_state_dict_without_block_0_is_a_message_not_a_keyerror(tmp_path):
    model = MaskedAutoencoderViT(preset_config("mae_fmnist_micro"))
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks.0.")}
    torch.save(sd, tmp_path / "noblock0.pth")
    with pytest.raises(CheckpointError, match=r"blocks.N blocks are numbered up to 1 but 1 are missing"):
        load_model(tmp_path / "noblock0.pth")


def test_zip_bomb_pth_is_refused_from_its_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MAE_MAX_CHECKPOINT_MB", "64")
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("archive/data/0", b"\0" * (100 * 2**20))  # 100 MB of zeros, ~100 kB packed
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    with pytest.raises(CheckpointError, match=r"unpacks to 100 MB, more than this server reads \(64 MB"):
        load_model(path, limits=policy.current().limits)
    assert tracemalloc.get_traced_memory()[1] < 20 * 2**20
    tracemalloc.stop()


def test_a_device_file_is_not_read(tmp_path):
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_model("/dev/zero")


# ----------------------------------------------------------------------------- runs belong to someone

def _args(tmp_path, name="run", **kw):
    base = dict(data="fashion-mnist-subset", preset="mae_fmnist_micro", epochs=50, batch_size=64, lr=1e-3,
                out=str(tmp_path / name), progress=False, eval_images=50, log_every=5)
    base.update(kw)
    return TrainArgs(**base)


def _wait(job, timeout=120):
    job.join(timeout)
    assert not job.alive


@pytest.mark.parametrize("name, stem", [("carol", "carol"), ("carol.v2", "carol_v2"), ("..", "run"), (".", "run"),
                                        ("../../etc/cron.d/x", "etc_cron_d_x"), ("/abs/path", "abs_path"),
                                        ("a b\\c", "a_b_c"), ("", "run"), ("x" * 300, "x" * 48),
                                        ("[click](https://x)", "click_https_x")])
def test_run_names_are_safe_stems(name, stem):
    assert safe_run_name(name) == stem


def test_names_that_clash_get_a_suffix_not_shared_files(tmp_path):
    reg = JobRegistry()
    (tmp_path / "carol.safetensors").write_bytes(b"")
    assert reg.unique_name("carol", tmp_path) == "carol_2"
    assert reg.unique_name("carol.v2", tmp_path) == "carol_v2"
    (tmp_path / "carol_2.metrics.jsonl").write_text("")
    assert reg.unique_name("carol", tmp_path) == "carol_3"


def test_only_the_owner_or_the_operator_controls_a_run(tmp_path):
    reg = JobRegistry(max_running=2, per_owner=1)
    job = reg.start(_args(tmp_path, "alice"), name="alice", owner="alice-token")
    try:
        with pytest.raises(RunNotAllowed, match="only the visitor who started this run"):
            reg.stop(job.id, requester="bob-token")
        with pytest.raises(RunNotAllowed, match="only the visitor who started this run"):
            reg.delete(job.id, requester="bob-token")
        time.sleep(0.5)
        assert job.snapshot().status in ("starting", "running")   # bob's attempt stopped nothing
        with pytest.raises(RunNotAllowed, match=r"you already have 1 run\(s\) training or waiting"):
            reg.start(_args(tmp_path, "alice2"), owner="alice-token")
        assert not reg.can_control(job, "bob-token") and reg.can_control(job, "bob-token", operator=True)
        assert [j.id for j in reg.jobs(viewer="bob-token", show_all=False)] == []
        assert [j.id for j in reg.jobs(viewer="bob-token", show_all=True)] == [job.id]
        reg.stop(job.id, requester="alice-token")
    finally:
        job.stop()
        _wait(job)
    assert job.snapshot().status == "stopped"
    with pytest.raises(RunNotAllowed):
        reg.resume(job.id, requester="bob-token")
    removed = reg.delete(job.id, requester="alice-token")
    assert {p.name for p in removed} >= {"alice.safetensors", "alice.json"}
    assert not (tmp_path / "alice.safetensors").exists() and reg.get(job.id) is None


@pytest.mark.slow
def test_runs_over_the_server_limit_wait_in_a_queue(tmp_path):
    reg = JobRegistry(max_running=1, per_owner=1)
    first = reg.start(_args(tmp_path, "a"), owner="a")
    second = reg.start(_args(tmp_path, "b", epochs=1), owner="b")
    third = reg.start(_args(tmp_path, "c", epochs=1), owner="c")
    try:
        assert second.snapshot().status == "queued" and third.snapshot().status == "queued"
        assert reg.queue_position(second.id) == 0 and reg.queue_position(third.id) == 1
        reg.stop(third.id, requester="c")                       # leaving the queue: nothing was written
        assert third.snapshot().status == "stopped" and not (tmp_path / "c.json").exists()
        assert reg.queue_position(second.id) == 0
        reg.stop(first.id, requester="a")
        _wait(first)
        deadline = time.time() + 60
        while second.snapshot().status == "queued" and time.time() < deadline:
            time.sleep(0.05)
        assert second.snapshot().status in ("starting", "running", "finished")
        _wait(second)
        assert second.snapshot().status == "finished"
    finally:
        for j in (first, second, third):
            j.stop()


# ----------------------------------------------------------------------------- read-only means no writes

def test_read_only_refuses_every_write_in_the_classroom_layer(tmp_path, monkeypatch):
    """Every write a visitor can ask for goes through the classroom layer, which refuses it on a read-only server
    (the core library's ``pretrain`` is the operator's command-line tool and knows no server policy; no page calls
    it but through the worker: checked below)."""
    from mae_core.classroom import zoo
    monkeypatch.setenv("MAE_READ_ONLY", "1")
    with pytest.raises(policy.NotAllowed, match="read-only.*training"):
        JobRegistry().start(_args(tmp_path))
    pages = [p for p in (ROOT / "app").rglob("*.py")]
    calls = re.compile(r"\bpretrain\s*\(|import [^\n]*\bpretrain\b(?!\w)")
    assert pages and not [p.name for p in pages if calls.search(p.read_text())]
    assert calls.search("from mae_core.train import TrainArgs, pretrain")   # the check sees an import
    reg = JobRegistry()
    with pytest.raises(policy.NotAllowed, match="read-only.*the fine-tune is turned off"):
        with reg.slot("v", "the fine-tune"):      # the in-app fine-tune borrows a training slot
            raise AssertionError("a read-only server ran a fine-tune")
    assert reg._running() == 0
    with pytest.raises(policy.NotAllowed, match="read-only.*uploading weights"):
        uploads.save_checkpoint_upload([("m.pth", b"x")], "v")
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path / "cache"))

    def no_network(*a, **k):
        raise AssertionError("a read-only server must not even connect")
    with pytest.raises(policy.NotAllowed, match="read-only.*downloading"):
        zoo.download_official("mae_visualize_vit_base", opener=no_network)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- uploads: per visitor, quota, age

def test_uploads_are_per_visitor_bounded_and_expire(tmp_path, monkeypatch):
    monkeypatch.setenv("MAE_UPLOAD_DIR", str(tmp_path / "up"))
    monkeypatch.setenv("MAE_UPLOAD_QUOTA_MB", "1")
    half = b"PK\3\4" + b"\1" * (600 * 1024)
    a1 = uploads.save_checkpoint_upload([("one.pth", half)], "alice")
    b1 = uploads.save_checkpoint_upload([("one.pth", half)], "bob")
    assert a1.parent.parent != b1.parent.parent            # each visitor has a folder of their own
    a2 = uploads.save_checkpoint_upload([("two.pth", half + b"2")], "alice")
    assert a2.is_file() and not a1.exists() and b1.exists()  # alice's oldest made room; bob's kept
    with pytest.raises(uploads.UploadError, match="each visitor may keep 1 MB"):
        uploads.save_checkpoint_upload([("big.pth", b"PK\3\4" + b"\0" * (2 * 2**20))], "alice")
    with pytest.raises(uploads.UploadError, match="evil.sh: upload .safetensors"):
        uploads.save_checkpoint_upload([("../../evil.sh", b"#!")], "alice")
    assert uploads.clean_old(now=time.time()) == 0
    assert uploads.clean_old(now=time.time() + 25 * 3600) == 2
    assert not a2.exists() and not b1.exists()


def test_junk_uploads_are_refused_unstored_and_failed_loads_are_removed(tmp_path, monkeypatch):
    """Seen: two 200 MB junk .bin files stayed on disk after failing to load."""
    monkeypatch.setenv("MAE_UPLOAD_DIR", str(tmp_path / "up"))
    for name, junk in (("x.bin", b"\0" * 4096), ("x.pth", b"#!/bin/sh\n"), ("x.safetensors", b"\xff" * 64)):
        with pytest.raises(uploads.UploadError, match=f"{re.escape(name)}: not a .*first bytes"):
            uploads.save_checkpoint_upload([(name, junk)], "alice")
    with pytest.raises(uploads.UploadError, match="m.json: not a JSON model card"):
        uploads.save_checkpoint_upload([("m.safetensors", b"\x02" + b"\0" * 7 + b"{}"), ("m.json", b"<html>")], "a")
    assert not (tmp_path / "up").exists() or not any((tmp_path / "up").rglob("*.*"))
    # a file that looks right but does not load: the app discards it (its folder and the visitor's empty folder)
    torch.save({"model": {"nothing": torch.zeros(1)}}, tmp_path / "bad.pth")
    path = uploads.save_checkpoint_upload([("bad.pth", (tmp_path / "bad.pth").read_bytes())], "alice")
    with pytest.raises(CheckpointError):
        load_model(path)
    assert uploads.discard(path) and not path.exists() and not any((tmp_path / "up").iterdir())
    assert not uploads.discard(tmp_path / "bad.pth")          # nothing outside the upload folder is touched
    assert (tmp_path / "bad.pth").exists()
    ok = uploads.save_checkpoint_upload([("ok.pth", (tmp_path / "bad.pth").read_bytes())], "bob")
    assert uploads.content_key([("ok.pth", (tmp_path / "bad.pth").read_bytes())]) == ok.parent.name


# ----------------------------------------------------------------------------- README's recipe for a class

@pytest.mark.slow
def test_class_recipe_read_only_server_with_teacher_images(monkeypatch, tmp_path):
    """MAE_READ_ONLY=1 and MAE_ALLOWED_DIRS=<teacher's folder>: the teacher's images can be mapped, nothing
    else on the disk can be named, and nothing can be written."""
    import numpy as np
    from PIL import Image
    teacher = tmp_path / "lesson"
    rng = np.random.default_rng(0)
    for c in ("cats", "dogs"):
        (teacher / c).mkdir(parents=True)
        for i in range(60):
            Image.fromarray((rng.random((28, 28)) * 255 * (0.3 if c == "cats" else 1)).astype(np.uint8)).save(
                teacher / c / f"{i}.png")
    app = _app(monkeypatch, tmp_path, {"MAE_READ_ONLY": "1", "MAE_ALLOWED_DIRS": str(teacher)})
    app.switch_page(str(ROOT / "app" / "views" / "embeddings.py"))
    app.session_state["emb_method"] = "pca"
    app.run()
    app.selectbox(key="emb_source").set_value("folder").run()
    app.text_input(key="emb_folder").input(str(teacher)).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("120 points · PCA" in c.value for c in app.caption)
    assert not [b for b in app.button if b.key == "ft_run"]          # no training of any kind, fine-tunes included
    assert any("fine-tuning here is turned off" in c.value for c in app.caption)
    app.text_input(key="emb_folder").input("/usr/share").run()
    errs = [e.value for e in app.error]
    assert len(errs) == 1 and "not inside a folder this server allows" in errs[0]
    app.switch_page(str(ROOT / "app" / "views" / "train.py"))
    app.run()
    assert any("read-only" in i.value for i in app.info)
    assert not [b for b in app.button if b.label == "Start training"]
    app.switch_page(str(ROOT / "app" / "views" / "reconstruct.py"))
    app.run()
    app.radio(key="model_source").set_value("Upload").run()
    assert any("uploading weights is turned off" in i.value for i in app.info)
    assert not (tmp_path / "cache" / "uploads").exists() and not (tmp_path / "runs").exists()


_PEAK_RSS = r"""
import json, resource, sys, time
from mae_core.checkpoints import CheckpointError, load_model
import torch, mae_core.model  # what loading imports, before the baseline is read
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.time()
try:
    load_model(sys.argv[1])
    msg = "loaded"
except CheckpointError as e:
    msg = str(e)
print(json.dumps({"grew_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
                  "s": time.time() - t, "msg": msg}))
"""


def _load_in_fresh_process(path) -> dict:
    """load_model in a process of its own: its peak resident memory is this load's and nothing else's."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(path)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _billion_param_config() -> dict:
    # under the default MAE_MAX_PARAMS (1 B) and the activation limit: only the file's size can refuse it
    return preset_config("mae_vit_large_patch16", embed_dim=2048, num_heads=16, depth=16).to_dict()


@pytest.mark.slow   # a fresh process of its own to measure the load's peak memory
def test_a_few_bytes_declaring_a_billion_parameters_cost_no_memory(tmp_path):
    """Seen on a class server: a 16-byte .safetensors and a 281-byte card declaring a 0.8-1 B-parameter model took
    15.9 s and 3 GB before 'weights do not fit'. Now the file's size is compared with the model it declares first."""
    cfg = _billion_param_config()
    assert 0.7e9 < MAEConfig.from_dict(cfg).param_count() < policy.current().max_params
    (tmp_path / "big.json").write_text(json.dumps({"config": cfg}))
    (tmp_path / "big.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    r = _load_in_fresh_process(tmp_path / "big.safetensors")
    assert "declares 8" in r["msg"] and "refused before building anything" in r["msg"], r
    assert r["grew_mb"] < 100, r   # was +3,100 MB


@pytest.mark.slow   # a fresh process of its own to measure the load's peak memory
def test_a_hugging_face_folder_of_zero_size_tensors_costs_no_memory(tmp_path):
    """Seen: a Hugging Face folder of zero-size tensors whose shapes declare a 0.8 B-parameter model (13 s, +3.1 GB)."""
    from safetensors.torch import save_file
    d = 2048   # 16 blocks of width 2048: about 0.8 B parameters declared by shapes that hold nothing
    sd = {"vit.embeddings.patch_embeddings.projection.weight": torch.zeros(d, 3, 16, 0),
          "vit.embeddings.position_embeddings": torch.zeros(1, 197, 0),
          "vit.embeddings.cls_token": torch.zeros(1, 1, 0)}
    sd.update({f"vit.encoder.layer.{i}.intermediate.dense.weight": torch.zeros(4 * d, 0) for i in range(16)})
    folder = tmp_path / "hf"
    folder.mkdir()
    save_file(sd, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "vit_mae", "num_attention_heads": 16,
                                                    "norm_pix_loss": False}))
    r = _load_in_fresh_process(folder)
    assert "is empty (shape" in r["msg"], r
    assert r["grew_mb"] < 100, r


@pytest.mark.slow   # a fresh process of its own to measure the load's peak memory
def test_an_official_pth_of_zero_size_tensors_is_refused_before_building(tmp_path):
    sd = {"patch_embed.proj.weight": torch.zeros(1280, 3, 16, 0), "pos_embed": torch.zeros(1, 197, 0),
          "cls_token": torch.zeros(1, 1, 0)}   # ViT-H widths (16 heads known), 40 blocks: 0.8 B declared
    sd.update({f"blocks.{i}.mlp.fc1.weight": torch.zeros(4 * 1280, 0) for i in range(40)})
    torch.save(sd, tmp_path / "hollow.pth")
    r = _load_in_fresh_process(tmp_path / "hollow.pth")
    assert "tensor patch_embed.proj.weight is empty (shape (1280, 3, 16, 0))" in r["msg"], r
    assert r["grew_mb"] < 100, r
