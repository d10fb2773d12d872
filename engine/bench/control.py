"""`bench --control`: input latency, from an OSC send to the first presented frame that shows it.

Starts its own headless show (SDL dummy driver, LiveClock, paced to 60 fps,
the real OSC control module on a free loopback port), then a sender thread
sends OSC messages over UDP that alternately move `/master/brightness` (a
"post" param, used after the model) and `/deck/a/latent/1` (a model input),
at random moments. Each value is unique; a frame hook notes, after every
present, the brightness and the latent offset that frame used, with the
present time. A message's latency is the first such frame that used its value
minus its send time (both perf_counter seconds).

The latent param's smoothing is set to 0 here, so the frame that shows the
value is the frame that uses it exactly: this measures transport and loop
latency, not the param's deliberate glide.

MIDI (engine.bench.midi): the same measurement with CC messages sent from a
virtual JACK MIDI port through a private JACK dummy server into the real MIDI
control module; null (with the reason in "midi_skipped") when the MIDI module,
jackd or python-rtmidi is missing.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.bench.latency import BRIGHTNESS, GAP_S, LATENT, Trace
from engine.bench.ports import free_udp_port
from engine.bench.window import headless_window
from engine.config import ShowConfig, StageConfig
from engine.core.clock import LiveClock, Pacer
from engine.core.stats import FrameStats
from engine.files.scene import load_scene
from engine.stage.build import build_show
from engine.stage.deck import load_scenes
from engine.stage.show import Show

log = logging.getLogger(__name__)

SETTLE_S = 0.25  # seconds the show keeps running after the last send
POST_TARGET_MS = 18.7  # one 60 fps frame plus 2 ms
MATCH_WINDOW_S = 1.0  # a value not shown within this is missed (not matched to a later repeat)
VALUE_TOLERANCE = 1e-5  # float32 rounding of a sent value; distinct sent values differ by far more


class TimedModel(torch.nn.Module):
    """Wraps the scene's generator to time each forward pass inside the running show (the
    model_input target adds the forward time, and on a shared machine it drifts with load)."""

    def __init__(self, inner: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.inner, self.device = inner, device
        self.times: list[float] = []  # seconds

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        out = self.inner(z)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.times.append(time.perf_counter() - t0)
        return out


def _send_osc(port: int, n: int, trace: Trace, rng: random.Random) -> None:
    """Sender thread: n messages, alternating addresses, random gaps (real waits: this is a benchmark)."""
    from pythonosc.udp_client import SimpleUDPClient

    client = SimpleUDPClient("127.0.0.1", port)
    pause = threading.Event()
    last = {BRIGHTNESS: -1.0, LATENT: 99.0}
    for i in range(n):
        pause.wait(rng.uniform(*GAP_S))
        address = BRIGHTNESS if i % 2 == 0 else LATENT
        lo, hi = (0.2, 1.0) if address == BRIGHTNESS else (-2.0, 2.0)
        value = float(np.float32(rng.uniform(lo, hi)))
        while abs(value - last[address]) < 1e-3:  # unique per address, so frames identify it
            value = float(np.float32(rng.uniform(lo, hi)))
        last[address] = value
        sent_at = time.perf_counter()
        client.send_message(address, value)
        trace.sent.append((address, value, sent_at))
    trace.done_at = time.perf_counter()


def _instrument(show: Show, trace: Trace) -> None:
    """A frame hook (first in line, right after present) recording the values each frame used."""

    def hook(s: Show) -> None:
        now = time.perf_counter()
        trace.frames.append((now, s.registry.get(BRIGHTNESS), float(s.deck.offsets[0])))
        if trace.done_at is not None and now - trace.done_at > SETTLE_S:
            s.stop()

    show.frame_hooks.insert(0, hook)


def latencies(trace: Trace) -> dict[str, list[float]]:
    """Per address: ms from each send to the first present after it that used its value
    (within MATCH_WINDOW_S; a message never shown is left out, so n < sent)."""
    out: dict[str, list[float]] = {BRIGHTNESS: [], LATENT: []}
    times = np.array([f[0] for f in trace.frames])
    used = {
        BRIGHTNESS: np.array([f[1] for f in trace.frames], np.float32),
        LATENT: np.array([f[2] for f in trace.frames], np.float32),
    }
    for address, value, sent_at in trace.sent:
        start = int(np.searchsorted(times, sent_at, side="right"))
        stop = int(np.searchsorted(times, sent_at + MATCH_WINDOW_S, side="right"))
        hits = np.nonzero(np.abs(used[address][start:stop] - value) <= VALUE_TOLERANCE)[0]
        if hits.size:
            out[address].append((times[start + hits[0]] - sent_at) * 1000.0)
    return out


def _summary(lat: dict[str, list[float]], sent: int) -> dict[str, Any]:
    both = lat[BRIGHTNESS] + lat[LATENT]

    def pct(xs: list[float], q: float) -> float | None:
        return round(float(np.percentile(xs, q)), 3) if xs else None

    return {
        "n": len(both),
        "sent": sent,
        "p50_ms": pct(both, 50),
        "p99_ms": pct(both, 99),
        "max_ms": round(float(max(both)), 3) if both else None,
        "post_model_p99_ms": pct(lat[BRIGHTNESS], 99),
        "model_input_p99_ms": pct(lat[LATENT], 99),
        "post_model_n": len(lat[BRIGHTNESS]),
        "model_input_n": len(lat[LATENT]),
    }


def _measure(
    scene_path: Path,
    device: torch.device,
    fps: float,
    start_control: Callable[[Show], Any],
    send: Callable[[Any, Trace], None],
) -> dict[str, Any]:
    """A headless paced show with one control module; `send` runs on its own thread and
    fills trace.sent; the show stops SETTLE_S after the last send."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from engine.stage.live import _warm_up

    scenes = load_scenes([load_scene(scene_path)], device)
    timed = TimedModel(scenes[0].generator, device)
    scenes[0].generator = timed
    output = headless_window(scenes[0].size, "bench --control")
    stats = FrameStats(fps)
    show = build_show(StageConfig(device=str(device)), LiveClock(), output, scenes, pacer=Pacer(fps), stats=stats)
    show.registry.param(LATENT).smoothing = 0.0  # see the module docstring
    trace = Trace()
    _instrument(show, trace)
    control = None
    try:
        control = start_control(show)
        sender = threading.Thread(target=send, args=(control, trace), name="bench-sender", daemon=True)
        _warm_up(show)
        show.run(frames=30)  # the window, the pacer's grid and the work estimates settle first
        timed.times.clear()
        sender.start()
        show.run(seconds=show.t + 120.0)  # the hook stops it SETTLE_S after the last send
        sender.join(timeout=5.0)
    finally:
        if control is not None:
            control.close()
        output.close()
    result = _summary(latencies(trace), len(trace.sent))
    result["control"] = control.stats() if control is not None else {}
    fwd = np.asarray(timed.times or [0.0]) * 1000.0
    summary = stats.summary()
    result.update(
        forward_ms=round(float(np.median(fwd)), 3),
        forward_p99_ms=round(float(np.percentile(fwd, 99)), 3),
        fps=summary["fps"],
        frame_p99_ms=summary["frame_ms"]["p99"],
        frame_errors=show.frame_errors,
        leads_ms=show.leads_ms(),
    )
    return result


