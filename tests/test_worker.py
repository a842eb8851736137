import time

import numpy as np
import pytest

from mae_core.checkpoints import load_model
from mae_core.train import TrainArgs
from mae_core.classroom import worker
from mae_core.kept import Kept
from mae_core.classroom.worker import JobRegistry, RunNotAllowed, TrainingJob, estimate_seconds_per_epoch


def _args(tmp_path, **kw):
    base = dict(data="fashion-mnist-subset", preset="mae_fmnist_micro", epochs=2, batch_size=64, lr=2e-3,
                warmup_epochs=0.2, out=str(tmp_path / "run"), progress=False, eval_images=100, log_every=5)
    base.update(kw)
    return TrainArgs(**base)


def _wait(job, timeout=300):
    job.join(timeout)
    assert not job.alive, "the worker did not finish in time"
    return job.snapshot()


@pytest.mark.slow
def test_worker_reduces_loss_writes_checkpoint_and_reconstructions(tmp_path):
    job = TrainingJob(_args(tmp_path)).start()
    s = _wait(job)
    assert s.status == "finished", s.error
    assert s.step == 50 and s.total_steps == 50
    first, last = np.mean([l for _, l in s.losses[:3]]), np.mean([l for _, l in s.losses[-3:]])
    assert last < 0.8 * first
    assert s.originals.shape == (8, 28, 28) and s.recons and s.recons[-1].shape == (8, 28, 28)
    assert s.recon_steps[-1] == 50
    model, card = load_model(s.checkpoint)
    assert card["status"] == "finished" and card["steps"] == 50


@pytest.mark.slow
def test_stop_then_resume_continues_from_the_same_step(tmp_path):
    reg = JobRegistry()
    job = reg.start(_args(tmp_path, epochs=6))
    deadline = time.time() + 120
    while job.snapshot().step < 10 and time.time() < deadline:
        time.sleep(0.05)
    job.stop()
    s = _wait(job)
    assert s.status == "stopped"
    stopped_at = load_model(tmp_path / "run")[1]["steps"]
    assert stopped_at == s.step and 10 <= stopped_at < 150
    job2 = reg.start(_args(tmp_path, epochs=6, resume=True))
    s2 = _wait(job2)
    assert s2.status == "finished" and s2.step == 150
    assert s2.losses[0][0] > stopped_at  # the resumed run's first logged step comes after the stop
    assert len(reg.jobs()) == 2


def test_nan_is_reported_and_last_checkpoint_kept(tmp_path):
    job = TrainingJob(_args(tmp_path, lr=1e6, epochs=3, warmup_epochs=0)).start()   # diverges at once
    s = _wait(job)
    assert s.status == "failed" and "loss became" in s.error


def test_bad_folder_is_reported(tmp_path):
    s = _wait(TrainingJob(_args(tmp_path, data=f"folder:{tmp_path / 'missing'}")).start())
    assert s.status == "failed" and "is not a folder" in s.error


def test_registry_refuses_two_runs_into_one_file_and_queues_too_many(tmp_path):
    reg = JobRegistry(max_running=1)
    job = reg.start(_args(tmp_path, epochs=50))
    try:
        with pytest.raises(RunNotAllowed, match="already training"):
            reg.start(_args(tmp_path, epochs=1))
        other = reg.start(_args(tmp_path, out=str(tmp_path / "other"), epochs=1))
        assert other.snapshot().status == "queued" and reg.queue_position(other.id) == 0
        other.stop()
    finally:
        job.stop()
        _wait(job)


def test_a_borrowed_slot_counts_like_a_run_and_releases_the_queue(tmp_path):
    reg = JobRegistry(max_running=1, per_owner=1)
    with reg.slot("ann", "the fine-tune"):
        with pytest.raises(RunNotAllowed, match=r"the server is busy: 1 of its 1 training slot\(s\) in use; try "
                                                r"the fine-tune again"):
            with reg.slot("bob", "the fine-tune"):
                pass
        with pytest.raises(RunNotAllowed, match="you already have a run training or waiting"):
            with reg.slot("ann"):
                pass
        with pytest.raises(RunNotAllowed, match="you already have 1 run"):
            reg.start(_args(tmp_path, epochs=1), owner="ann")
        job = reg.start(_args(tmp_path, epochs=1), owner="bob")
        assert job.snapshot().status == "queued"                        # waits for the borrowed slot
        with pytest.raises(RunNotAllowed, match="and 1 run\\(s\\) waiting"):
            with reg.slot("cid"):
                pass
    try:
        assert job.snapshot().status in ("starting", "running", "finished")   # released: the queue moved on
    finally:
        job.stop()
        _wait(job)
    with pytest.raises(ValueError):                                    # an error inside still frees the slot
        with reg.slot("ann"):
            raise ValueError("boom")
    with reg.slot("ann"):
        pass


