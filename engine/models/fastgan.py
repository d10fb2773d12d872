"""FastGAN-style image generator for few pictures and a live loop (the "fast" arch of kind "gan").

After Liu et al. 2021, "Towards faster and stabilized GAN training for
high-fidelity few-shot image synthesis", with the changes a 60 fps CPU show needs:

- Generator: a linear layer makes a 4x4 map, then each block doubles the side
  with bilinear upsampling (config `upsample`; _UpBlock says why not nearest) and one or two
  3x3 convolutions (no transposed convolutions: they leave checkerboards). Every conv adds per-pixel noise
  with a learned per-channel strength, then LeakyReLU and pixel norm
  (batch-independent, so batch 1 at show time draws what training drew;
  FastGAN's BatchNorm would not). Skip-layer excitation (SLE) lets every map
  at side s gate the channels of the map at side 8s: 4->32, 8->64, 16->128,
  32->256, 64->512. The gates carry global style from the coarse layers to
  the thin fine ones at almost no cost.
- Noise is random per forward pass only in train mode (drawn from the
  generator set with `set_training_noise`, so a run stays reproducible). In
  eval mode every layer adds a mix of NOISE_BASES fixed noise maps (buffers
  drawn once when the model is built and stored in the model file) with unit
  weights that a fixed projection of z sets: a held latent gives a still frame,
  the live show does not flicker, sample i of a batch equals the same z at
  batch 1, and a latent walk changes the detail smoothly.
- Speed: channels halve per block down to `min_channels`, and only blocks up to
  `two_convs_up_to` px have a second conv, so the high resolutions (which cost
  H * W * C_in * C_out * 9 per conv) stay thin. Activations are channels_last,
  as in engine.models.gan.Generator (about 1.5x faster with oneDNN on a CPU).
- Discriminator: residual spectral-norm down blocks (engine.models.gan's) and a
  hinge logit, plus FastGAN's self-supervision: two small decoders rebuild the
  real image D was shown from D's own features, the whole image from the 8x8
  map and one random quarter from its 8x8 part of the 16x16 map (both at
  `recon_side` px). The L1 loss of that (FastGAN uses LPIPS, which cannot be
  downloaded here) makes D learn features that describe the picture rather
  than memorise four of them.
- Optionally (`d_small`) D has a second, whole-picture path, as FastGAN's D has
  one on a downscaled copy: the image average-pooled to d_small px, its own
  small down stack and logit. Blurred that far, the picture's colours and layout
  are all that path sees, so its gradient asks G for a composition where the
  main path, dominated by texture, let the samples be textures all over (the
  fast family's patch distance is lost at the pyramid's coarsest level,
  docs/TRAINING.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.config import config_from_dict

# The classic family's building blocks are shared rather than copied: the same
# down block, spectral-norm conv, minibatch-stddev feature, init and pixel norm.
from engine.models.gan import (
    _LRELU,
    _DownBlock,
    _minibatch_std,
    _sn_conv,
    init_weights,
    pixel_norm,
    validate_gan_fields,
)

Tensor = torch.Tensor

ARCH = "fast"
SLE_RATIO = 8  # a map at side s gates the map at side SLE_RATIO * s
# Eval-mode noise: each layer mixes this many fixed maps with weights set by z. One fixed
# map for all z (the first version) gave every sample the same fine detail: on the deep
# field, the same sparkles in the same places in every sample (the report's recall 0).
NOISE_BASES = 8
_D_MIN_CHANNELS = 16  # D keeps some width at the high resolutions even when G is thinner
_DECODER_CHANNELS = 64  # the reconstruction decoders' widest map (halved per doubling, floor 16)
UPSAMPLE_MODES = ("bilinear", "bicubic", "nearest")  # FastGANConfig.upsample (see _UpBlock)
# D's fine path (d_fine) sees the finest band times this gain. Spectral norm caps each layer's
# gain at 1, so the band (picture minus its 2x blur: std 0.056 on the photos' crops against the
# picture's 0.48, 0.12 against 0.57 on the paintings) moves D's logits far less than the colours
# and layout do; the gain gives it a voice of its own.
FINE_GAIN = 8.0


@dataclass
class FastGANConfig:
    """Constructor arguments of FastGenerator/FastDiscriminator; stored in model files.

    size: output side in pixels, a power of two from 64 to 512.
    latent_dim: length of the latent vector z.
    channels: feature maps at 4x4, halved per upsampling, floored at min_channels.
    min_channels: smallest feature-map count (used at the high resolutions).
    two_convs_up_to: blocks whose output side is at most this use two convs, the
        rest one (a power of two from 4, meaning none, to size).
    d_width: D's feature maps are this many times G's at each side (training only:
        D is not in the model file, so a wider D costs the live show nothing).
    d_small: side in px of D's second, whole-picture path (the image pooled to
        it), a power of two from 8 to size / 2; 0: none (training only, as d_width).
        0 here, which is what a state file from before the path means; the presets set it.
    d_rgb_kernel: side of D's first conv, from RGB to features at full size: 1 (as
        the classic D) or 3, which gives D two 3x3 layers at full resolution before
        its first pooling, a 5x5 view of the finest detail (training only).
    d_top_convs: convs in each D block at 128 px and above, 1 or 2 (training only).
    d_fine: 1 gives D a third path that judges the finest band alone (the picture
        minus its 2x blur) at full size, 0 none (training only; see _FinePath).
        d_rgb_kernel and d_fine default here to what a state file from before them
        means (1 and 0); the presets set 3 and 1.
    upsample: how G's blocks double the side: "bilinear" (what a file from before the
        field means), "bicubic" (a little sharper, slow to train on a CPU) or "nearest"
        (FastGAN's own; 2x2 blocks, see _UpBlock).
    arch: always "fast"; tells a model file's reader which family built it.
    """

    # The defaults are the "live" preset's G (engine.models.gan_arch.PRESETS): at batch 1
    # on one CPU thread ~2.9 ms against ~3.2 ms for GANConfig()'s classic generator.
    size: int = 128
    latent_dim: int = 128
    channels: int = 192
    min_channels: int = 12
    two_convs_up_to: int = 32
    d_width: int = 1
    d_small: int = 0
    d_rgb_kernel: int = 1
    d_top_convs: int = 1
    d_fine: int = 0
    upsample: str = "bilinear"
    arch: str = ARCH

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what was expected."""
        validate_gan_fields(self, ARCH, "FastGAN")
        t = self.two_convs_up_to
        if not 4 <= t <= self.size or t & (t - 1):
            raise ValueError(
                f"GAN config 'two_convs_up_to' must be a power of two from 4 to size ({self.size}), got {t}"
            )
        if not 1 <= self.d_width <= 8:
            raise ValueError(f"GAN config 'd_width' must be from 1 to 8, got {self.d_width}")
        k = self.d_small
        if k != 0 and (not 8 <= k <= self.size // 2 or k & (k - 1)):
            half = self.size // 2
            msg = f"GAN config 'd_small' must be 0 (none) or a power of two from 8 to size / 2 ({half}), got {k}"
            raise ValueError(msg)
        if self.d_rgb_kernel not in (1, 3):
            raise ValueError(f"GAN config 'd_rgb_kernel' must be 1 or 3, got {self.d_rgb_kernel}")
        if self.d_top_convs not in (1, 2):
            raise ValueError(f"GAN config 'd_top_convs' must be 1 or 2, got {self.d_top_convs}")
        if self.d_fine not in (0, 1):
            raise ValueError(f"GAN config 'd_fine' must be 0 or 1, got {self.d_fine}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"GAN config 'upsample' must be one of {', '.join(UPSAMPLE_MODES)}, got {self.upsample!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FastGANConfig:
        """Build and validate a config; unknown keys are an error, missing keys default."""
        return config_from_dict(cls, data, "GAN config")

    @property
    def num_blocks(self) -> int:
        """Number of 2x upsampling blocks from 4x4 to size x size."""
        return int(math.log2(self.size)) - 2

    def channels_at(self, block: int) -> int:
        """G's feature maps after `block` upsamplings (block 0 is the 4x4 map)."""
        return max(self.channels >> block, self.min_channels)

    @property
    def recon_side(self) -> int:
        """Side in px of D's reconstructions: a quarter of the image, at most 64 (CPU training cost)."""
        return min(64, self.size // 4)


class _NoisyConv(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, H, W): 3x3 conv, + noise * strength, LeakyReLU, pixel norm.

    Reflect padding and no bias, as in engine.models.gan._ConvAct (zero padding
    gave the border as a position signal; biases washed out variation after
    pixel norm). Strengths start at 0, so the untrained model ignores the noise.
    """

    noise: Tensor  # the buffer registered below: (NOISE_BASES, 1, side, side)

    def __init__(self, c_in: int, c_out: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect", bias=False)
        # (C,), not (1, C, 1, 1): as a 1-D tensor it takes the full lr in
        # engine.train.common.equalized_param_groups (like a bias), not lr / sqrt(C).
        self.strength = nn.Parameter(torch.zeros(c_out))
        # The eval-mode noise bases (K, 1, side, side): drawn once, saved with the weights.
        self.register_buffer("noise", torch.randn(NOISE_BASES, 1, side, side))
        self.train_noise: torch.Generator | None = None  # set by FastGenerator.set_training_noise

    def forward(self, x: Tensor, mix: Tensor) -> Tensor:
        """x (B, c_in, H, W); mix (B, K): each sample's unit weights of the eval noise bases."""
        x = self.conv(x)
        if self.training:
            # Fresh noise per sample (B, 1, H, W), drawn on the CPU generator's device, then moved.
            fresh = torch.randn((x.shape[0], 1, self.side, self.side), generator=self.train_noise)
            noise = fresh.to(device=x.device, dtype=x.dtype)
        else:
            # A unit-weight mix of K fixed N(0, 1) maps is N(0, 1) per pixel again, like the
            # training noise, but set by z: each sample gets its own detail, smoothly in z.
            noise = torch.einsum("bk,kchw->bchw", mix, self.noise)  # (B, 1, H, W)
        return pixel_norm(F.leaky_relu(x + self.strength.view(1, -1, 1, 1) * noise, _LRELU))


class _UpBlock(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, 2H, 2W): upsample (`mode`), then 1 or 2 noisy convs.

    Bilinear by default, not FastGAN's nearest: nearest copies each coarse pixel into
    a 2x2 block, and with the thin fine layers here (one 3x3 conv at 64 and 128 px)
    those block edges survived as an axis-aligned grid, the plaid of the classic
    family. Measured on the paintings, 5 CPU minutes each (one thread): the
    report's axis_ratio 1.42 with nearest, 0.86 with bilinear (the pictures: 1.0).
    But five bilinear doublings in a row blur: regressing 16 fixed z onto 16 photo
    crops (L1, 4 CPU minutes) the finest pyramid level reached 0.43 with bilinear and
    0.31 with nearest; yet in the GAN (30 minutes, the photos) nearest ended no
    closer (patch distance 0.167 against 0.160), its early plaid trained away
    (docs/TRAINING.md, "... how fast G learns the finest band"). Bicubic blurs a
    little less than bilinear and trained at a third of the speed on a CPU.
    """

    def __init__(self, c_in: int, c_out: int, side: int, convs: int, mode: str = "bilinear") -> None:
        super().__init__()
        layers = [_NoisyConv(c_in, c_out, side)] + [_NoisyConv(c_out, c_out, side) for _ in range(convs - 1)]
        self.layers = nn.ModuleList(layers)
        self.mode = mode
        self.align_corners = None if mode == "nearest" else False  # nearest takes no align_corners

    def forward(self, x: Tensor, mix: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=self.align_corners)
        for layer in self.layers:
            x = layer(x, mix)
        return x


class _SkipExcitation(nn.Module):
    """Channel gates (B, c_big, 1, 1) in (0, 1) from a small map (B, c_small, h, w).

    Pool to 4x4, a 4x4 conv (no padding) to 1x1, LeakyReLU, a 1x1 conv, sigmoid:
    FastGAN's SLE, with LeakyReLU for its Swish.
    """

    def __init__(self, c_small: int, c_big: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(c_small, c_big, 4, bias=False)
        self.excite = nn.Conv2d(c_big, c_big, 1)

    def forward(self, small: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(small, 4)  # (B, c_small, 4, 4)
        x = F.leaky_relu(self.squeeze(x), _LRELU)  # (B, c_big, 1, 1)
        return torch.sigmoid(self.excite(x))  # (B, c_big, 1, 1)


class FastGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, 3, size, size) in [-1, 1] (channels_last strides).

    Same interface as engine.models.gan.Generator (forward(z), .config with
    .size and .latent_dim), so scenes, the show and the trainer use either.
    """

    noise_mix: Tensor  # (latent_dim, NOISE_BASES), the buffer registered in __init__

    def __init__(self, config: FastGANConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        n = config.num_blocks
        c0 = config.channels_at(0)
        # FastGAN's init layer makes the 4x4 map from z with no conv at 4x4; a
        # 256->256 conv there cost ~0.3 ms of a ~3 ms forward pass (1 CPU thread).
        self.fc = nn.Linear(config.latent_dim, c0 * 16, bias=False)
        blocks = []
        for i in range(1, n + 1):
            side = 4 << i
            convs = 2 if side <= config.two_convs_up_to else 1
            blocks.append(_UpBlock(config.channels_at(i - 1), config.channels_at(i), side, convs, config.upsample))
        self.blocks = nn.ModuleList(blocks)
        # sle[k] gates the output of block k + 3 with the map after block k (side 4 << k).
        shift = int(math.log2(SLE_RATIO))
        self.sle = nn.ModuleList(
            [_SkipExcitation(config.channels_at(k), config.channels_at(k + shift)) for k in range(n - shift + 1)]
        )
        self._sle_shift = shift
        c_top = config.channels_at(n)
        self.to_rgb = nn.Conv2d(c_top, 3, 3, padding=1, padding_mode="reflect")
        # z -> weights of the eval noise bases (NoisyConv): a fixed random projection.
        self.register_buffer("noise_mix", torch.randn(config.latent_dim, NOISE_BASES))
        init_weights(self)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack the keyword

    def set_training_noise(self, gen: torch.Generator | None) -> None:
        """The CPU generator that train-mode noise is drawn from (None: torch's global RNG)."""
        for m in self.modules():
            if isinstance(m, _NoisyConv):
                m.train_noise = gen

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"Generator expects z of shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        c0 = self.config.channels_at(0)
        x = self.fc(pixel_norm(z)).view(z.shape[0], c0, 4, 4)  # (B, C0, 4, 4)
        x = x.contiguous(memory_format=torch.channels_last)
        x = pixel_norm(F.leaky_relu(x, _LRELU))
        maps = [x]  # maps[k]: (B, C_k, 4 << k, 4 << k), kept for the SLE gates
        mix = F.normalize(z @ self.noise_mix, dim=1)  # (B, K), unit rows
        for i, block in enumerate(self.blocks, start=1):
            x = block(x, mix)  # (B, C_i, 4 << i, 4 << i)
            k = i - self._sle_shift
            if k >= 0:
                x = x * self.sle[k](maps[k])  # (B, C_i, H, W) * (B, C_i, 1, 1)
            maps.append(x)
        return torch.tanh(self.to_rgb(x))  # (B, 3, size, size)


class _Decoder(nn.Module):
    """(B, c_in, 8, 8) -> (B, 3, side, side) in [-1, 1]: upsample + 3x3 conv + LeakyReLU per doubling.

    Trained only by the reconstruction loss; no spectral norm (it is not on
    D's path to the logit) and no normalisation (it decodes one batch of reals).
    """

    def __init__(self, c_in: int, side: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, s, width = c_in, 8, _DECODER_CHANNELS
        while s < side:
            layers += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(c, width, 3, padding=1)]
            layers.append(nn.LeakyReLU(_LRELU))
            c, s, width = width, s * 2, max(width // 2, 16)
        layers.append(nn.Conv2d(c, 3, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.net(x))


def _head_logit(x4: Tensor, final_conv: nn.Module, out: nn.Module) -> Tensor:
    """Logits (B,) from a 4x4 map (B, C, 4, 4): minibatch stddev, a 3x3 conv, sum pooling, linear."""
    x = torch.cat([x4, _minibatch_std(x4)], dim=1)  # (B, C + 1, 4, 4)
    x = F.leaky_relu(final_conv(x), _LRELU)
    return out(x.sum(dim=(2, 3))).squeeze(1)  # (B,), sum pooling as in the classic D


class _SmallPath(nn.Module):
    """image (B, 3, size, size) -> logits (B,) of the image average-pooled to `side` px.

    Its own 1x1 from-RGB conv, down blocks to 4x4 and head, as wide at each side
    as the main path (`ch`: block index -> channels, block i at side 4 << i).
    """

    def __init__(self, side: int, ch: Callable[[int], int]) -> None:
        super().__init__()
        self.side = side
        top = int(math.log2(side)) - 2
        self.from_rgb = _sn_conv(3, ch(top), 1)
        self.down = nn.Sequential(*[_DownBlock(ch(i), ch(i - 1), 2) for i in range(top, 0, -1)])
        self.final_conv = _sn_conv(ch(0) + 1, ch(0), 3)
        self.out = nn.utils.parametrizations.spectral_norm(nn.Linear(ch(0), 1))

    def forward(self, img: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(img, self.side)  # (B, 3, side, side): colours and layout only
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.down(F.leaky_relu(self.from_rgb(x), _LRELU))  # (B, C0, 4, 4)
        return _head_logit(x, self.final_conv, self.out)


class _FinePath(nn.Module):
    """image (B, 3, S, S) -> logits (B,) from its finest band alone: the picture minus its 2x
    blur (bilinear up of a 2x2 average), times FINE_GAIN, at full size.

    A 3x3 conv and two down blocks (one conv each) to S/4, a 1x1 conv to one logit per
    cell (each sees about 16 px of the picture), averaged: a judge of edges and grain
    that colours and layout cannot sway.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.from_rgb = _sn_conv(3, c, 3)
        self.down = nn.Sequential(_DownBlock(c, c, 1), _DownBlock(c, c, 1))
        self.to_logit = _sn_conv(c, 1, 1)

    def forward(self, img: Tensor) -> Tensor:
        blur = F.interpolate(F.avg_pool2d(img, 2), scale_factor=2.0, mode="bilinear", align_corners=False)
        band = ((img - blur) * FINE_GAIN).contiguous(memory_format=torch.channels_last)  # (B, 3, S, S)
        x = self.down(F.leaky_relu(self.from_rgb(band), _LRELU))  # (B, C, S/4, S/4)
        return self.to_logit(x).mean(dim=(1, 2, 3))  # (B,)


class FastDiscriminator(nn.Module):
    """image (B, 3, size, size) -> logits (P*B,), path-major: the main path's B, then the small
    path's B (d_small), then the fine path's B (d_fine); `real_pass` also returns the
    reconstruction loss."""

    def __init__(self, config: FastGANConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        n = config.num_blocks

        def ch(block: int) -> int:
            return max(config.channels_at(block), _D_MIN_CHANNELS) * config.d_width

        self.from_rgb = _sn_conv(3, ch(n), config.d_rgb_kernel)
        # Block i takes side 4 << i to 4 << (i - 1); down to 16x16 (block index 2 is the 16 px map).
        top = config.d_top_convs
        self.to16 = nn.Sequential(*[_DownBlock(ch(i), ch(i - 1), top if 4 << i >= 128 else 2) for i in range(n, 2, -1)])
        self.to8 = _DownBlock(ch(2), ch(1), 2)
        self.to4 = _DownBlock(ch(1), ch(0), 2)
        c0 = ch(0)
        self.final_conv = _sn_conv(c0 + 1, c0, 3)  # +1: the minibatch-stddev map
        self.out = nn.utils.parametrizations.spectral_norm(nn.Linear(c0, 1))
        self.decode_all = _Decoder(ch(1), config.recon_side)
        self.decode_part = _Decoder(ch(2), config.recon_side)
        self.small = _SmallPath(config.d_small, ch) if config.d_small else None
        self.fine = _FinePath(ch(n)) if config.d_fine else None
        init_weights(self)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack the keyword

    def _features(self, img: Tensor) -> tuple[Tensor, Tensor]:
        """(16x16 map (B, C2, 16, 16), 8x8 map (B, C1, 8, 8))."""
        size = self.config.size
        if img.dim() != 4 or tuple(img.shape[1:]) != (3, size, size):
            raise ValueError(f"Discriminator expects images (B, 3, {size}, {size}), got {tuple(img.shape)}")
        x = img.contiguous(memory_format=torch.channels_last)
        f16 = self.to16(F.leaky_relu(self.from_rgb(x), _LRELU))
        return f16, self.to8(f16)

    def _logits(self, img: Tensor, f8: Tensor) -> Tensor:
        """(P*B,) from the 8x8 map, then the small and fine paths' logits where D has them."""
        paths = [_head_logit(self.to4(f8), self.final_conv, self.out)]
        paths += [path(img) for path in (self.small, self.fine) if path is not None]
        return paths[0] if len(paths) == 1 else torch.cat(paths)

    def forward(self, img: Tensor, quadrant: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Logits (B,); with `quadrant` (a real batch) also the reconstruction loss (real_pass).
        The trainer calls it this way so that under DistributedDataParallel, whose gradient
        sync hangs on forward(), the decoders' gradients are synced too."""
        if quadrant is not None:
            return self.real_pass(img, quadrant)
        return self._logits(img, self._features(img)[1])

    def real_pass(self, img: Tensor, quadrant: int) -> tuple[Tensor, Tensor]:
        """Logits (B,) and the L1 reconstruction loss (scalar) for real images `img` (B, 3, S, S).

        quadrant 0..3 (top-left, top-right, bottom-left, bottom-right) picks the
        quarter that the part decoder rebuilds from its 8x8 part of the 16x16 map.
        """
        f16, f8 = self._features(img)
        side = self.config.recon_side
        row, col = divmod(quadrant, 2)
        half = self.config.size // 2
        part_in = f16[:, :, row * 8 : row * 8 + 8, col * 8 : col * 8 + 8]  # (B, C2, 8, 8)
        part_img = img[:, :, row * half : row * half + half, col * half : col * half + half]  # (B, 3, S/2, S/2)
        whole = F.adaptive_avg_pool2d(img, side)  # (B, 3, R, R)
        part = F.adaptive_avg_pool2d(part_img, side)
        loss = F.l1_loss(self.decode_all(f8), whole) + F.l1_loss(self.decode_part(part_in), part)
        return self._logits(img, f8), loss
