"""MIDI feedback: param values -> controller LEDs / motor faders / encoder rings.

`FeedbackEncoder` turns a param value into the MIDI messages of every route
marked `feedback = true` for that param (CC, 14-bit pair, NRPN, pitch bend, or
note on/off for button lights). `FeedbackLimiter` keeps the newest messages
per control and releases them at most once per `interval` seconds per control:
a knob turned fast sends its last value, never a backlog. The show's listener
only offers messages to the limiter (a dict write under a lock) and wakes the
port thread, which sends: the loop thread never waits for a port.

Pure module: no ports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from engine.core.params import Registry
from engine.files.patch import MidiSource, Route, to_position

Message = tuple[int, ...]
FEEDBACK_INTERVAL = 0.02  # seconds between two messages to one control (50 per second)


class FeedbackEncoder:
    def __init__(self, routes: Iterable[Route], registry: Registry) -> None:
        self.registry = registry
        self.by_address: dict[str, list[Route]] = {}
        for r in routes:
            if r.feedback and r.address and isinstance(r.source, MidiSource):
                self.by_address.setdefault(r.address, []).append(r)

    def encode(self, address: str, value: float) -> list[tuple[tuple, list[Message]]]:
        """(control key, messages) for every feedback route of this param."""
        out = []
        routes = self.by_address.get(address)
        if not routes:
            return out
        p = self.registry.param(address)
        for r in routes:
            pos = to_position(r, value, p.lo, p.hi)
            out.append((_control_key(r), encode_position(r, pos)))
        return out

    def everything(self) -> list[tuple[tuple, list[Message]]]:
        """Current values of all feedback routes (after the output port (re)opens)."""
        out = []
        for address in self.by_address:
            out.extend(self.encode(address, self.registry.param(address).target))
        return out


def _control_key(r: Route) -> tuple:
    s = r.source
    assert isinstance(s, MidiSource)  # by_address only holds MIDI routes
    return (s.kind, r.out_channel, s.number)


def encode_position(r: Route, pos: float) -> list[Message]:
    """The messages that show position 0..1 on the route's control."""
    s = r.source
    assert isinstance(s, MidiSource)
    ch = r.out_channel
    if s.kind == "note" or r.mode in ("toggle", "trigger", "gate"):
        on = pos >= 0.5
        vel = r.feedback_on if on else r.feedback_off
        if s.kind == "note":
            return [(0x90 | ch, s.number, vel)]  # note-on with velocity 0 turns a light off everywhere
        return [(0xB0 | ch, s.number, vel)]
    if s.kind == "cc":
        return [(0xB0 | ch, s.number, round(pos * 127))]
    v14 = round(pos * 16383)
    msb, lsb = v14 >> 7, v14 & 0x7F
    if s.kind == "cc14":
        return [(0xB0 | ch, s.number, msb), (0xB0 | ch, s.number + 32, lsb)]
    if s.kind == "pitchbend":
        return [(0xE0 | ch, lsb, msb)]
    if s.kind == "nrpn":
        n = s.number
        data = [(0xB0 | ch, 6, round(pos * 127))] if r.bits == 7 else [(0xB0 | ch, 6, msb), (0xB0 | ch, 38, lsb)]
        return [(0xB0 | ch, 99, n >> 7), (0xB0 | ch, 98, n & 0x7F)] + data
    return []  # program: nothing to show


class FeedbackLimiter:
    """Newest messages per control, released at most once per `interval` seconds."""

    def __init__(self, interval: float = FEEDBACK_INTERVAL, clock: Callable[[], float] = time.perf_counter) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple, list[Message]] = {}
        self._last_sent: dict[tuple, float] = {}
        self._last_msgs: dict[tuple, list[Message]] = {}
        self.wake = threading.Event()  # set when something was offered
        self.suppressed = 0  # offers replaced by a newer value before they were sent

    def offer(self, key: tuple, messages: list[Message]) -> None:
        with self._lock:
            if key in self._pending:
                self.suppressed += 1
            self._pending[key] = messages
        self.wake.set()

    def forget_sent(self) -> None:
        """After a reconnect, resend even values the controller had before."""
        with self._lock:
            self._last_msgs.clear()

    def take_due(self) -> tuple[list[Message], float | None]:
        """Messages to send now, and when the next deferred one is due (clock seconds) or None."""
        now = self.clock()
        out: list[Message] = []
        next_due: float | None = None
        with self._lock:
            for key in list(self._pending):
                due = self._last_sent.get(key, -1e9) + self.interval
                if due > now:
                    next_due = due if next_due is None else min(next_due, due)
                    continue
                msgs = self._pending.pop(key)
                if self._last_msgs.get(key) == msgs:
                    continue  # the controller already shows this
                self._last_sent[key] = now
                self._last_msgs[key] = msgs
                out.extend(msgs)
        return out, next_due
