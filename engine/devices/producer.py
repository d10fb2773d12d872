"""The producer thread: renders the synth ahead into the ring, so the callback only copies.

It keeps the ring full: `latency_blocks` rendered blocks wait ahead of the
one the sound card plays (2 to 4 blocks of 256 frames at 48 kHz is 11 to 21 ms;
the flag's default is 4).
After each fill it sleeps until the callback wakes it (one block later), or
`poll_s` at most (so `after_step` still runs when the callbacks have stopped). Each render is
timed; `cost_ms()` gives p50 / p99 / max.

A render that raises is logged (the first time, then every 1000th) and
counted; nothing is published for it, so the callback plays silence and
counts underruns rather than playing garbage.

Pure module (threading and numpy; no sounddevice).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from engine.core.ratelog import first_and_every
from engine.devices.playback import AudioClock, Playback
from engine.dsp.ring import BlockRing

log = logging.getLogger(__name__)

COST_WINDOW = 8192  # render times kept for percentiles (about 44 s of 256-frame blocks at 48 kHz)


class Producer:
    def __init__(
        self,
        render: Callable[[np.ndarray], None],
        ring: BlockRing,
        playback: Playback | None = None,
        clock: AudioClock | None = None,
        poll_s: float = 0.05,
        after_step: Callable[[], None] | None = None,
    ) -> None:
        self.render = render  # fills a (frames, channels) float32 block, e.g. Synth.render
        self.ring = ring
        self.playback = playback
        self.clock = clock
        self.wake = playback.wake if playback is not None else threading.Event()
        self.poll_s = poll_s
        self.after_step = after_step  # run on this thread after every round (the output's host check)
        self.errors = 0
        self.rendered = 0
        self._costs = np.zeros(COST_WINDOW)  # ms per render, circular
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fill(self) -> int:
        """Render blocks until the ring is full; returns how many were rendered."""
        count = 0
        while True:
            slot = self.ring.write_slot()
            if slot is None:
                return count
            t0 = time.perf_counter()
            self.render(slot)
            self._costs[self.rendered % COST_WINDOW] = (time.perf_counter() - t0) * 1000.0
            self.rendered += 1
            self.ring.publish()
            count += 1

    def step(self) -> None:
        """One round of the thread: update the clock, fill, log a render error."""
        if self.clock is not None and self.playback is not None:
            self.clock.observe(self.playback.stamp)
        try:
            self.fill()
        except Exception:  # the thread must survive a bad render; the callback plays silence meanwhile
            self.errors += 1
            if first_and_every(self.errors, 1000):
                log.exception("audio: synth render failed (%d so far); playing silence", self.errors)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audio-producer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()  # before the fill: a wake during the fill is not lost
            self.step()
            if self.after_step is not None:
                self.after_step()
            self.wake.wait(self.poll_s)

    def close(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def cost_ms(self) -> dict[str, float]:
        """Render time per block in ms over the last COST_WINDOW blocks: p50, p99, max."""
        n = min(self.rendered, COST_WINDOW)
        if n == 0:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        costs = self._costs[:n]
        p50, p99 = np.percentile(costs, [50, 99])
        return {"p50": round(float(p50), 4), "p99": round(float(p99), 4), "max": round(float(costs.max()), 4)}
