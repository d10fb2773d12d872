"""`bench --train`: the cost of one GAN training step (one D and one G update) per family,
preset and precision on this machine, the number that decides how far a `--minutes`
budget gets.

Each config is a real training run's state (engine.train.gan._GanRun: the same models,
optimisers, augmentation and batch as `train gan`) on a folder of pictures (default: the
repository's pictures/photos), timed over `steps` steps after a warm-up, interleaved in
rounds so a slow drift of a shared machine hits every config alike. Nothing is written.
bf16 rows are timed only where the device has bf16 natively (engine.models.device.bf16_is_native):
elsewhere oneDNN emulates it and `--precision auto` trains in fp32 anyway.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.files import REPO_ROOT
from engine.models.device import bf16_is_native
from engine.train.gan import GanTrainOptions, _GanRun

TRAIN_DATA = REPO_ROOT / "pictures" / "photos"
ROUNDS = 3
# (label, arch, preset): the classic default, the fast default and the fast wide preset.
CONFIGS = (("classic live", "classic", "live"), ("fast live", "fast", "live"), ("fast wide", "fast", "wide"))


def bench_train(
    device: torch.device,
    data: Path = TRAIN_DATA,
    steps: int = 30,
    warmup: int = 3,
    configs: tuple[tuple[str, str, str], ...] = CONFIGS,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """One row per (config, precision): median and p90 ms per training step, images/s,
    and for bf16 the speed-up over the same config's fp32 median. `overrides` go to
    GanTrainOptions (size, channels ... : the tests' tiny models)."""
    precisions = ("fp32", "bf16") if bf16_is_native(device) else ("fp32",)
    runs: list[tuple[str, str, _GanRun]] = []
    with tempfile.TemporaryDirectory() as out:
        for label, arch, preset in configs:
            for precision in precisions:
                opts = GanTrainOptions(
                    data=str(data),
                    out=out,
                    arch=arch,
                    preset=preset,
                    precision=precision,
                    device=device.type,
                    **overrides,
                )
                run = _GanRun(opts, device)
                for _ in range(warmup):
                    run.train_step()
                runs.append((label, precision, run))
        times: dict[int, list[float]] = {i: [] for i in range(len(runs))}
        for _ in range(ROUNDS):
            for i, (_, _, run) in enumerate(runs):
                for _ in range(max(1, steps // ROUNDS)):
                    t0 = time.perf_counter()
                    run.train_step()
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    times[i].append(time.perf_counter() - t0)
    rows = []
    for i, (label, precision, run) in enumerate(runs):
        ms = np.asarray(times[i]) * 1000.0
        rows.append(
            {
                "model": label,
                "precision": precision,
                "device": str(device),
                "threads": torch.get_num_threads(),
                "size": run.config.size,
                "batch": run.batch,
                "step_ms": round(float(np.median(ms)), 1),
                "step_p90_ms": round(float(np.percentile(ms, 90)), 1),
                "images_per_s": round(run.batch * 1000.0 / float(np.median(ms)), 1),
            }
        )
    fp32 = {r["model"]: r["step_ms"] for r in rows if r["precision"] == "fp32"}
    for r in rows:
        r["speedup"] = round(fp32[r["model"]] / r["step_ms"], 2)
    return rows


def format_train(rows: list[dict[str, Any]]) -> str:
    """The rows as a table, and a line saying whether bf16 was timed."""
    head = f"{'model':<14} {'size':>5} {'batch':>5} {'prec':>5} {'thr':>3} {'step':>9} {'p90':>9}"
    head += f" {'img/s':>7} {'vs fp32':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:<14} {r['size']:>5} {r['batch']:>5} {r['precision']:>5} {r['threads']:>3}"
            f" {r['step_ms']:>7.1f}ms {r['step_p90_ms']:>7.1f}ms {r['images_per_s']:>7.1f} {r['speedup']:>7.2f}x"
        )
    if not any(r["precision"] == "bf16" for r in rows):
        lines.append("bf16 not timed: this device has no native bf16 (train gan --precision auto uses fp32 here)")
    return "\n".join(lines)
