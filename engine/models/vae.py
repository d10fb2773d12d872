"""Convolutional VAE (model kind "vae"): pictures to latents and back, for scenes that morph
between an artist's own pictures.

- Latent: spatial, `latent_channels` maps of `latent_side` x `latent_side` (default 4 x 8 x 8 =
  256 numbers for a 128 px picture). The show sees it flattened, z (B, latent_dim) with
  latent_dim = channels * side * side in (C, H, W) order, so every latent path, offset knob
  and the pulse work on a VAE scene as on a GAN one. Spatial rather than one vector: the
  decoder then starts from a map that already says where things are, so the 8x8 layout of a
  picture survives into its reconstruction (docs/TRAINING.md, "The VAE family", has the
  measured comparison against a 4x4 latent of the same length).
- Encoder (used when a scene loads, never per frame): from-RGB conv, then per halving a 3x3
  conv, LeakyReLU and 2x2 average pooling, widening to `channels`; a 1x1 conv gives the
  posterior's mean and log-variance maps.
- Decoder (the per-frame model): a 3x3 conv from the latent to `channels` at latent_side,
  then per doubling bilinear upsampling (no transposed convolutions: they leave
  checkerboards) and one or two 3x3 convs with LeakyReLU and pixel norm (batch-independent,
  so batch 1 at show time decodes what training decoded), channels halving down to
  `min_channels`; the last doubling goes straight to RGB, so no full-size hidden map is
  paid for (the 128 px layers cost most per channel, H * W * C_in * C_out * 9).
  Channels_last activations as in the GAN families (oneDNN on the CPU).

`VAE.forward(z)` decodes, so a VAE plays wherever a GAN generator does (engine.stage.deck);
`VAE.encode(img)` gives the posterior mean, the latent a picture is shown at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.config import config_from_dict
from engine.models.gan import _LRELU, init_weights, pixel_norm

Tensor = torch.Tensor

KIND = "vae"
_SIZES = (64, 128, 256, 512)
_MAX_CHANNELS = 1024
_LOGVAR_RANGE = (-12.0, 6.0)  # posterior log-variance clamp: keeps exp() finite in fp16 and early training


@dataclass
class VAEConfig:
    """Constructor arguments of VAE; stored in model files.

    size: picture side in px (64, 128, 256 or 512).
    latent_channels, latent_side: the latent map (C, side, side); side a power of two,
        at least 2 and at most size / 4.
    channels: feature maps at the latent side, halved per doubling, floored at min_channels.
    min_channels: the decoder's thinnest maps (its top resolutions).
    two_convs_up_to: decoder blocks whose output side is at most this use two convs.
    """

    size: int = 128
    latent_channels: int = 4
    latent_side: int = 8
    channels: int = 128
    min_channels: int = 16
    two_convs_up_to: int = 32

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what was expected."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"VAE config '{f.name}' must be an integer, got {value!r}")
        if self.size not in _SIZES:
            raise ValueError(f"VAE config 'size' must be one of {list(_SIZES)}, got {self.size}")
        s = self.latent_side
        if not 2 <= s <= self.size // 4 or s & (s - 1):
            raise ValueError(
                f"VAE config 'latent_side' must be a power of two from 2 to size/4 ({self.size // 4}), got {s}"
            )
        if not 1 <= self.latent_channels <= 64:
            raise ValueError(f"VAE config 'latent_channels' must be from 1 to 64, got {self.latent_channels}")
        if not 1 <= self.min_channels <= self.channels <= _MAX_CHANNELS:
            raise ValueError(
                f"VAE config needs 1 <= min_channels <= channels <= {_MAX_CHANNELS}, "
                f"got min_channels {self.min_channels}, channels {self.channels}"
            )
        t = self.two_convs_up_to
        if not 1 <= t <= self.size:
            raise ValueError(f"VAE config 'two_convs_up_to' must be from 1 to size ({self.size}), got {t}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VAEConfig:
        """Build and validate a config; unknown keys are an error, missing keys default."""
        return config_from_dict(cls, data, "VAE config")

    @property
    def latent_dim(self) -> int:
        """Length of the flattened latent the show steps through."""
        return self.latent_channels * self.latent_side * self.latent_side

    @property
    def doublings(self) -> int:
        """Decoder upsamplings from latent_side to size."""
        return int(math.log2(self.size // self.latent_side))

    def channels_at(self, doubling: int) -> int:
        """Decoder maps after `doubling` upsamplings (0: at the latent side); encoder mirrors it."""
        return max(self.channels >> doubling, self.min_channels)


VAE_PRESETS: dict[str, dict[str, int]] = {
    # live: 128 px; the decoder at batch 1 on one CPU thread in the GAN live preset's range
    # (`run_show.py bench --models` prints both), so the default scene's 60 fps hold.
    "live": {"size": 128, "latent_channels": 4, "latent_side": 8, "channels": 128, "min_channels": 16},
    "hd": {"size": 256, "latent_channels": 8, "latent_side": 16, "channels": 192, "min_channels": 16},
    "gpu": {"size": 512, "latent_channels": 8, "latent_side": 16, "channels": 512, "min_channels": 32},
}


def vae_preset_config(preset: str, **overrides: int | None) -> VAEConfig:
    """The config of `preset` with the overrides that are not None; ValueError if bad."""
    if preset not in VAE_PRESETS:
        raise ValueError(f"VAE 'preset' must be one of {list(VAE_PRESETS)}, got {preset!r}")
    values: dict[str, Any] = dict(VAE_PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "min_channels" not in overrides or overrides["min_channels"] is None:
        values["min_channels"] = min(values["min_channels"], values["channels"])
    return VAEConfig.from_dict(values)


class _ConvNorm(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, H, W): 3x3 conv (reflect padding, no bias), LeakyReLU, pixel norm."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect", bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return pixel_norm(F.leaky_relu(self.conv(x), _LRELU))


class Encoder(nn.Module):
    """image (B, 3, S, S) in [-1, 1] -> (mean, logvar), each (B, latent_channels, side, side)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        n = config.doublings
        self.from_rgb = nn.Conv2d(3, config.channels_at(n), 3, padding=1, padding_mode="reflect")
        # Halving k takes the map with channels_at(n - k) to channels_at(n - k - 1).
        self.downs = nn.ModuleList(
            [nn.Conv2d(config.channels_at(i), config.channels_at(i - 1), 3, padding=1) for i in range(n, 0, -1)]
        )
        self.mid = nn.Conv2d(config.channels_at(0), config.channels_at(0), 3, padding=1)
        self.to_stats = nn.Conv2d(config.channels_at(0), 2 * config.latent_channels, 1)
        self.latent_channels = config.latent_channels

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor]:
        x = F.leaky_relu(self.from_rgb(img), _LRELU)
        for down in self.downs:
            x = F.avg_pool2d(F.leaky_relu(down(x), _LRELU), 2)
        x = F.leaky_relu(self.mid(x), _LRELU)
        mean, logvar = self.to_stats(x).split(self.latent_channels, dim=1)
        return mean, logvar.clamp(*_LOGVAR_RANGE)


