"""ffprobe, the independent reader the recording tests check their files with."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

VIDEO_ENTRIES = "stream=codec_name,width,height,pix_fmt,nb_read_frames,r_frame_rate,color_space"


def ffprobe_video(path: Path, entries: str = VIDEO_ENTRIES) -> dict:
    """The first video stream's `entries` (frames counted by decoding); skips without ffprobe."""
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed (apt-get install ffmpeg)")
    command = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", entries]
    probe = subprocess.run([*command, "-of", "json", str(path)], capture_output=True, text=True, check=True, timeout=30)
    return json.loads(probe.stdout)["streams"][0]
