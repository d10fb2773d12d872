"""MIDI bytes -> control gestures, one `Decoder` per input port (pure: no ports).

A gesture is what a hand did on a controller: a CC moved, a 14-bit pair or an
NRPN arrived, a note went down or up, the pitch wheel moved, a program was
picked; plus the transport messages of a MIDI clock when clock sync is on.
Routing a gesture to a param is `engine.control.midi_routes`' job.

Rules (DESIGN.md, MIDI facts):
- note-on with velocity 0 is a note-off (a "note" gesture with value 0);
- 14-bit CC = CC n (MSB, 0-31) with CC n+32 (LSB), only for the (channel, n)
  pairs a patch declares; the MSB alone already emits (with LSB 0, as the MIDI
  spec resets the LSB on a new MSB) and the LSB refines it, so a controller
  that sends only MSBs still works and a full pair lands in the same frame;
- NRPN = CC 99/98 (parameter MSB/LSB) then CC 6/38 (data MSB/LSB), data
  increment/decrement CC 96/97 as a "nrpn_step" of +1/-1; RPN selects (CC
  101/100) swallow data entry, as no route can name an RPN;
- relative encoders arrive as plain CCs; `relative_steps` turns the value into
  signed ticks for the two usual conventions;
- clock (0xF8), start, continue, stop and song position only when the decoder
  is built with `clock=True`; otherwise they are filtered before any object is
  made. Sysex, active sensing and the other system messages are filtered.

Bytes that do not form one valid message are counted in `malformed` and give
no gesture. Values: CC 0-127, 14-bit 0-16383, pitch bend 0-16383 (8192 = centre).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Data bytes after each channel-voice status nibble.
_VOICE_LENGTH = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}
# System common / realtime: data bytes (None = undefined status, malformed).
_SYSTEM_LENGTH = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0, 0xFF: 0}
_TRANSPORT = {0xF8: "clock", 0xFA: "start", 0xFB: "continue", 0xFC: "stop", 0xF2: "song_position"}
NRPN_MSB, NRPN_LSB, RPN_MSB, RPN_LSB = 99, 98, 101, 100
DATA_MSB, DATA_LSB, DATA_INC, DATA_DEC = 6, 38, 96, 97

RELATIVE_ENCODINGS = ("twos", "offset")  # 1/127 (two's complement) and 65/63 (binary offset)


@dataclass(frozen=True, slots=True)
class Gesture:
    """kind: cc, cc14, nrpn, nrpn_step, note, pitchbend, program, or a transport
    kind (clock, start, continue, stop, song_position). channel 0-15 (-1 for
    system messages); number: controller, 14-bit MSB controller, NRPN number or
    note (0 otherwise); t: receive time, perf_counter seconds."""

    kind: str
    channel: int
    number: int
    value: int
    t: float = 0.0


def relative_steps(value: int, encoding: str) -> int:
    """Signed ticks of a relative encoder CC value (0 = no move)."""
    if encoding == "offset":  # 64 = rest, 65.. = up, ..63 = down
        return value - 64
    return value if value < 64 else value - 128  # twos: 1.. = up, 127.. = down


class _NrpnState:
    __slots__ = ("selected", "param_msb", "param_lsb", "data_msb")

    def __init__(self) -> None:
        self.selected: str | None = None  # "nrpn", "rpn" or None
        self.param_msb: int | None = None
        self.param_lsb: int | None = None
        self.data_msb: int | None = None


class Decoder:
    """Stateful decoder for one input port; `feed` is called on that port's receive thread."""

    def __init__(self, cc14: frozenset[tuple[int, int]] = frozenset(), clock: bool = False) -> None:
        self.cc14 = cc14  # (channel 0-15, MSB controller 0-31); replaced whole when learn adds one
        self.clock = clock
        self.malformed = 0
        self.filtered = 0  # well-formed but not for us (sysex, clock when off, RPN data, ...)
        self._msb: dict[tuple[int, int], int] = {}
        self._nrpn = [_NrpnState() for _ in range(16)]

    def feed_message(self, message: Any, t: float = 0.0) -> Gesture | None:
        """A mido Message (or anything with `.bytes()`)."""
        return self.feed(message.bytes(), t)

    def feed(self, data: Sequence[int], t: float = 0.0) -> Gesture | None:
        if not _well_formed(data):
            self.malformed += 1
            return None
        status = data[0]
        if status >= 0xF0:
            return self._system(data, t)
        kind, ch = status >> 4, status & 0x0F
        if kind == 0xB:
            return self._cc(ch, data[1], data[2], t)
        if kind in (0x8, 0x9):
            vel = data[2] if kind == 0x9 else 0
            return Gesture("note", ch, data[1], vel, t)
        if kind == 0xE:
            return Gesture("pitchbend", ch, 0, data[1] | (data[2] << 7), t)
        if kind == 0xC:
            return Gesture("program", ch, data[1], data[1], t)
        self.filtered += 1  # aftertouch: no route kind for it yet
        return None

    def _system(self, data: Sequence[int], t: float) -> Gesture | None:
        kind = _TRANSPORT.get(data[0])
        if kind is None or not self.clock:
            self.filtered += 1
            return None
        value = data[1] | (data[2] << 7) if kind == "song_position" else 0
        return Gesture(kind, -1, 0, value, t)

    def _cc(self, ch: int, cc: int, value: int, t: float) -> Gesture | None:
        st = self._nrpn[ch]
        if cc in (NRPN_MSB, NRPN_LSB, RPN_MSB, RPN_LSB):
            return self._select(st, cc, value)
        if st.selected is not None and cc in (DATA_MSB, DATA_LSB, DATA_INC, DATA_DEC):
            return self._data_entry(st, ch, cc, value, t)
        if cc < 32 and (ch, cc) in self.cc14:
            self._msb[(ch, cc)] = value
            return Gesture("cc14", ch, cc, value << 7, t)
        if 32 <= cc < 64 and (ch, cc - 32) in self.cc14:
            msb = self._msb.get((ch, cc - 32))
            if msb is None:  # an LSB before any MSB: nothing to refine yet
                self.filtered += 1
                return None
            return Gesture("cc14", ch, cc - 32, (msb << 7) | value, t)
        return Gesture("cc", ch, cc, value, t)

    def _select(self, st: _NrpnState, cc: int, value: int) -> None:
        if cc in (NRPN_MSB, NRPN_LSB):
            if st.selected != "nrpn":
                st.param_msb = st.param_lsb = None
            st.selected = "nrpn"
            if cc == NRPN_MSB:
                st.param_msb = value
            else:
                st.param_lsb = value
        else:
            st.selected = "rpn"  # 127/127 is "RPN null": deselect
            if cc == RPN_MSB:
                st.param_msb = value
            else:
                st.param_lsb = value
            if st.param_msb == 127 and st.param_lsb == 127:
                st.selected = None
        st.data_msb = None
        self.filtered += 1
        return None

    def _data_entry(self, st: _NrpnState, ch: int, cc: int, value: int, t: float) -> Gesture | None:
        if st.selected != "nrpn" or st.param_msb is None or st.param_lsb is None:
            self.filtered += 1
            return None
        number = (st.param_msb << 7) | st.param_lsb
        if cc == DATA_MSB:
            st.data_msb = value
            return Gesture("nrpn", ch, number, value << 7, t)
        if cc == DATA_LSB:
            if st.data_msb is None:
                self.filtered += 1
                return None
            return Gesture("nrpn", ch, number, (st.data_msb << 7) | value, t)
        return Gesture("nrpn_step", ch, number, 1 if cc == DATA_INC else -1, t)


def _well_formed(data: Sequence[int]) -> bool:
    """One complete message: a status byte, the right number of 7-bit data bytes."""
    try:
        n = len(data)
        if n == 0:
            return False
        status = data[0]
        if not isinstance(status, int) or not 0x80 <= status <= 0xFF:
            return False
        if status == 0xF0:  # sysex: F0 .. F7, 7-bit inside
            return n >= 2 and data[-1] == 0xF7 and all(0 <= b < 0x80 for b in data[1:-1])
        want = _VOICE_LENGTH.get(status >> 4) if status < 0xF0 else _SYSTEM_LENGTH.get(status)
        if want is None or n != want + 1:
            return False
        return all(isinstance(b, int) and 0 <= b < 0x80 for b in data[1:])
    except TypeError:
        return False
