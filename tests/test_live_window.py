"""The live show end to end: the real CLI in a subprocess, drawing into a real
X window under Xvfb, looked at with xwd, steered with signals and keys (xdotool).

Every test starts `run_show.py show` with DISPLAY pointing at a private Xvfb
whose only screen is exactly the window's size, so the root-window screenshot
is the window (no window manager: SDL's centred window lands at 0,0).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.xvfb import screenshot, xvfb  # noqa: F401  (xvfb is a fixture)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
WINDOW = "320x240"
SCREENS = [["320x240x24"]]  # one screen, the window's size
PICTURE = slice(40, 280)  # --aspect fit: the 240x240 picture centred in 320x240
STATS_LINE = re.compile(
    r"^\d+ frames in [\d.]+ s: [\d.]+ fps; frame ms p50 [\d.]+ p95 [\d.]+ p99 [\d.]+ max [\d.]+; late frames \d+$", re.M
)
STARTUP_S = 60.0  # python + torch import + model load + window, on a loaded 2-core machine


@pytest.fixture
def fast_scene(scene_file) -> Path:
    """A tiny model on a keyframe loop fast enough to change visibly within a second."""
    return scene_file('name = "live test"\n[path]\nseconds_per_key = 0.3\n')


@pytest.fixture
def xdotool() -> str:
    path = shutil.which("xdotool")
    if path is None:
        pytest.skip("xdotool not installed (apt-get install xdotool): cannot press keys in the window")
    return path


def _env(display: str) -> dict[str, str]:
    """The test environment with a real display: conftest's SDL_VIDEODRIVER=dummy removed."""
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = display
    return env


class Show:
    """`run_show.py show ...` in a subprocess; stdout/stderr go to files (no pipe to fill)."""

    def __init__(self, display: str, tmp_path: Path, *args: str) -> None:
        self.display = display
        self.env = _env(display)
        self._out = (tmp_path / "show.out").open("w+")
        self._err = (tmp_path / "show.err").open("w+")
        self.proc = subprocess.Popen(  # no OSC: its default ports may be taken on this machine
            [sys.executable, "run_show.py", "show", "--osc-port", "0", "--oscquery-port", "0", *args],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            text=True,
        )

    def output(self) -> tuple[str, str]:
        self._out.seek(0)
        self._err.seek(0)
        return self._out.read(), self._err.read()

    def describe(self) -> str:
        out, err = self.output()
        return f"exit status {self.proc.poll()}\n--- stdout\n{out}--- stderr\n{err}"

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"show still running after {timeout} s\n{self.describe()}")

    def wait_for_picture(self, timeout: float = STARTUP_S) -> np.ndarray:
        """Poll screenshots until the window shows something; return that screenshot."""
        deadline = time.monotonic() + timeout
        while True:
            shot = screenshot(self.display)
            if shot.max() > 0:
                return shot
            if self.proc.poll() is not None:
                pytest.fail(f"show ended before drawing anything\n{self.describe()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no picture after {timeout} s\n{self.describe()}")
            time.sleep(0.1)

    def key(self, name: str) -> None:
        """Press a key in the show's window (XTEST, i.e. as if typed)."""
        subprocess.run(["xdotool", "key", name], env=self.env, check=True, timeout=20)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self._out.close()
        self._err.close()


@pytest.fixture
def start_show(tmp_path: Path):
    shows: list[Show] = []

    def start(display: str, *args: str) -> Show:
        show = Show(display, tmp_path, *args)
        shows.append(show)
        return show

    yield start
    for show in shows:
        show.close()


