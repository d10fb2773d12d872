"""The mixer: how deck a's and deck b's pictures make the output, and timed transitions.

`/mixer/crossfade` runs from 0 (deck a alone) to 1 (deck b alone). The curve
shapes the two decks' weights: linear (1 - x, x), equal power (cos, sin of
x * 90 degrees: no dip in brightness halfway between two unrelated pictures),
or cut (a below 0.5, b from 0.5). A blend mode other than mix shows the blend
of the two pictures (add, multiply, screen, difference) in the middle of the
fader: its share is 1 - |2x - 1|, 0 at either end, so the fader still goes
from a alone to b alone.

A deck whose picture has no weight is not visible: the show does not run its
model (a deck at crossfade 0 costs nothing but its path step).

`/mixer/fade` and `/mixer/cut` take the fader to the other side (to b if it is
below 0.5, else to a): a fade over `/mixer/fade_time` seconds (or
`/mixer/fade_beats` beats when that is set), a cut at once. With
`/mixer/quantize` set to q beats either starts on the next multiple of q beats
of the tempo (1 = the next beat, 4 = the next bar in 4/4). A transition writes
the fader every frame; moving the fader by hand (any other set) cancels it.

Pure module (torch for the picture maths, no devices).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from engine.core.events import Event
from engine.core.params import Registry
from engine.core.space import BLEND, BLENDS, CROSSFADE, CURVE, CURVES, FADE_BEATS, FADE_TIME, QUANTIZE
from engine.core.tempo import Tempo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mix:
    """How the output is made this frame: deck weights, the blend's share and its mode."""

    weights: tuple[float, float]  # deck a's and deck b's picture weight, each in 0..1
    share: float = 0.0  # 0..1 of the output that is blend(a, b) (0 for mode "mix")
    mode: str = "mix"

    @property
    def visible(self) -> tuple[bool, bool]:
        """Which decks' pictures the output needs (the others' models need not run)."""
        both = self.share > 0.0
        return (both or self.weights[0] > 0.0, both or self.weights[1] > 0.0)


SOLO_A = Mix((1.0, 0.0))


def mix_of(x: float, curve: int, blend: int) -> Mix:
    """The Mix of crossfade `x` (0..1) with curve and blend mode numbers (clamped)."""
    x = min(max(x, 0.0), 1.0)
    name = CURVES[min(max(int(curve), 0), len(CURVES) - 1)]
    mode = BLENDS[min(max(int(blend), 0), len(BLENDS) - 1)]
    if name == "cut":
        return Mix((1.0, 0.0) if x < 0.5 else (0.0, 1.0), 0.0, mode)
    if name == "equal_power":
        wa, wb = math.cos(x * math.pi / 2.0), math.sin(x * math.pi / 2.0)
        # cos(pi/2) is 6e-17, not 0: an end of the fader must leave the other deck invisible.
        weights = (0.0 if x >= 1.0 else wa, 0.0 if x <= 0.0 else wb)
    else:
        weights = (1.0 - x, x)
    share = 0.0 if mode == "mix" else 1.0 - abs(2.0 * x - 1.0)
    return Mix(weights, share, mode)


def compose(a: torch.Tensor, b: torch.Tensor, mix: Mix, out: torch.Tensor) -> torch.Tensor:
    """Blend two pictures (1, 3, S, S) in [-1, 1] into `out` (same shape, float32); returns out.

    Blends work on light in 0..1: u = (x + 1) / 2. out = (1 - share) * (wa * ua + wb * ub)
    + share * blend(ua, ub), mapped back to [-1, 1] (the frame's conversion clamps). The weighted
    sum is done in [-1, 1] straight into `out` (wa * a + wb * b + wa + wb - 1 is the same
    light), so a plain mix, the common case, allocates nothing per frame.
    """
    wa, wb = mix.weights
    torch.mul(a, wa, out=out).add_(b, alpha=wb).add_(wa + wb - 1.0)
    if mix.share > 0.0:
        ua, ub = (a.float() + 1.0) * 0.5, (b.float() + 1.0) * 0.5
        blended = _blend(ua, ub, mix.mode).mul_(2.0).sub_(1.0)  # back to [-1, 1]
        out.mul_(1.0 - mix.share).add_(blended, alpha=mix.share)
    return out


