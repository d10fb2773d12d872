"""Where a model runs: the `--device cpu|cuda|auto` choice as a torch.device."""

from __future__ import annotations

import torch

from engine.errors import DeviceError


def resolve_device(name: str) -> torch.device:
    """'cpu' | 'cuda' | 'auto' -> torch.device; DeviceError if cuda is asked for but absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was requested but no CUDA device is available; use --device cpu")
        return torch.device("cuda")
    raise DeviceError(f"unknown device {name!r}; expected cpu, cuda or auto")
