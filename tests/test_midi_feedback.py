"""Feedback encoding and per-control rate limiting with an injected clock."""

from pathlib import Path

from engine.control.midi_feedback import FeedbackEncoder, FeedbackLimiter, encode_position
from engine.core.space import build_registry
from engine.files.patch import MidiSource, Route


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def r(kind, number, mode="absolute", address="/master/brightness", **kw):
    return Route(Path("t"), 1, "", MidiSource(kind, number, 2), mode, address=address, feedback=True, **kw)


def test_encodings():
    assert encode_position(r("cc", 7), 1.0) == [(0xB2, 7, 127)]
    assert encode_position(r("cc14", 1), 0.5) == [(0xB2, 1, 64), (0xB2, 33, 0)]
    assert encode_position(r("pitchbend", 0), 1.0) == [(0xE2, 0x7F, 0x7F)]
    assert encode_position(r("nrpn", 300), 0.0) == [(0xB2, 99, 2), (0xB2, 98, 44), (0xB2, 6, 0), (0xB2, 38, 0)]
    led = r("note", 36, "toggle", "/master/blackout", feedback_channel=6, feedback_on=5)
    assert encode_position(led, 1.0) == [(0x96, 36, 5)]
    assert encode_position(led, 0.0) == [(0x96, 36, 0)]
    assert encode_position(r("cc", 32, "toggle", "/master/blackout"), 1.0) == [(0xB2, 32, 127)]


def test_encoder_maps_values_through_the_route():
    reg = build_registry()
    enc = FeedbackEncoder(
        [
            r("cc", 1, address="/master/speed"),
            r("cc", 2, address="/master/speed", invert=True),
            Route(Path("t"), 1, "", MidiSource("cc", 3, 0), "absolute", address="/master/speed"),
        ],
        reg,
    )
    out = enc.encode("/master/speed", 2.0)  # range 0..4
    assert [m for _, msgs in out for m in msgs] == [(0xB2, 1, 64), (0xB2, 2, 64)]
    assert enc.encode("/master/brightness", 1.0) == []
    assert len(enc.everything()) == 2


def test_limiter_sends_at_most_once_per_interval_and_keeps_the_newest():
    clock = Clock()
    lim = FeedbackLimiter(interval=0.02, clock=clock)
    lim.offer(("cc", 0, 1), [(0xB0, 1, 10)])
    assert lim.take_due() == ([(0xB0, 1, 10)], None)
    clock.now = 0.005
    for v in (11, 12, 13):
        lim.offer(("cc", 0, 1), [(0xB0, 1, v)])
    lim.offer(("cc", 0, 2), [(0xB0, 2, 5)])  # another control is not held back
    msgs, due = lim.take_due()
    assert msgs == [(0xB0, 2, 5)] and due == 0.02
    clock.now = 0.02
    assert lim.take_due() == ([(0xB0, 1, 13)], None)  # only the newest
    assert lim.suppressed == 2


def test_limiter_skips_repeats_until_a_reconnect():
    clock = Clock()
    lim = FeedbackLimiter(interval=0.02, clock=clock)
    lim.offer("k", [(0xB0, 1, 10)])
    lim.take_due()
    clock.now = 1.0
    lim.offer("k", [(0xB0, 1, 10)])
    assert lim.take_due() == ([], None)
    lim.forget_sent()
    lim.offer("k", [(0xB0, 1, 10)])
    assert lim.take_due() == ([(0xB0, 1, 10)], None)
    assert lim.wake.is_set()
