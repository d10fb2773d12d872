"""Generated notes out as MIDI: `--notes-out NAME` on `--notes-channel N`.

The show schedules each generated note ahead of time (`add`, perf_counter
seconds). `NoteScheduler` is the pure part: it turns notes into note-on and
note-off messages due at their times and guarantees that every note-on gets
its note-off, including on `panic()` (scene change, blackout, quit), which
drops notes not yet started and makes every sounding note's note-off due at
once. The port itself belongs to a `PortWatcher` thread (as MIDI feedback
does): it waits for a port whose name contains NAME, reopens it after an
unplug, and sends what is due, so the loop thread never touches a port.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from engine.control.midi_ports import PortBackend, PortWatcher

log = logging.getLogger(__name__)

NOTE_ON, NOTE_OFF = 0x90, 0x80
STALE_S = 0.25  # a note-on this late (seconds) is dropped with its note-off rather than played late
Message = list[int]


class NoteScheduler:
    """Note-ons and note-offs due at perf_counter times; thread-safe (the loop adds,
    the port thread takes)."""

    def __init__(self, channel: int = 1) -> None:
        self.status_on = NOTE_ON | (channel - 1)
        self.status_off = NOTE_OFF | (channel - 1)
        self._heap: list[tuple[float, int, int, int, int]] = []  # (due, seq, pitch, velocity 0 = off, note id)
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._sounding: dict[int, int] = {}  # pitch -> id of the note holding it
        self._lock = threading.Lock()
        self.notes = 0
        self.late = 0  # note-ons dropped because they could not be sent within STALE_S
        self.panics = 0

    def add(self, t_on: float, pitch: int, velocity: int, duration_s: float) -> None:
        pitch, velocity = min(max(int(pitch), 0), 127), min(max(int(velocity), 1), 127)
        note = next(self._ids)
        with self._lock:
            heapq.heappush(self._heap, (t_on, next(self._seq), pitch, velocity, note))
            heapq.heappush(self._heap, (t_on + max(duration_s, 0.001), next(self._seq), pitch, 0, note))
            self.notes += 1

    def take_due(self, now: float) -> tuple[list[Message], float | None]:
        """Messages due at `now`, and when the next one is due (None: nothing waits)."""
        out: list[Message] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                due, _, pitch, velocity, note = heapq.heappop(self._heap)
                if velocity and now - due > STALE_S:
                    self.late += 1  # its note-off finds the pitch not held by it and is skipped
                    continue
                self._emit(pitch, velocity, note, out)
            return out, (self._heap[0][0] if self._heap else None)

    def _emit(self, pitch: int, velocity: int, note: int, out: list[Message]) -> None:
        holder = self._sounding.get(pitch)
        if velocity:  # note-on; a pitch still held by an earlier note is released first
            if holder is not None:
                out.append([self.status_off, pitch, 0])
            self._sounding[pitch] = note
            out.append([self.status_on, pitch, velocity])
        elif holder == note:  # the off of a note that a later one took over is already sent
            del self._sounding[pitch]
            out.append([self.status_off, pitch, 0])

    def panic(self, now: float) -> None:
        """Drop notes not yet started; every sounding note's note-off becomes due now."""
        with self._lock:
            self._heap = [(now, next(self._seq), pitch, 0, note) for pitch, note in self._sounding.items()]
            heapq.heapify(self._heap)
            self.panics += 1

    @property
    def sounding(self) -> int:
        with self._lock:
            return len(self._sounding)


class MidiNotesOut:
    """A NoteScheduler sending through its own port thread."""

    def __init__(
        self,
        pattern: str,
        channel: int,
        backend_factory: Callable[[], PortBackend],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.scheduler = NoteScheduler(channel)
        self.clock = clock
        self.watcher = PortWatcher(
            backend_factory,
            [],
            pattern,
            lambda _name: _no_input,
            take_feedback=lambda: self.scheduler.take_due(self.clock()),
            clock=clock,
            output_label="notes out",
        )
        self.skipped = 0  # notes generated while no port was open

    def start(self) -> None:
        self.watcher.start()

    def note(self, t_on: float, pitch: int, velocity: int, duration_s: float) -> None:
        if self.watcher.output is None:  # no port (yet): nothing to keep for later
            self.skipped += 1
            return
        self.scheduler.add(t_on, pitch, velocity, duration_s)
        self.watcher.wake.set()  # the port thread may be sleeping past this note's time

    def panic(self) -> None:
        self.scheduler.panic(self.clock())
        self.watcher.wake.set()

    def close(self) -> None:
        """Panic, send the note-offs, close the port."""
        self.scheduler.panic(self.clock())
        self.watcher.submit(self.watcher.send_due)  # runs on the port thread before it closes the port
        self.watcher.close()

    def stats(self) -> dict[str, int]:
        sch = self.scheduler
        return {
            "notes": sch.notes,
            "sent": self.watcher.sent,
            "send_errors": self.watcher.send_errors,
            "late": sch.late,
            "skipped": self.skipped,
            "panics": sch.panics,
        }


def _no_input(_data: object, _t: float) -> None:  # notes out opens no input ports
    return None
