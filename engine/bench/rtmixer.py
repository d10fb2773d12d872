"""For comparison only: the same synth played through python-rtmixer's C callback.

rtmixer (`pip install rtmixer`, not a dependency of the project) runs its
PortAudio callback in C, so the callback never waits for the interpreter
lock; the synth still renders in a Python thread, into rtmixer's
pa_ringbuffer, polled every 1 ms (a C callback cannot wake a Python thread).
Notes are scheduled a fixed 3 blocks ahead of the render position (no DAC
clock here). `bench_rtmixer` returns what jackd and rtmixer counted; see
docs/AUDIO.md for the comparison with engine.bench.audio.bench_audio.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.audio import _busy, _show_like, jack_xruns
from engine.dsp.synth import Synth


def _producer(synth: Synth, ring: Any, ahead_frames: int, stop: threading.Event, costs: list[float]) -> None:
    block = np.zeros((256, 2), dtype=np.float32)
    while not stop.is_set():
        while ring.read_available < ahead_frames and ring.write_available >= block.shape[0]:
            t0 = time.perf_counter()
            synth.render(block)
            costs.append((time.perf_counter() - t0) * 1000.0)
            ring.write(block)
        stop.wait(0.001)


def _notes(synth: Synth, seconds: float, warmup_s: float, action: Any) -> int:
    """Random notes for `seconds` from a 60 Hz loop; the action's underflows at the end of warm-up."""
    rng, start, next_note, warm = random.Random(0), time.perf_counter(), 0.1, None
    pause = threading.Event()
    while (elapsed := time.perf_counter() - start) < seconds:
        while next_note < elapsed + 0.1:
            synth.schedule(
                synth.time + 768,
                rng.randint(48, 84),
                rng.randint(60, 120),
                round(rng.uniform(0.1, 0.6) * synth.sample_rate),
            )
            next_note += rng.expovariate(12.0)
        if warm is None and elapsed >= warmup_s:
            warm = int(action.stats.output_underflows)
        pause.wait(1 / 60)
    return warm or 0


def bench_rtmixer(
    seconds: float = 20.0,
    busy_threads: int = 0,
    show_threads: int = 0,
    switch_interval: float | None = None,
    warmup_s: float = 2.0,
) -> dict[str, Any]:
    """256-frame blocks at 48 kHz, 768 frames rendered ahead, on a private JACK dummy server."""
    import rtmixer  # optional: raises ImportError when it is not installed

    from engine.bench.jackserver import dummy_server
    from engine.devices.audio_devices import choose, portaudio_session, query

    synth, costs, stop = Synth(48000), [], threading.Event()
    workers = [threading.Thread(target=_busy, args=(stop,), daemon=True) for _ in range(busy_threads)]
    workers += [threading.Thread(target=_show_like, args=(stop,), daemon=True) for _ in range(show_threads)]
    saved = sys.getswitchinterval()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "jackd.log"
        with dummy_server(rate=48000, period=256, log_file=log), portaudio_session() as sd:
            ring = rtmixer.RingBuffer(8, 4096)  # frames of 2 float32, power-of-two capacity
            producer = threading.Thread(target=_producer, args=(synth, ring, 768, stop, costs), daemon=True)
            mixer = rtmixer.Mixer(
                device=choose(query(sd), "jack").index, channels=2, blocksize=256, samplerate=48000, latency="low"
            )
            try:
                sys.setswitchinterval(switch_interval or saved)
                with mixer:
                    action = mixer.play_ringbuffer(ring)
                    for t in [producer, *workers]:
                        t.start()
                    warm = _notes(synth, seconds, warmup_s, action)
                    under, blocks = int(action.stats.output_underflows), int(action.stats.blocks)
                    alive = action in mixer.actions
            finally:
                stop.set()
                for t in [producer, *workers]:
                    if t.is_alive():
                        t.join()
                sys.setswitchinterval(saved)
        jack = jack_xruns(log.read_text(errors="replace"))
    p50, p99 = np.percentile(costs, [50, 99]) if costs else (0.0, 0.0)
    return {
        "seconds": seconds,
        "busy_threads": busy_threads,
        "show_threads": show_threads,
        "switch_interval_s": switch_interval or saved,
        "underflows": under,
        "underflows_after_warmup": under - warm,
        "blocks": blocks,
        "action_alive": alive,
        "jack_log": jack,
        "synth_ms": {"p50": round(float(p50), 4), "p99": round(float(p99), 4)},
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
