"""`bench --link SECONDS`: how closely the show's beat follows a real Ableton Link session.

A second process runs a Link peer (aalink) at 100 BPM and prints its beat and
tempo every 20 ms with its perf_counter time (the same monotonic clock in both
processes). The show joins with the real LinkControl (headless, paced to
60 fps). After every present, the show's beat is compared with the session's
beat at that moment (extrapolated from the peer's last sample); the error is
reported in beats, wrapped to the quantum of one beat. Halfway through, the
peer changes the session to 132 BPM, as another app would; the report says
whether the show followed and whether the session's tempo ever moved in any
other way (joining must never change it).

Needs the optional aalink package (`pip install .[link]`).
"""

from __future__ import annotations

import bisect
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

SESSION_BPM = 100.0
CHANGED_BPM = 132.0
SETTLE_S = 1.5  # seconds after joining before errors count (the lock converges in ~0.3 s)
JOIN_TIMEOUT_S = 10.0  # seconds to wait for the session
LINK_SESSION_EPS_S = 0.5  # Link's SESSION_EPS: sessions founded closer together are ordered by id, not age
BPM_TOLERANCE = 0.01  # Link stores tempo as microseconds per beat: 132 reads back as 132.000132

# The peer: a Link session at argv[1] BPM. Prints "perf_counter beat tempo peers" every
# 20 ms; a line "tempo X" on stdin sets the session's tempo.
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
        sys.stdout.write(f"{time.perf_counter()} {link.beat} {link.tempo} {link.num_peers}\n")
        sys.stdout.flush()
        await asyncio.sleep(0.02)

asyncio.run(main())
"""


class LinkPeer:
    """A Link session in another process, and what it printed: (perf_counter s, beat, bpm, peers)."""

    def __init__(self, bpm: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PEER, str(bpm)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.rows: list[tuple[float, float, float, int]] = []
        self.times: list[float] = []  # rows' perf_counter times, for bisect (append-only, like rows)
        self._reader = threading.Thread(target=self._read, name="link-peer", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t, beat, bpm, peers = line.split()
            self.rows.append((float(t), float(beat), float(bpm), int(peers)))
            self.times.append(float(t))  # after its row: an index found in times has a row

    def wait_running(self, timeout: float = 10.0) -> None:
        """Until the peer's session runs and is clearly the older one.

        Link keeps the older of two sessions that meet, but only when they were founded
        more than LINK_SESSION_EPS_S apart; closer than that, the one with the lower
        random session id wins, and a show that won would impose its own tempo. The
        show's session is founded when its Link is enabled; waiting twice that margin
        after the peer's first line keeps the peer's session the older one whatever the
        show's own delay before enabling (LinkControl's, today 0.5 s).
        """
        end = time.perf_counter() + timeout
        while not self.rows:
            if time.perf_counter() > end or self.proc.poll() is not None:
                raise RuntimeError("the Link peer process did not start (is aalink installed?)")
            time.sleep(0.01)  # polling another process's start-up, not pacing anything
        time.sleep(2 * LINK_SESSION_EPS_S)  # the peer made its Link before its first line

    def set_tempo(self, bpm: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"tempo {bpm}\n")
        self.proc.stdin.flush()

    def beat_at(self, t: float) -> float:
        """The session's beat at perf_counter time t, from the peer's last sample before t
        (runs in a frame hook of the measured show: no copies, a bisect)."""
        t0, beat, bpm, _ = self.rows[max(0, bisect.bisect_left(self.times, t) - 1)]
        return beat + (t - t0) * bpm / 60.0

    def tempos(self) -> list[float]:
        return [r[2] for r in self.rows]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)


def phase_error(show_beat: float, session_beat: float) -> float:
    """show - session in beats, wrapped to [-0.5, 0.5) (Link aligns phase within a 1-beat quantum)."""
    return (show_beat - session_beat + 0.5) % 1.0 - 0.5


def session_tempo_moved_otherwise(tempos: list[float]) -> bool:
    """True if the session's tempo ever left SESSION_BPM for anything but CHANGED_BPM (or came back)."""
    changed = False
    for bpm in tempos:
        if abs(bpm - CHANGED_BPM) <= BPM_TOLERANCE:
            changed = True
        elif abs(bpm - SESSION_BPM) > BPM_TOLERANCE or changed:
            return True
    return False