def bench_osc(
    scene_path: Path, device: torch.device, messages: int = 600, fps: float = 60.0, seed: int = 0
) -> dict[str, Any]:
    """Send-to-present latency of OSC over UDP loopback, through the real OSC control module."""
    from engine.control import osc

    def start_control(show: Show) -> Any:
        return osc.start(ShowConfig(osc_port=free_udp_port(), oscquery_port=0), show)

    def send(control: Any, trace: Trace) -> None:
        _send_osc(control.port, messages, trace, random.Random(seed))

    return _measure(scene_path, device, fps, start_control, send)


def midi_unavailable_reason() -> str | None:
    """Why the MIDI part cannot run here (None when it can)."""
    import importlib.util

    if importlib.util.find_spec("engine.control.midi") is None:
        return "no MIDI control module (engine/control/midi.py)"
    from engine.bench.jackserver import missing_tools

    missing = missing_tools()
    if missing:
        return f"no JACK server here ({', '.join(missing)} not installed)"
    if importlib.util.find_spec("mido") is None or importlib.util.find_spec("rtmidi") is None:
        return "mido or python-rtmidi is not installed"
    return None


def bench_control(
    scene_path: Path, device: torch.device, messages: int = 600, fps: float = 60.0, midi: bool = True
) -> dict[str, Any]:
    osc_result = bench_osc(scene_path, device, messages, fps)
    reason = midi_unavailable_reason() if midi else "not asked for"
    midi_result = None
    if reason is None:
        from engine.bench.midi import bench_midi

        midi_result, reason = bench_midi(scene_path, device, messages, fps, _measure)
    if reason:
        log.info("bench --control: MIDI skipped: %s", reason)
    return {
        "osc": osc_result,
        "midi": midi_result,
        "midi_skipped": reason,
        "targets": {
            "fps": fps,
            "post_model_p99_ms": POST_TARGET_MS,
            "model_input_p99_ms": round(POST_TARGET_MS + osc_result["forward_ms"], 3),
        },
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def format_result(res: dict[str, Any]) -> str:
    t = res["targets"]
    lines = []
    for name in ("osc", "midi"):
        o = res[name]
        if o is None:
            lines.append(f"{name.upper()}: skipped: {res['midi_skipped']}")
            continue
        lines += [
            f"{name.upper()} -> present, {o['n']} of {o['sent']} messages at {o['fps']:.1f} fps: "
            f"p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms, max {o['max_ms']} ms",
            f"  post-model (/master/brightness) p99 {o['post_model_p99_ms']} ms (target <= {t['post_model_p99_ms']})",
            f"  model input (/deck/a/latent/1)  p99 {o['model_input_p99_ms']} ms (target <= "
            f"{POST_TARGET_MS} + forward {o['forward_ms']} ms = {round(POST_TARGET_MS + o['forward_ms'], 3)}; "
            f"forward p99 in this run {o['forward_p99_ms']} ms)",
        ]
    return "\n".join(lines)
