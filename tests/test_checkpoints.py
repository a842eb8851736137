import argparse
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mae_core.checkpoints import CheckpointError, load_model, save_model
from mae_core.masking import random_mask
from mae_core.model import MAEConfig, MaskedAutoencoderViT

IMAGENET = dict(pixel_mean=(0.485, 0.456, 0.406), pixel_std=(0.229, 0.224, 0.225))


def _official_like(embed=64, heads=None, dec=32, dec_heads=None, norm_pix=False):
    """A small model whose weights use the official key layout (our model shares it)."""
    torch.manual_seed(0)
    cfg = MAEConfig(img_size=16, patch_size=4, in_chans=3, embed_dim=embed, depth=2, num_heads=heads or 4,
                    decoder_embed_dim=dec, decoder_depth=1, decoder_num_heads=dec_heads or 4,
                    norm_pix_loss=norm_pix, **IMAGENET)
    m = MaskedAutoencoderViT(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return m


def _same_outputs(a, b, n=2):
    imgs = torch.randn(n, a.config.in_chans, a.config.img_size, a.config.img_size)
    mask = random_mask(n, a.config.grid_size, 0.6, seed=0)
    with torch.no_grad():
        oa, ob = a(imgs, mask=mask), b(imgs, mask=mask)
    torch.testing.assert_close(oa.pred, ob.pred, rtol=1e-5, atol=1e-5)


def test_own_format_roundtrip(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m", {"epochs": 3, "metrics": {"eval_loss": 0.1}})
    assert path.name == "m.safetensors" and (tmp_path / "m.json").is_file()
    assert not list(tmp_path.glob("*.tmp"))  # nothing half-written left behind
    model, card = load_model(tmp_path / "m")
    assert not model.training
    assert card["format"] == "mae_explorer" and card["epochs"] == 3 and model.card is card
    assert model.config == tiny_model.config
    _same_outputs(tiny_model, model)
    assert load_model(tmp_path / "m.safetensors")[0].config == tiny_model.config


def test_save_keeps_previous_checkpoint_when_writing_fails(tmp_path, tiny_model, monkeypatch):
    save_model(tiny_model, tmp_path / "m", {"epochs": 1})
    before = (tmp_path / "m.safetensors").read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    import mae_core.atomic
    monkeypatch.setattr(mae_core.atomic.os, "fsync", boom)
    with pytest.raises(OSError, match="No space left"):
        save_model(tiny_model, tmp_path / "m", {"epochs": 2})
    assert (tmp_path / "m.safetensors").read_bytes() == before
    assert json.loads((tmp_path / "m.json").read_text())["epochs"] == 1
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("layout", ["visualize", "full", "train", "ddp"])
def test_official_pth_layouts(tmp_path, layout):
    src = _official_like(embed=768 // 12, heads=4, dec=32, dec_heads=4, norm_pix=(layout == "full"))
    sd = src.state_dict()
    if layout == "visualize":
        obj, name, kw = {"model": sd}, "mae_visualize_vit_tiny.pth", dict(num_heads=4, decoder_num_heads=4)
    elif layout == "full":
        obj, name, kw = {"model": sd}, "mae_pretrain_vit_tiny_full.pth", dict(num_heads=4, decoder_num_heads=4)
    elif layout == "train":
        args = argparse.Namespace(norm_pix_loss=True, input_size=16, model="mae_vit_tiny", mask_ratio=0.75)
        obj = {"model": sd, "optimizer": {"state": {}, "param_groups": []}, "epoch": 799, "scaler": {}, "args": args}
        name, kw = "checkpoint-799.pth", dict(num_heads=4, decoder_num_heads=4)
    else:
        obj, name, kw = {"model": {"module." + k: v for k, v in sd.items()}}, "mae_visualize_ddp.pth", \
            dict(num_heads=4, decoder_num_heads=4)
    torch.save(obj, tmp_path / name)
    model, card = load_model(tmp_path / name, **kw)
    assert card["format"] == ("official-mae-train" if layout == "train" else "official-mae")
    assert model.config.norm_pix_loss == (layout in ("full", "train"))
    assert model.config.norm_eps == 1e-6
    if layout == "train":
        assert card["train_args"]["mask_ratio"] == 0.75
    _same_outputs(src, model)


def test_official_head_counts_come_from_presets(tmp_path):
    src = _official_like(embed=768, heads=12, dec=512, dec_heads=16)
    torch.save({"model": src.state_dict()}, tmp_path / "mae_visualize_vit_base.pth")
    model, _ = load_model(tmp_path / "mae_visualize_vit_base.pth")
    assert (model.config.num_heads, model.config.decoder_num_heads) == (12, 16)
    _same_outputs(src, model, n=1)


def test_unknown_heads_and_norm_pix_are_asked_for(tmp_path):
    src = _official_like(embed=64, heads=4, dec=32, dec_heads=4)
    torch.save({"model": src.state_dict()}, tmp_path / "mae_visualize_odd.pth")
    with pytest.raises(CheckpointError, match=r"head counts cannot be read.*num_heads=\.\.\."):
        load_model(tmp_path / "mae_visualize_odd.pth")
    torch.save({"model": src.state_dict()}, tmp_path / "weights.pth")
    with pytest.raises(CheckpointError, match="norm_pix_loss=True"):
        load_model(tmp_path / "weights.pth", num_heads=4, decoder_num_heads=4)
    model, _ = load_model(tmp_path / "weights.pth", num_heads=4, decoder_num_heads=4, norm_pix_loss=False)
    _same_outputs(src, model)


def test_encoder_only_weights_embed_but_refuse_to_reconstruct(tmp_path):
    src = _official_like(embed=768, heads=12)
    enc = {k: v for k, v in src.state_dict().items() if not k.startswith(("decoder", "mask_token"))}
    torch.save({"model": enc}, tmp_path / "mae_pretrain_vit_base.pth")
    model, card = load_model(tmp_path / "mae_pretrain_vit_base.pth")
    assert card["has_decoder"] is False
    imgs = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model.encode(imgs), src.encode(imgs))
    with pytest.raises(RuntimeError, match="hold only the encoder.*mae_visualize_vit"):
        model(imgs)
    # timm's *.mae files: the same keys in safetensors, no wrapper
    save_file(enc, str(tmp_path / "vit_base_patch16_224.mae.safetensors"))
    model2, _ = load_model(tmp_path / "vit_base_patch16_224.mae.safetensors")
    torch.testing.assert_close(model2.encode(imgs), src.encode(imgs))


# ----------------------------------------------------------------------------- Hugging Face ViTMAE

def _hf_reference(tmp_path, norm_pix=False):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.ViTMAEConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=128, decoder_hidden_size=16,
                                    decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                                    decoder_intermediate_size=64, mask_ratio=0.75, norm_pix_loss=norm_pix)
    torch.manual_seed(0)
    hf = transformers.ViTMAEForPreTraining(cfg).eval()
    hf.save_pretrained(tmp_path / "hf")
    return hf


def _rename(state, old, new):
    return {k.replace(old, new): v for k, v in state.items()}


@pytest.mark.parametrize("naming", ["saved", "hub4x", "bin"])
def test_huggingface_folder_matches_transformers(tmp_path, naming):
    from safetensors.torch import load_file
    hf = _hf_reference(tmp_path, norm_pix=(naming == "bin"))
    folder = tmp_path / "hf"
    if naming == "hub4x":  # transformers 4.x hub files name the decoder layers decoder.decoder_layers.N
        sd = load_file(folder / "model.safetensors")
        assert any("decoder.decoder_encoder.layer." in k for k in sd)
        save_file(_rename(sd, "decoder.decoder_encoder.layer.", "decoder.decoder_layers."),
                  str(folder / "model.safetensors"))
    elif naming == "bin":
        sd = load_file(folder / "model.safetensors")
        (folder / "model.safetensors").unlink()
        torch.save(sd, folder / "pytorch_model.bin")
    model, card = load_model(folder)
    assert card["format"] == "huggingface-vitmae"
    assert model.config.norm_eps == 1e-12 and model.config.norm_pix_loss == (naming == "bin")
    imgs = torch.randn(2, 3, 16, 16)
    noise = torch.rand(2, 16)
    with torch.no_grad():
        ref = hf(pixel_values=imgs, noise=noise)
        ours = model(imgs, mask=ref.mask)
    torch.testing.assert_close(ours.pred, ref.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.loss, ref.loss, rtol=1e-4, atol=1e-5)


def test_huggingface_module_names_of_recent_transformers(tmp_path):
    """The in-memory names of recent transformers 5 (layers.N.attention.q_proj, mlp.fc1) load too."""
    hf = _hf_reference(tmp_path)
    sd = hf.state_dict()
    assert any(".q_proj." in k for k in sd) or any(".attention.attention.query." in k for k in sd)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "hf" / "model.safetensors"))
    model, _ = load_model(tmp_path / "hf")
    imgs, noise = torch.randn(1, 3, 16, 16), torch.rand(1, 16)
    with torch.no_grad():
        ref = hf(pixel_values=imgs, noise=noise)
        torch.testing.assert_close(model(imgs, mask=ref.mask).pred, ref.logits, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- bad files

class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EVIL_MARKER']}",))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    torch.save({"model": {"x": torch.zeros(1)}, "payload": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refused: this pickle asks to run or build code"):
        load_model(tmp_path / "evil.pth")
    assert not marker.exists()
    # a legacy (non-zip) pickle too
    with open(tmp_path / "evil_legacy.pth", "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    with pytest.raises(CheckpointError, match="refused|not a valid PyTorch checkpoint"):
        load_model(tmp_path / "evil_legacy.pth")
    assert not marker.exists()


def test_each_broken_file_gets_its_own_message(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "good", {})
    good = (tmp_path / "good.safetensors").read_bytes()
    cases = {}
    (tmp_path / "empty.pth").write_bytes(b"")
    cases["empty.pth"] = "the file is empty"
    (tmp_path / "trunc.safetensors").write_bytes(good[: len(good) // 2])
    cases["trunc.safetensors"] = "truncated safetensors file"
    import struct
    (tmp_path / "liar.safetensors").write_bytes(struct.pack("<Q", 10**9) + good[8:])
    cases["liar.safetensors"] = "header claims"
    (tmp_path / "garbage.safetensors").write_bytes(struct.pack("<Q", 5) + b"{{{{{" + b"\0" * 20)
    cases["garbage.safetensors"] = "corrupt safetensors header"
    (tmp_path / "notckpt.pth").write_bytes(b"hello, I am a text file" * 10)
    cases["notckpt.pth"] = "not a valid PyTorch checkpoint|truncated, corrupt or not a PyTorch checkpoint"
    torch.save({"model": {"x": torch.zeros(1)}}, tmp_path / "zip.pth")
    data = (tmp_path / "zip.pth").read_bytes()
    (tmp_path / "zip_trunc.pth").write_bytes(data[: len(data) - 40])
    cases["zip_trunc.pth"] = "truncated or corrupt"
    torch.save([1, 2, 3], tmp_path / "list.pth")
    cases["list.pth"] = "holds a list, not a dict of weights"
    torch.save({"resnet": {"conv1.weight": torch.zeros(3)}, "epoch": 3}, tmp_path / "other.pth")
    cases["other.pth"] = "holds no model weights"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, tmp_path / "resnet.pth")
    cases["resnet.pth"] = "not an MAE / ViT checkpoint"
    (tmp_path / "folder").mkdir()
    cases["folder"] = "not a Hugging Face model folder"
    for name, message in cases.items():
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path / name)
    with pytest.raises(CheckpointError, match="no such checkpoint file or bundled model"):
        load_model(tmp_path / "missing.pth")


def test_mismatched_shapes_and_bad_card(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "m", {})
    card = json.loads((tmp_path / "m.json").read_text())
    card["config"]["embed_dim"] = 64
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="do not fit this MAE architecture.*shapes differ"):
        load_model(tmp_path / "m")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="model card is not valid JSON"):
        load_model(tmp_path / "m")
    (tmp_path / "m.json").unlink()
    save_file({"a": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(CheckpointError, match="not an MAE / ViT checkpoint"):
        load_model(tmp_path / "x.safetensors")
    hf = tmp_path / "bert"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="'bert' model, not ViTMAE"):
        load_model(hf)


def test_half_precision_checkpoint_is_half_the_size_and_close(tmp_path, tiny_model):
    full = save_model(tiny_model, tmp_path / "full", {})
    half = save_model(tiny_model, tmp_path / "half", {}, dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    model, card = load_model(tmp_path / "half")
    assert card["weights_dtype"] == "float16" and all(p.dtype == torch.float32 for p in model.parameters())
    torch.testing.assert_close(model.pos_embed, tiny_model.pos_embed, rtol=0, atol=0)  # fixed tables stay exact
    imgs = torch.randn(2, 3, 16, 16)
    mask = random_mask(2, 4, 0.5, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(model(imgs, mask=mask).pred, tiny_model(imgs, mask=mask).pred, rtol=0, atol=2e-2)
    from mae_core.checkpoints import main
    assert main(["half", str(tmp_path / "full")]) == 0
    assert (tmp_path / "full.safetensors").stat().st_size == half.stat().st_size


def test_card_schema_reads_old_cards_and_train_writes_it(trained_micro):
    from mae_core import runfiles
    from mae_core.evaluation import cards
    root = Path(__file__).resolve().parent.parent
    # the 3-epoch fmnist_r75's card as bundled until December 2026, written before the schema existed
    old = json.loads((root / "tests" / "data" / "old_card_fmnist_r75_3ep.json").read_text())
    c = cards.read(old)
    assert c.schema_version == 1 and c.mask_ratio == 0.75 and c.heldout_mse_pixels == pytest.approx(0.0352, abs=1e-4)
    assert c.label == "Fashion-MNIST · pretrained at 75% masking" and c.probe("both") == old["embedding_metrics"][
        "linear_probe_both"]
    back = c.to_dict()
    assert all(back[k] == v for k, v in old.items())                       # nothing of the old card is lost
    odd = cards.read({**old, "something_new": [1, 2]})
    assert odd.extra["something_new"] == [1, 2] and odd.to_dict()["something_new"] == [1, 2]
    written = json.loads(trained_micro.with_suffix(".json").read_text())    # a card train wrote
    assert written["schema_version"] == runfiles.SCHEMA_VERSION and written["config"]["embed_dim"] == 64
    assert written["status"] == "finished" and written["mask_strategy"] == "random"
    assert cards.read(written).label == "Fashion-MNIST subset · pretrained at 75% masking"
    assert cards.read({**written, "mask_strategy": "block"}).label.endswith("75% masking (block)")
    # an architecture changed by train --set: named in both labels (beside the ratio in the short one)
    deep = cards.read({**written, "norm_pix_loss": True, "train_args": {"overrides": {"decoder_depth": 4}}})
    assert deep.arch_changes == {"decoder_depth": 4} and cards.read(written).arch_changes == {}
    assert deep.label.endswith("norm-pix target · decoder 4 blocks")
    assert deep.short_label.endswith(f"75% dec 4 · norm-pix · {written['epochs']} ep")
    other = cards.read({**written, "train_args": {"overrides": {"mlp_ratio": 2.0, "norm_pix_loss": True}}})
    assert other.arch_changes == {"mlp_ratio": 2.0} and other.arch_text() == "mlp_ratio=2.0"
    with pytest.raises(TypeError):
        runfiles.ModelCard(not_a_field=1)                                     # the schema is closed to typos


def test_atomic_write_refuses_a_file_its_check_refuses(tmp_path):
    from mae_core.atomic import atomic_write
    atomic_write(tmp_path / "f", lambda f: f.write(b"old"))

    def check(tmp):
        assert tmp.read_bytes() == b"new" and tmp.name.startswith(".f.")   # sees the complete temp file
        raise ValueError("checksum mismatch")
    with pytest.raises(ValueError, match="checksum mismatch"):
        atomic_write(tmp_path / "f", lambda f: f.write(b"new"), verify=check)
    assert (tmp_path / "f").read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f"]


def test_measure_keeps_per_image_results_and_cards_pair_them(tmp_path, monkeypatch, capsys):
    """Cards keep each test image's probe / kNN result (cls + mean features) so two models can be compared image
    by image; ``--pools both`` re-measures only that pooling and keeps the rest of the card."""
    from mae_core.evaluation import cards
    from mae_core import data
    from mae_core.metrics import bootstrap_ci, pack_bools
    from mae_core.model import build_model
    sub = data.load_fashion_mnist_subset()
    perm = torch.randperm(len(sub), generator=torch.Generator().manual_seed(0))
    tr, te = sub.subset(perm[:1500]), sub.subset(perm[1500:])
    monkeypatch.setattr(cards, "load_fashion_mnist", lambda split="train", download=False: tr if split == "train" else te)
    monkeypatch.setattr(cards, "raw_pixel_baseline", lambda log=print, refresh=False: {"linear_probe": 0.5})
    torch.manual_seed(0)
    save_model(build_model("mae_fmnist_micro").eval(), tmp_path / "a",
               card={"name": "a", "embedding_metrics": {"knn_cls": 0.123, "linear_probe_cls": 0.456}})
    card = cards.measure(str(tmp_path / "a.safetensors"), log=lambda *a: None, pools=("both",))
    em = card.embedding_metrics
    assert em["knn_cls"] == 0.123 and em["linear_probe_cls"] == 0.456       # the other pooling is kept
    assert em["n_test"] == 500 and "linear_probe_mean" not in em
    got = cards.read(tmp_path / "a.json")                                  # as written to disk
    for name in ("linear_probe", "knn"):
        per_image = got.correct(name)
        assert per_image.shape == (500,) and per_image.dtype == bool
        assert per_image.mean() == pytest.approx(em[f"{name}_both"])
    assert got.correct("linear_probe", "cls") is None                      # kept only for cls + mean
    # paired against a second card on the same images: the bootstrap of the per-image difference
    rng = np.random.default_rng(1)
    other_hits = rng.random(500) < 0.5
    other = {"name": "b", "embedding_metrics": {"n_test": 500, "linear_probe_both_correct_hex": pack_bools(other_hits)}}
    expect = bootstrap_ci(got.correct(), other_hits)
    assert cards.paired_ci(got, other) == pytest.approx(expect, abs=1e-4)
    assert cards.paired_ci(got, got) == (0.0, 0.0)
    assert cards.paired_ci(got, {"name": "old", "embedding_metrics": {"linear_probe_both": 0.9}}) is None
    assert cards.main(["measure", str(tmp_path / "a.safetensors"), "--pools", "both"]) == 0
    printed = capsys.readouterr().out
    assert "\"linear_probe_both\":" in printed and "correct_hex\":" not in printed   # no hex in the log
    with pytest.raises(SystemExit):
        cards.main(["measure", str(tmp_path / "a.safetensors"), "--pools", "both,pixels"])
    assert "--pools takes a comma list of cls, mean, both; got 'both,pixels'" in capsys.readouterr().err


def test_raw_baseline_intervals_and_paired_difference_from_the_stored_baseline(tmp_path):
    """Cards measured before the raw baseline kept per-image results still get a paired difference to raw pixels
    (cls + mean, from both sides' per-image results) and the baseline's intervals, read from the stored file."""
    from mae_core.evaluation import cards
    from mae_core.metrics import bootstrap_ci, pack_bools
    rng = np.random.default_rng(0)
    raw_hits, knn_hits = rng.random(400) < 0.85, rng.random(400) < 0.84
    mae_hits = raw_hits | (rng.random(400) < 0.3)
    stored = {"linear_probe": float(raw_hits.mean()), "linear_probe_ci": [0.8, 0.9], "knn": float(knn_hits.mean()),
              "knn_ci": [0.79, 0.88], "linear_probe_correct_hex": pack_bools(raw_hits),
              "knn_correct_hex": pack_bools(knn_hits)}
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(stored))
    assert cards.stored_raw_baseline(path)["linear_probe_ci"] == [0.8, 0.9]
    assert cards.stored_raw_baseline(tmp_path / "missing.json") == {}       # read only, never computed
    card = {"name": "m", "raw_pixel_baseline": {"linear_probe": float(raw_hits.mean()), "knn": 0.5},
            "embedding_metrics": {"n_test": 400, "linear_probe_both": float(mae_hits.mean()),
                                  "linear_probe_both_correct_hex": pack_bools(mae_hits)}}
    base = cards.raw_baseline(card, stored)
    assert base["linear_probe_ci"] == [0.8, 0.9] and "knn_ci" not in base   # kNN: another measurement, no interval
    got = cards.vs_raw_ci(card, "linear_probe", "both", stored)
    assert got == pytest.approx(bootstrap_ci(mae_hits, raw_hits), abs=1e-4) and got[0] > 0
    assert cards.vs_raw_ci(card, "knn", "both", stored) is None             # the card kept no kNN results
    assert cards.vs_raw_ci(card, "linear_probe", "cls", stored) is None     # nor per-image results for cls
    assert cards.vs_raw_ci(card, "linear_probe", "both", {}) is None        # no stored baseline
    own = {**card, "embedding_metrics": {**card["embedding_metrics"], "linear_probe_cls_vs_raw_ci": [0.01, 0.02]}}
    assert cards.vs_raw_ci(own, "linear_probe", "cls", {}) == (0.01, 0.02)  # measured with the card: used as is


def test_converged_pairs_the_final_model_with_its_snapshot_on_the_same_test_images(tmp_path, monkeypatch):
    from mae_core.evaluation import cards
    from mae_core.checkpoints import CheckpointError
    from mae_core.metrics import bootstrap_ci, pack_bools
    rng = np.random.default_rng(2)
    early = rng.random(500) < 0.86
    late = early | (rng.random(500) < 0.05)

    def card(name, epochs, hits=None, **kw):
        em = {} if hits is None else {"n_test": 500, "linear_probe_both": float(hits.mean()), "knn_both": 0.85,
                                      "linear_probe_both_correct_hex": pack_bools(hits),
                                      "knn_both_correct_hex": pack_bools(hits)}
        c = {"name": name, "epochs": epochs, "config": {"embed_dim": 64}, "embedding_metrics": em,
             "train_args": {"out": "runs/x", "seed": 0}, **kw}
        (tmp_path / f"{name}.json").write_text(json.dumps(c))
        return str(tmp_path / name)
    final, snap = card("x", 24, late), card("x_epoch18", 18, early)
    got = cards.converged(final, snap, log=lambda *a: None).convergence
    assert (got["from_epoch"], got["to_epoch"]) == (18, 24)
    assert got["probe_gain"] == pytest.approx(late.mean() - early.mean(), abs=1e-4) and got["knn_gain"] == 0
    assert got["probe_gain_ci"] == pytest.approx(bootstrap_ci(late, early), abs=1e-4)
    assert cards.read(json.loads((tmp_path / "x.json").read_text())).convergence == got     # written to the card
    # a snapshot without per-image results is measured first (cls + mean only; here a stand-in returns x_epoch18)
    asked = []
    monkeypatch.setattr(cards, "measure", lambda path, log, pools: asked.append((path, pools)) or cards.read(
        json.loads((tmp_path / "x_epoch18.json").read_text())))
    bare = card("y_epoch18", 18)
    with pytest.raises(CheckpointError, match="is not a snapshot of the run"):
        cards.converged(final, card("z", 18, early, train_args={"out": "runs/other", "seed": 0}))
    with pytest.raises(CheckpointError, match="is from epoch 24, not before the final model's 24"):
        cards.converged(final, card("w", 24, early))
    with pytest.raises(CheckpointError, match="has no per-image results to pair with; measure it first"):
        cards.converged(card("v", 24), snap)
    cards.converged(final, bare, log=lambda *a: None)
    assert asked == [(bare, ("both",))]


def test_converged_says_when_the_snapshot_is_a_replay_and_how_close_it_stayed(tmp_path):
    from mae_core.evaluation import cards
    from mae_core.metrics import pack_bools
    hits = np.random.default_rng(3).random(200) < 0.85
    run = [{"epoch": 1, "train_loss": 0.6}, {"epoch": 2, "train_loss": 0.5, "probe_both": 0.820},
           {"epoch": 3, "train_loss": 0.45}, {"epoch": 4, "train_loss": 0.4, "probe_both": 0.840},
           {"epoch": 5, "train_loss": 0.38}, {"epoch": 6, "train_loss": 0.37, "probe_both": 0.850}]

    def card(name, epochs, history):
        c = {"name": name, "epochs": epochs, "config": {"embed_dim": 64}, "history": history,
             "embedding_metrics": {"n_test": 200, "linear_probe_both": float(hits.mean()), "knn_both": 0.8,
                                   "linear_probe_both_correct_hex": pack_bools(hits),
                                   "knn_both_correct_hex": pack_bools(hits)},
             "train_args": {"out": "runs/x", "seed": 0}}
        (tmp_path / f"{name}.json").write_text(json.dumps(c))
        return str(tmp_path / name)
    final = card("x", 6, run)
    # kept by the run itself: its history is the run's own, so no replay is recorded
    assert "replay" not in cards.converged(final, card("x_epoch4", 4, run[:4]), log=print).convergence
    # a replay on another CPU: losses differ in the 6th digit, the probe during training by up to 0.3 points
    replayed = [dict(h, train_loss=h["train_loss"] * (1 + 2e-6)) for h in run[:4]]
    replayed[1]["probe_both"], replayed[3]["probe_both"] = 0.817, 0.842
    got = cards.converged(final, card("x_epoch4r", 4, replayed), log=print).convergence["replay"]
    assert got == {"epochs": 4, "train_loss_max_rel_diff": pytest.approx(2e-6, abs=1e-6),
                   "probe_max_abs_diff": pytest.approx(0.003), "probe_diff_last": pytest.approx(0.002)}


def test_converged_with_a_finished_replay_takes_the_gain_within_it_and_pairs_the_bundled_model_with_it(tmp_path):
    from mae_core.evaluation import cards
    from mae_core.checkpoints import CheckpointError
    from mae_core.metrics import bootstrap_ci, pack_bools
    rng = np.random.default_rng(4)
    bundled_hits = rng.random(400) < 0.87
    replay_hits = rng.random(400) < 0.88
    snap_hits = replay_hits & (rng.random(400) < 0.97)
    run = [{"epoch": e, "train_loss": 1 / e, "probe_both": 0.8 + e / 100} for e in (1, 2, 3, 4)]
    rerun = [dict(h, train_loss=h["train_loss"] * (1 + 1e-5), probe_both=h["probe_both"] + 0.002) for h in run]

    def card(name, epochs, hits, history, out="runs/x"):
        c = {"name": name, "epochs": epochs, "config": {"embed_dim": 64}, "history": history,
             "embedding_metrics": {"n_test": 400, "linear_probe_both": float(hits.mean()),
                                   "knn_both": float(hits.mean()), "linear_probe_both_correct_hex": pack_bools(hits),
                                   "knn_both_correct_hex": pack_bools(hits)},
             "train_args": {"out": out, "seed": 0}}
        (tmp_path / f"{name}.json").write_text(json.dumps(c))
        return str(tmp_path / name)
    final = card("bundled", 4, bundled_hits, run)
    replay, snap = card("replay", 4, replay_hits, rerun), card("replay_epoch3", 3, snap_hits, rerun[:3])
    got = cards.converged(final, snap, log=print, replay=replay).convergence
    assert got["measured_on"] == "replay" and (got["from_epoch"], got["to_epoch"]) == (3, 4)
    assert got["probe_gain"] == pytest.approx(replay_hits.mean() - snap_hits.mean(), abs=1e-4)
    assert got["probe_gain_ci"] == pytest.approx(bootstrap_ci(replay_hits, snap_hits), abs=1e-4)
    assert got["replay"]["final_probe_diff"] == pytest.approx(bundled_hits.mean() - replay_hits.mean(), abs=1e-4)
    assert got["replay"]["final_probe_diff_ci"] == pytest.approx(bootstrap_ci(bundled_hits, replay_hits), abs=1e-4)
    assert got["replay"]["epochs"] == 4 and got["replay"]["probe_max_abs_diff"] == pytest.approx(0.002)
    # a snapshot not from this replay, a replay of another run or one not finished: refused, each saying why
    with pytest.raises(CheckpointError, match="replay_epoch3b.json is not from the replay replay.json"):
        cards.converged(final, card("replay_epoch3b", 3, snap_hits, run[:3]), log=print, replay=replay)
    with pytest.raises(CheckpointError, match="other.json is not a finished replay of the run that made bundled.json"):
        cards.converged(final, snap, log=print, replay=card("other", 4, replay_hits, rerun, out="runs/y"))
    with pytest.raises(CheckpointError, match="short.json is not a finished replay"):
        cards.converged(final, snap, log=print, replay=card("short", 3, replay_hits, rerun[:3]))