def bench_link(scene_path: Path, device: torch.device, seconds: float, fps: float = 60.0) -> dict[str, Any]:
    """Join a peer's session with a headless paced show for `seconds`; phase errors per present."""
    import aalink

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from engine.bench.window import headless_window
    from engine.config import StageConfig
    from engine.control.tempo_sync import LinkControl
    from engine.core.clock import LiveClock, Pacer
    from engine.core.stats import FrameStats
    from engine.files.scene import load_scene
    from engine.stage.build import build_show
    from engine.stage.deck import load_scenes
    from engine.stage.show import Show

    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    peer = LinkPeer(SESSION_BPM)
    try:
        peer.wait_running()
    except RuntimeError:
        peer.close()
        raise
    scenes = load_scenes([load_scene(scene_path)], device)
    output = headless_window(scenes[0].size, "bench --link")
    stats = FrameStats(fps)
    show = build_show(
        StageConfig(device=str(device), tempo_source="link"), LiveClock(), output, scenes, pacer=Pacer(fps), stats=stats
    )
    errors: dict[str, list[float]] = {"before": [], "after": []}
    state = {"phase": "join", "joined_at": None, "changed_at": None, "followed_s": None, "show_peers": 0}

    def hook(s: Show) -> None:
        now = time.perf_counter()
        state["show_peers"] = max(state["show_peers"], control.peers)
        if state["joined_at"] is None:
            if control.peers >= 1 and abs(s.tempo.bpm - SESSION_BPM) <= BPM_TOLERANCE and peer.rows:
                state["joined_at"] = now
            return
        if state["changed_at"] is not None and state["followed_s"] is None:
            if abs(s.tempo.bpm - CHANGED_BPM) <= BPM_TOLERANCE:
                state["followed_s"] = now - state["changed_at"]
        since = now - (state["changed_at"] or state["joined_at"])
        if since >= SETTLE_S:
            errors["after" if state["changed_at"] else "before"].append(phase_error(s.tempo.beat, peer.beat_at(now)))
        if since >= SETTLE_S + seconds / 2:
            s.stop()

    show.frame_hooks.insert(0, hook)
    control = LinkControl(show, aalink)
    try:
        show.run(seconds=JOIN_TIMEOUT_S + SETTLE_S + seconds / 2)
        if state["joined_at"] is not None:
            peer.set_tempo(CHANGED_BPM)
            state["changed_at"] = time.perf_counter()
            show.running = True
            show.run(seconds=show.t + JOIN_TIMEOUT_S + SETTLE_S + seconds / 2)
    finally:
        control.close()
        output.close()
        peer.close()
    both = errors["before"] + errors["after"]
    peers_seen = max((r[3] for r in peer.rows), default=0)
    result: dict[str, Any] = {
        "joined": state["joined_at"] is not None,
        "frames_measured": len(both),
        "session_bpm": SESSION_BPM,
        "changed_to_bpm": CHANGED_BPM,
        "followed_change_s": None if state["followed_s"] is None else round(state["followed_s"], 3),
        "session_tempo_moved_otherwise": session_tempo_moved_otherwise(peer.tempos()),
        "session_tempos": sorted({round(b, 3) for b in peer.tempos()}),  # BPM values the peer ever had
        "peers_seen": peers_seen,
        # Link finds peers on every network interface: any other Link app (another run of this
        # bench or its test on the same machine, a DAW on the LAN) can win the show or the peer
        # over to its own session, with its own tempo and phase. Then the figures are not the
        # show's alone. Each of the two should only ever see the other.
        "other_peers": max(
            0, peers_seen - 1, state["show_peers"] - 1, int(state["show_peers"] > 0 and peers_seen == 0)
        ),  # the show was in another session
        "fps": stats.summary()["fps"],
    }
    for name, errs in (("phase", both), ("phase_100bpm", errors["before"]), ("phase_132bpm", errors["after"])):
        e = np.asarray(errs or [np.nan])
        result[name] = {
            "mean_beats": round(float(np.mean(e)), 4),
            "p95_abs_beats": round(float(np.percentile(np.abs(e), 95)), 4),
            "max_abs_beats": round(float(np.max(np.abs(e))), 4),
        }
    return result


def format_link(res: dict[str, Any]) -> str:
    other = (
        (
            f"\n  {res['other_peers']} other Link peer(s) on this network joined the session: these figures "
            "are not the show's alone; run it again where no other Link app runs"
        )
        if res.get("other_peers")
        else ""
    )
    if not res["joined"]:
        return f"Link: the show did not join the peer's session within {JOIN_TIMEOUT_S:.0f} s" + other
    p = res["phase"]
    ms = 60_000.0 / res["session_bpm"]  # ms per beat at the session's first tempo
    lines = [
        f"Link: joined a {res['session_bpm']:.0f} BPM session; {res['frames_measured']} presented frames "
        f"at {res['fps']:.1f} fps",
        f"  beat phase error: mean {p['mean_beats']:+.4f} beat, p95 |e| {p['p95_abs_beats']:.4f}, "
        f"max {p['max_abs_beats']:.4f} (1 beat = {ms:.0f} ms at {res['session_bpm']:.0f} BPM)",
        f"  at 100 BPM: mean {res['phase_100bpm']['mean_beats']:+.4f}; after the change to "
        f"{res['changed_to_bpm']:.0f} BPM: mean {res['phase_132bpm']['mean_beats']:+.4f}",
        f"  followed the session's change in {res['followed_change_s']} s; session tempo moved otherwise: "
        f"{res['session_tempo_moved_otherwise']}",
    ]
    return "\n".join(lines) + other
