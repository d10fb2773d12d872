"""`bench`: the model's forward pass alone versus the whole loop frame.

For each shipped scene at its native size, presented into a 1280x720 headless
window: each iteration times one bare forward pass, then one whole frame
(poll, events, path step, forward, convert, present) with no pacing. Medians
over `frames` iterations; interleaving keeps slow drifts of a shared machine
out of the difference.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from engine.clock import LiveClock
from engine.deck import load_scenes
from engine.events import EventQueue
from engine.frame import FrameRenderer
from engine.params import build_registry
from engine.scene import load_scene, shipped_scenes
from engine.show import Show

log = logging.getLogger(__name__)
BENCH_WINDOW = (1280, 720)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_scene(path, device: torch.device, frames: int = 300, warmup: int = 30) -> dict[str, Any]:
    from engine.output.video import VideoOutput

    scene = load_scenes([load_scene(path)], device)[0]
    output = VideoOutput((scene.size, scene.size), window_size=BENCH_WINDOW, fullscreen=False, display=None,
                         vsync=False, aspect="fit", headless=True, title="bench")
    show = Show([scene], build_registry(), EventQueue(), FrameRenderer(device), output, LiveClock())
    z = torch.randn((1, scene.latent_dim), device=device)
    fwd, whole = [], []
    try:
        with torch.inference_mode():
            for i in range(warmup + frames):
                t0 = time.perf_counter()
                scene.generator(z)
                _sync(device)
                t1 = time.perf_counter()
                show.frame()
                output.present()
                t2 = time.perf_counter()
                if i >= warmup:
                    fwd.append(t1 - t0)
                    whole.append(t2 - t1)
    finally:
        output.close()
    f_ms, w_ms = np.median(fwd) * 1000, np.median(whole) * 1000
    return {
        "scene": scene.spec.name,
        "file": str(path.name),
        "size": scene.size,
        "device": str(device),
        "forward_ms": round(float(f_ms), 3),
        "frame_ms": round(float(w_ms), 3),
        "overhead_ms": round(float(w_ms - f_ms), 3),
        "ratio": round(float(w_ms / f_ms), 3),
        "forward_p99_ms": round(float(np.percentile(fwd, 99) * 1000), 3),
        "frame_p99_ms": round(float(np.percentile(whole, 99) * 1000), 3),
        "threads": torch.get_num_threads(),
    }


def bench_scenes(device: torch.device, frames: int = 300) -> list[dict[str, Any]]:
    return [bench_scene(p, device, frames) for p in shipped_scenes()]


def format_rows(rows: list[dict[str, Any]]) -> str:
    head = f"{'scene':<28} {'size':>5} {'device':>6} {'forward':>9} {'frame':>9} {'overhead':>9} {'ratio':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['scene'][:28]:<28} {r['size']:>5} {r['device']:>6} {r['forward_ms']:>7.2f}ms "
            f"{r['frame_ms']:>7.2f}ms {r['overhead_ms']:>7.2f}ms {r['ratio']:>6.2f}"
        )
    return "\n".join(lines)
