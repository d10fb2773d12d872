"""Image GAN: a small generator fast enough for a live show at batch 1 on a CPU.

The generator is a progressive-GAN-style stack without the progressive growing:
a linear layer makes a 4x4 feature map, then each block doubles the resolution
with nearest-neighbour upsampling followed by 3x3 convolutions. Upsample+conv
(rather than transposed convolutions) avoids checkerboard artefacts. Every
convolution is followed by LeakyReLU and pixel norm; pixel norm normalises each
pixel's feature vector on its own, so the output does not depend on the batch
and train mode equals eval mode at batch size 1 (BatchNorm would not).

Speed matters more than capacity here: the channel count halves per block down
to ``min_channels`` and blocks at 128 px and above use a single convolution,
because on a CPU a 3x3 conv costs H * W * C_in * C_out * 9 and the top blocks
dominate. Activations are kept channels_last (NHWC in memory), which oneDNN
runs about 1.5x faster on the CPU; the output tensor therefore has NHWC
strides, so ``img.permute(0, 2, 3, 1)`` is a free view for display code.
Measured on 2 CPU cores, batch 1, default config: ~4 ms at 128 px, ~10 ms at 256.

The discriminator mirrors the generator (residual down blocks, same channel
schedule) with spectral norm on every layer, bias-free convolutions, a
minibatch-stddev feature at 4x4 (against mode collapse on tiny datasets) and
sum pooling before the final linear layer (see the comments for why).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.models.config import config_from_dict

Tensor = torch.Tensor

_MIN_SIZE = 64
_MAX_SIZE = 512
_MAX_LATENT = 4096
_MAX_CHANNELS = 2048
_LRELU = 0.2
_SINGLE_CONV_FROM = 128  # output side from which blocks use one conv
ARCH = "classic"


@dataclass
class GANConfig:
    """Constructor arguments of Generator/Discriminator; stored in model files.

    size: output side in pixels, a power of two from 64 to 512.
    latent_dim: length of the latent vector z.
    channels: feature maps at 4x4, halved per upsampling, floored at min_channels.
    min_channels: smallest feature-map count (used at the high resolutions).
    arch: always "classic"; files written before the "fast" family existed lack
        it, and a missing arch means this one (engine.models.gan_arch).
    """

    size: int = 128
    latent_dim: int = 128
    channels: int = 256
    min_channels: int = 16
    arch: str = ARCH

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what was expected."""
        validate_gan_fields(self, ARCH, "classic GAN")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GANConfig:
        """Build and validate a config; unknown keys are an error, missing keys default."""
        return config_from_dict(cls, data, "GAN config")

    @property
    def num_blocks(self) -> int:
        """Number of 2x upsampling blocks from 4x4 to size x size."""
        return int(math.log2(self.size)) - 2

    def channels_at(self, block: int) -> int:
        """Feature maps after `block` upsamplings (block 0 is the 4x4 map)."""
        return max(self.channels >> block, self.min_channels)


def validate_gan_fields(config: Any, arch: str, family: str) -> None:
    """The checks every GAN family's config shares (engine.models.gan_arch): its arch, integer
    fields, a power-of-two size, latent length and channel range; ValueError naming the field."""
    if config.arch != arch:
        raise ValueError(f"{family} config 'arch' must be {arch!r}, got {config.arch!r}")
    for f in fields(config):
        value = getattr(config, f.name)
        # bool is an int subclass; reject it so `size: true` in a file fails. Text fields
        # (arch, the fast family's upsample) are checked by name, here and in their family.
        if isinstance(f.default, int) and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"GAN config '{f.name}' must be an integer, got {value!r}")
    if not (_MIN_SIZE <= config.size <= _MAX_SIZE) or config.size & (config.size - 1):
        raise ValueError(f"GAN config 'size' must be a power of two from {_MIN_SIZE} to {_MAX_SIZE}, got {config.size}")
    if not 1 <= config.latent_dim <= _MAX_LATENT:
        raise ValueError(f"GAN config 'latent_dim' must be from 1 to {_MAX_LATENT}, got {config.latent_dim}")
    if not 1 <= config.min_channels <= config.channels <= _MAX_CHANNELS:
        raise ValueError(
            "GAN config needs 1 <= min_channels <= channels <= "
            f"{_MAX_CHANNELS}, got min_channels={config.min_channels}, channels={config.channels}"
        )


