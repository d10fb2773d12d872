"""Sample distance: how far generated images are from the training images (lower is better).

Sliced Wasserstein distance over 7x7 patches of a Laplacian pyramid, after
Karras et al. 2018 (Progressive GAN, appendix D), simplified:

1. Each image set (N, 3, H, W) in [-1, 1] becomes a Laplacian pyramid: band-pass
   levels at H, H/2, ... and a final low-pass (Gaussian) level of side >= 16,
   at most LEVELS levels. Fine levels compare texture (brush strokes, edges),
   coarse levels compare colour and layout.
2. From every level, PATCHES random 7x7x3 patches are taken from each set
   (positions drawn from a generator seeded with `seed` and the level, the same
   draw for both sets: identical sets give exactly 0).
3. Patches are normalised per channel with the mean/std of the *real* patches,
   so a colour shift in the fakes counts (per-set normalisation, as in the
   paper, would hide it), and the scale is comparable across levels.
4. PROJECTIONS fixed random unit directions (seeded) project the 147-d patches
   to 1-D; the 1-D Wasserstein-1 distance between two equal-size samples is the
   mean absolute difference of the sorted projections.
5. The result is the mean over projections and levels.

Why this metric: it needs no pretrained network (FID needs Inception weights we
do not ship), it is cheap on a CPU (well under a second for 32 vs 64 images at
128 px), it is deterministic for a fixed seed, and it responds to both colour
and texture. Untrained generators (flat grey or noise) score far from the data;
numbers are only comparable for the same image size and seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LEVELS = 4
MIN_LEVEL_SIDE = 16
PATCH = 7
PATCHES = 2048
PROJECTIONS = 256

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur, reflect padding; x: (N, C, H, W) -> same shape."""
    c = x.shape[1]
    k = _BINOMIAL.to(x)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def laplacian_pyramid(images: torch.Tensor) -> list[torch.Tensor]:
    """(N, C, H, W) -> [band-pass levels fine to coarse..., low-pass level]."""
    levels: list[torch.Tensor] = []
    current = images
    while len(levels) < LEVELS - 1 and min(current.shape[-2:]) >= 2 * MIN_LEVEL_SIDE:
        down = _blur(current)[..., ::2, ::2]  # (N, C, H/2, W/2)
        up = F.interpolate(down, size=current.shape[-2:], mode="bilinear", align_corners=False)
        levels.append(current - up)
        current = down
    levels.append(current)
    return levels


def _patches(level: torch.Tensor, seed: int, index: int) -> torch.Tensor:
    """PATCHES random 7x7 patches from (N, C, H, W) -> (PATCHES, C * 49)."""
    n, c, h, w = level.shape
    gen = torch.Generator().manual_seed(seed * 1000 + index)
    which = torch.randint(n, (PATCHES,), generator=gen)
    ys = torch.randint(h - PATCH + 1, (PATCHES,), generator=gen)
    xs = torch.randint(w - PATCH + 1, (PATCHES,), generator=gen)
    windows = level.unfold(2, PATCH, 1).unfold(3, PATCH, 1)  # (N, C, H-6, W-6, 7, 7) view
    return windows[which, :, ys, xs].reshape(PATCHES, c * PATCH * PATCH)


def _sliced_w1(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> float:
    """Mean over directions of 1-D W1 between projected samples; a, b: (P, D)."""
    pa = torch.sort(a @ directions, dim=0).values  # (P, K)
    pb = torch.sort(b @ directions, dim=0).values
    return float((pa - pb).abs().mean())


@torch.no_grad()
def sample_distance_levels(fake: torch.Tensor, real: torch.Tensor, seed: int = 0) -> list[float]:
    """The sliced Wasserstein distance of each pyramid level, fine to coarse; sets (N, 3, H, W) in [-1, 1].

    Level 0 compares the finest band (edges, strokes), the last the low-pass
    picture of side >= 16 (colours and layout); sample_distance is their mean.
    """
    if fake.dim() != 4 or real.dim() != 4 or fake.shape[1:] != real.shape[1:]:
        raise ValueError(
            f"sample_distance needs two (N, C, H, W) sets of equal C, H, W; "
            f"got {tuple(fake.shape)} and {tuple(real.shape)}"
        )
    if min(real.shape[-2:]) < MIN_LEVEL_SIDE:
        raise ValueError(f"images must be at least {MIN_LEVEL_SIDE} px, got {tuple(real.shape[-2:])}")
    fake_levels = laplacian_pyramid(fake.detach().float().cpu())
    real_levels = laplacian_pyramid(real.detach().float().cpu())
    dim = real.shape[1] * PATCH * PATCH
    gen = torch.Generator().manual_seed(seed)
    directions = torch.randn(dim, PROJECTIONS, generator=gen)
    directions /= directions.norm(dim=0, keepdim=True)  # (D, K) unit columns
    distances = []
    for i, (fl, rl) in enumerate(zip(fake_levels, real_levels)):
        fp, rp = _patches(fl, seed, i), _patches(rl, seed, i)
        c = real.shape[1]
        # Per-channel stats of the real patches: (P, C, 49) -> (1, C, 1)
        rv = rp.view(PATCHES, c, -1)
        mean = rv.mean(dim=(0, 2), keepdim=True)
        std = rv.std(dim=(0, 2), keepdim=True).clamp_min(1e-6)
        fp = ((fp.view(PATCHES, c, -1) - mean) / std).view(PATCHES, dim)
        rp = ((rv - mean) / std).view(PATCHES, dim)
        distances.append(_sliced_w1(fp, rp, directions))
    return distances


def sample_distance(fake: torch.Tensor, real: torch.Tensor, seed: int = 0) -> float:
    """Sliced Wasserstein patch distance between image sets (N, 3, H, W) in [-1, 1]: the levels' mean."""
    levels = sample_distance_levels(fake, real, seed)
    return sum(levels) / len(levels)
