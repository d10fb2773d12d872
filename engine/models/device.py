"""Where a model runs and at what precision: `--device cpu|cuda|auto` and `--precision auto|fp32|fp16`."""

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


PRECISIONS = ("auto", "fp32", "fp16")


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' | 'fp32' | 'fp16' on `device` -> 'fp32' or 'fp16'; DeviceError for fp16 off CUDA.

    auto is fp16 on CUDA (half the memory traffic; tensor cores) and fp32 on the CPU,
    where oneDNN runs fp16 convolutions slower than fp32. Whether fp16 keeps the
    picture is measured when a scene loads (engine.stage.deck.with_precision).
    """
    if name == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise DeviceError("--precision fp16 needs --device cuda (on the CPU it is slower than fp32); use fp32 or auto")
    if name in ("fp32", "fp16"):
        return name
    raise DeviceError(f"unknown precision {name!r}; expected one of {', '.join(PRECISIONS)}")


def bf16_is_native(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 in hardware: CUDA with bf16 support, or a CPU
    with AMX tiles or AVX512-BF16 (oneDNN then runs bf16 convolutions natively; elsewhere
    it emulates them, slower than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    # Private probes of torch.cpu (torch >= 2.3); a torch without them is taken as no native bf16.
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return device.type == "cpu" and any(probe is not None and probe() for probe in probes)
