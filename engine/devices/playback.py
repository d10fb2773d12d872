"""The sound card side of playback: a callback that only copies, and the audio clock.

`Playback.callback` is what PortAudio calls for every block (through
sounddevice, on its own thread). It copies the oldest ready block from the
ring into `outdata`, or writes silence and counts an underrun when none is
ready; it counts the host's xruns; it leaves a stamp (which synth sample it
just played and when that reaches the DAC) and wakes the producer. It does no
model call, no file or socket I/O, allocates no arrays and takes no lock but
the short one inside `threading.Event.set`. Every exception is caught and
counted there, because one escaping exception stops a sounddevice stream for
good, silently.

`AudioClock` turns those stamps into a map from the show's time
(perf_counter seconds) to synth sample time, so a note wanted "at t" is
scheduled at the exact sample that reaches the DAC at t.

Pure module: no sounddevice import (tests drive the callback with fakes).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.dsp.ring import BlockRing

# A stamp: (synth sample index of the block just played, its DAC time in the
# stream's clock (s), perf_counter minus the stream clock at the callback (s)).
Stamp = tuple[int, float, float]


class Playback:
    def __init__(
        self,
        ring: BlockRing,
        origin: int = 0,
        wake: threading.Event | None = None,
        output_latency: float = 0.0,
        perf: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.ring = ring
        self.origin = origin  # synth sample index of the ring's block 0
        self.wake = wake or threading.Event()
        self.output_latency = output_latency  # seconds; used when the host gives no DAC time
        self._perf = perf
        self.blocks = 0  # callbacks, silent or not
        self.underruns = 0  # callbacks that found no block ready
        self.xruns = 0  # callbacks whose status flags were set by the host
        self.errors = 0  # exceptions caught in the callback
        self.stamp: Stamp | None = None
        self.last_call: float | None = None  # perf_counter time of the latest callback (host health)

    def callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """sounddevice OutputStream callback: copy one ready block, or silence."""
        try:
            perf = self.last_call = self._perf()
            self.blocks += 1
            if status:
                self.xruns += 1
            if self.ring.read_into(outdata):
                now = time_info.currentTime
                dac = time_info.outputBufferDacTime
                if not dac > now:  # some hosts leave it 0
                    dac = now + self.output_latency
                self.stamp = (self.origin + (self.ring.read - 1) * self.ring.frames, dac, perf - now)
            else:
                outdata.fill(0.0)
                self.underruns += 1
            self.wake.set()
        except BaseException:  # noqa: BLE001 - nothing may leave a PortAudio callback
            self.errors += 1
            try:
                outdata.fill(0.0)
            except BaseException:  # noqa: BLE001 - outdata itself is broken: nothing left to do
                pass

    @property
    def next_sample(self) -> int:
        """Synth sample index of the next block the callback will play."""
        return self.origin + self.ring.read * self.ring.frames

    def stats(self) -> dict[str, int]:
        return {"underruns": self.underruns, "xruns": self.xruns, "blocks": self.blocks, "callback_errors": self.errors}


class AudioClock:
    """Map perf_counter seconds to synth sample time from Playback stamps.

    The stream clock and perf_counter tick at the same rate; their offset is
    measured at every callback, but only ever too large (the callback may run
    late, e.g. waiting for the interpreter lock), so the smallest offset of the
    last `window` callbacks is used. Call `observe()` from one thread (the
    producer does, after every wake); `sample_at()` from any.
    """

    def __init__(self, sample_rate: int, window: int = 64) -> None:
        self.sample_rate = sample_rate
        self._offsets: deque[float] = deque(maxlen=window)
        self._last: Stamp | None = None
        self._anchor: tuple[int, float] | None = None  # (synth sample, perf_counter time it reaches the DAC)

    def observe(self, stamp: Stamp | None) -> None:
        if stamp is None or stamp is self._last:
            return
        self._last = stamp
        sample, dac, offset = stamp
        self._offsets.append(offset)
        self._anchor = (sample, dac + min(self._offsets))

    @property
    def ready(self) -> bool:
        return self._anchor is not None

    def sample_at(self, t: float) -> int | None:
        """Synth sample that reaches the DAC at perf_counter time t; None before the first block played."""
        anchor = self._anchor
        if anchor is None:
            return None
        return anchor[0] + round((t - anchor[1]) * self.sample_rate)

    def time_of(self, sample: int) -> float | None:
        """perf_counter time at which synth sample `sample` reaches the DAC (None before the first block)."""
        anchor = self._anchor
        if anchor is None:
            return None
        return anchor[1] + (sample - anchor[0]) / self.sample_rate