def pixel_norm(x: Tensor) -> Tensor:
    """Normalise each pixel's feature vector to unit RMS; x: (B, C, ...), same shape out."""
    return x * torch.rsqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)


class _ConvAct(nn.Module):
    """3x3 conv -> LeakyReLU -> pixel norm; keeps H and W.

    Reflect padding: with zero padding the generator used the image border as a
    position signal and on 4 images drew picture frames and border-parallel
    stripes. No bias: a bias adds the same vector at every pixel, and after
    pixel norm that washed out spatial and per-z variation (samples collapsed
    to one picture); colour offsets live in the to-RGB biases instead.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect", bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # In place: the conv output is not needed by the conv's backward pass.
        return pixel_norm(F.leaky_relu_(self.conv(x), _LRELU))


class _UpBlock(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, 2H, 2W): nearest upsample then 1 or 2 convs."""

    def __init__(self, c_in: int, c_out: int, convs: int) -> None:
        super().__init__()
        layers = [_ConvAct(c_in, c_out)] + [_ConvAct(c_out, c_out) for _ in range(convs - 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Generator(nn.Module):
    """z (B, latent_dim) -> image (B, 3, size, size) in [-1, 1] (channels_last strides).

    Skip architecture (StyleGAN2's "skip" generator): every resolution has its
    own 1x1 to-RGB layer and the image is the sum of all of them, each
    upsampled bilinearly to full size. Without it, the spatial variation that z
    sets at 4x4 faded block by block (LeakyReLU and pixel norm add a constant
    part at every layer) and on 4 images the generator learned flat colour or
    picture frames from the zero padding; with it, coarse layout and colour
    reach the output directly from the low resolutions and are learned first.
    """

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c0 = config.channels_at(0)
        self.fc = nn.Linear(config.latent_dim, c0 * 16, bias=False)
        self.base = _ConvAct(c0, c0)
        blocks = []
        for i in range(1, config.num_blocks + 1):
            # Blocks at 128 px and above cost 4x the one below per conv: a single
            # conv there keeps batch-1 CPU inference fast (the brief: <8 ms at 128).
            convs = 1 if 4 << i >= _SINGLE_CONV_FROM else 2
            blocks.append(_UpBlock(config.channels_at(i - 1), config.channels_at(i), convs))
        self.blocks = nn.ModuleList(blocks)
        self.to_rgbs = nn.ModuleList([nn.Conv2d(config.channels_at(i), 3, 1) for i in range(config.num_blocks + 1)])
        # The sum of num_blocks + 1 unit-variance RGB maps, scaled back to unit variance.
        self.rgb_gain = 1.0 / math.sqrt(config.num_blocks + 1)
        init_weights(self)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack the keyword

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"Generator expects z of shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        c0 = self.config.channels_at(0)
        x = self.fc(pixel_norm(z)).view(z.shape[0], c0, 4, 4)  # (B, C0, 4, 4)
        # channels_last (NHWC in memory) is what oneDNN convolutions like best
        # on the CPU: about 1.5x faster at batch 1 than NCHW.
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.base(pixel_norm(F.leaky_relu(x, _LRELU)))
        rgb = self.to_rgbs[0](x)  # (B, 3, 4, 4)
        for block, to_rgb in zip(self.blocks, self.to_rgbs[1:]):
            x = block(x)  # (B, C_i, 2H, 2W)
            rgb = F.interpolate(rgb, scale_factor=2.0, mode="bilinear", align_corners=False)
            rgb = rgb + to_rgb(x)  # (B, 3, 2H, 2W)
        return torch.tanh(rgb * self.rgb_gain)  # (B, 3, size, size)


def _sn_conv(c_in: int, c_out: int, kernel: int) -> nn.Module:
    # No bias: with spectral norm the weights are bounded but biases are not, and
    # after sum pooling a bias step moves every logit alike. With Adam that made
    # D's output swing up and down for real and fake together instead of
    # separating them (measured: D loss stuck near 2.0 for 150 steps).
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False))