def _blend(ua: torch.Tensor, ub: torch.Tensor, mode: str) -> torch.Tensor:
    """The blend of two pictures in light 0..1 (same shape)."""
    if mode == "add":
        return (ua + ub).clamp_(max=1.0)
    if mode == "multiply":
        return ua * ub
    if mode == "screen":
        return ua + ub - ua * ub
    if mode == "difference":
        return (ua - ub).abs_()
    return (ua + ub) * 0.5


@dataclass
class _Transition:
    target: float  # 0 (deck a) or 1 (deck b)
    cut: bool
    start_beat: float | None  # quantised: starts when the tempo reaches this beat
    length: float | None = None  # seconds (or beats): a setlist's own fade; None = the fade params
    in_beats: bool = False
    origin: float = 0.0  # the fader where it started
    t0: float | None = None  # show time (s) it started
    beat0: float = 0.0  # tempo beat it started at


class Mixer:
    """The verbs of owner "mixer" and the fader's motion during a fade or cut."""

    def __init__(self, registry: Registry, tempo: Tempo) -> None:
        self.registry = registry
        self.tempo = tempo
        self._run: _Transition | None = None
        self._written = math.nan  # the fader target the transition wrote last (a hand move differs)
        self.transitions = 0  # fades and cuts started (status, tests)

    # Verbs of owner "mixer" (engine.core.space.VERBS).
    def fade(self, ev: Event) -> None:
        self._launch(cut=False)

    def cut(self, ev: Event) -> None:
        self._launch(cut=True)

    def _launch(self, cut: bool) -> None:
        quantum = self.registry.get(QUANTIZE)
        beat = self.tempo.beat
        start = math.ceil(beat / quantum - 1e-9) * quantum if quantum > 0.0 else None
        self._run = _Transition(target=self._other(), cut=cut, start_beat=start)

    def _other(self) -> float:
        """The fader's end away from the front deck: 1 (b) below 0.5, else 0 (a)."""
        return 1.0 if self.registry.param(CROSSFADE).target < 0.5 else 0.0

    def transition(self, length: float, in_beats: bool = False) -> None:
        """To the other deck now, over `length` seconds (beats if `in_beats`; 0: a cut),
        whatever the fade params say (a setlist's own fades)."""
        self._run = _Transition(self._other(), length <= 0.0, None, length, in_beats)

    @property
    def running(self) -> bool:
        return self._run is not None

    def step(self, t: float) -> None:
        """Move the fader for this frame (show time t in seconds, after the tempo's step)."""
        run = self._run
        if run is None:
            return
        p = self.registry.param(CROSSFADE)
        if run.t0 is not None and p.target != self._written:  # the fader was moved by hand
            self._run = None
            return
        beat = self.tempo.beat
        if run.t0 is None:
            if run.start_beat is not None and beat < run.start_beat:
                return
            run.t0, run.beat0, run.origin = t, beat, p.target
            self.transitions += 1
        x = run.target if run.cut else self._faded(run, t, beat)
        self._written = self.registry.set(CROSSFADE, x, immediate=True) or 0.0
        if x == run.target:
            self._run = None

    def _faded(self, run: _Transition, t: float, beat: float) -> float:
        assert run.t0 is not None  # started
        if run.length is not None:
            done = ((beat - run.beat0) if run.in_beats else (t - run.t0)) / run.length
            return run.target if done >= 1.0 else run.origin + (run.target - run.origin) * max(done, 0.0)
        beats = self.registry.get(FADE_BEATS)
        if beats > 0.0:
            done = (beat - run.beat0) / beats
        else:
            seconds = self.registry.get(FADE_TIME)
            done = (t - run.t0) / seconds if seconds > 0.0 else 1.0
        done = min(max(done, 0.0), 1.0)
        return run.target if done >= 1.0 else run.origin + (run.target - run.origin) * done

    def mix(self) -> Mix:
        get = self.registry.get
        return mix_of(get(CROSSFADE), int(get(CURVE)), int(get(BLEND)))
