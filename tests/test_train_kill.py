"""`train gan` as a user runs it: a real process, killed with SIGKILL mid-run, resumed.

The data folder also holds a corrupt image and a text file: training goes on
with the rest and the summary counts what was skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.models.checkpoint import load_generator, read_state
from tests.conftest import REPO

pytestmark = pytest.mark.integration

TINY = ["--size", "64", "--latent-dim", "16", "--channels", "32", "--batch", "4", "--device", "cpu"]


def _data(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(4):
        pixels = rng.integers(0, 255, (70 + 10 * i, 90, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _train(*args: str, **kwargs: object) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(REPO / "run_show.py"), "train", "gan", *TINY, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )  # type: ignore[call-overload]


def _state_step(path: Path) -> int:
    if not path.exists():  # not written yet (the rename makes it appear whole)
        return -1
    return int(read_state(path, expect_kind="gan")[1]["step"])


@pytest.mark.parametrize("arch", ["fast", "classic"])
def test_sigkill_mid_run_then_resume(tmp_path: Path, arch: str) -> None:
    data = _data(tmp_path / "data")
    out = tmp_path / "trained" / "mine"
    # --keep last: every checkpoint rewrites the model file too, more writes for the kill to land in.
    run = ["--arch", arch, "--data", str(data), "--out", str(out), "--seed", "2", "--keep", "last"]
    proc = _train(*run, "--minutes", "5", "--checkpoint-every", "0.3")
    state = out.with_name("mine.state.safetensors")
    deadline = time.monotonic() + 240
    # Let a few checkpoints go by so the kill can land in the middle of one.
    while _state_step(state) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.37)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # Whatever moment the kill hit, the files are whole and load.
    g, meta = load_generator(out.with_suffix(".safetensors"))
    assert meta["kind"] == "gan" and int(meta["steps"]) >= 3 and meta["config"]["arch"] == arch
    grid = Image.open(out.with_suffix(".png"))
    grid.load()
    assert grid.width == grid.height >= 4 * 64
    killed_at = _state_step(state)
    assert killed_at >= 3

    resumed = _train(*run, "--steps", "2", "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"resuming from step {killed_at}" in stderr
    assert "skipped 2 file(s)" in stderr and "broken.png" in stderr and "notes.txt" in stderr
    summary = json.loads(stdout)
    assert summary["resumed_from_step"] == killed_at
    assert summary["steps"] == killed_at + 2
    assert (summary["images"], summary["skipped"]) == (4, 2)
    assert int(load_generator(out.with_suffix(".safetensors"))[1]["steps"]) == killed_at + 2
