"""The soak benchmark at CI's size: `bench --soak 10` (a real headless show for 10 minutes under
random OSC, a setlist cycling every 20 s, GET /status every 5 s), with bounds in proportion to
its length. The hour-long run and its figures are in docs/BENCHMARKS.md.

LATENT_STAGE_SOAK_MINUTES shortens it for a quick local check (the bounds stay those of 10 min)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.bench.soak import _fps_first_last_third
from tests.conftest import REPO

MINUTES = float(os.environ.get("LATENT_STAGE_SOAK_MINUTES", "10"))
# Resident memory may grow at most this fast over the last two thirds of the run. The hour's
# bar is 1 MB/h over 40 minutes; over 6.7 minutes (40 samples, one every 10 s) the allocator's
# scatter alone gives the fitted slope a standard deviation of about 4 MB/h, so the bound here is
# 20 MB/h: it still catches the leak the issue measured (0.7 MB a minute = 42 MB/h) and anything
# like it. A 6-minute soak was measured and rejected (docs/BENCHMARKS.md, "How long a soak must be").
MAX_SLOPE_MB_PER_HOUR = 20.0
# The soak asks whether the show stays bounded, not how fast this machine is (the frame-time bar is
# `show --headless`'s, docs/BENCHMARKS.md). Here the OSC sender and the poller share CI's 2 cores
# with the show; one CI run reached 54.4 fps overall. So: the last third's frame rate at least 0.9
# of the first third's (a show that slows as it runs fails), and at least 45 fps overall (a
# starved or stalling show fails).
MIN_FPS = 45.0
MIN_LATE_OVER_EARLY_FPS = 0.9


@pytest.mark.integration
def test_a_ten_minute_soak_stays_bounded(tmp_path):
    out = tmp_path / "soak.json"
    command = [sys.executable, str(REPO / "run_show.py"), "bench", "--soak", str(MINUTES), "--json", str(out)]
    r = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=MINUTES * 60 + 300)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["rss_slope_mb_per_hour"] < MAX_SLOPE_MB_PER_HOUR, result["samples"]
    low, high = result["threads"]
    assert high - low <= 2, result["samples"]  # the HTTP server's one thread per request at most
    low, high = result["fds"]
    assert high - low <= 4, result["samples"]  # a sample may meet a request's socket
    status = result["status_ms"]
    assert status["answered"] == status["of"] >= MINUTES * 60 / 5 - 2 and status["max"] < 1000.0
    assert result["ping_ms"]["answered"] == result["ping_ms"]["of"]
    show = result["show"]
    assert show["frame_errors"] == 0 and show["hook_errors"] == 0 and show["fps"] > MIN_FPS, show
    early, late = result["fps_first_last_third"]
    assert late >= MIN_LATE_OVER_EARLY_FPS * early, result["fps_first_last_third"]


def _answer(uptime_s: float, frames: float) -> dict[str, float]:
    return {"ms": 1.0, "uptime_s": uptime_s, "frames": frames}


def test_the_frame_rate_by_third_comes_from_the_shows_own_counts():
    # 60 fps for the first 30 s, then 30 fps; unanswered and unreadable polls are skipped
    answers = [_answer(t, 60.0 * t) for t in range(0, 30, 5)] + [None, _answer(35.0, float("nan"))]
    answers += [_answer(t, 1800.0 + 30.0 * (t - 30)) for t in range(30, 60, 5)]
    early, late = _fps_first_last_third(answers)
    assert early == 60.0 and late == 30.0


def test_the_frame_rate_by_third_is_none_with_too_few_answers():
    assert _fps_first_last_third([None, _answer(0.0, 0.0)]) == [None, None]
