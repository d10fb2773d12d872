"""Image features from a FIXED RANDOM convolutional network, for the evaluation report.

Why random: no pretrained network (Inception, VGG, CLIP) can be downloaded here,
and the report must not depend on one. Convolutions with random, untrained
filters followed by a nonlinearity still respond to local structure, and the
mean and standard deviation of each filter's response over the picture are
texture statistics: random shallow networks were shown to synthesise textures
about as well as trained ones (Ustyuzhaninov et al. 2016, "Texture synthesis
using shallow convolutional networks with random filters"), and random
networks are good feature extractors for style and texture when their
activations are kept smooth (SWAG, Wang et al. 2021). They know nothing about
objects or faces: they compare colour, texture and edge statistics at several
scales, which is what a GAN trained on a few paintings is asked to reproduce.

The network: LAYERS 3x3 convolutions (reflect padding, no bias), each followed
by a ReLU; the first keeps the resolution, every later one halves it (stride
2), so layer k looks at structures about 2^k pixels across. Weights are He
normal from a torch.Generator seeded with SEED, so every run on every machine
builds the same network. Each layer's activations (B, C, H, W) are pooled over
H and W into their mean and standard deviation (B, 2C); the feature vector is
all layers' pooled statistics concatenated: 2 * sum(CHANNELS) = 672 dims.

Numbers measured in these features (KID, precision/recall, diversity) are only
comparable between reports made with the same FEATURE_NET version string
(network layout, seed and input size). Images are fed at the model's own size
(no resizing), so the version string names the size too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHANNELS = (16, 32, 64, 96, 128)  # output channels per layer; sum 336, so 672 features
SEED = 20161
VERSION = "randconv-v1"  # change when CHANNELS, SEED or the pooling change
CHUNK = 32  # images per forward pass (bounds memory at 512 px)


def feature_net_version(size: int) -> str:
    """The version string a report records: network layout plus the input size in px."""
    return f"{VERSION}-{'.'.join(str(c) for c in CHANNELS)}-seed{SEED}@{size}px"


def _weights() -> list[torch.Tensor]:
    """The fixed random filters, He normal (std sqrt(2 / fan_in)): [(C_out, C_in, 3, 3)] per layer."""
    gen = torch.Generator().manual_seed(SEED)
    weights, c_in = [], 3
    for c_out in CHANNELS:
        fan_in = c_in * 9
        weights.append(torch.randn(c_out, c_in, 3, 3, generator=gen) * (2.0 / fan_in) ** 0.5)
        c_in = c_out
    return weights


_WEIGHTS: list[torch.Tensor] | None = None  # built on first use, then cached (no import-time work)


@torch.inference_mode()
def _pooled(x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    """(B, 3, S, S) in [-1, 1] -> (B, 2 * sum(CHANNELS)) mean and std of every layer's ReLU output."""
    stats = []
    for i, w in enumerate(weights):
        x = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, stride=1 if i == 0 else 2))  # (B, C, H', W')
        flat = x.flatten(2)  # (B, C, H' * W')
        stats += [flat.mean(dim=2), flat.std(dim=2, unbiased=False)]  # (B, C) each
    return torch.cat(stats, dim=1)


def image_features(images: torch.Tensor) -> torch.Tensor:
    """Feature vectors (N, 672) float32 on the CPU of images (N, 3, S, S) in [-1, 1], S >= 32."""
    global _WEIGHTS
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"image_features needs (N, 3, S, S) images, got {tuple(images.shape)}")
    if min(images.shape[-2:]) < 2 ** len(CHANNELS):
        raise ValueError(f"image_features needs images of at least {2 ** len(CHANNELS)} px, got {images.shape[-1]}")
    if _WEIGHTS is None:
        _WEIGHTS = _weights()
    images = images.detach().float().cpu()
    if len(images) == 0:
        return torch.empty(0, 2 * sum(CHANNELS))
    return torch.cat([_pooled(part, _WEIGHTS) for part in images.split(CHUNK)])
