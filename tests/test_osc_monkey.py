"""Every OSC address with random and extreme values against the real show (CLI, shipped scenes).

The flood test and bench hammer a few addresses; this one walks the whole
address space (every param and verb of `run_show.py params`, wildcards of
them) with values of every OSC type, in range and far outside it (NaN, inf,
2**63, -0.0, 255-character strings, unknown scene names), while the show
plays the GAN, melody and text scenes and switches between them. The show
must finish on its own with no frame or hook error, and count what it could
not use.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from engine.bench.flood import wait_for_pong
from engine.bench.ports import free_udp_port
from engine.core.space import build_space, params_json

pytestmark = pytest.mark.integration  # the CLI show in a subprocess, real UDP

REPO = Path(__file__).resolve().parents[1]
SCENES = ["scenes/verse.toml", "scenes/default.toml", "scenes/deepfield_walk.toml"]
SEND_SECONDS, RATE = 6.0, 800.0  # messages per second
STRINGS = [
    "?",
    "",
    "1",
    "2",
    "99",
    "-3",
    "0",
    "Verse",
    "nope",
    "\u00b2",
    "x" * 255,
    "/master/brightness",
    "\u00e9\u2603\n\t",
    "/deck/a/latent/*",
]
SPECIAL = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e-45, 3.4e38, -3.4e38]


def random_arg(rng: random.Random) -> tuple[str | None, Any]:
    """(OSC type tag, value); (None, None) for a message with no argument."""
    r = rng.random()
    if r < 0.30:
        return "f", rng.uniform(-2.0, 2.0) * rng.choice([1.0, 10.0, 1e6])
    if r < 0.45:
        return "f", rng.choice(SPECIAL)
    if r < 0.58:
        return "i", rng.choice([0, 1, -1, 2**31 - 1, -(2**31), rng.randint(-1000, 1000)])
    if r < 0.70:
        return "s", rng.choice(STRINGS)
    if r < 0.80:
        return "T" if rng.random() < 0.5 else "F", None
    if r < 0.88:
        return "d", rng.uniform(-10.0, 10.0)
    if r < 0.94:
        return "h", rng.randint(-(2**63), 2**63 - 1)
    return None, None


def message(rng: random.Random, addresses: list[str]) -> bytes:
    address = rng.choice(addresses)
    if rng.random() < 0.1:  # a wildcard over the address's siblings
        address = address.rsplit("/", 1)[0] + "/*"
    builder = OscMessageBuilder(address)
    tag, value = random_arg(rng)
    if tag in ("T", "F"):
        builder.add_arg(tag == "T")
    elif tag is not None:
        builder.add_arg(value, tag)
    return builder.build().dgram


def test_every_address_with_random_values_never_breaks_the_show(tmp_path: Path) -> None:
    addresses = [p["address"] for p in params_json(build_space())]  # params, then every OSC verb
    port, stats_file = free_udp_port(), tmp_path / "stats.json"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    err = (tmp_path / "show.err").open("w+")
    scenes = [arg for scene in SCENES for arg in ("--scene", scene)]
    # OSC on a free port only, and --no-audio: no sound into this machine's speakers.
    command = [sys.executable, "run_show.py", "show", *scenes]
    command += "--headless --seconds 60 --oscquery-port 0 --no-audio".split()
    command += ["--osc-port", str(port), "--stats", str(stats_file), "--learn-save", str(tmp_path / "learned.toml")]
    command += ["--presets", str(tmp_path / "presets")]  # /preset/save with random names writes there
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    rng = random.Random(7)
    sent = 0
    try:
        assert wait_for_pong(port, 90.0, proc), "the show did not answer /ping"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            end = time.perf_counter() + SEND_SECONDS
            while time.perf_counter() < end:
                sock.sendto(message(rng, addresses), ("127.0.0.1", port))
                sent += 1
                time.sleep(1.0 / RATE)
        time.sleep(0.5)  # the last messages reach a frame
        assert proc.poll() is None, "the show stopped under the messages"
    finally:
        proc.terminate()  # SIGTERM: the show ends cleanly and writes its stats
        code = proc.wait(timeout=30)
        err.seek(0)
        log = err.read()
        err.close()
    assert code == 0, log[-3000:]
    stats = json.loads(stats_file.read_text())
    print(json.dumps({"sent": sent, "fps": stats["fps"], "osc": stats["osc"], "seq": stats.get("seq")}))
    assert stats["frame_errors"] == 0 and stats["hook_errors"] == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    osc = stats["osc"]
    assert osc["received"] >= 0.95 * sent
    assert osc["malformed"] > 0 and osc["unknown"] > 0  # wrong types and sibling wildcards that match nothing
