"""Audio benchmarks: the synth's cost per block, and the real stream under a JACK dummy server.

`measure_synth` times Synth.render with every voice sounding (no device).
`bench_audio` starts a private JACK server on the dummy driver (real time
pacing, no hardware), opens the real sounddevice stream through PortAudio's
JACK host API, plays random chords the way a show would schedule them (from
a ~60 Hz loop, each note 100 ms ahead) and reports underruns, xruns, blocks
and the render cost. Both return dicts; `format_audio_bench` makes the line a
command prints.
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

from engine.config import ShowConfig
from engine.dsp.synth import Synth, SynthSettings

LOOP_HZ = 60.0  # the show loop the notes are scheduled from
AHEAD_S = 0.1  # notes are scheduled this far ahead of their time


def measure_synth(
    blocks: int = 2000, frames: int = 256, voices: int = 8, rate: int = 48000, waveform: int = 1
) -> dict[str, Any]:
    """Render `blocks` blocks with all `voices` sounding; ms per block p50 / p99 / max."""
    synth = Synth(rate, voices=voices, settings=SynthSettings(waveform=waveform))
    for v in range(voices):
        synth.schedule(v, 48 + 5 * v, 100, blocks * frames)  # all held to the end
    out = np.zeros((frames, 2), dtype=np.float32)
    costs = np.empty(blocks)
    for i in range(blocks):
        t0 = time.perf_counter()
        synth.render(out)
        costs[i] = (time.perf_counter() - t0) * 1000.0
    p50, p99 = np.percentile(costs, [50, 99])
    return {
        "blocks": blocks,
        "frames": frames,
        "voices": voices,
        "waveform": waveform,
        "ms": {"p50": round(float(p50), 4), "p99": round(float(p99), 4), "max": round(float(costs.max()), 4)},
        "budget_ms": round(frames / rate * 1000.0, 3),
    }


def _play(out: Any, seconds: float, warmup_s: float, notes_per_s: float, seed: int) -> dict[str, int]:
    """Schedule random notes from a LOOP_HZ loop for `seconds`; the stats at the end of warm-up."""
    rng = random.Random(seed)
    pause = threading.Event()
    start = time.perf_counter()
    next_note = start + AHEAD_S
    warm: dict[str, int] | None = None
    while (now := time.perf_counter()) - start < seconds:
        while next_note < now + AHEAD_S:
            out.schedule(next_note, rng.randint(48, 84), rng.randint(60, 120), rng.uniform(0.1, 0.6))
            next_note += rng.expovariate(notes_per_s)
        if warm is None and now - start >= warmup_s:
            warm = {k: out.stats()[k] for k in ("underruns", "xruns", "blocks")}
        pause.wait(1.0 / LOOP_HZ)
    return warm or {"underruns": 0, "xruns": 0, "blocks": 0}


def _busy(stop: threading.Event) -> None:
    """Pure-Python work that holds the interpreter lock, as a show loop's Python code does."""
    x = 0
    while not stop.is_set():
        for i in range(10000):
            x = (x + i * i) % 1000003


def _show_like(stop: threading.Event, torch_ms: float = 7.0, python_ms: float = 1.0) -> None:
    """A show loop's shape at 60 fps: torch work (which releases the interpreter lock) and
    some pure-Python glue each frame, then a wait for the next frame."""
    import torch

    torch.set_num_threads(1)  # the show's default (see docs/BENCHMARKS.md)
    a = torch.randn(256, 256)
    period = 1.0 / 60.0
    next_frame = time.perf_counter()
    while not stop.is_set():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < torch_ms / 1000.0:
            a = torch.tanh(a @ a) * 0.5
        t1 = time.perf_counter()
        while time.perf_counter() - t1 < python_ms / 1000.0:
            sum(range(200))
        next_frame += period
        stop.wait(max(0.0, next_frame - time.perf_counter()))


def _measure(
    out: Any,
    seconds: float,
    warmup_s: float,
    notes_per_s: float,
    seed: int,
    busy_threads: int,
    show_threads: int,
    switch_interval: float | None,
) -> tuple[dict[str, int], dict[str, Any]]:
    """Play with the given load threads; (stats at the end of warm-up, stats at the end). Closes `out`."""
    saved_interval, stop = sys.getswitchinterval(), threading.Event()
    workers = [threading.Thread(target=_busy, args=(stop,), daemon=True) for _ in range(busy_threads)]
    workers += [threading.Thread(target=_show_like, args=(stop,), daemon=True) for _ in range(show_threads)]
    try:
        if switch_interval is not None:
            sys.setswitchinterval(switch_interval)
        for w in workers:
            w.start()
        warm = _play(out, seconds, warmup_s, notes_per_s, seed)
        return warm, out.stats()
    finally:
        stop.set()
        for w in workers:
            w.join()
        sys.setswitchinterval(saved_interval)
        out.close()


