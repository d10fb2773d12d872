"""The MIDI decoder: every message kind, from raw bytes and from mido messages."""

import random

import mido
import pytest

from engine.control.midi_decode import Decoder, Gesture, relative_steps


def test_cc_and_mido_messages():
    d = Decoder()
    assert d.feed([0xB0, 7, 100], 1.5) == Gesture("cc", 0, 7, 100, 1.5)
    assert d.feed_message(mido.Message("control_change", channel=15, control=3, value=0)) == Gesture("cc", 15, 3, 0)


def test_notes_velocity_zero_is_off():
    d = Decoder()
    assert d.feed([0x91, 60, 90]) == Gesture("note", 1, 60, 90)
    assert d.feed([0x91, 60, 0]) == Gesture("note", 1, 60, 0)
    assert d.feed([0x81, 60, 64]) == Gesture("note", 1, 60, 0)


def test_pitchbend_program_and_aftertouch():
    d = Decoder()
    assert d.feed_message(mido.Message("pitchwheel", pitch=0)).value == 8192
    assert d.feed([0xE2, 0x7F, 0x7F]) == Gesture("pitchbend", 2, 0, 16383)
    assert d.feed([0xC0, 4]) == Gesture("program", 0, 4, 4)
    assert d.feed([0xD0, 10]) is None and d.filtered == 1


def test_cc14_pairs_only_when_declared():
    d = Decoder(cc14=frozenset({(0, 1)}))
    assert d.feed([0xB0, 1, 64]) == Gesture("cc14", 0, 1, 64 << 7)
    assert d.feed([0xB0, 33, 5]) == Gesture("cc14", 0, 1, (64 << 7) | 5)
    assert d.feed([0xB0, 2, 64]) == Gesture("cc", 0, 2, 64)  # not declared: plain 7-bit
    assert d.feed([0xB1, 1, 64]) == Gesture("cc", 1, 1, 64)  # other channel
    lone = Decoder(cc14=frozenset({(0, 5)}))
    assert lone.feed([0xB0, 37, 9]) is None  # LSB before any MSB


def test_nrpn_data_entry_and_steps():
    d = Decoder()
    for cc, v in ((99, 1), (98, 2)):
        assert d.feed([0xB0, cc, v]) is None
    number = (1 << 7) | 2
    assert d.feed([0xB0, 6, 100]) == Gesture("nrpn", 0, number, 100 << 7)
    assert d.feed([0xB0, 38, 3]) == Gesture("nrpn", 0, number, (100 << 7) | 3)
    assert d.feed([0xB0, 96, 0]) == Gesture("nrpn_step", 0, number, 1)
    assert d.feed([0xB0, 97, 0]) == Gesture("nrpn_step", 0, number, -1)
    # RPN selected: data entry is swallowed; RPN null frees CC 6 again
    d.feed([0xB0, 101, 0]), d.feed([0xB0, 100, 0])
    assert d.feed([0xB0, 6, 2]) is None
    d.feed([0xB0, 101, 127]), d.feed([0xB0, 100, 127])
    assert d.feed([0xB0, 6, 2]) == Gesture("cc", 0, 6, 2)
    # data entry on another channel with nothing selected is a plain CC
    assert d.feed([0xB3, 6, 1]) == Gesture("cc", 3, 6, 1)


@pytest.mark.parametrize(
    "value,encoding,steps",
    [
        (1, "twos", 1),
        (3, "twos", 3),
        (127, "twos", -1),
        (125, "twos", -3),
        (65, "offset", 1),
        (63, "offset", -1),
        (70, "offset", 6),
        (64, "offset", 0),
    ],
)
def test_relative_encoders(value, encoding, steps):
    assert relative_steps(value, encoding) == steps


def test_clock_only_when_sync_is_on():
    off = Decoder()
    for msg in ([0xF8], [0xFA], [0xFB], [0xFC], [0xF2, 1, 2]):
        assert off.feed(msg) is None
    assert off.filtered == 5 and off.malformed == 0
    on = Decoder(clock=True)
    assert on.feed([0xF8], 2.0) == Gesture("clock", -1, 0, 0, 2.0)
    assert [on.feed([b]).kind for b in (0xFA, 0xFB, 0xFC)] == ["start", "continue", "stop"]
    assert on.feed([0xF2, 1, 2]) == Gesture("song_position", -1, 0, 1 | (2 << 7))


