"""A real headless show with two decks, driven over UDP OSC, recorded and re-rendered."""

import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from engine.core.eventlog import load_event_log
from tests.conftest import REPO, start_show, two_scene_files

pytestmark = pytest.mark.integration


def test_an_osc_fade_over_2_s_is_recorded_and_renders_monotone(tmp_path):
    from pythonosc.udp_client import SimpleUDPClient

    from engine.bench.ports import free_udp_port

    a, b = two_scene_files(tmp_path, speed=0.0)
    port = free_udp_port()
    log_path = tmp_path / "set.jsonl"
    command = [sys.executable, str(REPO / "run_show.py"), *"show --headless --fps 30 --seconds 4.5 --threads 1".split()]
    command += ["--scene", str(a), "--scene", str(b), "--osc-port", str(port), "--oscquery-port", "0", "--no-audio"]
    command += ["--record-events", str(log_path), "--set", "/mixer/fade_time=2", "--presets", str(tmp_path / "p")]
    proc, lines = start_show(command)
    try:
        threading.Event().wait(1.0)  # a second of deck a alone (the show runs in real time)
        SimpleUDPClient("127.0.0.1", port).send_message("/mixer/fade", 1)
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        proc.kill()
    log = load_event_log(log_path)
    fade = [f for (f, _), evs in log.events.items() for e in evs if e.address == "/mixer/fade"]
    assert len(fade) == 1 and log.end_frame is not None
    out = tmp_path / "r"
    render = [sys.executable, str(REPO / "run_show.py"), "-q", "render", "--events", str(log_path), "--out", f"{out}/"]
    r = subprocess.run(render, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    frames = [np.asarray(Image.open(p)).astype(int) for p in sorted(out.glob("*.png"))]
    start = fade[0]
    first, last = frames[start - 1], frames[-1]
    to_a = [float(np.abs(f - first).mean()) for f in frames[start - 1 :]]
    to_b = [float(np.abs(f - last).mean()) for f in frames[start - 1 :]]
    assert to_a[0] == 0.0 and to_b[-1] == 0.0 and to_b[0] > 10.0  # from deck a's picture to deck b's
    assert all(y >= x - 0.01 for x, y in zip(to_a, to_a[1:]))  # monotone away from a ...
    assert all(y <= x + 0.01 for x, y in zip(to_b, to_b[1:]))  # ... and towards b
    reached = next(i for i, d in enumerate(to_b) if d == 0.0)
    assert 59 <= reached <= 62  # 2 s at 30 fps