def bench_audio(
    seconds: float = 10.0,
    rate: int = 48000,
    block: int = 256,
    latency_blocks: int = 4,
    voices: int = 8,
    notes_per_s: float = 12.0,
    warmup_s: float = 2.0,
    seed: int = 0,
    busy_threads: int = 0,
    show_threads: int = 0,
    switch_interval: float | None = None,
) -> dict[str, Any]:
    """Play through a real sounddevice stream on a private JACK dummy server; counts and costs.

    `busy_threads` Python threads spin meanwhile (the callback must win the
    interpreter lock from them); `show_threads` run a 60 fps show-like load (7 ms
    of torch, 1 ms of Python per frame); `switch_interval` sets sys.setswitchinterval
    (seconds; Python's default is 0.005) for the run.
    """
    from engine.bench.jackserver import dummy_server
    from engine.devices.audio_devices import portaudio_session
    from engine.devices.audio_out import open_audio

    config = ShowConfig(
        audio_device="jack", sample_rate=rate, block_size=block, audio_latency=latency_blocks, synth_voices=voices
    )
    with tempfile.TemporaryDirectory() as tmp:
        jack_log = Path(tmp) / "jackd.log"
        with dummy_server(rate=rate, period=block, log_file=jack_log), portaudio_session():
            out = open_audio(config)
            if out is None:
                raise RuntimeError("no JACK output device appeared")
            warm, end = _measure(out, seconds, warmup_s, notes_per_s, seed, busy_threads, show_threads, switch_interval)
        jack = jack_xruns(jack_log.read_text(errors="replace"))
    after = {f"{k}_after_warmup": end[k] - warm[k] for k in ("underruns", "xruns", "blocks")}
    return {
        "seconds": seconds,
        "sample_rate": rate,
        "block_size": block,
        "latency_blocks": latency_blocks,
        "latency_ms": end["latency_ms"],
        "voices": voices,
        "underruns": end["underruns"],
        "xruns": end["xruns"],
        "blocks": end["blocks"],
        **after,
        "callback_errors": end["callback_errors"],
        "notes": end["notes"],
        "late_notes": end["late"],
        "stolen": end["stolen"],
        "synth_ms": end["synth_ms"],
        "jack_log": jack,
        "busy_threads": busy_threads,
        "show_threads": show_threads,
        "switch_interval_s": switch_interval or sys.getswitchinterval(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def jack_xruns(log_text: str) -> dict[str, int]:
    """What jackd's log blames xruns on: its own driver thread waking late ("driver_late"),
    or a client (ours: PortAudio) not done within the period ("client_late")."""
    return {
        "driver_late": log_text.count("JackTimedDriver::Process XRun"),
        "client_late": log_text.count("was not finished"),
    }


def format_audio_bench(r: dict[str, Any]) -> str:
    """One human line per result dict of bench_audio or measure_synth."""
    ms = r.get("synth_ms") or r["ms"]
    cost = f"synth block ms p50 {ms['p50']:.3f} p99 {ms['p99']:.3f} max {ms['max']:.3f}"
    if "underruns" not in r:
        return f"synth: {r['voices']} voices, {r['frames']}-frame blocks: {cost} (budget {r['budget_ms']:.2f} ms)"
    return (
        f"audio {r['seconds']:.0f} s via JACK dummy at {r['sample_rate']} Hz, {r['block_size']}-frame blocks, "
        f"{r['latency_blocks']} ahead ({r['latency_ms']:.1f} ms): underruns {r['underruns']} "
        f"({r['underruns_after_warmup']} after warm-up), xruns {r['xruns']} (jackd: driver late "
        f"{r['jack_log']['driver_late']}, client late {r['jack_log']['client_late']}), blocks {r['blocks']}, "
        f"notes {r['notes']} (late {r['late_notes']}), {cost}; busy Python threads {r['busy_threads']}, "
        f"show-like threads {r['show_threads']}, "
        f"switch interval {r['switch_interval_s'] * 1000:.1f} ms, load {r['load_avg'][0]:.2f}"
    )
