"""checkpoints/train_bundled.sh, the script that reproduces the bundled models: run against a stand-in python that
records its calls and writes the files the real steps would, in a copy of the layout it expects."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PY = """#!/usr/bin/env bash
# stands in for python: records each call; "train --out X" writes the run's files as the real trainer would
echo "$*" >> "$CALLS"
echo "${OMP_NUM_THREADS:-unset}" >> "$CALLS.omp"
if [ "$2" = mae_core.train ]; then
  out=""; prev=""
  for a in "$@"; do [ "$prev" = --out ] && out=$a; prev=$a; done
  for ext in safetensors json metrics.jsonl state.pt; do echo new > "$out.$ext"; done
  case " $* " in *" --keep-epochs 18 "*) for ext in safetensors json; do echo snap > "${out}_epoch18.$ext"; done ;; esac
fi
"""


@pytest.fixture
def layout(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(ROOT / "checkpoints" / "train_bundled.sh", tmp_path / "checkpoints" / "train_bundled.sh")
    fake = tmp_path / "fakepy"
    fake.write_text(FAKE_PY)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def _run(layout, *names, **env):
    calls = layout / "calls.log"
    calls.unlink(missing_ok=True)
    Path(f"{calls}.omp").unlink(missing_ok=True)
    e = {k: v for k, v in os.environ.items() if k not in ("RESUME", "THREADS")}   # only what the test sets
    e.update(PYTHON=str(layout / "fakepy"), CALLS=str(calls), **env)
    res = subprocess.run(["bash", str(layout / "checkpoints" / "train_bundled.sh"), *names], env=e,
                         capture_output=True, text=True, timeout=60)
    return res, calls.read_text().splitlines() if calls.exists() else []


def test_a_run_is_staged_then_shipped_without_its_resumable_state(layout):
    res, calls = _run(layout, "fmnist_r50")
    assert res.returncode == 0, res.stderr
    train, half, measure, half_snap, converged, precompute = calls
    assert "-m mae_core.train" in train and "--norm-pix --mask-ratio 0.50" in train and "--threads 2" in train
    assert "--out runs/bundled/fmnist_r50" in train and "--resume" not in train and "--keep-epochs 18" in train
    assert half == "-m mae_core.checkpoints half runs/bundled/fmnist_r50"
    assert measure == "-m mae_core.evaluation.cards measure runs/bundled/fmnist_r50"
    # the epoch-18 snapshot: halved like the model, then the paired convergence check writes into the final card
    assert half_snap == "-m mae_core.checkpoints half runs/bundled/fmnist_r50_epoch18"
    assert converged == "-m mae_core.evaluation.cards converged runs/bundled/fmnist_r50 runs/bundled/fmnist_r50_epoch18"
    assert precompute == "-m mae_core.evaluation.precompute fmnist_r50"   # the pages' defaults of the new weights, last
    shipped = sorted(p.name for p in (layout / "checkpoints").iterdir())
    assert shipped == ["fmnist_r50.json", "fmnist_r50.metrics.jsonl", "fmnist_r50.safetensors", "train_bundled.sh"]
    # the state is not shipped; the snapshot stays staged, not shipped
    assert sorted(p.name for p in (layout / "runs" / "bundled").iterdir()) == ["fmnist_r50_epoch18.json",
                                                                               "fmnist_r50_epoch18.safetensors"]


def test_the_decoder_depth_model_differs_from_the_norm_pix_75_model_in_its_decoder_only(layout):
    _, deep = _run(layout, "fmnist_r75_dec4")
    _, base = _run(layout, "fmnist_r75_normpix")
    assert deep[0].replace(" --set decoder_depth=4", "").replace("fmnist_r75_dec4", "fmnist_r75_normpix") == base[0]
    assert "--norm-pix --mask-ratio 0.75 --set decoder_depth=4 --out" in deep[0]


def test_resume_continues_a_saved_run_and_starts_one_without_state(layout):
    staged = layout / "runs" / "bundled"
    staged.mkdir(parents=True)
    (staged / "fmnist_r25.state.pt").write_text("saved")
    res, calls = _run(layout, "fmnist_r25", "fmnist_grid75", RESUME="1", THREADS="1")
    assert res.returncode == 0, res.stderr
    trains = [c for c in calls if "mae_core.train" in c]
    assert len(trains) == 2 and all("--threads 1" in t for t in trains)
    # the steps after training keep to one thread as well (a measure beside another run must not oversubscribe)
    omp = (layout / "calls.log.omp").read_text().split()
    assert [o for c, o in zip(calls, omp) if "mae_core.train" not in c] == ["1"] * 10  # half, measure, snapshot x2, precompute
    assert "--mask-ratio 0.25" in trains[0] and trains[0].endswith("--resume")        # had a state: continued
    assert "--mask-strategy grid" in trains[1] and "--resume" not in trains[1]       # had none: started afresh
    assert "no runs/bundled/fmnist_grid75.state.pt to resume: starting afresh" in res.stdout
    assert (layout / "checkpoints" / "fmnist_grid75.safetensors").is_file()


def test_a_failed_step_stops_before_the_shipped_model_is_replaced(layout):
    (layout / "checkpoints" / "fmnist_r90.safetensors").write_text("shipped")
    failing = layout / "fakepy"
    failing.write_text(FAKE_PY + 'if [ "$2" = mae_core.evaluation.cards ]; then exit 3; fi\n')
    res, _ = _run(layout, "fmnist_r90")
    assert res.returncode == 3
    assert (layout / "checkpoints" / "fmnist_r90.safetensors").read_text() == "shipped"
    assert (layout / "runs" / "bundled" / "fmnist_r90.safetensors").is_file()   # the new run waits in runs/
