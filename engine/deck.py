"""A deck plays one scene at a time: latent path time, live offsets, the model.

`load_scenes` loads every scene of a show (and each distinct model once)
before the first frame, so switching scenes never stalls a frame. A `Deck`
turns the registry's `/deck/<name>/...` params and the frame's dt into a
latent vector z (1, latent_dim) in a preallocated tensor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.latent import LatentPath, latent_directions, make_path
from engine.models.checkpoint import load_generator
from engine.params import LATENT_OFFSETS, Registry
from engine.scene import SceneSpec

log = logging.getLogger(__name__)


@dataclass
class LoadedScene:
    spec: SceneSpec
    generator: torch.nn.Module
    size: int  # native output side in px
    latent_dim: int
    path: LatentPath
    directions: np.ndarray  # (LATENT_OFFSETS, latent_dim) float32, orthonormal rows
    tau: float = 0.0  # path time in keyframes; kept per scene so a scene resumes where it left


def load_scenes(specs: list[SceneSpec], device: torch.device) -> list[LoadedScene]:
    """Load each scene's model (once per distinct file) and build its path."""
    cache: dict[Path, tuple[torch.nn.Module, dict]] = {}
    scenes = []
    for spec in specs:
        if spec.model not in cache:
            gen, meta = load_generator(spec.model, device=str(device), dtype=torch.float32)
            cache[spec.model] = (gen, meta)
            log.info("loaded %s (%s px, trained %s steps)", spec.model.name, meta["config"]["size"], meta["steps"])
        gen, meta = cache[spec.model]
        dim = int(meta["config"]["latent_dim"])
        scenes.append(
            LoadedScene(
                spec=spec,
                generator=gen,
                size=int(meta["config"]["size"]),
                latent_dim=dim,
                path=make_path(spec.path_kind, dim, spec.seed, **spec.path_settings),
                directions=latent_directions(dim, LATENT_OFFSETS, spec.seed + 1).astype(np.float32),
            )
        )
    return scenes


class Deck:
    """One playing scene and the params that steer it, under /deck/<name>/."""

    def __init__(self, name: str, registry: Registry) -> None:
        self.name = name
        self.registry = registry
        self.base = f"/deck/{name}"
        self.scene: LoadedScene | None = None
        self._z_np = np.zeros((0,), np.float32)
        self._offset_z = np.zeros((0,), np.float32)
        self._offsets = np.zeros((LATENT_OFFSETS,), np.float32)
        self._offset_addrs = [f"{self.base}/latent/{i}" for i in range(1, LATENT_OFFSETS + 1)]

    def load(self, scene: LoadedScene) -> None:
        """Make `scene` the playing one and reset the deck params to its defaults."""
        self.scene = scene
        self._z_np = np.zeros((scene.latent_dim,), np.float32)
        self._offset_z = np.zeros((scene.latent_dim,), np.float32)
        for p in self.registry:
            if p.address.startswith(self.base + "/"):
                name = p.address[len(self.base) + 1 :]
                s = scene.spec.params.get(name)
                lo, hi, default = (s.lo, s.hi, s.default) if s else (p.hard_lo, p.hard_hi, p.default)
                self.registry.configure(p.address, default=default, lo=lo, hi=hi)

    def advance(self, dt: float, master_speed: float) -> None:
        """Move along the path: dt seconds at the deck's and the master speed."""
        sc = self.scene
        if sc is None:
            return
        speed = self.registry.get(f"{self.base}/speed") * master_speed
        sc.tau += dt * speed / sc.spec.seconds_per_key

    def latent(self) -> np.ndarray:
        """z (latent_dim,) float32 for the current frame: truncation * path + offsets."""
        sc = self.scene
        assert sc is not None, "Deck.latent() before Deck.load()"  # programming error, not input
        get = self.registry.get
        for i, a in enumerate(self._offset_addrs):
            self._offsets[i] = get(a)
        np.multiply(sc.path.at(sc.tau), get(f"{self.base}/truncation"), out=self._z_np)
        np.dot(self._offsets, sc.directions, out=self._offset_z)  # (8,) @ (8, dim) -> (dim,)
        self._z_np += self._offset_z
        return self._z_np