def test_sysex_and_system_messages_are_filtered():
    d = Decoder()
    assert d.feed([0xF0, 0x7E, 0x01, 0xF7]) is None
    assert d.feed([0xFE]) is None and d.feed([0xF6]) is None and d.feed([0xF1, 3]) is None
    assert d.filtered == 4 and d.malformed == 0


@pytest.mark.parametrize(
    "data",
    [
        [],
        [0x40, 1, 2],
        [0xB0, 1],
        [0xB0, 1, 2, 3],
        [0xB0, 200, 1],
        [0x90, 60, 128],
        [0xF4],
        [0xF5],
        [0xF9],
        [0xFD],
        [0xF7],
        [0xF0, 1, 2],
        [0xF0, 0x90, 0xF7],
        [0xC0],
        [0xF2, 1],
        [0x1FF, 1, 2],
        [-1],
        ["x", 1, 2],
        [0xB0, 1.5, 2],
        None,
    ],
)
def test_malformed_bytes_are_counted(data):
    d = Decoder()
    assert d.feed(data) is None
    assert d.malformed == 1


def test_random_bytes_are_a_gesture_or_counted_never_an_exception():
    """Fuzz (fixed seed): status bytes mid-message, data > 127, sysex without end, lone F7,
    real-time bytes interleaved, 0 to 300 bytes. Each call yields one gesture or one count."""
    rng = random.Random(3)
    d = Decoder(frozenset((ch, n) for ch in range(16) for n in range(32)), clock=True)
    gestures, n = 0, 5000
    for _ in range(n):
        size = rng.randrange(301) if rng.random() < 0.05 else rng.randrange(5)
        data = [
            rng.choice(
                (
                    rng.randrange(128),
                    rng.randrange(128, 256),
                    rng.choice((0xF0, 0xF7, 0xF8, 0xFE, 0xFF)),
                    rng.randrange(256, 1000),
                )
            )
            for _ in range(size)
        ]
        if rng.random() < 0.5:  # a well-formed message: any status, right length, edge values
            status = rng.randrange(0x80, 0x100)
            want = {0xC: 1, 0xD: 1}.get(status >> 4, 2) if status < 0xF0 else rng.randrange(3)
            data = [status] + [rng.choice((0, 1, 63, 64, 65, 127, rng.randrange(128))) for _ in range(want)]
        gestures += d.feed(data, 0.0) is not None
    assert gestures + d.malformed + d.filtered == n and gestures > 1000


def test_half_pairs_and_partial_nrpn_give_no_stray_values():
    d = Decoder(frozenset({(0, 7)}))
    assert d.feed([0xB0, 39, 5]) is None  # LSB before any MSB
    assert d.feed([0xB1, 7, 3]) == Gesture("cc", 1, 7, 3)  # channel 2 declared no pair
    assert d.feed([0xB0, 7, 127]) == Gesture("cc14", 0, 7, 16256)  # MSB alone: LSB 0
    assert d.feed([0xB1, 39, 127]) == Gesture("cc", 1, 39, 127)  # an LSB from another channel is a CC
    assert d.feed([0xB0, 39, 127]) == Gesture("cc14", 0, 7, 16383)
    assert d.feed([0xB0, 6, 1]) == Gesture("cc", 0, 6, 1)  # data entry with nothing selected
    assert d.feed([0xB0, 99, 1]) is None and d.feed([0xB0, 6, 1]) is None  # NRPN LSB missing
    assert d.feed([0xB0, 98, 2]) is None and d.feed([0xB0, 38, 9]) is None  # data LSB before MSB
    assert d.feed([0xB0, 6, 127]) == Gesture("nrpn", 0, 130, 16256)
    assert d.feed([0xE0, 0, 0]).value == 0 and d.feed([0xE0, 127, 127]).value == 16383
