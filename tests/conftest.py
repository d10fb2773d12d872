"""Shared fixtures: tiny model files made on the fly (tests never need trained/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may open a real window or sound device unless it starts its own Xvfb.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

REPO = Path(__file__).resolve().parent.parent


def make_tiny_gan(path: Path, size: int = 64, latent_dim: int = 16, seed: int = 0) -> Path:
    import torch

    from engine.models.checkpoint import save_model
    from engine.models.gan import GANConfig, Generator

    torch.manual_seed(seed)
    cfg = GANConfig(size=size, latent_dim=latent_dim, channels=32, min_channels=8)
    gen = Generator(cfg)
    save_model(path, gen.state_dict(), kind="gan", config=cfg.to_dict(), data={"folder": "test"},
               metrics={}, steps=0)
    return path


@pytest.fixture
def tiny_gan(tmp_path: Path) -> Path:
    return make_tiny_gan(tmp_path / "tiny.safetensors")


@pytest.fixture
def scene_file(tmp_path: Path, tiny_gan: Path):
    """Write a scene TOML next to the tiny model; returns a function(text) -> path."""

    def write(body: str = "", name: str = "scene.toml", model: str = "tiny.safetensors") -> Path:
        p = tmp_path / name
        p.write_text(f'model = "{model}"\n' + body)
        return p

    return write
