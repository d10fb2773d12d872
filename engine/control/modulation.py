"""Modulation: audio features, LFOs and the beat moving params every frame.

Patch routes whose source is "audio", "lfo" or "beat" (engine.files.patch)
are evaluated once per frame in a `show.model_hooks` hook, after the frame's
events and the tempo step and before the deck moves and the forward pass. The
hook reads only (show time t, dt, tempo beat and BPM, the newest AudioFeatures),
so a show is still a pure function of its inputs: with the same features (or
none: silence) an offline render gives the same frames.

Where modulation writes (the brief left it open): it writes a param's *value*
(what the frame reads), never its *target* (what controls set). So:

- nothing is enqueued and `show.listeners` hear nothing: values that animate on
  their own are never echoed as OSC or MIDI feedback (no feedback storms);
- the target stays the performer's: in mode "add" a fader sets the base the
  LFO swings around, pick-up takeover is not confused by the wobble, and an
  event log replays the performer's moves, not 60 modulated values a second;
- a param's own smoothing is bypassed (a kick must be sharp); a route's
  `smoothing` glides its source instead.

Per param, each frame: the base is the last "absolute" route's value if it has
one, else the param's target (smoothed with the param's own smoothing); every
"add" route's offset is added on top; the sum is clamped to the param's range.

Positions: every source gives a position 0..1; `invert` and `curve` shape it.
Absolute routes map it across `range` (default: the param's current range).
Add routes offset by amount * position; LFOs are bipolar in add mode,
amount * (2 * position - 1), so they swing around the base.

Recorded audio: when the show records an event log (`show.applied_hooks`),
each frame whose features changed is logged as a `/modulation/features` verb
(value: the six numbers as text) at that frame's "model" drain. Replayed, the
verb hands those features to the hook of the same frame (before it runs), so
`render --events` with the same patch gives the live frames, audio included.

Pure core (`Modulator`) plus the control-module edge (`add_args`/`start`),
which opens --audio-in through engine.devices.audio_in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import ShowConfig
from engine.core.events import Event
from engine.core.params import Registry, one_pole
from engine.core.ratelog import first_and_every
from engine.core.space import FEATURES_VERB, AddressSpace
from engine.dsp.analysis import FEATURES, AudioFeatures
from engine.files.patch import AudioSource, BeatSource, LfoSource, Route, load_patches, shape, to_value

if TYPE_CHECKING:
    from engine.devices.audio_in import Capture
    from engine.stage.show import Show

log = logging.getLogger(__name__)

SILENCE = AudioFeatures()
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class ModInputs:
    """Everything a frame's modulation depends on."""

    t: float  # show time, seconds
    dt: float  # seconds since the previous frame
    beat: float  # tempo beats since the show started
    bpm: float
    features: AudioFeatures = SILENCE


# -- sources: position 0..1 -------------------------------------------------------


