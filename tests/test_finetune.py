"""Fine-tuning vs linear probe: which weights each mode trains, that training learns, and the CLI."""
import json

import pytest
import torch

from mae_core.evaluation.finetune import FinetuneArgs, FinetuneError, _head_from_logreg, _prepare, main, parse_mode, run
from mae_core.evaluation.readings import finetune_reading, mode_label
from mae_core.model import build_model


def _trainable(clf):
    return {n.split(".")[1] + ("." + n.split(".")[2] if n.startswith("mae.blocks") else "")
            for n, p in clf.named_parameters() if p.requires_grad and n.startswith("mae.")}


def test_each_mode_trains_the_weights_it_names():
    torch.manual_seed(0)
    mae = build_model("mae_fmnist_micro")   # 2 blocks
    assert _trainable(_prepare(mae, "probe", 10)) == set()
    assert _trainable(_prepare(mae, "last-1", 10)) == {"blocks.1", "norm"}
    assert _trainable(_prepare(mae, "full", 10)) >= {"blocks.0", "blocks.1", "norm", "patch_embed", "cls_token"}
    fresh = _prepare(mae, "scratch", 10)
    assert not torch.equal(fresh.mae.blocks[0].attn.qkv.weight, mae.blocks[0].attn.qkv.weight)  # new weights
    kept = _prepare(mae, "full", 10)
    assert torch.equal(kept.mae.blocks[0].attn.qkv.weight, mae.blocks[0].attn.qkv.weight)      # pretrained ones
    assert len(kept.mae.decoder_blocks) == 0 and len(mae.decoder_blocks) == 1                  # original untouched
    assert parse_mode("last-2", 2) == ([0, 1], False)
    with pytest.raises(FinetuneError, match="K must be 1..2"):
        parse_mode("last-3", 2)
    with pytest.raises(FinetuneError, match="unknown mode 'lora'"):
        parse_mode("lora", 2)


@pytest.mark.parametrize("mode", ["probe", "last-1", "full", "scratch"])
def test_every_weight_a_mode_trains_gets_a_gradient_and_no_other(mode):
    """The classifier's forward pass keeps the encoder in the graph (``encode`` is for frozen features and has no
    gradients: fine-tuning through it would silently train only the head)."""
    torch.manual_seed(0)
    clf = _prepare(build_model("mae_fmnist_micro"), mode, 10)
    x = torch.rand(8, 1, 28, 28)
    torch.nn.functional.cross_entropy(clf(clf.mae.normalize(x)), torch.arange(8) % 10).backward()
    trainable = {n: p for n, p in clf.named_parameters() if p.requires_grad}
    assert {n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0} == set()
    assert all(p.grad is None for p in clf.parameters() if not p.requires_grad)
    tuned = {n.split(".")[1] for n in trainable if n.startswith("mae.")}
    assert tuned == {"probe": set(), "last-1": {"blocks", "norm"}}.get(mode, tuned) and ("head.weight" in trainable)


@pytest.mark.slow   # fine-tunes end to end
def test_modes_learn_on_the_bundled_subset(tmp_path):
    from mae_core.checkpoints import save_model
    torch.manual_seed(0)
    mae = build_model("mae_fmnist_micro")
    ck = tmp_path / "micro"
    save_model(mae, ck, {"name": "micro"})
    res = run(FinetuneArgs(checkpoint=str(ck) + ".safetensors", modes=("probe", "full"), data="fashion-mnist-subset",
                           train_images=600, test_images=400, epochs=6, batch_size=50, lr=5e-3), log=lambda *a: None)
    rows = {r["mode"]: r for r in res["rows"]}
    assert set(rows) == {"probe", "full"} and "600 images of Fashion-MNIST subset (bundled); scored on 400 others" in res["protocol"]
    for r in rows.values():
        assert 0.3 < r["accuracy"] <= 1 and r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]   # far above chance (0.1)
    assert rows["probe"]["trainable_params"] < rows["full"]["trainable_params"]
    assert rows["probe"]["final_loss"] != rows["full"]["final_loss"]        # tuning the encoder changes the run