class _DownBlock(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, H/2, W/2): residual block, conv(s) then avgpool."""

    def __init__(self, c_in: int, c_out: int, convs: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([_sn_conv(c_in, c_in, 3) for _ in range(convs - 1)] + [_sn_conv(c_in, c_out, 3)])
        self.skip = _sn_conv(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for conv in self.convs:
            h = F.leaky_relu(conv(h), _LRELU)
        h = F.avg_pool2d(h, 2)
        # Residual path keeps gradients flowing to the top layers early in training.
        return h + self.skip(F.avg_pool2d(x, 2))


class Discriminator(nn.Module):
    """image (B, 3, size, size) -> logits (B,); mirror of Generator with spectral norm."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        n = config.num_blocks
        self.from_rgb = _sn_conv(3, config.channels_at(n), 1)
        # Block i takes the map at side 4 << i down to 4 << (i - 1); like the
        # generator, blocks at >= 128 px use one conv to keep training affordable.
        self.blocks = nn.Sequential(
            *[
                _DownBlock(config.channels_at(i), config.channels_at(i - 1), 1 if 4 << i >= _SINGLE_CONV_FROM else 2)
                for i in range(n, 0, -1)
            ]
        )
        c0 = config.channels_at(0)
        self.final_conv = _sn_conv(c0 + 1, c0, 3)  # +1: the minibatch-stddev map
        self.out = spectral_norm(nn.Linear(c0, 1))
        init_weights(self)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack the keyword

    def forward(self, img: Tensor) -> Tensor:
        size = self.config.size
        if img.dim() != 4 or tuple(img.shape[1:]) != (3, size, size):
            raise ValueError(f"Discriminator expects images (B, 3, {size}, {size}), got {tuple(img.shape)}")
        # channels_last: ~1.5x faster CPU training than NCHW (oneDNN's preferred layout).
        x = img.contiguous(memory_format=torch.channels_last)
        x = F.leaky_relu(self.from_rgb(x), _LRELU)
        x = self.blocks(x)  # (B, C0, 4, 4)
        x = torch.cat([x, _minibatch_std(x)], dim=1)  # (B, C0 + 1, 4, 4)
        x = F.leaky_relu(self.final_conv(x), _LRELU)
        # Sum (not mean) pooling, as in SN-GAN: with every layer spectrally
        # normalised, mean pooling left D's output nearly blind to the image at init.
        x = x.sum(dim=(2, 3))  # (B, C0)
        return self.out(x).squeeze(1)  # (B,)


def _minibatch_std(x: Tensor, group: int = 4) -> Tensor:
    """One extra feature map: mean stddev across a group of samples; x: (B, C, H, W).

    Lets D notice when G produces the same picture for every z (mode collapse).
    Groups of `group` samples (or the whole batch if it does not divide) keep the
    statistic cheap and batch-size independent.
    """
    b, _, h, w = x.shape
    g = group if b % group == 0 else b
    y = x.view(g, -1, *x.shape[1:])  # (G, B/G, C, H, W)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/G,)
    return y.repeat(g).view(b, 1, 1, 1).expand(b, 1, h, w)  # (B, 1, H, W)


@torch.no_grad()
def init_weights(module: nn.Module) -> None:
    """Weights ~ N(0, 1/fan_in), biases 0, for every conv and linear layer.

    Together with per-layer Adam learning rates lr / sqrt(fan_in) (see
    engine.train.common.equalized_param_groups) every layer then moves by the
    same relative amount per step: ProGAN's "equalized learning rate", done in
    the optimiser so the model and its files stay plain.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            # Under spectral norm the raw tensor is parametrizations.weight.original.
            param = getattr(m, "parametrizations", None)
            weight = cast(torch.Tensor, param.weight.original if param is not None else m.weight)
            nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(weight[0].numel()))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
