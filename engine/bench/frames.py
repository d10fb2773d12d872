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

from engine.bench.window import headless_window
from engine.config import StageConfig
from engine.core.clock import FixedClock
from engine.files.scene import load_scene, shipped_scenes
from engine.stage.build import build_show
from engine.stage.deck import load_scenes
from engine.stage.show import Show

log = logging.getLogger(__name__)
BENCH_FPS = 60


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_scene(
    path, device: torch.device, frames: int = 300, warmup: int = 30, precision: str = "fp32"
) -> dict[str, Any]:
    scene = load_scenes([load_scene(path)], device, precision)[0]
    output = headless_window(scene.size, "bench")
    # Show time steps 1/60 s per frame (not wall time: the loop runs unpaced), so the
    # melody and text generate what they would per frame of a 60 fps show.
    stage = StageConfig(device=str(device), precision=scene.precision)
    show = build_show(stage, FixedClock(BENCH_FPS), output, [scene])
    seq = _seq_layer(show, output)
    z = torch.randn((1, scene.latent_dim), device=device)
    after = None if seq is None else (lambda s: (seq.frame(s), setattr(s, "frame_count", s.frame_count + 1)))
    try:
        fwd, whole, gen = _timed(show, output, [(scene.generator, z)], device, frames, warmup, after)
    finally:
        if seq is not None:
            seq.close()
        output.close()
    row = _row(scene.spec.name, str(path.name), scene.size, device, scene.precision, fwd, whole)
    # Melody + text generation per frame (scenes with [notes]/[text]; None otherwise).
    row["seq_ms"] = round(float(np.median(gen)) * 1000, 3) if seq is not None else None
    row["seq_p99_ms"] = round(float(np.percentile(gen, 99)) * 1000, 3) if seq is not None else None
    return row


def _timed(
    show: Show,
    output: Any,
    bare: list[tuple[torch.nn.Module, torch.Tensor]],
    device: torch.device,
    frames: int,
    warmup: int,
    after: Any = None,
) -> tuple[list[float], list[float], list[float]]:
    """Seconds per iteration after `warmup`: the bare forward passes of `bare` ((model, z) each),
    the whole frame (show.frame and present), and `after(show)` (the melody and text, or None).
    Interleaved in one loop, so slow drifts of a shared machine stay out of the difference."""
    fwd, whole, extra = [], [], []
    with torch.inference_mode():
        for i in range(warmup + frames):
            t0 = time.perf_counter()
            for model, z in bare:
                model(z)
            _sync(device)
            t1 = time.perf_counter()
            show.frame()
            output.present()
            t2 = time.perf_counter()
            if after is not None:
                after(show)
            t3 = time.perf_counter()
            if i >= warmup:
                fwd.append(t1 - t0)
                whole.append(t2 - t1)
                extra.append(t3 - t2)
    return fwd, whole, extra


def _row(
    name: str, file: str, size: int, device: torch.device, precision: str, fwd: list[float], whole: list[float]
) -> dict[str, Any]:
    """One bench row from the bare forward times and the whole-frame times (seconds each)."""
    f_ms, w_ms = np.median(fwd) * 1000, np.median(whole) * 1000
    return {
        "scene": name,
        "file": file,
        "size": size,
        "device": str(device),
        "precision": precision,
        "forward_ms": round(float(f_ms), 3),
        "frame_ms": round(float(w_ms), 3),
        "overhead_ms": round(float(w_ms - f_ms), 3),
        "ratio": round(float(w_ms / f_ms), 3),
        "forward_p99_ms": round(float(np.percentile(fwd, 99) * 1000), 3),
        "frame_p99_ms": round(float(np.percentile(whole, 99) * 1000), 3),
        "threads": torch.get_num_threads(),
        "seq_ms": None,
        "seq_p99_ms": None,
    }


def _seq_layer(show: Show, output: Any) -> Any:
    """The scene's melody and text with no sound out (generation cost only), or None."""
    from engine.seq.layer import NoteRouter, SeqLayer, _overlay, has_seq

    if not has_seq(show):
        return None
    overlay = _overlay(show)
    output.overlay = overlay  # the text drawing is part of the frame's present
    return SeqLayer(show, NoteRouter(), overlay)


def bench_two_decks(
    paths: list, device: torch.device, frames: int = 300, warmup: int = 30, precision: str = "fp32"
) -> dict[str, Any]:
    """Both decks visible (crossfade 0.5, mix): the two bare forward passes against the whole
    frame (both forwards, the blend, convert, present); medians as in bench_scene."""
    scenes = load_scenes([load_scene(p) for p in paths], device, precision)
    output = headless_window(max(sc.size for sc in scenes), "bench")
    stage = StageConfig(device=str(device), precision=scenes[0].precision, two_decks="full")
    show = build_show(stage, FixedClock(BENCH_FPS), output, scenes)
    show.registry.set("/mixer/crossfade", 0.5, immediate=True)
    bare = [(sc.generator, torch.randn((1, sc.latent_dim), device=device)) for sc in scenes[:2]]
    try:
        fwd, whole, _ = _timed(
            show, output, bare, device, frames, warmup, lambda s: setattr(s, "frame_count", s.frame_count + 1)
        )
    finally:
        output.close()
    assert show.deck_forwards[1] > 0, "deck b never ran: the crossfade did not show it"  # a bench bug, not input
    name = "two decks: " + " + ".join(sc.spec.name for sc in scenes[:2])
    files = "+".join(str(p.name) for p in paths[:2])
    return _row(name, files, max(sc.size for sc in scenes[:2]), device, scenes[0].precision, fwd, whole)


def bench_scenes(device: torch.device, frames: int = 300, precision: str = "fp32") -> list[dict[str, Any]]:
    """Every shipped scene alone, then the first two picture scenes on two visible decks."""
    paths = shipped_scenes()
    rows = [bench_scene(p, device, frames, precision=precision) for p in paths]
    pair = [p for p in paths if p.stem in ("default", "tissue_breath")] or paths[:2]
    if len(pair) == 2:
        rows.append(bench_two_decks(pair, device, frames, precision=precision))
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'scene':<28} {'size':>5} {'device':>6} {'forward':>9} {'frame':>9} {'overhead':>9} {'ratio':>6}"
        f" {'notes+text':>11}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        seq = f"{r['seq_ms']:>9.3f}ms" if r.get("seq_ms") is not None else f"{'-':>11}"
        lines.append(
            f"{r['scene'][:28]:<28} {r['size']:>5} {r['device']:>6} {r['forward_ms']:>7.2f}ms "
            f"{r['frame_ms']:>7.2f}ms {r['overhead_ms']:>7.2f}ms {r['ratio']:>6.2f} {seq}"
        )
    return "\n".join(lines)