def test_cli_writes_results_and_refuses_bad_input(tmp_path, capsys):
    from mae_core.checkpoints import save_model
    torch.manual_seed(0)
    ck = tmp_path / "micro"
    save_model(build_model("mae_fmnist_micro"), ck, {"name": "micro"})
    out = tmp_path / "ft.json"
    assert main([str(ck) + ".safetensors", "--modes", "probe", "--data", "fashion-mnist-subset", "--train-images",
                 "200", "--test-images", "200", "--epochs", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["rows"][0]["mode"] == "probe"
    card_before = json.loads((tmp_path / "micro.json").read_text())
    assert main([str(ck), "--modes", "probe", "--data", "fashion-mnist-subset", "--train-images", "200",
                 "--test-images", "200", "--epochs", "1", "--card"]) == 0
    card = json.loads((tmp_path / "micro.json").read_text())
    assert card["finetune"]["rows"][0]["mode"] == "probe" and card["name"] == card_before["name"] == "micro"
    from mae_core.checkpoints import load_model
    assert load_model(str(ck))[1]["finetune"]["checkpoint"] == "micro"       # what the Embeddings page reads
    (tmp_path / "hf").mkdir()
    assert main([str(tmp_path / "hf"), "--modes", "probe", "--data", "fashion-mnist-subset", "--card"]) == 2
    assert "--card needs one of our own checkpoints" in capsys.readouterr().err
    assert main([str(ck) + ".safetensors", "--modes", "probe,wrong", "--data", "fashion-mnist-subset"]) == 2
    assert "unknown mode 'wrong'" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.safetensors"), "--data", "fashion-mnist-subset"]) == 2


def test_logreg_row_and_the_reading(tmp_path):
    from mae_core.checkpoints import save_model
    torch.manual_seed(0)
    ck = tmp_path / "micro"
    save_model(build_model("mae_fmnist_micro"), ck, {"name": "micro"})
    res = run(FinetuneArgs(checkpoint=str(ck), modes=("logreg",), data="fashion-mnist-subset", train_images=300,
                           test_images=300), log=lambda *a: None)
    row = res["rows"][0]
    assert row["mode"] == "logreg" and 0.3 < row["accuracy"] < 1 and row["C"] > 0 and row["epochs"] is None
    assert row["trainable_params"] == 64 * 10 + 10 and "logistic regression on the frozen" in res["protocol"]
    assert "no augmentation" in res["protocol"] and "AdamW lr 0.00025" in res["protocol"]   # 5e-4 x 128 / 256
    assert res["reading"] == ""                                    # nothing tuned: nothing to compare

    def r(mode, acc, lo, hi):
        return {"mode": mode, "accuracy": acc, "ci95": [lo, hi]}
    text = finetune_reading([r("logreg", 0.80, 0.79, 0.81), r("full", 0.86, 0.85, 0.87), r("scratch", 0.855, 0.845, 0.865)])
    assert text == ("Full fine-tuning reaches 86.0%: +6.0 points against the linear head on the frozen encoder "
                    "at 80.0%. The same ViT trained from scratch on these images reaches 85.5%: "
                    "pretraining adds +0.5 points, within the intervals (not a clear difference).")
    assert finetune_reading([r("probe", 0.8, 0.79, 0.81), r("last-2", 0.7, 0.69, 0.71)]) == (
        "Last 2 blocks tuned reaches 70.0%: -10.0 points against the linear probe (head trained by SGD) at 80.0%.")
    assert mode_label("last-1") == "last 1 block tuned" and mode_label("scratch") == "same ViT from scratch"


def test_the_head_starts_as_the_logistic_regression_on_the_frozen_features():
    """LP-FT: before any tuning the classifier *is* the best linear head (the folded standardisation is exact)."""
    from mae_core.data import load_fashion_mnist_subset
    from mae_core.metrics import linear_probe_accuracy
    torch.manual_seed(0)
    sub = load_fashion_mnist_subset()
    x, y = sub.images[:300], sub.labels[:300]
    clf = _prepare(build_model("mae_fmnist_micro"), "full", 10)
    _head_from_logreg(clf, x, y)
    with torch.no_grad():
        z = clf.fc_norm(clf.mae.encode(clf.mae.normalize(x), pool="mean")).numpy()
        logits = clf(clf.mae.normalize(x))
    det: dict = {}
    acc = linear_probe_accuracy(z, y.numpy(), z, y.numpy(), details=det)
    w, b = det["linear"]
    assert torch.allclose(logits, torch.from_numpy(z) @ w + b, atol=1e-4)
    assert (logits.argmax(1) == y).float().mean().item() == pytest.approx(acc)     # the probe's own accuracy
    assert acc > 0.5                                                                 # far above chance
    with pytest.raises(FinetuneError, match="head_init must be logreg or small"):
        run(FinetuneArgs(checkpoint="fmnist_r75", modes=("full",), data="fashion-mnist-subset", train_images=20,
                         test_images=20, head_init="zero"), log=lambda *a: None)


@pytest.mark.slow   # fine-tunes end to end
def test_score_every_draws_the_curve_and_modes_run_apart_merge(tmp_path):
    """--score-every 1: the test accuracy after each epoch, the last one the row's own, and its rise over the last
    quarter in points; --merge: a protocol's modes run one at a time end in one result (same settings only)."""
    from mae_core.checkpoints import save_model
    torch.manual_seed(0)
    ck = tmp_path / "micro"
    save_model(build_model("mae_fmnist_micro"), ck, {"name": "micro"})
    out = tmp_path / "ft.json"
    common = [str(ck) + ".safetensors", "--data", "fashion-mnist-subset", "--train-images", "300", "--test-images",
              "200", "--epochs", "4", "--batch-size", "50", "--score-every", "1", "--out", str(out), "--merge"]
    assert main(common + ["--modes", "logreg,last-1"]) == 0
    assert main(common + ["--modes", "full"]) == 0
    res = json.loads(out.read_text())
    assert [r["mode"] for r in res["rows"]] == ["logreg", "last-1", "full"] == res["args"]["modes"]
    full = res["rows"][-1]
    assert [e for e, _ in full["curve"]] == [1, 2, 3, 4] and full["curve"][-1][1] == pytest.approx(full["accuracy"], abs=1e-4)
    assert full["last_quarter_gain"] == pytest.approx(100 * (full["curve"][3][1] - full["curve"][2][1]), abs=0.02)
    assert "Full fine-tuning reaches" in res["reading"]                    # the reading sees every row
    assert main(common + ["--modes", "full", "--lr", "1e-3"]) == 0          # other settings: not one protocol
    assert [r["mode"] for r in json.loads(out.read_text())["rows"]] == ["full"]


def test_a_longer_run_is_stored_beside_the_table_and_read_with_it(tmp_path, capsys):
    """--card --longer: the table kept, the longer run of the same settings stored beside it and said in the reading;
    --from-json stores an earlier run's results; a run with other settings, fewer epochs or no table is refused."""
    from mae_core.checkpoints import save_model
    from mae_core.evaluation.cards import read
    torch.manual_seed(0)
    ck = tmp_path / "micro"
    save_model(build_model("mae_fmnist_micro"), ck, {"name": "micro"})
    card = tmp_path / "micro.json"
    base = [str(ck) + ".safetensors", "--data", "fashion-mnist-subset", "--train-images", "300", "--test-images",
            "200", "--batch-size", "50", "--score-every", "1", "--modes", "logreg,full"]
    longer = tmp_path / "longer.json"
    assert main(base + ["--epochs", "3", "--out", str(longer)]) == 0      # run first, stored later (--from-json)
    assert main(base + ["--epochs", "3", "--card", "--longer", "--from-json", str(longer)]) == 2
    assert "has no fine-tuning table" in capsys.readouterr().err
    assert main(base + ["--epochs", "2", "--card"]) == 0                   # the table: 2 epochs
    table = read(card).finetune
    assert main(base + ["--epochs", "3", "--card", "--longer", "--from-json", str(longer)]) == 0
    ft = read(card).finetune
    assert ft["rows"] == table["rows"] and ft["args"]["epochs"] == 2       # the table kept
    assert [r["epochs"] for r in ft["longer"]["rows"]] == [None, 3] and ft["longer"]["checkpoint"] == ft["checkpoint"]
    full = ft["longer"]["rows"][1]
    assert f"instead, it reached {full['accuracy']:.1%}" in ft["reading"] or \
        f"Run for 3 epochs instead, full fine-tuning reached {full['accuracy']:.1%}" in ft["reading"]
    assert main(base + ["--epochs", "2", "--card"]) == 0                   # the table run again: its check kept
    assert read(card).finetune["longer"]["rows"] == ft["longer"]["rows"]
    assert main(base + ["--epochs", "2", "--card", "--lr", "1e-3"]) == 0   # other settings: the check dropped
    assert "longer" not in read(card).finetune

    assert main(base + ["--epochs", "2", "--card"]) == 0
    other = json.loads(longer.read_text())
    other["args"]["lr"] = 1e-3
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(base + ["--card", "--longer", "--from-json", str(tmp_path / "other.json")]) == 2
    assert "keep the table's settings but its epochs; these differ: lr (None -> 0.001)" in capsys.readouterr().err
    other["args"]["lr"], other["args"]["epochs"] = None, 2
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(base + ["--card", "--longer", "--from-json", str(tmp_path / "other.json")]) == 2
    assert "needs more epochs than the table's 2" in capsys.readouterr().err
    other["args"]["epochs"], other["checkpoint"] = 3, "another model"
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(base + ["--card", "--longer", "--from-json", str(tmp_path / "other.json")]) == 2
    assert "holds results for another model, not for micro" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(base + ["--card", "--longer", "--from-json", str(tmp_path / "bad.json")]) == 2
    assert "cannot read fine-tuning results from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--longer"])                                          # nothing to store it in
    assert "add --card" in capsys.readouterr().err
