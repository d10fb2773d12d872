"""Params: everything that moves lives at an OSC-style address (the leaf types; the
whole address space is assembled in engine.core.space).

One registry knows each param's type, range, default, unit, smoothing and
description. Inputs (keys, OSC, MIDI, presets) set *targets*; once per frame the
loop calls `Registry.smooth(dt)` and reads the smoothed *values*. Setting is
forgiving by design (clamp, coerce, reject NaN and count it) because during a
show nothing another program sends may crash it; defining params is strict,
because that happens at startup.

Pure module: no pygame, torch, sockets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from engine.errors import ParamError  # defined with the other startup errors; imported from here too

ParamType = Literal["float", "int", "bool"]
# When the loop reads a param: "model" params feed the forward pass (applied just
# before it), "post" params are used after the model (applied just before present).
ParamStage = Literal["model", "post"]
_ADDRESS = re.compile(r"^(/[a-z0-9_]+)+$")


def one_pole(dt: float, tau: float) -> float:
    """The fraction of the way to its target a one-pole smoother of time constant `tau`
    seconds covers in `dt` seconds (63% when dt == tau, whatever the frame or hop rate);
    1 for tau <= 0 (no smoothing), 0 for dt <= 0."""
    if tau <= 0.0:
        return 1.0
    return 1.0 - math.exp(-dt / tau) if dt > 0.0 else 0.0


@dataclass
class Param:
    """One controllable value.

    `smoothing` is a one-pole time constant in seconds (0 = jump): the value
    covers 63% of the way to its target in that time, whatever the frame rate.
    """

    address: str
    type: ParamType
    default: float
    lo: float
    hi: float
    unit: str = ""
    smoothing: float = 0.0
    description: str = ""
    stage: ParamStage = "model"
    # Set while a modulation route writes `value` every frame: inputs then move only the
    # target (the modulator's base), so an input applied after the modulator never shows
    # the bare value for a frame (engine.control.modulation).
    modulated: bool = field(default=False, init=False)
    target: float = field(init=False)
    value: float = field(init=False)
    hard_lo: float = field(init=False)  # the registered range; scenes may narrow lo/hi inside it
    hard_hi: float = field(init=False)

    def __post_init__(self) -> None:
        if not _ADDRESS.match(self.address):
            raise ParamError(f"param address {self.address!r}: expected /lowercase/words_or_digits")
        if self.type not in ("float", "int", "bool"):
            raise ParamError(f"param {self.address}: type must be float, int or bool, got {self.type!r}")
        if self.type == "bool":
            self.lo, self.hi = 0.0, 1.0
        if self.stage not in ("model", "post"):
            raise ParamError(f"param {self.address}: stage must be model or post, got {self.stage!r}")
        if not self.lo <= self.default <= self.hi:
            raise ParamError(f"param {self.address}: default {self.default} outside its range {self.lo}..{self.hi}")
        self.target = self.value = float(self.default)
        self.hard_lo, self.hard_hi = self.lo, self.hi

    def coerce(self, value: float) -> float:
        """Clamp to range and round to the param's type (raises on NaN / non-numbers)."""
        v = float(value)
        if math.isnan(v):
            raise ValueError("NaN")
        v = min(max(v, self.lo), self.hi)
        if self.type == "bool":
            return 1.0 if v >= 0.5 else 0.0
        if self.type == "int":
            return float(round(v))
        return v

    def describe(self) -> dict:
        """A plain dict for listings and discovery documents."""
        return {
            "address": self.address,
            "type": self.type,
            "min": self.lo,
            "max": self.hi,
            "default": self.default,
            "unit": self.unit,
            "smoothing": self.smoothing,
            "description": self.description,
            "stage": self.stage,
        }


class Registry:
    """All params of a show, by address, with counters for rejected sets."""

    def __init__(self) -> None:
        self._params: dict[str, Param] = {}
        self.rejected = 0  # sets refused (unknown address, NaN, not a number)

    def add(self, param: Param) -> Param:
        if param.address in self._params:
            raise ParamError(f"param {param.address} defined twice")
        self._params[param.address] = param
        return param

    def __contains__(self, address: str) -> bool:
        return address in self._params

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params.values())

    def __len__(self) -> int:
        return len(self._params)

    def param(self, address: str) -> Param:
        try:
            return self._params[address]
        except KeyError:
            raise ParamError(f"unknown param address {address!r}") from None

    def get(self, address: str) -> float:
        """The smoothed value the frame should use."""
        return self._params[address].value

    def set(self, address: str, value: float, *, immediate: bool = False) -> float | None:
        """Set a param's target; returns the applied (clamped) target or None if rejected."""
        p = self._params.get(address)
        if p is None:
            self.rejected += 1
            return None
        try:
            v = p.coerce(value)
        except (TypeError, ValueError, OverflowError):
            self.rejected += 1
            return None
        p.target = v
        if (immediate or p.smoothing <= 0.0) and not p.modulated:
            p.value = v
        return v

    def toggle(self, address: str) -> float | None:
        p = self._params.get(address)
        if p is None or p.type != "bool":
            self.rejected += 1
            return None
        return self.set(address, 0.0 if p.target >= 0.5 else 1.0)

    def scale(self, address: str, factor: float) -> float | None:
        p = self._params.get(address)
        if p is None:
            self.rejected += 1
            return None
        return self.set(address, p.target * factor)

    def configure(self, address: str, *, default: float, lo: float, hi: float) -> None:
        """Narrow a param's range and reset it to a new default (on scene load/switch).

        The new range must lie inside the param's registered hard range; scene
        validation checks that first, so here it is a programming error.
        """
        p = self.param(address)
        if not p.hard_lo <= lo <= default <= hi <= p.hard_hi:
            raise ParamError(f"param {address}: {lo}..{hi} (default {default}) outside {p.hard_lo}..{p.hard_hi}")
        p.lo, p.hi, p.default = float(lo), float(hi), float(default)
        p.target = p.value = p.coerce(default)

    def smooth(self, dt: float) -> None:
        """Move every smoothed param towards its target; dt in seconds."""
        for p in self._params.values():
            if p.value == p.target or p.modulated:
                continue
            if p.smoothing <= 0.0:
                p.value = p.target
                continue
            p.value += (p.target - p.value) * one_pole(dt, p.smoothing)
            if abs(p.target - p.value) < 1e-6 * max(1.0, p.hi - p.lo):
                p.value = p.target

    def stage(self, address: str) -> ParamStage:
        """When the loop applies changes to `address`: "post" params just before present,
        everything else (unknown addresses too) just before the forward pass."""
        p = self._params.get(address)
        return p.stage if p is not None else "model"

    def snapshot(self) -> dict[str, float]:
        return {a: p.value for a, p in self._params.items()}
