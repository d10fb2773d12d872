"""`bench --models`: each GAN generator size and each VAE decoder size at batch 1, the forward pass alone and the
whole frame (forward, then the uint8 conversion and, on CUDA, the copy to the host).

The classic default (GANConfig()) against each preset of the fast family
(engine.models.gan_arch.PRESETS). On the CPU at 1 and 2 torch threads: the number
that decides whether a preset keeps 60 fps (live) or 30 fps (hd) on a 2-core machine.
On CUDA (`--device cuda`) at the chosen `--precision`, with the fp16 picture error
(PSNR against fp32) that decides whether a show may use fp16. Weights are random (the
cost does not depend on them); the models are prepared as the show prepares them
(engine.stage.deck: with_precision, then traced and frozen), eval mode and
inference_mode. Median and 90th percentile over `frames` calls after a warm-up; the
configs are interleaved per round so a slow drift of a shared machine hits them alike.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from engine.models.gan_arch import PRESETS, AnyGANConfig, build_generator, preset_config
from engine.models.vae import VAE, VAE_PRESETS, VAEConfig, vae_preset_config
from engine.stage.deck import frozen, half_psnr, with_precision
from engine.stage.frame import FrameRenderer
from engine.stage.graphs import GraphedGenerator, graphed

ROUNDS = 5  # each config is timed in this many interleaved rounds of frames / ROUNDS calls
ROUND_S = 1.0  # ... or fewer: a round stops after this many seconds (the 512 px preset on a CPU)
CPU = torch.device("cpu")


def _configs() -> list[tuple[str, AnyGANConfig | VAEConfig]]:
    rows: list[tuple[str, AnyGANConfig | VAEConfig]] = [("classic default", preset_config("classic", "live"))]
    rows += [(f"fast {name}", preset_config("fast", name)) for name in PRESETS["fast"]]
    rows += [(f"vae {name}", vae_preset_config(name)) for name in VAE_PRESETS]  # the decoder is the per-frame part
    return rows


def _build(config: AnyGANConfig | VAEConfig) -> torch.nn.Module:
    return VAE(config) if isinstance(config, VAEConfig) else build_generator(config)


class _Prepared:
    """One config's generator as the show plays it, its frame converter and timings."""

    def __init__(
        self, name: str, config: AnyGANConfig | VAEConfig, device: torch.device, precision: str, graphs: bool
    ) -> None:
        self.name, self.config = name, config
        torch.manual_seed(0)
        eager = _build(config).to(device).eval().requires_grad_(False)
        played, self.precision = with_precision(eager, config.latent_dim, device, precision, name)
        self.psnr = half_psnr(eager, played, config.latent_dim, device) if self.precision == "fp16" else math.inf
        self.model = frozen(played, config.latent_dim, device)
        if graphs:
            self.model = graphed(self.model, config.latent_dim, device)  # CUDA only; a no-op on the CPU
        self.graph = isinstance(self.model, GraphedGenerator)
        self.device = device
        self.renderer = FrameRenderer(device)
        self.out = np.zeros((config.size, config.size, 3), np.uint8)
        self.z = np.random.default_rng(0).standard_normal(config.latent_dim).astype(np.float32)
        self.forward_s: list[float] = []
        self.frame_s: list[float] = []

    def forward(self) -> float:
        t0 = time.perf_counter()
        self.renderer.forward(self.model, self.z)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the forward alone: wait for the GPU here
        return time.perf_counter() - t0

    def frame(self) -> float:
        t0 = time.perf_counter()
        self.renderer.forward(self.model, self.z)
        self.renderer.convert(1.0, self.out)  # ends with the frame's one sync on CUDA
        return time.perf_counter() - t0


def bench_models(
    device: torch.device = CPU,
    precision: str = "fp32",
    threads: tuple[int, ...] = (1, 2),
    frames: int = 200,
    warmup: int = 20,
    graphs: bool = True,
) -> list[dict[str, Any]]:
    """One row per (config, thread count): forward and whole-frame median and p90 in ms,
    the precision played and its PSNR against fp32 (inf at fp32), whether it replayed as a
    CUDA graph (`graphs`: where it can, as a show plays it), and the config."""
    before = torch.get_num_threads()
    rows = []
    try:
        for n in threads if device.type == "cpu" else (before,):
            torch.set_num_threads(n)
            models = [_Prepared(name, config, device, precision, graphs) for name, config in _configs()]
            with torch.inference_mode():
                for m in models:
                    for _ in range(warmup if m.config.size <= 256 or device.type == "cuda" else 2):
                        m.frame()
                for _ in range(ROUNDS):
                    for m in models:
                        start = time.perf_counter()
                        for _ in range(max(1, frames // ROUNDS)):
                            m.forward_s.append(m.forward())
                            m.frame_s.append(m.frame())
                            if time.perf_counter() - start > ROUND_S:
                                break
            rows += [_row(m, n) for m in models]
    finally:
        torch.set_num_threads(before)
    return rows


def _row(m: _Prepared, threads: int) -> dict[str, Any]:
    fwd, frame = np.asarray(m.forward_s) * 1000.0, np.asarray(m.frame_s) * 1000.0
    return {
        "model": m.name,
        "device": str(m.device),
        "device_name": torch.cuda.get_device_name(m.device) if m.device.type == "cuda" else "cpu",
        "precision": m.precision,
        "cuda_graph": m.graph,
        "fp16_psnr_db": None if math.isinf(m.psnr) else round(m.psnr, 2),
        "threads": threads,
        "size": m.config.size,
        "forward_ms": round(float(np.median(fwd)), 3),
        "forward_p90_ms": round(float(np.percentile(fwd, 90)), 3),
        "frame_ms": round(float(np.median(frame)), 3),
        "frame_p90_ms": round(float(np.percentile(frame, 90)), 3),
        "fps": round(1000.0 / float(np.median(frame)), 1),
        "config": m.config.to_dict(),
    }


def format_models(rows: list[dict[str, Any]]) -> str:
    """The rows as a table, one line per (model, threads)."""
    head = (
        f"{'model':<16} {'size':>5} {'device':>6} {'prec':>5} {'thr':>3} {'forward':>9} {'p90':>9}"
        f" {'frame':>9} {'p90':>9} {'fps':>7} {'fp16 PSNR':>10} (graph: one CUDA graph replay)"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        psnr = f"{r['fp16_psnr_db']:>7.1f} dB" if r["fp16_psnr_db"] is not None else f"{'-':>10}"
        lines.append(
            f"{r['model']:<16} {r['size']:>5} {r['device']:>6} {r['precision']:>5} {r['threads']:>3}"
            f" {r['forward_ms']:>7.2f}ms {r['forward_p90_ms']:>7.2f}ms {r['frame_ms']:>7.2f}ms"
            f" {r['frame_p90_ms']:>7.2f}ms {r['fps']:>7.1f} {psnr}" + (" graph" if r.get("cuda_graph") else "")
        )
    if rows and rows[0]["device"] != "cpu":
        lines.append(f"GPU: {rows[0]['device_name']}")
    return "\n".join(lines)
