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

from tests.conftest import REPO

pytestmark = pytest.mark.integration

MINUTES = float(os.environ.get("LATENT_STAGE_SOAK_MINUTES", "10"))
# Resident memory may grow at most this fast over the last two thirds of the run. The hour's
# bar is 1 MB/h over 40 minutes; over 6.7 minutes 14 samples of a few hundred kB of allocator
# noise can read as several MB/h, so the bound here is 20 MB/h: it still catches the leak the
# issue measured (0.7 MB a minute = 42 MB/h) and anything like it.
MAX_SLOPE_MB_PER_HOUR = 20.0


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
    assert show["frame_errors"] == 0 and show["hook_errors"] == 0 and show["fps"] > 55.0