def _unit_hash(seed: int, n: int) -> float:
    """A deterministic 'random' number in [0, 1) for (seed, n): splitmix64 finalizer."""
    x = (seed * 0x9E3779B97F4A7C15 + n * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return (x >> 11) / float(1 << 53)


def lfo_position(src: LfoSource, t: float, beat: float) -> float:
    """An LFO's position 0..1. Sine and triangle start at 0 and peak half way through
    the cycle; saw ramps 0 -> 1; square is 1 for the first half; random holds one
    seeded value per cycle."""
    cycles = (t * src.rate if src.rate is not None else beat / (src.beats or 1.0)) + src.phase
    if not math.isfinite(cycles):  # a period of a few 1e-324 beats: "random" could not floor() it
        return 0.0
    x = cycles % 1.0
    if src.shape == "sine":
        return 0.5 - 0.5 * math.cos(2.0 * math.pi * x)
    if src.shape == "triangle":
        return 1.0 - abs(2.0 * x - 1.0)
    if src.shape == "saw":
        return x
    if src.shape == "square":
        return 1.0 if x < 0.5 else 0.0
    return _unit_hash(src.seed, math.floor(cycles))


def beat_position(src: BeatSource, beat: float, bpm: float) -> float:
    """Ramp: 0 -> 1 over each period of `division` beats. Pulse: 1 at each period's
    start, falling as exp(-seconds since it / decay)."""
    x = (beat / src.division - src.phase) % 1.0
    if src.shape == "ramp":
        return x
    seconds = x * src.division * 60.0 / max(bpm, 1e-6)
    return math.exp(-seconds / src.decay)


def audio_position(src: AudioSource, features: AudioFeatures) -> float:
    lo, hi = src.input
    return (float(getattr(features, src.feature)) - lo) / (hi - lo)


def encode_features(f: AudioFeatures) -> str:
    """Features as text for an event log: repr keeps every float exact."""
    return " ".join(repr(float(getattr(f, name))) for name in FEATURES) + f" {int(f.onsets)}"


def decode_features(text: object) -> AudioFeatures | None:
    """encode_features' text back into features; None if it is not that."""
    if not isinstance(text, str):
        return None
    parts = text.split()
    try:
        levels = [float(x) for x in parts[: len(FEATURES)]]
        onsets = int(parts[len(FEATURES)])
    except (ValueError, IndexError):
        return None
    if len(parts) != len(FEATURES) + 1 or not all(math.isfinite(x) for x in levels):
        return None
    return AudioFeatures(*levels, onsets=onsets)


def source_position(route: Route, inputs: ModInputs) -> float:
    """The route's source now, clamped to 0..1."""
    src = route.source
    if isinstance(src, LfoSource):
        pos = lfo_position(src, inputs.t, inputs.beat)
    elif isinstance(src, BeatSource):
        pos = beat_position(src, inputs.beat, inputs.bpm)
    elif isinstance(src, AudioSource):
        pos = audio_position(src, inputs.features)
    else:
        raise TypeError(f"{route.label}: not a modulation source")  # programming error
    return min(max(pos, 0.0), 1.0) if math.isfinite(pos) else 0.0


# -- the engine ---------------------------------------------------------------------


@dataclass
class _Target:
    """One modulated param and the routes that move it (in file order)."""

    address: str
    routes: list[Route]
    glide: list[float | None] = field(default_factory=list)  # per route: smoothed position
    base: float | None = None  # the target, smoothed with the param's own smoothing (add-only params)


class Modulator:
    """Evaluates modulation routes and writes the params' values (pure: no devices)."""

    def __init__(self, registry: Registry, routes: Iterable[Route]) -> None:
        self.registry = registry
        self.routes = [r for r in routes if r.is_modulation]
        targets: dict[str, _Target] = {}
        for r in self.routes:
            assert r.address is not None  # patch validation requires one
            targets.setdefault(r.address, _Target(r.address, [])).routes.append(r)
        for tg in targets.values():
            tg.glide = [None] * len(tg.routes)
            registry.param(tg.address).modulated = True  # its value is ours from now on
        self.targets = list(targets.values())

    def reset(self) -> None:
        """Forget glides and bases (a scene switch reset the params)."""
        for tg in self.targets:
            tg.glide = [None] * len(tg.routes)
            tg.base = None

    def step(self, inputs: ModInputs) -> None:
        """One frame: write every modulated param's value (never its target)."""
        for tg in self.targets:
            p = self.registry.param(tg.address)
            base = self._base(tg, p, inputs.dt)
            offset = 0.0
            for i, route in enumerate(tg.routes):
                pos = self._glide(tg, i, route, source_position(route, inputs), inputs.dt)
                if route.mode == "add":
                    offset += _offset(route, pos)
                else:
                    base = to_value(route, pos, p.lo, p.hi)
            p.value = p.coerce(base + offset)

    def _base(self, tg: _Target, p: Any, dt: float) -> float:
        """What the param would read without modulation: its target, through its smoothing."""
        if tg.base is None or p.smoothing <= 0.0:
            tg.base = p.target
        else:
            tg.base += (p.target - tg.base) * one_pole(dt, p.smoothing)
        return tg.base

    @staticmethod
    def _glide(tg: _Target, i: int, route: Route, pos: float, dt: float) -> float:
        """The route's smoothing: a one-pole of `smoothing` seconds on the source position."""
        prev = tg.glide[i]
        if route.smoothing > 0.0 and prev is not None:
            pos = prev + (pos - prev) * one_pole(dt, route.smoothing)
        tg.glide[i] = pos
        return pos


def _offset(route: Route, pos: float) -> float:
    """Mode "add": amount * shaped position; LFOs swing both ways around the base."""
    p = 1.0 - pos if route.invert else pos
    y = shape(p, route.curve)
    if isinstance(route.source, LfoSource):
        y = 2.0 * y - 1.0
    return (route.amount or 0.0) * y


# -- the control module ---------------------------------------------------------------

FeatureSource = Callable[[], AudioFeatures]


class ModulationControl:
    """Attaches a Modulator to a show: a model hook per frame, features from --audio-in."""

    def __init__(
        self, show: Show, routes: Iterable[Route], capture: Capture | None = None, features: FeatureSource | None = None
    ) -> None:
        self.show = show
        self.modulator = Modulator(show.registry, routes)
        self.capture = capture
        if features is None and capture is not None:
            capture.start_analysis()  # the FFTs run on their own thread; the hook only reads
            features = capture.latest
        self._features = features or (lambda: SILENCE)
        self._loads = show.scene_loads
        self._listens = any(isinstance(r.source, AudioSource) for r in self.modulator.routes)
        self._replayed: AudioFeatures | None = None  # from an event log; once set, it replaces the live source
        self._recorded: AudioFeatures | None = None  # the last features told to the applied hooks
        self.errors = 0
        self.rejected = 0  # /modulation/features verbs that were not features
        self.features = SILENCE  # the newest features (status, tests)
        show.model_hooks.append(self.hook)
        show.provide("modulation", self)

    def replay(self, ev: Event) -> None:
        """Verb /modulation/features: audio features recorded in an event log."""
        f = decode_features(ev.value)
        if f is None:
            self.rejected += 1
        else:
            self._replayed = f

    def _record(self, show: Show) -> None:
        """Tell the event-log recorder about features that changed (only while one listens)."""
        if not self._listens or self._replayed is not None or self.features == self._recorded:
            return
        self._recorded = self.features
        ev = Event("verb", FEATURES_VERB, encode_features(self.features), show.t, "audio")
        show.record(ev, "model")

    def hook(self, show: Show) -> None:
        """Model hook: never lets an error reach the frame (forgiving during the show)."""
        try:
            self.features = self._replayed if self._replayed is not None else self._features()
            if show.applied_hooks:
                self._record(show)
            if show.scene_loads != self._loads:  # a scene (re)load reset the params: new bases
                self._loads = show.scene_loads
                self.modulator.reset()
            self.modulator.step(ModInputs(show.t, show.dt, show.tempo.beat, show.tempo.bpm, self.features))
        except Exception:
            self.errors += 1
            if first_and_every(self.errors, 1000):
                log.exception("modulation failed (%d so far); params keep their last values", self.errors)

    def close(self) -> None:
        if self.hook in self.show.model_hooks:
            self.show.model_hooks.remove(self.hook)
            for tg in self.modulator.targets:  # values go back to following their targets
                self.show.registry.param(tg.address).modulated = False
        self.show.withdraw("modulation", self)
        if self.capture is not None:
            self.capture.close()  # idempotent; the capture stays for stats() after the show

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "routes": len(self.modulator.routes),
            "params": len(self.modulator.targets),
            "errors": self.errors,
            "rejected": self.rejected,
            "features": self.features.as_dict(),
        }
        if self.capture is not None:
            out["audio_in"] = self.capture.stats()
        return {"modulation": out}


