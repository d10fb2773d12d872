"""A picture added over real UDP OSC during a headless show (subprocess) joins the loop, and the
show keeps presenting frames meanwhile (the keyframe-add benchmark at a small scale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.bench.keyframes import keyframe_add_bench
from tests.conftest import make_tiny_vae

pytestmark = pytest.mark.integration


def test_a_picture_sent_over_osc_joins_a_running_show(tmp_path: Path) -> None:
    model = make_tiny_vae(tmp_path / "vae.safetensors")
    yy, xx = np.mgrid[0:64, 0:64]
    files = []
    for i, arr in enumerate(
        [np.stack([xx * 4, yy * 4, xx * 0 + 40], -1), np.stack([yy * 0 + 200, xx * 2, yy * 4], -1)]
    ):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(files[-1])
    new = tmp_path / "new.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(new)
    scene = tmp_path / "scene.toml"
    scene.write_text(
        f'model = "{model}"\n[path]\nkind = "pictures"\npictures = ["{files[0]}", "{files[1]}"]\n'
        "hold_seconds = 0.5\ntravel_seconds = 0.5\n"
    )
    r = keyframe_add_bench(scene, new, seconds=8.0, add_at=1.0, fps=30.0)
    assert r["show"]["frame_errors"] in (None, 0)
    assert r["added_at_frame"] is not None and r["key_first_frame"] is not None, r
    assert r["key_first_frame"] > r["added_at_frame"] and r["key_frames"] >= 10  # held 0.5 s at 30 fps
    assert r["show"]["fps"] > 20  # the full must-show (>= 58 fps, p99 <= 18 ms) is the benchmark on an idle machine
