"""Offline render end to end: the CLI, the shipped default scene, ffprobe, determinism."""

import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from tests.conftest import REPO
from tests.probe import ffprobe_video

pytestmark = pytest.mark.integration


def decode(path: Path) -> np.ndarray:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])


def render_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "run_show.py"), "-q", "render", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


def test_default_scene_renders_300_smooth_moving_frames_deterministically(tmp_path):
    outs = []
    for name in ("a.mp4", "b.mp4"):
        out = tmp_path / name
        r = render_cli(
            "--scene", "scenes/default.toml", "--seconds", "10", "--fps", "30", "--size", "256x256", "--out", str(out)
        )
        assert r.returncode == 0, r.stderr
        assert str(out) in r.stdout
        outs.append(out)
    info = ffprobe_video(outs[0])
    assert (int(info["nb_read_frames"]), info["width"], info["height"]) == (300, 256, 256)
    assert info["codec_name"] == "h264" and info["pix_fmt"] == "yuv420p"
    a, b = decode(outs[0]), decode(outs[1])
    assert np.array_equal(a, b), "a second render gave different frames"
    change = np.abs(np.diff(a.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))  # (299,) mean levels
    median = float(np.median(change))
    assert median >= 0.2, f"picture barely moves: median change {median:.3f} levels"
    assert (change < 0.05).mean() < 0.05, "more than 5% of frames are static"
    assert change.max() <= 6 * median, f"jerky: max change {change.max():.2f} vs median {median:.2f}"


def test_png_sequence_and_aspect(tmp_path, scene_file):
    out = tmp_path / "frames"
    r = render_cli(
        "--scene",
        str(scene_file("")),
        "--seconds",
        "0.2",
        "--fps",
        "10",
        "--size",
        "96x64",
        "--aspect",
        "fit",
        "--out",
        f"{out}/",
    )
    assert r.returncode == 0, r.stderr
    files = sorted(out.glob("*.png"))
    assert len(files) == 2
    from PIL import Image

    img = np.asarray(Image.open(files[0]))
    assert img.shape == (64, 96, 3)
    assert img[:, :10].max() == 0 and img[:, -10:].max() == 0  # letterbox bars left and right
