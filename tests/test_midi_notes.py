"""Generated notes as MIDI: every note-on gets its note-off, on time, also on panic."""

from __future__ import annotations

import pytest

from engine.devices.midi_out import NoteScheduler
from engine.flags import build_parser


def _pairs_balanced(messages: list[list[int]]) -> bool:
    held: dict[int, int] = {}
    for status, pitch, _vel in messages:
        held[pitch] = held.get(pitch, 0) + (1 if status & 0xF0 == 0x90 else -1)
        if held[pitch] not in (0, 1):
            return False
    return all(v == 0 for v in held.values())


def test_notes_come_out_at_their_times_on_the_channel():
    s = NoteScheduler(channel=3)
    s.add(1.0, 60, 100, 0.5)
    s.add(1.25, 64, 90, 0.5)
    assert s.take_due(0.99) == ([], 1.0)
    out, nxt = s.take_due(1.0)
    assert out == [[0x92, 60, 100]] and nxt == 1.25
    assert s.take_due(1.3)[0] == [[0x92, 64, 90]]
    assert s.take_due(1.5)[0] == [[0x82, 60, 0]]
    out, nxt = s.take_due(2.0)
    assert out == [[0x82, 64, 0]] and nxt is None and s.sounding == 0


def test_a_repeated_pitch_is_released_before_it_sounds_again_and_never_cut_later():
    s = NoteScheduler()
    s.add(0.0, 60, 100, 1.0)  # held until 1.0 ...
    s.add(0.5, 60, 80, 1.0)  # ... but struck again at 0.5
    msgs = []
    for t in (0.0, 0.5, 1.0, 1.5):
        msgs += s.take_due(t)[0]
    assert msgs == [[0x90, 60, 100], [0x80, 60, 0], [0x90, 60, 80], [0x80, 60, 0]]
    assert _pairs_balanced(msgs)


def test_panic_releases_every_sounding_note_and_drops_the_rest():
    s = NoteScheduler()
    for i in range(5):
        s.add(i * 0.1, 60 + i, 100, 10.0)
    msgs = s.take_due(0.25)[0]  # three notes sounding
    s.panic(0.3)
    out, nxt = s.take_due(0.3)
    assert sorted(m[1] for m in out) == [60, 61, 62] and all(m[0] == 0x80 for m in out)
    assert nxt is None and s.sounding == 0
    assert _pairs_balanced(msgs + out)


def test_a_note_too_late_to_send_is_dropped_with_its_off():
    s = NoteScheduler()
    s.add(0.0, 60, 100, 0.2)
    out, _ = s.take_due(5.0)  # the port thread was stalled (or the port absent) for 5 s
    assert out == [] and s.late == 1


def test_velocity_and_pitch_are_clamped_to_midi():
    s = NoteScheduler()
    s.add(0.0, 200, 0, 0.1)
    assert s.take_due(0.0)[0] == [[0x90, 127, 1]]


@pytest.mark.parametrize("bad", ["0", "17", "x"])
def test_channel_flag_is_checked(bad, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["show", "--notes-channel", bad])
    assert "--notes-channel" in capsys.readouterr().err
