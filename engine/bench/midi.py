"""The MIDI half of `bench --control`: CC messages through a JACK dummy server.

Starts its own JACK server (dummy driver, no hardware, a unique server name so
parallel runs never meet), opens a virtual JACK MIDI output port with mido's
rtmidi backend, and starts the real MIDI control module with a small patch
that maps CC 20 to /master/brightness and CC 21 to /deck/a/latent/1. The
show and the measurement are `bench_control._measure`'s; only the sender
differs. Any setup failure skips MIDI with a reason instead of failing OSC.
"""

from __future__ import annotations

import logging
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.bench.jackserver import dummy_server
from engine.bench.latency import BRIGHTNESS, GAP_S, LATENT, Trace
from engine.config import ShowConfig

log = logging.getLogger(__name__)

# Frames per JACK period at 48 kHz: MIDI is delivered every 5.3 ms. At 128 (2.7 ms) about 1%
# of the CCs never reached the show's input callback on the 2-core machine (lost in JACK).
JACK_PERIOD = 256
PORT_NAME = "latent-stage-bench"
CONNECT_TIMEOUT_S = 10.0
ROUTES = {BRIGHTNESS: (20, 0.0, 1.0), LATENT: (21, -2.0, 2.0)}  # address -> (CC, range low, range high)
PATCH = """name = "bench --control"
[midi]
channel = 1
[[route]]
source = {{ type = "midi", cc = {bc} }}
address = "{ba}"
range = [{blo}, {bhi}]
[[route]]
source = {{ type = "midi", cc = {lc} }}
address = "{la}"
range = [{llo}, {lhi}]
"""


def _expected(address: str, cc_value: int) -> float:
    """The param value a route with a linear range gives for a 7-bit CC value."""
    _cc, lo, hi = ROUTES[address]
    return lo + cc_value / 127.0 * (hi - lo)


def _wait_connected(port: Any, trace: Trace) -> bool:
    """Probe with CC 20 until a presented frame shows it (the show opens ports by polling)."""
    import mido

    pause = threading.Event()
    deadline = time.perf_counter() + CONNECT_TIMEOUT_S
    probe = 1
    while time.perf_counter() < deadline:
        probe = probe % 100 + 1
        port.send(mido.Message("control_change", channel=0, control=ROUTES[BRIGHTNESS][0], value=probe))
        pause.wait(0.1)
        if trace.frames and abs(trace.frames[-1][1] - _expected(BRIGHTNESS, probe)) < 1e-5:
            return True
    return False


def _send_midi(port: Any, messages: int, trace: Trace, rng: random.Random) -> None:
    import mido

    if not _wait_connected(port, trace):
        trace.done_at = time.perf_counter()
        return
    pause = threading.Event()
    last = {BRIGHTNESS: -1, LATENT: -1}
    for i in range(messages):
        pause.wait(rng.uniform(*GAP_S))
        address = BRIGHTNESS if i % 2 == 0 else LATENT
        value = rng.randrange(128)
        while value == last[address]:
            value = rng.randrange(128)
        last[address] = value
        msg = mido.Message("control_change", channel=0, control=ROUTES[address][0], value=value)
        sent_at = time.perf_counter()
        port.send(msg)
        trace.sent.append((address, _expected(address, value), sent_at))
    trace.done_at = time.perf_counter()


def bench_midi(
    scene_path: Path, device: torch.device, messages: int, fps: float, measure: Callable[..., dict[str, Any]]
) -> tuple[dict[str, Any] | None, str | None]:
    """(result, None), or (None, why MIDI could not be measured here)."""
    import mido

    from engine.control import midi

    try:
        with dummy_server(period=JACK_PERIOD), tempfile.TemporaryDirectory() as tmp:
            patch = Path(tmp) / "bench.toml"
            (b_cc, b_lo, b_hi), (l_cc, l_lo, l_hi) = ROUTES[BRIGHTNESS], ROUTES[LATENT]
            patch.write_text(
                PATCH.format(bc=b_cc, ba=BRIGHTNESS, blo=b_lo, bhi=b_hi, lc=l_cc, la=LATENT, llo=l_lo, lhi=l_hi)
            )
            port = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output(PORT_NAME, virtual=True)
            config = ShowConfig(
                midi_api="jack", midi_in=(PORT_NAME,), patch=(patch,), learn_save=Path(tmp) / "learned.toml"
            )
            try:
                result = measure(
                    scene_path,
                    device,
                    fps,
                    lambda show: midi.start(config, show),
                    lambda _control, trace: _send_midi(port, messages, trace, random.Random(1)),
                )
            finally:
                port.close()
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        return None, f"JACK MIDI setup failed: {e}"
    if result["sent"] == 0:
        return None, f"the show never opened the JACK MIDI port {PORT_NAME!r} within {CONNECT_TIMEOUT_S:g} s"
    result["jack_period_ms"] = round(JACK_PERIOD / 48.0, 3)
    return result, None
