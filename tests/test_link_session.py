"""Ableton Link against a real session: a second process runs a Link peer (aalink)
on this machine, the show joins it with the real LinkControl.

Checks what a musician relies on: the show follows the session's tempo and
beat phase, a tempo change in the session reaches the show, and joining never
changes the session's tempo (the show starts at 120 BPM, the session at 100).
Skipped where the optional aalink package (pip install .[link]) is missing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from engine.clock import LiveClock
from engine.control import tempo as tempo_control
from engine.deck import load_scenes
from engine.events import EventQueue
from engine.frame import FrameRenderer
from engine.params import build_registry
from engine.scene import load_scene
from engine.show import Show
from engine.tempo import Tempo
from tests.fakes import FakeOutput

aalink = pytest.importorskip("aalink")
pytestmark = pytest.mark.integration

# The peer: a Link session at argv[1] BPM. Prints "perf_counter beat tempo peers" every
# 20 ms; a line "tempo X" on stdin sets the session's tempo (as another app would).
PEER = r"""
import asyncio, sys, threading, time
from aalink import Link

async def main():
    link = Link(float(sys.argv[1]))
    link.enabled = True
    wanted = []
    threading.Thread(target=lambda: [wanted.append(float(l.split()[1])) for l in sys.stdin], daemon=True).start()
    while True:
        if wanted:
            link.tempo = wanted.pop()
        print(time.perf_counter(), link.beat, link.tempo, link.num_peers, flush=True)
        await asyncio.sleep(0.02)

asyncio.run(main())
"""


class Peer:
    """The peer process and what it printed: rows of (perf_counter s, beat, bpm, peers)."""

    def __init__(self, bpm: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", PEER, str(bpm)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.rows: list[tuple[float, float, float, int]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t, beat, bpm, peers = line.split()
            self.rows.append((float(t), float(beat), float(bpm), int(peers)))

    def set_tempo(self, bpm: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"tempo {bpm}\n")
        self.proc.stdin.flush()

    def beat_at(self, t: float) -> float:
        """The session's beat at perf_counter time t: from the peer's last sample before t."""
        rows = np.array([(r[0], r[1], r[2]) for r in self.rows])
        i = max(0, int(np.searchsorted(rows[:, 0], t)) - 1)
        t0, beat, bpm = rows[i]
        return float(beat + (t - t0) * bpm / 60.0)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)


def run_until(show: Show, done, timeout: float) -> bool:
    """Run live frames (about 60 per second) until done() or timeout seconds."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        show.run(frames=1)
        if done():
            return True
        time.sleep(1 / 60)  # pacing a live loop by hand: the test plays the show's part
    return False


def test_show_joins_a_running_session_follows_it_and_never_sets_its_tempo(scene_file):
    peer = Peer(100.0)
    reg = build_registry()
    scenes = load_scenes([load_scene(scene_file(""))], torch.device("cpu"))
    show = Show(scenes, reg, EventQueue(), FrameRenderer(torch.device("cpu")), FakeOutput(), LiveClock(),
                tempo=Tempo(reg, "link"))
    assert show.tempo.bpm == 120.0  # our own tempo before joining
    control = tempo_control.LinkControl(show, aalink)
    try:
        assert run_until(show, lambda: control.peers >= 1 and show.tempo.bpm == pytest.approx(100.0, abs=0.01), 10.0), \
            f"show at {show.tempo.bpm} BPM with {control.peers} Link peer(s)"
        # The beat: same phase as the session (Link aligns phase within its quantum, 1 beat).
        run_until(show, lambda: False, 0.5)
        now = time.perf_counter()
        phase = (show.tempo.beat - peer.beat_at(now)) % 1.0
        assert min(phase, 1.0 - phase) < 0.06, f"beat phase off by {phase:.3f} beat"
        # The session changes tempo: the show follows.
        peer.set_tempo(132.0)
        assert run_until(show, lambda: show.tempo.bpm == pytest.approx(132.0, abs=0.01), 5.0), f"show at {show.tempo.bpm}"
    finally:
        control.close()
        peer.close()
    session = [bpm for _, _, bpm, _ in peer.rows]
    first_change = next(i for i, bpm in enumerate(session) if abs(bpm - 100.0) > 0.01)
    assert session[first_change:] and all(abs(bpm - 132.0) < 0.01 for bpm in session[first_change:]), \
        "the session's tempo moved other than by its own change"
    assert max(peers for *_, peers in peer.rows) >= 1  # the peer saw the show join
