"""Evaluate an image generator (kind "gan", later "vae") against a folder of pictures.

Sets (all at the model's size S, in [-1, 1], each from its own seed derived from --seed):
- samples: N generator outputs for z ~ N(0, I).
- real: N random crops of the pictures, drawn as the GAN trainer draws them
  (engine.train.images.random_crops: log-uniform side, random position, flip).
- reference: N more random crops from another seed, held apart: real material
  that is not in the memory bank, the yardstick for novelty.
- bank: the memory bank novelty is measured against: every picture whole (its
  largest centred square resized to S x S) and mirrored, plus BANK_CROPS random
  crops from a third seed.

Novelty (one definition): a picture's nearest distance is the smallest RMS
pixel difference, on the 0..1 scale at S x S, between it and any bank picture.
A model that copies its training pictures has sample distances as small as
the reference crops' (or 0 for copies of whole pictures); `copy_share` counts
samples closer to the bank than 95% of the reference crops are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.core.latent import slerp
from engine.eval import metrics
from engine.eval.features import image_features
from engine.train.distance import sample_distance_levels
from engine.train.images import load_image_folder, random_crops, whole_pictures

Generate = Callable[[torch.Tensor], torch.Tensor]  # z (B, latent_dim) -> images (B, 3, S, S) in [-1, 1], CPU
BANK_CROPS = 256
BANK_FLOATS = 2**25  # memory bound of the crop bank (128 MB of float32): fewer crops at 256 and 512 px
WALK_KEYS = 5  # keyframe latents of the walk: 4 slerp segments
WALK_STEPS = 16  # frames per segment
PAIRS = 8  # closest sample / bank pairs in the figure
CHUNK = 16  # generator batch
COPY_QUANTILE = 0.05

# key -> (meaning, better): the report's table rows, in order.
ROWS: dict[str, tuple[str, str]] = {
    "sample_distance": ("sliced Wasserstein distance of 7x7 patches, samples vs real crops", "lower"),
    "sample_distance_fine": ("its finest pyramid level alone: edges, strokes, grain", "lower"),
    "sample_distance_coarse": ("its coarsest level alone (side 16 px): colours and layout", "lower"),
    "sample_distance_real": ("sample_distance of held-apart real crops: the floor a perfect model scores", "-"),
    "sample_distance_fine_real": ("the same, finest level", "-"),
    "sample_distance_coarse_real": ("the same, coarsest level", "-"),
    "kid": ("KID: unbiased MMD^2, cubic kernel, random conv features (mean over subsets)", "lower, ~0 = same"),
    "kid_std": ("KID's standard deviation over the subsets", "-"),
    "precision": ("share of samples inside the real crops' 5-NN balls (look real)", "higher"),
    "recall": ("share of real crops inside the samples' 5-NN balls (variety covered)", "higher"),
    "density": ("real balls holding each sample, / k (about 1 for a real-like set)", "higher, ~1"),
    "coverage": ("share of real crops whose ball holds a sample", "higher"),
    "diversity_features": ("mean pairwise feature distance between samples", "near the real"),
    "diversity_features_real": ("the same between real crops", "-"),
    "diversity_pixels": ("mean pairwise RMS pixel difference between samples (0..1)", "near the real"),
    "diversity_pixels_real": ("the same between real crops", "-"),
    "diversity_palette": ("mean pairwise L1 distance between samples' mean colours (0..1)", "near the real"),
    "diversity_palette_real": ("the same between real crops", "-"),
    "nearest_median": ("median RMS distance of a sample to its nearest bank picture (0..1)", "higher = novel"),
    "nearest_median_real": ("the same for held-apart real crops (what a copy scores)", "-"),
    "nearest_ratio": ("nearest_median / nearest_median_real", "above 1"),
    "copy_share": ("share of samples closer to the bank than 95% of the real crops", "lower"),
    "walk_change_median": ("median mean-abs pixel change between walk frames (0..1)", "-"),
    "walk_change_p99": ("99th percentile of that change", "-"),
    "walk_change_max": ("worst frame-to-frame change", "-"),
    "walk_jump_ratio": ("worst / median change (1 = even; spikes are jumps)", "lower, ~1-3"),
    "axis_share": ("spectral energy share on the frequency axes, samples (stripes, plaid)", "near the real"),
    "axis_share_real": ("the same for real crops", "-"),
    "axis_ratio": ("axis_share / axis_share_real", "~1; >>1 = stripes"),
    "detail_share": (
        "spectral energy share at periods of 4 px or less, samples (edges, fine strokes)",
        "near the real",
    ),
    "detail_share_real": ("the same for real crops", "-"),
    "detail_ratio": ("detail_share / detail_share_real", "~1; <<1 = blur, >>1 = grain"),
}


@dataclass
class ImageEval:
    """What evaluate_generator measured: the numbers (ROWS' keys) and what the figures show."""

    numbers: dict[str, float]
    samples: torch.Tensor  # (N, 3, S, S)
    pairs: tuple[torch.Tensor, torch.Tensor, list[str]]  # (PAIRS samples, their nearest bank pictures, captions)
    nearest: torch.Tensor  # (N,) samples' nearest distances
    nearest_real: torch.Tensor  # (N,) reference crops' nearest distances
    walk: torch.Tensor  # (T, 3, S, S) walk frames
    changes: torch.Tensor  # (T - 1,) frame-to-frame changes


def load_pictures(folder: str | os.PathLike[str], size: int) -> list[torch.Tensor]:
    """The folder's pictures as the trainer reads them: uint8 (3, H, W), short side >= size."""
    return load_image_folder(folder, size)[0]


def _bank(pictures: list[torch.Tensor], size: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """The memory bank (whole pictures, mirrored ones, random crops) and a label per entry."""
    whole = whole_pictures(pictures, size)
    crops = min(BANK_CROPS, max(16, BANK_FLOATS // (3 * size * size)))
    bank = torch.cat([whole, whole.flip(3), random_crops(pictures, crops, size, torch.Generator().manual_seed(seed))])
    p = len(pictures)
    labels = [f"picture {i + 1}" for i in range(p)] + [f"picture {i + 1}, flipped" for i in range(p)]
    return bank, labels + ["a crop"] * crops


def generate_all(generate: Generate, z: torch.Tensor) -> torch.Tensor:
    """Generator outputs for latents z (N, D), in chunks: (N, 3, S, S) float32 on the CPU."""
    with torch.inference_mode():
        return torch.cat([generate(part).detach().float().cpu() for part in z.split(CHUNK)]).clamp_(-1.0, 1.0)


def walk_latents(latent_dim: int, gen: torch.Generator) -> torch.Tensor:
    """Latents along the show's slerp path through WALK_KEYS random keys: (T, latent_dim), T = 4 * 16 + 1."""
    keys = torch.randn(WALK_KEYS, latent_dim, generator=gen).numpy()
    frames = [slerp(keys[k], keys[k + 1], i / WALK_STEPS) for k in range(WALK_KEYS - 1) for i in range(WALK_STEPS)]
    return torch.from_numpy(np.stack([*frames, keys[-1].astype(np.float32)]))


def evaluate_generator(
    generate: Generate, latent_dim: int, pictures: list[torch.Tensor], size: int, samples: int, seed: int
) -> ImageEval:
    """Every number of ROWS for a generator of size x size pictures; see the module docstring."""
    gen = torch.Generator().manual_seed(seed)
    fake = generate_all(generate, torch.randn(samples, latent_dim, generator=gen))
    real = random_crops(pictures, samples, size, torch.Generator().manual_seed(seed + 1))
    reference = random_crops(pictures, samples, size, torch.Generator().manual_seed(seed + 2))
    f_fake, f_real = image_features(fake), image_features(real)  # (N, 672) each
    numbers = _fidelity(fake, real, f_fake, f_real, seed) | _diversity(fake, real, f_fake, f_real)
    numbers |= {f"{k}_real": v for k, v in _distances(reference, real, seed).items()}
    bank, labels = _bank(pictures, size, seed + 3)
    nearest, index = metrics.nearest_rms(fake, bank)
    nearest_real, _ = metrics.nearest_rms(reference, bank)
    numbers |= _novelty(nearest, nearest_real)
    order = nearest.argsort()[: min(PAIRS, samples)]
    captions = [f"{float(nearest[i]):.3f} to {labels[int(index[i])]}" for i in order]
    walk = generate_all(generate, walk_latents(latent_dim, gen))
    changes = metrics.frame_changes(walk)
    stats = metrics.change_stats(changes)
    numbers |= {f"walk_change_{k}": stats[k] for k in ("median", "p99", "max")} | {"walk_jump_ratio": stats["ratio"]}
    axis, axis_real = float(metrics.axis_energy_share(fake).mean()), float(metrics.axis_energy_share(real).mean())
    numbers |= {"axis_share": axis, "axis_share_real": axis_real, "axis_ratio": axis / max(axis_real, 1e-12)}
    detail, detail_real = (float(metrics.detail_energy_share(x).mean()) for x in (fake, real))
    numbers |= {
        "detail_share": detail,
        "detail_share_real": detail_real,
        "detail_ratio": detail / max(detail_real, 1e-12),
    }
    return ImageEval(
        numbers={k: numbers[k] for k in ROWS},
        samples=fake,
        pairs=(fake[order], bank[index[order]], captions),
        nearest=nearest,
        nearest_real=nearest_real,
        walk=walk,
        changes=changes,
    )


def _fidelity(
    fake: torch.Tensor, real: torch.Tensor, f_fake: torch.Tensor, f_real: torch.Tensor, seed: int
) -> dict[str, float]:
    kid_mean, kid_std = metrics.kid(f_real, f_fake, seed=seed)
    return {**_distances(fake, real, seed), "kid": kid_mean, "kid_std": kid_std, **metrics.prdc(f_real, f_fake)}


def _distances(images: torch.Tensor, real: torch.Tensor, seed: int) -> dict[str, float]:
    """The patch distance of `images` (N, 3, S, S) to `real`: the levels' mean, the finest, the coarsest.

    Measured for the held-apart crops too: two sets of crops of the same pictures are
    not 0 apart (N patches per level, crops of different places), so that floor is
    what a perfect generator scores. A reading aid, not an offset: the distance of two
    finite sets is not the model's distance plus the floor (docs/TRAINING.md).
    """
    levels = sample_distance_levels(images, real, seed=seed)
    return {
        "sample_distance": sum(levels) / len(levels),
        "sample_distance_fine": levels[0],
        "sample_distance_coarse": levels[-1],
    }


def _diversity(fake: torch.Tensor, real: torch.Tensor, f_fake: torch.Tensor, f_real: torch.Tensor) -> dict[str, float]:
    return {
        "diversity_features": metrics.mean_pairwise_distance(f_fake),
        "diversity_features_real": metrics.mean_pairwise_distance(f_real),
        "diversity_pixels": metrics.pixel_pairwise_rms(fake),
        "diversity_pixels_real": metrics.pixel_pairwise_rms(real),
        "diversity_palette": float(metrics.palette_spread(fake)),
        "diversity_palette_real": float(metrics.palette_spread(real)),
    }


def _novelty(nearest: torch.Tensor, nearest_real: torch.Tensor) -> dict[str, float]:
    median, median_real = float(nearest.median()), float(nearest_real.median())
    threshold = float(torch.quantile(nearest_real.double(), COPY_QUANTILE))
    return {
        "nearest_median": median,
        "nearest_median_real": median_real,
        # Capped so the metadata stays plain JSON (no Infinity) when every reference crop is in the bank.
        "nearest_ratio": min(median / median_real, 1e6) if median_real > 0 else 1e6 if median > 0 else 1.0,
        "copy_share": float((nearest <= threshold).double().mean()),
    }
