"""The server's bounded pool of heavy work: never more than its size at once, first come first served, the waiting
told how many are ahead, and a visitor who leaves gives up their place."""
import threading
import time

import pytest

from mae_core.classroom import policy
from mae_core.classroom.pool import HeavyPool


def test_the_bound_holds_and_the_waiting_are_told_how_many_are_ahead():
    pool = HeavyPool(size=lambda: 2)
    lock = threading.Lock()
    now, peak, told, order = [0], [0], {}, []
    release = threading.Event()

    def job(i):
        with pool.slot(on_wait=lambda n: told.setdefault(i, n)):
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
                order.append(i)
            release.wait(10)
            with lock:
                now[0] -= 1
    threads = []
    for i in range(6):
        t = threading.Thread(target=job, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.05)                      # arrive in order
    deadline = time.time() + 5
    while pool.counts() != (2, 4) and time.time() < deadline:
        time.sleep(0.01)
    assert pool.counts() == (2, 4)
    assert told == {2: 2, 3: 3, 4: 4, 5: 5}   # two running, then those waiting before each
    release.set()
    for t in threads:
        t.join(10)
    assert peak[0] == 2 and order[:2] == [0, 1] and sorted(order) == list(range(6))
    assert order[2:] == [2, 3, 4, 5]          # first come, first served
    assert pool.counts() == (0, 0)


def test_a_visitor_who_leaves_while_waiting_gives_up_the_place():
    pool = HeavyPool(size=lambda: 1)
    release, held = threading.Event(), threading.Event()

    def holder():
        with pool.slot():
            held.set()
            release.wait(10)
    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)

    def leave(n):
        raise KeyboardInterrupt   # Streamlit stops a script this way when its visitor goes elsewhere
    with pytest.raises(KeyboardInterrupt):
        with pool.slot(on_wait=leave):
            pass
    assert pool.counts() == (1, 0)
    release.set()
    t.join(5)
    assert pool.counts() == (0, 0)


def test_the_pool_size_is_the_operators(monkeypatch):
    monkeypatch.setenv("MAE_MAX_HEAVY", "3")
    assert policy.current().max_heavy == 3
    monkeypatch.setenv("MAE_MAX_HEAVY", "0")
    assert policy.current().max_heavy == 1
    monkeypatch.delenv("MAE_MAX_HEAVY")
    assert policy.current().max_heavy >= 1


def test_work_nested_in_a_held_slot_does_not_wait_for_itself():
    """A map's computation needs the features, each behind the pool: with one slot, the nested one must not
    deadlock, and it does not count twice."""
    pool = HeavyPool(size=lambda: 1)
    done = []

    def nested():
        with pool.slot():
            assert pool.counts() == (1, 0)
            with pool.slot():
                assert pool.counts() == (1, 0)
                done.append(1)
            assert pool.counts() == (1, 0)
    t = threading.Thread(target=nested)
    t.start()
    t.join(5)
    assert done == [1] and not t.is_alive() and pool.counts() == (0, 0)
    got = []
    with pool.slot():                    # another thread still waits its turn
        other = threading.Thread(target=lambda: _enter_and_leave(pool) and got.append(1))
        other.start()
        other.join(0.5)
        assert other.is_alive() and pool.counts() == (1, 1) and not got
    other.join(5)
    assert got == [1] and pool.counts() == (0, 0)


def _enter_and_leave(pool) -> bool:
    with pool.slot():
        return True
