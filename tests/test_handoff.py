"""The history writer's queue (store/handoff.py): order, its bound, and no lost wake-ups."""

from __future__ import annotations

import threading
import time

from backend.store.handoff import Handoff


def test_items_come_out_in_the_order_they_went_in_up_to_most_at_a_time() -> None:
    handoff: Handoff[int] = Handoff(10)
    for i in range(7):
        assert handoff.put_nowait(i)
    assert handoff.take(5) == [0, 1, 2, 3, 4]
    assert handoff.take(5) == [5, 6]
    assert len(handoff) == 0


def test_a_full_queue_refuses_put_nowait_and_put_waits_for_room() -> None:
    handoff: Handoff[int] = Handoff(2)
    assert handoff.put_nowait(1) and handoff.put_nowait(2)
    assert not handoff.put_nowait(3)
    started = time.monotonic()
    assert not handoff.put(3, timeout=0.05)  # nobody takes: refused after the wait
    assert time.monotonic() - started >= 0.05
    assert len(handoff) == 2

    put: list[bool] = []
    waiter = threading.Thread(target=lambda: put.append(handoff.put(3, timeout=30)))
    waiter.start()
    while not handoff._waiting:  # the producer is waiting for room
        time.sleep(0.001)
    assert handoff.take(1) == [1]
    waiter.join(30)
    assert put == [True]
    assert handoff.take(10) == [2, 3]


def test_a_sleeping_consumer_is_woken_by_every_producer_and_misses_nothing() -> None:
    handoff: Handoff[tuple[int, int]] = Handoff(64)
    producers, each = 4, 5_000
    got: list[tuple[int, int]] = []

    def consume() -> None:
        while len(got) < producers * each:
            got.extend(handoff.take(16))

    def produce(who: int) -> None:
        for i in range(each):
            assert handoff.put((who, i), timeout=30)
            if i % 97 == 0:
                time.sleep(0)  # let the consumer catch up and go to sleep now and then

    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=produce, args=(who,)) for who in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    consumer.join(60)
    assert not consumer.is_alive(), f"the consumer is stuck after {len(got)} items"
    for who in range(producers):
        assert [i for w, i in got if w == who] == list(range(each))  # each producer's items, in order
