"""Model precision: the --precision choice, the fp16 check against fp32, and fp16 frames."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.errors import DeviceError
from engine.models.device import resolve_precision
from engine.models.gan import GANConfig, Generator
from engine.stage.deck import HALF_MIN_PSNR, HalfGenerator, frozen, half_psnr, with_precision
from engine.stage.frame import FrameRenderer

CPU = torch.device("cpu")


def _gen() -> Generator:
    torch.manual_seed(0)
    return Generator(GANConfig(size=64, latent_dim=16, channels=32, min_channels=8)).eval().requires_grad_(False)


def test_resolve_precision() -> None:
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
    with pytest.raises(DeviceError, match="--precision fp16 needs --device cuda"):
        resolve_precision("fp16", CPU)
    with pytest.raises(DeviceError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", CPU)


def test_fp16_kept_when_close_and_refused_when_not(caplog: pytest.LogCaptureFixture) -> None:
    gen = _gen()
    # oneDNN runs fp16 convolutions on the CPU too (slowly): enough to check the logic here.
    played, used = with_precision(gen, 16, CPU, "fp16", "tiny")
    assert used == "fp16" and isinstance(played, HalfGenerator)
    assert half_psnr(gen, played, 16, CPU) >= HALF_MIN_PSNR
    assert half_psnr(gen, gen, 16, CPU) == math.inf
    assert with_precision(gen, 16, CPU, "fp32") == (gen, "fp32")

    class Broken(torch.nn.Module):  # a "half" model whose picture is far off
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return -gen(z)

    assert half_psnr(gen, Broken(), 16, CPU) < HALF_MIN_PSNR


def test_fp16_frames_convert_like_fp32() -> None:
    gen = _gen()
    half, _ = with_precision(gen, 16, CPU, "fp16")
    traced = frozen(half, 16, CPU)
    z = np.random.default_rng(1).standard_normal(16).astype(np.float32)
    frames = []
    for model in (gen, traced):
        r = FrameRenderer(CPU)
        r.forward(model, z)
        out = np.zeros((64, 64, 3), np.uint8)
        r.convert(1.0, out)
        frames.append(out.astype(int))
    assert np.abs(frames[0] - frames[1]).max() <= 4  # 8-bit levels
