import threading

from engine.core.events import Event, EventQueue


def test_drain_in_order_and_empties():
    q = EventQueue(8)
    for i in range(3):
        q.put(Event("set", f"/a/{i}", float(i)))
    got = q.drain()
    assert [e.value for e in got] == [0.0, 1.0, 2.0]
    assert q.drain() == [] and len(q) == 0
    assert q.max_depth == 3


def test_full_queue_coalesces_same_address_and_drops_others():
    q = EventQueue(2)
    assert q.put(Event("set", "/x", 1.0))
    assert q.put(Event("verb", "/show/next"))
    assert q.put(Event("set", "/x", 2.0))  # coalesced into the waiting /x
    assert not q.put(Event("set", "/y", 3.0))  # no room, nothing to coalesce with
    assert not q.put(Event("verb", "/show/next"))
    assert (q.coalesced, q.dropped, q.received) == (1, 2, 5)
    got = q.drain()
    assert [(e.address, e.value) for e in got] == [("/x", 2.0), ("/show/next", None)]
    assert q.max_depth == 2


def test_threads_can_flood_without_losing_count():
    q = EventQueue(100)

    def flood(n):
        for i in range(2000):
            q.put(Event("set", f"/p/{i % 50}", float(i)))

    ts = [threading.Thread(target=flood, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    drained = 0
    while any(t.is_alive() for t in ts):
        drained += len(q.drain())
    for t in ts:
        t.join()
    drained += len(q.drain())
    assert q.received == 8000
    assert drained + q.dropped + q.coalesced == 8000
    assert q.max_depth <= 100


def test_timed_events_wait_for_their_due_time():
    q = EventQueue(3)
    assert q.put(Event("set", "/late", 2.0, due=10.0))
    assert q.put(Event("set", "/early", 1.0, due=5.0))
    assert q.put(Event("set", "/also_early", 3.0, due=5.0))
    assert not q.put(Event("set", "/full", 4.0, due=6.0))  # the heap is bounded too
    assert q.put(Event("verb", "/show/next"))
    got = q.drain(now=5.0)
    assert [e.address for e in got] == ["/show/next", "/early", "/also_early"]
    assert q.scheduled == 1 and q.drain(now=9.9) == []
    assert [e.address for e in q.drain(now=10.0)] == ["/late"]
    assert q.dropped == 1
