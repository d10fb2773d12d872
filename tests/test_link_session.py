"""Ableton Link against a real session: `bench --link` runs a Link peer (aalink) in
another process on this machine, and a paced headless show joins it with the
real LinkControl.

Checks what a musician relies on: the show follows the session's tempo and
beat phase at every presented frame, a tempo change in the session reaches the
show, and joining never changes the session's tempo (the show starts at 120
BPM, the session runs at 100). Skipped where the optional aalink package
(pip install .[link]) is missing.
"""

from __future__ import annotations

import threading

import pytest
import torch

from engine.bench.link import (
    CHANGED_BPM,
    SESSION_BPM,
    bench_link,
    format_link,
    phase_error,
    session_tempo_moved_otherwise,
)

pytestmark = pytest.mark.integration


ATTEMPTS = 3  # runs while another Link app shares the network, each about 8 s


def test_show_joins_a_running_session_follows_it_and_never_sets_its_tempo(scene_file):
    pytest.importorskip("aalink")
    # Link peers find each other on every interface of the machine: another run of this test
    # (a parallel CI job, another checkout) or any Link app nearby merges into the session,
    # and then the show rightly follows tempos and phases that are not the peer's. Such a run
    # measures nothing of ours: it is run again, and skipped only when it never ran alone.
    for _attempt in range(ATTEMPTS):
        res = bench_link(scene_file(""), torch.device("cpu"), seconds=2.0)
        if not res["other_peers"]:
            break
        threading.Event().wait(5.0)  # the other session's test may be over by then
    else:
        pytest.skip(
            f"another Ableton Link session shared the network in all {ATTEMPTS} runs "
            f"({res['other_peers']} other peer(s)): nothing here to measure the show against alone"
        )
    assert res["joined"], str(res)
    assert res["frames_measured"] > 20  # presented frames compared (about 240 on a quiet machine)
    # 0.03 beat is 18 ms at 100 BPM; the lock measured about 0.007 on the 2-core VM
    for part in ("phase_100bpm", "phase_132bpm"):
        assert abs(res[part]["mean_beats"]) < 0.03 and res[part]["max_abs_beats"] < 0.06, res
    assert res["followed_change_s"] is not None and res["followed_change_s"] < 1.0
    assert res["session_tempo_moved_otherwise"] is False
    assert "followed the session's change" in format_link(res)


def test_phase_error_wraps_to_the_beat_and_session_check():
    assert phase_error(10.02, 3.0) == pytest.approx(0.02)
    assert phase_error(9.98, 3.0) == pytest.approx(-0.02)
    assert phase_error(10.5, 10.0) == pytest.approx(-0.5)
    s, c = SESSION_BPM, CHANGED_BPM
    assert not session_tempo_moved_otherwise([s, s, c + 0.0001, c])
    assert session_tempo_moved_otherwise([s, 120.0, s])  # a newcomer's tempo imposed for a moment
    assert session_tempo_moved_otherwise([s, c, s])
