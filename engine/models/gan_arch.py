"""The architectures of model kind "gan", and the one place that picks between them.

A "gan" model file's config says which family built it in its "arch" key:
"classic" (engine.models.gan, the default, and what a config without "arch"
means: files written before the fast family existed) or "fast"
(engine.models.fastgan). The file's kind and this key pick the class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.models import fastgan, gan
from engine.models.fastgan import FastDiscriminator, FastGANConfig, FastGenerator
from engine.models.gan import Discriminator, GANConfig, Generator

ARCHS = (gan.ARCH, fastgan.ARCH)  # ("classic", "fast")
AnyGANConfig = GANConfig | FastGANConfig
AnyGenerator = Generator | FastGenerator
AnyDiscriminator = Discriminator | FastDiscriminator


def gan_config_from_dict(data: Mapping[str, Any]) -> AnyGANConfig:
    """The config a model or state file stores, as its family's dataclass; ValueError if bad."""
    if not isinstance(data, Mapping):
        raise ValueError(f"GAN config must be a mapping, got {type(data).__name__}")
    arch = data.get("arch", gan.ARCH)
    if arch == fastgan.ARCH:
        return FastGANConfig.from_dict(data)
    if arch == gan.ARCH:
        return GANConfig.from_dict(data)
    raise ValueError(f"GAN config 'arch' must be one of {list(ARCHS)}, got {arch!r}")


def build_generator(config: AnyGANConfig) -> AnyGenerator:
    """An untrained generator of the config's family."""
    return FastGenerator(config) if isinstance(config, FastGANConfig) else Generator(config)


def build_discriminator(config: AnyGANConfig) -> AnyDiscriminator:
    """An untrained discriminator of the config's family."""
    return FastDiscriminator(config) if isinstance(config, FastGANConfig) else Discriminator(config)


# Model sizes by name, per arch: (size, channels, min_channels[, two_convs_up_to, D's fields]).
# live: 128 px, no slower at batch 1 on one CPU thread than the classic default
#   (the default scene keeps 60 fps on a 2-core laptop); hd: 256 px for a CPU show
#   at 30 fps; gpu: 512 px with wide high-resolution maps, for a graphics card.
# The fast family's maps are thin where they are large: 192 channels at 4x4 halve
# to 12 at 64 and 128 px, and only blocks up to 32 px have two convs. D's small path
# (training only) sees the picture at 1/8 of its side, as FastGAN's: at 128 px it took the
# paintings' patch distance from 0.092 to 0.081 and KID from 0.0032 to 0.0013 (three seeds,
# docs/TRAINING.md); at 256 and 512 px the same ratio, not measured. D's finest view (a 3x3
# conv from RGB, and the fine path on the picture minus its 2x blur) took the photos from
# 0.75x to 0.60x the classic's patch distance at 128 px (wide, two seeds; docs/TRAINING.md,
# "A D path for the finest band"); the other presets share it, not measured there.
_D_FINEST = {"d_rgb_kernel": 3, "d_fine": 1}
PRESETS: dict[str, dict[str, dict[str, int]]] = {
    fastgan.ARCH: {
        "live": {"size": 128, "channels": 192, "min_channels": 12, "two_convs_up_to": 32, "d_small": 16, **_D_FINEST},
        # 32 maps at 64-128 px: the paintings' palette and KID (docs/TRAINING.md), ~3x live's FLOPs.
        "wide": {"size": 128, "channels": 192, "min_channels": 32, "two_convs_up_to": 32, "d_small": 16, **_D_FINEST},
        "hd": {"size": 256, "channels": 256, "min_channels": 16, "two_convs_up_to": 32, "d_small": 32, **_D_FINEST},
        "gpu": {"size": 512, "channels": 512, "min_channels": 32, "two_convs_up_to": 128, "d_small": 64, **_D_FINEST},
    },
    gan.ARCH: {
        "live": {"size": 128, "channels": 256, "min_channels": 16},  # GANConfig()'s defaults
        "wide": {"size": 128, "channels": 256, "min_channels": 32},
        "hd": {"size": 256, "channels": 256, "min_channels": 16},
        "gpu": {"size": 512, "channels": 512, "min_channels": 32},
    },
}
PRESET_NAMES = ("live", "wide", "hd", "gpu")


def preset_config(arch: str, preset: str, **overrides: int | str | None) -> AnyGANConfig:
    """The config of `preset` for `arch`, with the `overrides` that are not None; ValueError if bad."""
    if arch not in ARCHS:
        raise ValueError(f"GAN 'arch' must be one of {list(ARCHS)}, got {arch!r}")
    if preset not in PRESETS[arch]:
        raise ValueError(f"GAN 'preset' must be one of {list(PRESET_NAMES)}, got {preset!r}")
    values: dict[str, Any] = {**PRESETS[arch][preset], "arch": arch}
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    # A smaller --size or --channels than the preset's shrinks the preset's other
    # fields with it (unless they were given too), rather than failing validation.
    if "two_convs_up_to" in values and "two_convs_up_to" not in given and isinstance(values["size"], int):
        values["two_convs_up_to"] = min(values["two_convs_up_to"], values["size"])
    if "d_small" in values and "d_small" not in given and isinstance(values["size"], int):
        values["d_small"] = min(values["d_small"], max(8, values["size"] // 8))  # 1/8 of a smaller --size
    if "min_channels" not in given and isinstance(values["channels"], int):
        values["min_channels"] = min(values["min_channels"], values["channels"])
    return gan_config_from_dict(values)
