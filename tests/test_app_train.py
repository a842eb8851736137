"""AppTest drives the Train page: start a tiny run, see it progress, stop it, resume it."""
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def at(tmp_path, monkeypatch):
    monkeypatch.setenv("MAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MAE_RUNS_DIR", str(tmp_path / "runs"))
    from ui import caches  # the app's caches read MAE_RUNS_DIR at import: point it at this test's folder
    monkeypatch.setattr(caches, "RUNS_DIR", tmp_path / "runs", raising=False)
    app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    app.switch_page(str(ROOT / "app" / "views" / "train.py"))   # the page's address: no first run of another page
    app.run()
    assert not app.exception, app.exception
    return app



def _markdown(app):
    return " ".join(m.value for m in app.markdown).replace("\\", "")  # names are shown escaped (as text)


@pytest.mark.slow
def test_start_stop_resume_a_run(at, tmp_path):
    assert at.header[0].value == "Pretrain a masked autoencoder"
    at.selectbox(key="tr_data").set_value("fashion-mnist-subset").run()
    at.selectbox(key="tr_preset").set_value("mae_fmnist_micro").run()
    from mae_core.train import TrainArgs, describe_device
    where = re.compile(" on " + re.escape(describe_device(TrainArgs())) + r", timed on this server (just now|\d+ min ago)")
    assert any(c.value.startswith("In 2m 00s: about **") and where.search(c.value) for c in at.caption)  # the unit
    at.radio(key="tr_budget_kind").set_value("epochs").run()
    assert any(c.value.startswith("2 epochs ≈ **") and where.search(c.value) for c in at.caption)
    at.number_input(key="tr_epochs").set_value(40).run()
    at.text_input(key="tr_name").set_value("apptest_run").run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and not at.error
    deadline = time.time() + 120
    while "step" not in " ".join(p.value["text"] if isinstance(p.value, dict) else str(p.proto.text)
                                 for p in at.get("progress")) and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    assert "apptest_run — running" in _markdown(at)
    next(b for b in at.button if b.label == "Stop").click().run()
    assert "apptest_run — stopped" in _markdown(at)           # at once, while the checkpoint is being written
    deadline = time.time() + 120
    while not any("Saved" in s.value for s in at.success) and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    runs = tmp_path / "runs"
    assert (runs / "apptest_run.safetensors").is_file() and (runs / "apptest_run.json").is_file()
    assert any("Saved" in s.value for s in at.success)
    next(b for b in at.button if b.label == "Resume").click().run()
    assert not at.exception
    time.sleep(1)
    at.run()
    assert "apptest_run — running" in _markdown(at) or "apptest_run — finished" in _markdown(at)
    # stop the resumed run and wait for its thread to end, so the test leaves nothing training (a thread still in
    # a training step when the interpreter exits can abort it)
    for b in at.button:
        if b.label == "Stop":
            b.click().run()
            break
    deadline = time.time() + 120
    while "apptest_run — running" in _markdown(at) and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    assert "apptest_run — running" not in _markdown(at)


def _stop_all(at):
    """Stop this session's runs and wait for their threads, so the test leaves nothing training."""
    for _ in range(240):
        stops = [b for b in at.button if b.label == "Stop"]
        if not stops and " — running" not in _markdown(at) and " — starting" not in _markdown(at):
            return
        for b in stops:
            b.click().run()
            break
        time.sleep(0.5)
        at.run()


@pytest.mark.slow
def test_a_taken_name_gets_a_suffix_and_the_old_files_stay(at, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "taken.safetensors").write_bytes(b"x")
    at.selectbox(key="tr_data").set_value("fashion-mnist-subset").run()
    at.selectbox(key="tr_preset").set_value("mae_fmnist_micro").run()
    at.text_input(key="tr_name").set_value("taken").run()
    next(b for b in at.button if b.label == "Start training").click().run()
    try:
        assert not at.error and not at.exception
        assert "taken_2 — " in _markdown(at)
        assert (runs / "taken.safetensors").read_bytes() == b"x"
    finally:
        _stop_all(at)


@pytest.mark.slow
def test_run_name_follows_the_settings_until_typed(at):
    at.selectbox(key="tr_data").set_value("fashion-mnist-subset").run()
    at.selectbox(key="tr_preset").set_value("mae_fmnist_micro").run()
    assert at.text_input(key="tr_name").value == "fmnist_micro_r75"
    at.slider(key="tr_ratio").set_value(0.5).run()
    at.toggle(key="tr_normpix").set_value(True).run()
    assert at.text_input(key="tr_name").value == "fmnist_micro_r50_normpix"
    at.text_input(key="tr_name").input("my_run").run()
    at.slider(key="tr_ratio").set_value(0.9).run()
    assert at.text_input(key="tr_name").value == "my_run"


@pytest.mark.slow
def test_another_visitors_run_cannot_be_stopped(at, tmp_path):
    """Two sessions on one server: the second sees the first's run, read-only."""
    at.selectbox(key="tr_data").set_value("fashion-mnist-subset").run()
    at.selectbox(key="tr_preset").set_value("mae_fmnist_micro").run()
    at.radio(key="tr_budget_kind").set_value("epochs").run()
    at.number_input(key="tr_epochs").set_value(40).run()
    at.text_input(key="tr_name").input("alices_run").run()
    next(b for b in at.button if b.label == "Start training").click().run()
    try:
        other = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
        other.switch_page(str(ROOT / "app" / "views" / "train.py"))
        other.run()
        assert "alices_run — " in _markdown(other) and "another visitor's run" in _markdown(other)
        assert not [b for b in other.button if b.label in ("Stop", "Resume", "Delete")]
        assert [b for b in at.button if b.label == "Stop"]
    finally:
        _stop_all(at)
