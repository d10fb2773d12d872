"""`bench --keyframe-add`: a picture added over OSC during a headless show, and what it costs.

A headless show of a "pictures" scene runs in a subprocess with its stats and an event log;
`add_at` seconds after it answers /ping, /deck/a/keyframe/add "PICTURE" arrives over UDP.
The picture is read, decoded and encoded on the show's worker thread, off the frame loop.
Reported: the show's own frame statistics over the whole run (fps, frame-time percentiles,
late frames), and whether and when the new key was seen. The frames of a headless show are
not kept, so the recorded event log is rendered again offline (`render --events`, frame for
frame) and every frame is compared with the picture's reconstruction: PSNR >= KEY_PSNR dB
means the show stood on the new key there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.bench.flood import wait_for_pong
from engine.bench.ports import free_udp_port
from engine.control.osc_dispatch import encode
from engine.core.eventlog import load_event_log
from engine.core.space import DECKS
from engine.files.scene import load_scene
from engine.models.checkpoint import load_image_model
from engine.stage.keyframes import decode_picture
from engine.stage.offline import render

KEY_PSNR = 30.0  # dB: a frame this close to the picture's reconstruction shows that key
REPO = Path(__file__).resolve().parents[2]


def keyframe_add_bench(
    scene: Path, picture: Path, seconds: float = 30.0, add_at: float = 10.0, fps: float = 60.0
) -> dict[str, Any]:
    """Run the show, add `picture` at `add_at` s, return its stats and where the new key showed."""
    port = free_udp_port()
    with tempfile.TemporaryDirectory(prefix="latent-stage-keyadd-") as tmp:
        stats_path, events_path = Path(tmp) / "stats.json", Path(tmp) / "events.jsonl"
        cmd = [sys.executable, "run_show.py", "-q", "show", "--headless", "--scene", str(scene)]
        cmd += ["--seconds", f"{seconds:g}", "--fps", f"{fps:g}", "--osc-port", str(port), "--oscquery-port", "0"]
        cmd += ["--stats", str(stats_path), "--record-events", str(events_path)]
        with open(os.devnull, "w") as devnull:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=devnull, stderr=subprocess.PIPE, text=True)
            try:
                if not wait_for_pong(port, 120.0, proc):
                    raise RuntimeError(f"the show did not answer /ping: {proc.stderr.read() if proc.poll() else ''}")
                started = time.monotonic()
                time.sleep(max(0.0, add_at - (time.monotonic() - started)))
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(encode(f"/deck/{DECKS[0]}/keyframe/add", str(picture.resolve())), ("127.0.0.1", port))
                _, err = proc.communicate(timeout=seconds + 120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if proc.returncode != 0 or not stats_path.exists():
            raise RuntimeError(f"the show failed (exit {proc.returncode}): {err[-2000:]}")
        stats = json.loads(stats_path.read_text())
        log = load_event_log(events_path)
        added = sorted(f for (f, _), evs in log.events.items() for e in evs if e.address.endswith("/keyframe/add"))
        frames_dir = Path(tmp) / "frames"
        render([load_scene(scene)], seconds=None, fps=int(round(log.fps)), out=str(frames_dir) + "/", events=log)
        on_key = _frames_on(frames_dir, scene, picture)
    first = int(on_key[0]) if len(on_key) else None
    return {
        "scene": str(scene),
        "picture": str(picture),
        "show": {k: stats.get(k) for k in ("fps", "frame_ms", "late_frames", "frames", "frame_errors")},
        "added_at_frame": added[0] if added else None,
        "key_first_frame": first,
        "key_frames": len(on_key),
        "fps": log.fps,
    }


def _frames_on(frames_dir: Path, scene: Path, picture: Path) -> np.ndarray:
    """Indices of the rendered frames within KEY_PSNR of the picture's reconstruction."""
    model, _ = load_image_model(load_scene(scene).model)
    view = decode_picture(picture, picture.read_bytes(), int(model.config.size))
    with torch.no_grad():
        recon = model(model.encode(view))[0]  # type: ignore[operator]  # a VAE: encode exists
    want = ((recon.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().numpy()  # (S, S, 3) levels
    hits = []
    for i, f in enumerate(sorted(frames_dir.glob("*.png"))):
        frame = np.asarray(Image.open(f).convert("RGB"), dtype=np.float64)
        mse = float(((frame - want) ** 2).mean())
        if mse == 0.0 or 10.0 * np.log10(255.0**2 / mse) >= KEY_PSNR:
            hits.append(i)
    return np.asarray(hits, dtype=np.int64)


def format_keyframe_add(r: dict[str, Any]) -> str:
    show, ms = r["show"], r["show"]["frame_ms"] or {}
    when = "never" if r["key_first_frame"] is None else f"from frame {r['key_first_frame']} ({r['key_frames']} frames)"
    added = r["added_at_frame"]
    return (
        f"keyframe add: {r['picture']} into {r['scene']}\n"
        f"show: {show['fps']} fps, frame p50 {ms.get('p50')} ms, p99 {ms.get('p99')} ms, "
        f"late {show['late_frames']} of {show['frames']}, errors {show['frame_errors']}\n"
        f"added at frame {added}; the new key is shown {when}"
    )