def _check_stats(path: Path) -> dict:
    stats = json.loads(path.read_text())
    assert {"frames", "seconds", "fps", "frame_ms", "late_frames"} <= set(stats), stats
    assert set(stats["frame_ms"]) == {"p50", "p95", "p99", "max"}, stats
    assert isinstance(stats["frames"], int) and stats["frames"] > 0, stats
    assert isinstance(stats["late_frames"], int) and 0 <= stats["late_frames"] <= stats["frames"], stats
    f = stats["frame_ms"]
    assert 0 < f["p50"] <= f["p95"] <= f["p99"] <= f["max"], stats
    return stats


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("xvfb", SCREENS, indirect=True, ids=[WINDOW])
def test_show_draws_moving_pictures_in_a_window(xvfb: str, start_show, fast_scene: Path, tmp_path: Path) -> None:
    stats_file = tmp_path / "s.json"
    show = start_show(xvfb, "--scene", str(fast_scene), "--seconds", "6", "--size", WINDOW, "--stats", str(stats_file))
    show.wait_for_picture()
    first = screenshot(xvfb)
    time.sleep(1.0)
    second = screenshot(xvfb)

    assert first.shape == (240, 320, 3)
    for shot in (first, second):
        picture = shot[:, PICTURE]
        assert picture.mean() > 10, f"picture area is (nearly) black: mean {picture.mean():.1f}"
        # Letterbox bars left and right of the square picture are black ...
        assert shot[:, : PICTURE.start].max() == 0, "left bar is not black"
        assert shot[:, PICTURE.stop :].max() == 0, "right bar is not black"
        # ... and the picture fills exactly its 240x240 square.
        cols = np.flatnonzero(shot.max(axis=(0, 2)))
        rows = np.flatnonzero(shot.max(axis=(1, 2)))
        assert (cols[0], cols[-1], rows[0], rows[-1]) == (40, 279, 0, 239)
    change = np.abs(first.astype(np.int16) - second.astype(np.int16)).mean()
    assert change > 2.0, f"the picture did not move in 1 s (mean abs change {change:.2f})"

    assert show.wait(timeout=30) == 0, show.describe()
    out, _ = show.output()
    assert STATS_LINE.search(out), out
    stats = _check_stats(stats_file)
    print(
        f"\nXvfb {WINDOW}: {stats['fps']} fps over {stats['seconds']} s, {stats['frames']} frames, "
        f"frame ms {stats['frame_ms']}, late {stats['late_frames']}"
    )
    assert 5.5 <= stats["seconds"] <= 7.0, stats
    assert 50.0 <= stats["fps"] <= 75.0, stats
    assert stats["frames"] >= 50 * 5, stats


@pytest.mark.parametrize("xvfb", SCREENS, indirect=True, ids=[WINDOW])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_ends_the_show_cleanly(
    xvfb: str, sig: signal.Signals, start_show, fast_scene: Path, tmp_path: Path
) -> None:
    stats_file = tmp_path / "s.json"
    show = start_show(xvfb, "--scene", str(fast_scene), "--size", WINDOW, "--stats", str(stats_file))
    show.wait_for_picture()
    time.sleep(1.5)  # past the stats' 1 s warm-up, so there are frame intervals to report
    assert show.proc.poll() is None, show.describe()
    sent = time.monotonic()
    show.proc.send_signal(sig)
    assert show.wait(timeout=5) == 0, show.describe()
    print(f"\n{sig.name}: exited {time.monotonic() - sent:.2f} s after the signal")
    out, err = show.output()
    assert STATS_LINE.search(out), show.describe()
    assert f"stats written to {stats_file}" in out, show.describe()
    assert sig.name in err, err  # "SIGTERM received: ending the show"
    stats = _check_stats(stats_file)
    assert stats["seconds"] >= 1.0, stats


@pytest.mark.parametrize("xvfb", SCREENS, indirect=True, ids=[WINDOW])
def test_display_out_of_range_is_one_error_line(xvfb: str, start_show, fast_scene: Path) -> None:
    show = start_show(xvfb, "--scene", str(fast_scene), "--display", "7")
    assert show.wait(timeout=STARTUP_S) == 2, show.describe()
    _, err = show.output()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert "--display 7" in errors[0] and "1 display" in errors[0], errors
    assert err.splitlines()[-1] == errors[0], err  # nothing (no traceback) after it
    assert "Traceback" not in err, err


@pytest.mark.parametrize("xvfb", SCREENS, indirect=True, ids=[WINDOW])
def test_keys_blackout_then_escape(xdotool: str, xvfb: str, start_show, fast_scene: Path) -> None:
    show = start_show(xvfb, "--scene", str(fast_scene), "--size", WINDOW)
    show.wait_for_picture()
    show.key("b")  # blackout, fading over /master/blackout_fade = 0.5 s
    pressed = time.monotonic()
    deadline = pressed + 10.0
    while (level := screenshot(xvfb).max()) > 0:
        assert show.proc.poll() is None, show.describe()
        assert time.monotonic() < deadline, f"window not black 10 s after 'b' (max {level})\n{show.describe()}"
        time.sleep(0.1)
    fade = time.monotonic() - pressed
    print(f"\nblack {fade:.2f} s after 'b'")
    assert fade >= 0.3, f"black {fade:.2f} s after 'b': expected a fade of 0.5 s, not a cut"
    time.sleep(0.5)
    assert screenshot(xvfb).max() == 0, "blackout did not hold"
    assert show.proc.poll() is None, show.describe()

    show.key("Escape")
    assert show.wait(timeout=10) == 0, show.describe()
    out, _ = show.output()
    assert STATS_LINE.search(out), show.describe()