def test_epoch_estimate_is_positive_and_says_where_it_trains(tmp_path):
    from mae_core.train import describe_device
    sec = estimate_seconds_per_epoch(_args(tmp_path))
    assert 0 < sec < 300
    assert describe_device(TrainArgs(device="cpu", threads=3)) == "the CPU (3 threads, fp32)"
    assert describe_device(TrainArgs(device="cpu", threads=1)) == "the CPU (1 thread, fp32)"
    assert describe_device(TrainArgs(device="cpu", threads=2, precision="bf16")) == "the CPU (2 threads, bf16)"


def test_a_configuration_is_timed_once_for_the_whole_server_inside_the_gate(tmp_path, monkeypatch):
    """Ten visitors opening the Train page at once: one timing of its default configuration, the others wait for it;
    another configuration is timed apart; the timing holds the caller's gate (a slot of the pool)."""
    import contextlib
    import threading
    calls, gates = [], []

    def slow(args, with_steps=False):
        calls.append(args.batch_size)
        time.sleep(0.3)
        return 12.5, 7

    @contextlib.contextmanager
    def gate():
        gates.append(1)
        yield
    monkeypatch.setattr(worker, "estimate_seconds_per_epoch", slow)
    monkeypatch.setattr(worker, "_estimates", Kept(lambda: worker.ESTIMATES_KEPT))
    got = []
    threads = [threading.Thread(target=lambda: got.append(worker.timed_estimate(_args(tmp_path), gate=gate)))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert calls == [64] and gates == [1] and len(got) == 10
    assert {(e.seconds_per_epoch, e.steps_per_epoch) for e in got} == {(12.5, 7)}
    assert abs(got[0].timed_at - time.time()) < 30
    other = worker.timed_estimate(_args(tmp_path, batch_size=128))
    assert calls == [64, 128] and other.seconds_per_epoch == 12.5
    monkeypatch.setattr(worker, "ESTIMATES_KEPT", 1)                # bounded: the oldest goes
    worker.timed_estimate(_args(tmp_path, batch_size=32))
    assert list(k[4] for k in worker._estimates.keys()) == [32]


def test_a_run_stops_and_saves_at_the_servers_time_limit(tmp_path, monkeypatch):
    """Seen on a class server: runs may last 600 minutes. A run on epochs is stopped and saved at the limit; a
    budget in minutes above it is refused before it starts."""
    monkeypatch.setenv("MAE_MAX_RUN_MINUTES", "5")
    with pytest.raises(RunNotAllowed, match=r"at most 5 minutes \(MAE_MAX_RUN_MINUTES\)"):
        JobRegistry().start(_args(tmp_path, time_budget=10.0), owner="v")
    job = TrainingJob(_args(tmp_path, epochs=400), max_minutes=1 / 60).start()   # one second, for the test
    s = _wait(job)
    assert s.status == "stopped" and 0 < s.step < 400 * 25
    assert any("limit of 0.0166667 minutes" in n or "MAE_MAX_RUN_MINUTES" in n for n in s.notes), s.notes
    assert load_model(tmp_path / "run")[1]["steps"] == s.step       # saved where it stopped
    monkeypatch.setenv("MAE_SHARED", "1")
    monkeypatch.delenv("MAE_MAX_RUN_MINUTES")
    from mae_core.classroom import policy
    assert policy.current().max_run_minutes == 60                     # a class's server: an hour unless set


def test_the_time_estimate_works_on_a_folder_smaller_than_the_steps_it_times(tmp_path):
    """Seen: a class folder of 80 images (one batch of 128 an epoch) gave 'StopIteration' instead of an estimate."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "f" / c).mkdir(parents=True)
        for i in range(40):
            Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(tmp_path / "f" / c / f"{i}.png")
    sec, steps = estimate_seconds_per_epoch(_args(tmp_path, data=f"folder:{tmp_path / 'f'}", preset="mae_photo_small",
                                                  batch_size=128), with_steps=True)
    assert steps == 1 and 0 < sec < 60


def test_resume_keeps_one_card_whose_curve_starts_at_step_0(tmp_path):
    """Seen: Resume made a second card with the same name, its loss chart starting at step 104 (flat-looking), and
    the stopped card kept its Resume and Delete buttons. One run is one card, its curve whole from the start."""
    reg = JobRegistry()
    job = reg.start(_args(tmp_path, epochs=6), owner="v")
    deadline = time.time() + 120
    while job.snapshot().step < 10 and time.time() < deadline:
        time.sleep(0.05)
    reg.stop(job.id, "v")
    s = _wait(job)
    assert s.status == "stopped"
    new = reg.resume(job.id, "v")
    assert new.id == job.id and [j.id for j in reg.jobs()] == [job.id] and reg.get(job.id) is new
    deadline = time.time() + 120
    while new.snapshot().step < s.step + 10 and time.time() < deadline:
        time.sleep(0.05)
    reg.stop(job.id, "v")
    s2 = _wait(new)
    steps = [st for st, _ in s2.losses]
    assert steps[0] <= 5 and steps == sorted(set(steps)) and steps[-1] > s.step   # one curve, from the start
    assert s2.recon_steps == sorted(s2.recon_steps) and s2.recon_steps[0] <= s.recon_steps[-1]
