"""Tempo: BPM and the beat position, from one source at a time.

Sources:

- ``internal``: the ``/tempo/bpm`` param (set by OSC, MIDI, presets or tap tempo).
- ``midi``: MIDI clock in. The MIDI control enqueues ``/tempo/clock`` (24 per
  quarter note), ``/tempo/start``, ``/tempo/stop``, ``/tempo/continue`` and
  ``/tempo/song_position`` (value in MIDI beats = 16th notes) verbs with their
  receive time ``t`` (perf_counter seconds). BPM is a least-squares fit over
  the last two beats of tick times, so it does not depend on frame times.
- ``link``: Ableton Link. The link control enqueues ``/tempo/link_bpm`` and
  ``/tempo/link_beat`` samples; they are input events like any other.

The beat advances from the show clock's dt (a FixedClock in renders), and is
phase-locked to the source's beat events when there are any. Because every
source reaches the tempo through queued events applied at frame boundaries,
a recorded event log replays to the same beats, frame for frame.

Pure module: no threads, ports or sockets.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Literal

from engine.core.checks import finite_number
from engine.core.events import Event
from engine.core.params import Registry

log = logging.getLogger(__name__)

TempoSource = Literal["internal", "midi", "link"]
SOURCES: tuple[str, ...] = ("internal", "midi", "link")
BPM_ADDRESS = "/tempo/bpm"
TICKS_PER_BEAT = 24  # MIDI clock: 24 pulses per quarter note
TAP_MEMORY = 4  # taps averaged: the last 4 intervals
TAP_RESET_S = 3.0  # a gap longer than this (one beat at 20 BPM) starts a new tap sequence
CLOCK_WINDOW = 2 * TICKS_PER_BEAT + 1  # ticks in the BPM fit: two beats
CLOCK_GAP_S = 0.5  # ticks further apart than this (below 5 BPM) restart the fit
# Link: each beat sample (50 per second) pulls the beat half of the way to it; an error
# past LINK_SNAP_BEATS is a jump of the session (joining, a restart) and is taken at once.
LINK_GAIN = 0.5
LINK_SNAP_BEATS = 0.5


class Tempo:
    """The show's tempo: `.bpm` (beats per minute) and `.beat` (beats since start)."""

    def __init__(self, registry: Registry, source: str = "internal") -> None:
        if source not in SOURCES:
            raise ValueError(f"tempo source must be one of {', '.join(SOURCES)}, got {source!r}")
        self.registry = registry
        self.source = source
        self.beat = 0.0  # quarter-note beats since the show started; phase = beat % 1
        self.running = True  # MIDI stop halts the beat; internal and link always run
        self._taps: deque[float] = deque(maxlen=TAP_MEMORY + 1)  # tap times, perf_counter s
        self._ticks: deque[float] = deque(maxlen=CLOCK_WINDOW)  # MIDI clock receive times, s
        self._clock_bpm: float | None = None
        self._tick_beat: float | None = None  # beat position of the last clock tick / Link sample
        self._armed = False  # after start/continue/song position: the next tick marks the position
        self._link_bpm: float | None = None
        self._link_sample: float | None = None  # the newest Link beat sample not yet locked to
        self.ignored = 0  # events for a source that is not the active one

    # -- reading ----------------------------------------------------------
    @property
    def bpm(self) -> float:
        """Beats per minute of the active source."""
        if self.source == "midi" and self._clock_bpm is not None:
            return self._clock_bpm
        if self.source == "link" and self._link_bpm is not None:
            return self._link_bpm
        return self.registry.get(BPM_ADDRESS)

    @property
    def phase(self) -> float:
        """Position inside the current beat, 0 <= phase < 1."""
        return self.beat % 1.0

    # -- per frame ----------------------------------------------------------
    def advance(self, dt: float) -> None:
        """Move the beat on by dt seconds of show time, at the current BPM."""
        if not self.running:
            return
        self.beat += dt * self.bpm / 60.0
        if self._tick_beat is not None:
            # MIDI clock phase lock: never fall behind the last tick's beat, never run
            # more than one tick past it (waiting for the next one).
            self.beat = min(max(self.beat, self._tick_beat), self._tick_beat + 1.0 / TICKS_PER_BEAT)
        if self._link_sample is not None:
            self._lock_to_link(self._link_sample, dt * self.bpm / 60.0)
            self._link_sample = None

    def _lock_to_link(self, sample: float, step: float) -> None:
        """Phase-lock to a Link beat sample. A small error is slewed out over a few samples,
        never by running backwards (a backward beat is a jump to the latent path); the
        first sample and a session jump are taken at once."""
        error = sample - self.beat
        if abs(error) > LINK_SNAP_BEATS:
            self.beat = sample
            return
        self.beat += max(error * LINK_GAIN, -0.5 * step)

    # -- tap tempo ----------------------------------------------------------
    def tap(self, ev: Event) -> None:
        """A tap at ev.t (seconds): the average of the last intervals sets /tempo/bpm;
        from the second tap on, the beat's phase snaps to the tap."""
        if self.source != "internal":
            self.ignored += 1
            return
        if self._taps and not 0.0 < ev.t - self._taps[-1] <= TAP_RESET_S:
            self._taps.clear()
        self._taps.append(ev.t)
        if len(self._taps) < 2:
            return
        interval = (self._taps[-1] - self._taps[0]) / (len(self._taps) - 1)  # seconds per beat
        self.registry.set(BPM_ADDRESS, 60.0 / interval)
        self.beat = float(round(self.beat))

    # -- MIDI clock ---------------------------------------------------------
    def clock_tick(self, ev: Event) -> None:
        if self.source != "midi":
            self.ignored += 1
            return
        if self._ticks and not 0.0 <= ev.t - self._ticks[-1] <= CLOCK_GAP_S:
            self._ticks.clear()  # clock restarted or timestamps went backwards
        self._ticks.append(ev.t)
        self._fit_bpm()
        if not self.running:
            return
        if self._armed:
            self._armed = False  # this tick is the position that start/continue/SPP set
        elif self._tick_beat is not None:
            self._tick_beat += 1.0 / TICKS_PER_BEAT
        else:
            self._tick_beat = self.beat

    def _fit_bpm(self) -> None:
        """Least-squares slope of tick time over tick index: robust to jitter on each tick."""
        n = len(self._ticks)
        if n < 3:
            return
        mean_i = (n - 1) / 2.0
        mean_t = sum(self._ticks) / n
        num = sum((i - mean_i) * (t - mean_t) for i, t in enumerate(self._ticks))
        den = sum((i - mean_i) ** 2 for i in range(n))
        seconds_per_tick = num / den
        if seconds_per_tick <= 0.0:
            return
        p = self.registry.param(BPM_ADDRESS)
        bpm = min(max(60.0 / (seconds_per_tick * TICKS_PER_BEAT), p.hard_lo), p.hard_hi)
        self._clock_bpm = bpm
        self.registry.set(BPM_ADDRESS, bpm)  # so a `?` query and the status show the followed tempo

    def start(self, ev: Event) -> None:
        """MIDI Start: back to beat 0; the next tick is beat 0."""
        if self._midi_only():
            self._locate(0.0)

    def stop(self, ev: Event) -> None:
        if self._midi_only():
            self.running = False

    def resume(self, ev: Event) -> None:
        """MIDI Continue: run on from where Stop (or a song position) left the beat."""
        if self._midi_only():
            self._locate(self._tick_beat if self._tick_beat is not None else self.beat)

    def song_position(self, ev: Event) -> None:
        """Song position pointer, value in MIDI beats (16th notes = 1/4 beat)."""
        if not self._midi_only():
            return
        value = ev.value
        if not finite_number(value) or value < 0:
            self.registry.rejected += 1
            return
        running = self.running
        self._locate(float(value) / 4.0)
        self.running = running  # SPP moves the position; only start/continue start the beat

    def _locate(self, beat: float) -> None:
        self.beat = beat
        self._tick_beat = beat
        self._armed = True
        self.running = True

    def _midi_only(self) -> bool:
        if self.source == "midi":
            return True
        self.ignored += 1
        return False

    # -- Ableton Link ---------------------------------------------------------
    def link_bpm(self, ev: Event) -> None:
        if self.source != "link" or not finite_number(ev.value):
            self.ignored += 1
            return
        p = self.registry.param(BPM_ADDRESS)
        self._link_bpm = min(max(float(ev.value), p.hard_lo), p.hard_hi)
        self.registry.set(BPM_ADDRESS, self._link_bpm)

    def link_beat(self, ev: Event) -> None:
        """A Link beat sample: the next advance locks the beat's phase to it."""
        if self.source != "link" or not finite_number(ev.value):
            self.ignored += 1
            return
        self._link_sample = float(ev.value)
