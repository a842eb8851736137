"""The bounded memory shared by a server's threads: least recently used dropped first, one making per key."""
import threading
import time

from mae_core.kept import Kept


def test_the_least_recently_used_goes_first_and_the_bound_is_read_each_time():
    size = {"n": 2}
    k = Kept(lambda: size["n"])
    k.put("a", 1), k.put("b", 2)
    assert k.get("a") == 1                     # "a" now the most recent: "b" goes next
    k.put("c", 3)
    assert k.keys() == ["a", "c"] and k.get("b") is None
    size["n"] = 1
    k.put("d", 4)
    assert k.keys() == ["d"]
    k.clear()
    assert k.keys() == [] and k.get("d") is None


def test_a_value_is_made_once_while_others_wait_for_it():
    k, made = Kept(lambda: 8), []

    def make():
        made.append(1)
        time.sleep(0.2)
        return "value"
    got = []
    threads = [threading.Thread(target=lambda: got.append(k.get_or_make("key", make))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert made == [1] and got == ["value"] * 6
    assert k.get_or_make("other", lambda: "second") == "second" and len(made) == 1