def modulation_routes(files: Iterable[Path | str], space: AddressSpace) -> list[Route]:
    """The audio, lfo and beat routes of these patch files (merged as the MIDI control merges them).

    An offline render attaches them with `ModulationControl(show, routes)`: LFOs and
    beats move exactly as live, and audio routes follow the `/modulation/features`
    verbs a recorded event log replays (silence without them)."""
    return [r for r in load_patches(files, space.registry, space.verb_addresses()) if r.is_modulation]


def start(config: ShowConfig, show: Show) -> ModulationControl | None:
    """Start when a --patch file has audio, lfo or beat routes, or --audio-in is given."""
    routes = modulation_routes(config.patch, show.space)
    if not routes and not config.audio_in:
        return None
    from engine.devices.audio_in import open_audio_in  # here: only a show that asks for audio needs it

    capture = open_audio_in(config)
    if capture is None and any(isinstance(r.source, AudioSource) for r in routes):
        log.warning(
            "modulation: %d audio route(s) but no --audio-in: they read silence",
            sum(isinstance(r.source, AudioSource) for r in routes),
        )
    log.info(
        "modulation: %d route(s) on %d param(s)%s",
        len(routes),
        len({r.address for r in routes}),
        ", audio in" if capture is not None else "",
    )
    return ModulationControl(show, routes, capture)
