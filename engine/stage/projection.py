"""Pictures to GAN latents by optimisation ("projection"), for GAN scenes with picture keyframes.

A GAN has no encoder, so the latent z whose picture G(z) is closest to the target is searched
for: the best of CANDIDATES random latents starts an Adam descent on z alone (the generator's
weights stay fixed). The loss needs no downloaded network (no VGG / LPIPS here):
- L1 on the pixels and on 2x, 4x and 8x average-pooled copies (multi-scale: the coarse
  levels pull colour and layout into place first, when fine detail cannot match yet);
- L1 between the log amplitude spectra (FFT) of both pictures: texture energy at the right
  frequencies, whatever its exact position;
- a prior term that keeps |z| near sqrt(latent_dim), where the training latents lie (the show's
  slerp paths then travel between projections as between any two latents).
A GAN trained on few pictures draws its own textures, not the picture: the PSNR each projection
reaches is logged, and typically stays far below a VAE's reconstruction.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.eval.metrics import psnr

log = logging.getLogger(__name__)

CANDIDATES = 32  # random latents tried before the descent
STEPS = 150  # Adam steps per picture (~3 s at 128 px on the 2-core CPU for the live preset)
LR = 0.05
SPECTRUM_WEIGHT = 0.1
PRIOR_WEIGHT = 0.05
_LOG_EVERY = 50


def _spectrum(img: torch.Tensor) -> torch.Tensor:
    """log(1 + |FFT|) per channel of (B, 3, S, S) pictures."""
    return torch.log1p(torch.fft.rfft2(img.float(), norm="ortho").abs())


def projection_loss(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) multi-scale L1 plus the spectral term, per picture; fake and target (B, 3, S, S)."""
    loss = (fake - target).abs().flatten(1).mean(dim=1)
    a, b = fake, target
    for _ in range(3):
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        loss = loss + (a - b).abs().flatten(1).mean(dim=1)
    spectral = (_spectrum(fake) - _spectrum(target)).abs().flatten(1).mean(dim=1)
    return loss + SPECTRUM_WEIGHT * spectral


def project(
    generator: torch.nn.Module, target: torch.Tensor, name: str, steps: int = STEPS, seed: int = 0
) -> tuple[np.ndarray, float]:
    """The latent (latent_dim,) float32 whose picture is closest to `target` (1, 3, S, S) in
    [-1, 1], and that picture's PSNR (dB) against it; logs its progress and result."""
    config: Any = generator.config  # either GAN family's config: .latent_dim
    dim = int(config.latent_dim)
    device = next(generator.parameters()).device
    target = target.to(device)
    started = time.perf_counter()
    with torch.no_grad():
        z0 = torch.randn(CANDIDATES, dim, generator=torch.Generator().manual_seed(seed)).to(device)
        scores = torch.cat(
            [projection_loss(generator(part), target.expand(len(part), -1, -1, -1)) for part in z0.split(8)]
        )
    z = z0[int(scores.argmin())].clone().unsqueeze(0).requires_grad_(True)  # (1, dim)
    opt = torch.optim.Adam([z], lr=LR)
    radius = math.sqrt(dim)
    log.info("projecting %s into the GAN's latent space (%d steps)", name, steps)
    with torch.enable_grad():
        for step in range(1, steps + 1):
            fake = generator(z)
            prior = (z.norm() / radius - 1.0).square()
            loss = projection_loss(fake, target).mean() + PRIOR_WEIGHT * prior
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % _LOG_EVERY == 0 and step < steps:
                log.info("  %s: step %d/%d, loss %.4f", name, step, steps, float(loss.detach()))
    with torch.no_grad():
        score = float(psnr(generator(z), target)[0])
    log.info(
        "projected %s: PSNR %.2f dB against the picture (%d steps, %.1f s)",
        name,
        score,
        steps,
        time.perf_counter() - started,
    )
    return z.detach().float().cpu()[0].numpy().astype(np.float32), score
