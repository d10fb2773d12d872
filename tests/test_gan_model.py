"""GAN generator/discriminator: shapes, config validation, batch-1 consistency."""

from __future__ import annotations

import pytest
import torch

from engine.models.gan import Discriminator, GANConfig, Generator
from engine.train.common import count_params


@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes(size: int) -> None:
    config = GANConfig(size=size, latent_dim=16, channels=32, min_channels=8)
    g, d = Generator(config), Discriminator(config)
    z = torch.randn(4, 16)
    img = g(z)
    assert img.shape == (4, 3, size, size)
    assert img.min() >= -1.0 and img.max() <= 1.0
    logits = d(img)
    assert logits.shape == (4,)
    assert torch.isfinite(logits).all()


def test_512_builds() -> None:
    config = GANConfig(size=512)
    g, d = Generator(config), Discriminator(config)
    assert count_params(g) > 0 and count_params(d) > 0


def test_batch_one_equals_batched_and_train_equals_eval() -> None:
    # Pixel norm, not BatchNorm: a sample must not depend on its batch or the mode.
    torch.manual_seed(0)
    g = Generator(GANConfig(size=64, latent_dim=8, channels=32))
    z = torch.randn(3, 8)
    with torch.no_grad():
        batched = g.train()(z)
        single = g.eval()(z[1:2])
    torch.testing.assert_close(single[0], batched[1], atol=1e-5, rtol=1e-4)


def test_discriminator_backward() -> None:
    config = GANConfig(size=64, latent_dim=8, channels=32)
    g, d = Generator(config), Discriminator(config)
    d(g(torch.randn(4, 8))).mean().backward()
    assert all(p.grad is not None for p in g.parameters())


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"size": 100}, "power of two"),
        ({"size": 32}, "power of two"),
        ({"size": 1024}, "power of two"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"channels": 8, "min_channels": 16}, "min_channels"),
        ({"size": 64.0}, "integer"),
        ({"size": True}, "integer"),
    ],
)
def test_invalid_config(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        GANConfig(**kwargs).validate()
    with pytest.raises(ValueError):
        Generator(GANConfig(**kwargs))


def test_config_dict_round_trip_and_unknown_keys() -> None:
    config = GANConfig(size=256, latent_dim=64, channels=128, min_channels=8)
    assert GANConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="colour"):
        GANConfig.from_dict({"size": 64, "colour": 3})


def test_generator_rejects_wrong_latent() -> None:
    g = Generator(GANConfig(size=64, latent_dim=8, channels=32))
    with pytest.raises(ValueError, match="latent|z"):
        g(torch.randn(2, 9))
