"""`bench --models`: batch-1 forward time of each GAN generator size, untrained, on the CPU.

The classic default (GANConfig()) against each preset of the fast family
(engine.models.gan_arch.PRESETS), at 1 and 2 torch threads: the number that
decides whether a preset keeps 60 fps (live) or 30 fps (hd) on a 2-core
machine. Weights are random (the cost does not depend on them); eval mode and
inference_mode, as in the show. Median and 90th percentile over `frames`
calls after a warm-up; the configs are interleaved per round so a slow drift of
a shared machine hits them alike.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from engine.models.gan_arch import PRESETS, build_generator, preset_config

ROUNDS = 5  # each config is timed in this many interleaved rounds of frames / ROUNDS calls
ROUND_S = 1.0  # ... or fewer: a round stops after this many seconds (the 512 px preset on a CPU)


def _configs() -> list[tuple[str, Any]]:
    rows = [("classic default", preset_config("classic", "live"))]
    rows += [(f"fast {name}", preset_config("fast", name)) for name in PRESETS["fast"]]
    return rows


def bench_models(threads: tuple[int, ...] = (1, 2), frames: int = 200, warmup: int = 20) -> list[dict[str, Any]]:
    """One row per (config, thread count): forward median and p90 in ms, and the config."""
    before = torch.get_num_threads()
    rows = []
    try:
        for n in threads:
            torch.set_num_threads(n)
            models = [(name, build_generator(config).eval(), config) for name, config in _configs()]
            times: dict[str, list[float]] = {name: [] for name, _, _ in models}
            with torch.inference_mode():
                for _name, g, config in models:
                    z = torch.randn(1, config.latent_dim)
                    for _ in range(warmup if config.size <= 256 else 2):
                        g(z)
                for _ in range(ROUNDS):
                    for name, g, config in models:
                        z = torch.randn(1, config.latent_dim)
                        start = time.perf_counter()
                        for _ in range(max(1, frames // ROUNDS)):
                            t0 = time.perf_counter()
                            g(z)
                            times[name].append(time.perf_counter() - t0)
                            if t0 - start > ROUND_S:
                                break
            for name, _, config in models:
                ms = np.asarray(times[name]) * 1000.0
                rows.append(
                    {
                        "model": name,
                        "threads": n,
                        "size": config.size,
                        "forward_ms": round(float(np.median(ms)), 3),
                        "forward_p90_ms": round(float(np.percentile(ms, 90)), 3),
                        "config": config.to_dict(),
                    }
                )
    finally:
        torch.set_num_threads(before)
    return rows


def format_models(rows: list[dict[str, Any]]) -> str:
    """The rows as a table, one line per (model, threads)."""
    head = f"{'model':<18} {'size':>5} {'threads':>7} {'median':>9} {'p90':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:<18} {r['size']:>5} {r['threads']:>7} {r['forward_ms']:>7.2f}ms {r['forward_p90_ms']:>7.2f}ms"
        )
    return "\n".join(lines)