class Decoder(nn.Module):
    """latent map (B, latent_channels, side, side) -> image (B, 3, S, S) in [-1, 1]."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.entry = _ConvNorm(config.latent_channels, config.channels_at(0))
        blocks = []
        side = config.latent_side
        for d in range(1, config.doublings):  # the last doubling is the to-RGB one
            side *= 2
            c_in, c_out = config.channels_at(d - 1), config.channels_at(d)
            convs = [_ConvNorm(c_in, c_out)] + ([_ConvNorm(c_out, c_out)] if side <= config.two_convs_up_to else [])
            blocks.append(nn.Sequential(*convs))
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.Conv2d(config.channels_at(config.doublings - 1), 3, 3, padding=1, padding_mode="reflect")

    def forward(self, latent: Tensor) -> Tensor:
        x = self.entry(latent)
        for block in self.blocks:
            x = block(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.tanh(self.to_rgb(x))


class VAE(nn.Module):
    """forward(z (B, latent_dim)) -> (B, 3, S, S) in [-1, 1]; encode(img) -> posterior mean (B, latent_dim).

    The interface of a GAN generator (forward(z), .config.size, .config.latent_dim), so scenes,
    the show and the renderer play either.
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self._shape = (config.latent_channels, config.latent_side, config.latent_side)
        init_weights(self)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack the keyword

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"VAE decoder expects z of shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        latent = z.view(z.shape[0], *self._shape).contiguous(memory_format=torch.channels_last)
        return self.decoder(latent)

    def posterior(self, img: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, logvar), each (B, latent_dim), for pictures (B, 3, S, S) in [-1, 1]."""
        s = self.config.size
        if img.dim() != 4 or tuple(img.shape[1:]) != (3, s, s):
            raise ValueError(f"VAE encoder expects pictures (B, 3, {s}, {s}), got {tuple(img.shape)}")
        mean, logvar = self.encoder(img.contiguous(memory_format=torch.channels_last))
        return mean.flatten(1), logvar.flatten(1)

    def encode(self, img: Tensor) -> Tensor:
        """The posterior mean (B, latent_dim): the latent a picture is shown at."""
        return self.posterior(img)[0]
