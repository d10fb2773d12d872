"""The built-in polyphonic synth: pure numpy, float32 out, sample-accurate notes.

Every voice is a closed-form function of "samples since its note-on" n:

    phase(n) = frac((n + 1) * f / rate)        oscillator phase, cycles
    env(n)   = linear attack / decay / sustain, then linear release from the
               level reached at note-off (all lengths in samples, fixed at note-on)

so a block is rendered for all sounding notes at once as (notes, frames) arrays,
with no per-sample Python loop and no per-voice state to carry between blocks.
A note scheduled at sample s therefore starts exactly at s, whatever block s
falls in: rows before their note-on are masked to zero. (The phase and the
attack count the current sample, so the first sample of a note is already
non-zero.) The voices are summed, then one resonant low-pass filter
(engine.dsp.filter) and the gain are applied to the mono mix, which is
copied to every output channel.

Voices: at most `voices` notes hold a slot. A new note takes a free slot, else
steals the quietest note already in its release, else the oldest note; a
stolen note fades out over STEAL_FADE_S instead of clicking off.

Determinism: the output depends only on the schedule, the settings in force at
each block boundary and the block sizes requested. `schedule()` may be called
from another thread than `render()` (a deque is the hand-over).

Pure module (numpy only).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from engine.dsp.filter import BlockFilter

WAVEFORMS = ("sine", "saw", "square", "triangle")
STEAL_FADE_S = 0.003  # a stolen note fades out over this (seconds) rather than clicking


def _spec(lo: float, hi: float, unit: str, description: str, kind: str = "float") -> dict[str, Any]:
    return {"lo": lo, "hi": hi, "unit": unit, "description": description, "type": kind}


@dataclass
class SynthSettings:
    """What a show may change while it plays (names become /synth/<name> params).

    ADSR values are captured when a note starts; cutoff, resonance and gain act
    on the next block (gain is ramped across it).
    """

    waveform: int = field(default=1, metadata=_spec(0, 3, "", "0 sine, 1 saw, 2 square, 3 triangle", "int"))
    attack: float = field(default=0.005, metadata=_spec(0.001, 5.0, "s", "envelope attack time"))
    decay: float = field(default=0.15, metadata=_spec(0.001, 5.0, "s", "envelope decay time to the sustain level"))
    sustain: float = field(default=0.6, metadata=_spec(0.0, 1.0, "", "envelope sustain level (fraction of peak)"))
    release: float = field(default=0.25, metadata=_spec(0.001, 10.0, "s", "envelope release time after note-off"))
    cutoff: float = field(default=6000.0, metadata=_spec(20.0, 20000.0, "Hz", "low-pass filter cutoff"))
    resonance: float = field(default=0.2, metadata=_spec(0.0, 1.0, "", "low-pass filter resonance (0 none, 1 ringing)"))
    gain: float = field(default=-12.0, metadata=_spec(-60.0, 6.0, "dB", "output gain"))

    def set(self, name: str, value: float) -> float:
        """Set one setting, clamped to its range (ints rounded); returns the value stored."""
        spec = setting_spec(name)
        v = min(max(float(value), spec["lo"]), spec["hi"])
        stored: float = int(round(v)) if spec["type"] == "int" else v
        setattr(self, name, stored)
        return stored


def setting_specs() -> list[dict[str, Any]]:
    """One dict per setting: name, type ("float"/"int"), lo, hi, default, unit, description."""
    return [{"name": f.name, "default": f.default, **f.metadata} for f in fields(SynthSettings)]


def setting_spec(name: str) -> dict[str, Any]:
    spec = _specs_by_name().get(name)
    if spec is not None:
        return spec
    raise KeyError(f"no synth setting {name!r} (have: {', '.join(f.name for f in fields(SynthSettings))})")


@functools.cache
def _specs_by_name() -> dict[str, dict[str, Any]]:
    """Built once: set() runs on the loop whenever a synth knob moves."""
    return {spec["name"]: spec for spec in setting_specs()}


def synth_params(prefix: str = "/synth"):
    """engine.core.params.Param objects for every setting, at <prefix>/<name> (stage "post")."""
    from engine.core.params import Param

    return [
        Param(
            f"{prefix}/{s['name']}",
            s["type"],
            float(s["default"]),
            float(s["lo"]),
            float(s["hi"]),
            unit=s["unit"],
            description=s["description"],
            stage="post",
        )
        for s in setting_specs()
    ]


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


# -- oscillators: phase (notes, frames) in cycles [0, 1), inc (notes, 1) cycles per sample --------------
def _poly_blep(t: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Band-limiting residual of a unit-height step at t = 0 (polynomial, two samples wide)."""
    x = t / dt
    y = (t - 1.0) / dt
    return np.where(t < dt, x + x - x * x - 1.0, 0.0) + np.where(t > 1.0 - dt, y * y + y + y + 1.0, 0.0)


def _poly_blamp(t: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Band-limiting residual of a corner (slope change) at t = 0: the integral of the BLEP."""
    x = t / dt - 1.0
    y = (t - 1.0) / dt + 1.0
    return np.where(t < dt, -x * x * x / 3.0, 0.0) + np.where(t > 1.0 - dt, y * y * y / 3.0, 0.0)


def oscillator(waveform: int, phase: np.ndarray, inc: np.ndarray) -> np.ndarray:
    """One period shape at `phase`, amplitude 1; saw, square and triangle are band-limited."""
    dt = np.minimum(inc, 0.5)  # the residuals assume at least two samples per period
    if waveform == 0:
        return np.sin(2.0 * np.pi * phase)
    if waveform == 1:
        return 2.0 * phase - 1.0 - _poly_blep(phase, dt)
    half = (phase + 0.5) % 1.0
    if waveform == 2:
        return np.where(phase < 0.5, 1.0, -1.0) + _poly_blep(phase, dt) - _poly_blep(half, dt)
    # triangle: -1 at phase 0, +1 at 0.5; its slope jumps by 8 per cycle at each corner
    return 1.0 - 4.0 * np.abs(phase - 0.5) + 4.0 * dt * (_poly_blamp(phase, dt) - _poly_blamp(half, dt))


def envelope(
    n: np.ndarray, attack: np.ndarray, decay: np.ndarray, sustain: np.ndarray, release: np.ndarray, gate: np.ndarray
) -> np.ndarray:
    """Linear ADSR level at n samples after note-on (0 before it, 0 after the release).

    Shapes broadcast: n (notes, frames); the rest (notes, 1), lengths in samples (>= 1).
    """
    held = _held(n + 1.0, attack, decay, sustain)
    at_off = _held(gate, attack, decay, sustain)  # level the release starts from
    released = at_off * np.clip(1.0 - (n - gate + 1.0) / release, 0.0, 1.0)
    return np.where(n < 0, 0.0, np.where(n < gate, held, released))


def _held(m: np.ndarray, attack: np.ndarray, decay: np.ndarray, sustain: np.ndarray) -> np.ndarray:
    """Attack / decay / sustain level after m samples of a held key (m counts the current sample)."""
    decaying = np.maximum(1.0 - (1.0 - sustain) * (m - attack) / decay, sustain)
    return np.where(m < attack, m / attack, decaying)


class _Note:
    """A sounding note; times in absolute samples, lengths in samples."""

    __slots__ = ("on", "seq", "inc", "amp", "attack", "decay", "sustain", "release", "gate", "cut")

    def __init__(
        self, on: int, seq: int, pitch: int, velocity: int, duration: int, s: SynthSettings, rate: float
    ) -> None:
        self.on, self.seq = on, seq
        self.inc = midi_to_hz(pitch) / rate  # cycles per sample
        self.amp = velocity / 127.0
        self.attack = max(1.0, round(s.attack * rate))
        self.decay = max(1.0, round(s.decay * rate))
        self.sustain = float(s.sustain)
        self.release = max(1.0, round(s.release * rate))
        self.gate = float(duration)
        self.cut = math.inf  # absolute sample where it was stolen

    def end(self, fade: int) -> float:
        """First absolute sample where it is silent for good."""
        return min(self.on + self.gate + self.release, self.cut + fade)

    def level(self, t: int) -> float:
        """Envelope level times velocity at absolute sample t (for picking a voice to steal)."""
        n = np.array([[t - self.on]], dtype=np.float64)
        env = envelope(n, *(np.array([[v]]) for v in (self.attack, self.decay, self.sustain, self.release, self.gate)))
        return float(env[0, 0]) * self.amp


class Synth:
    """N-voice synth; `schedule()` notes at absolute sample times, `render()` blocks in order."""

    def __init__(self, sample_rate: int, voices: int = 8, settings: SynthSettings | None = None) -> None:
        if voices < 1:
            raise ValueError(f"voices must be >= 1, got {voices}")
        self.sample_rate = int(sample_rate)
        self.voices = voices
        self.settings = settings or SynthSettings()
        self.time = 0  # absolute sample index of the next block render() produces
        self.fade = max(1, round(STEAL_FADE_S * sample_rate))  # samples
        # Hand-over from schedule()/panic() (any thread) to render(): notes, or None for panic.
        self._inbox: deque[tuple[int, int, int, int, int] | None] = deque()
        self._pending: list[tuple[int, int, int, int, int]] = []  # heap of (time, seq, pitch, velocity, duration)
        self._seq = itertools.count()
        self._slots: list[_Note | None] = [None] * voices
        self._sounding: list[_Note] = []  # slot holders plus stolen notes still fading
        self._filter = BlockFilter(sample_rate)
        self._gain = 10.0 ** (self.settings.gain / 20.0)  # linear gain reached at the end of the last block
        self.counts = {"notes": 0, "late": 0, "stolen": 0}

    # -- input ------------------------------------------------------------------------------------------
    def schedule(self, sample_time: int, pitch: int, velocity: int, duration_samples: int) -> None:
        """Play MIDI `pitch` at absolute sample `sample_time` for `duration_samples` (then release).

        Velocity 0 is ignored (it is a note-off in MIDI). A note whose time has
        already been rendered starts at the beginning of the next block and is
        counted as late.
        """
        if not 0 <= pitch <= 127 or not 0 <= velocity <= 127:
            raise ValueError(f"pitch and velocity must be 0..127, got {pitch}, {velocity}")
        if velocity == 0:
            return
        self._inbox.append(
            (int(sample_time), next(self._seq), int(pitch), int(velocity), max(1, int(duration_samples)))
        )

    def panic(self) -> None:
        """Silence from the next block: drop every note scheduled so far, fade out all sounding ones."""
        self._inbox.append(None)  # handled in order by render(), on its own thread

    # -- output -----------------------------------------------------------------------------------------
    def warm_up(self, frames: int = 256) -> None:
        """Render (and discard) a block with a sounding note in every waveform, on a scratch synth
        with these settings, so first-call costs (numpy's and BLAS's set-up, each oscillator's and
        the envelope's code) are paid before a sound card waits for a block: on stage the first
        block after the stream started took 513 ms and underran. This synth's notes, time, filter
        and gain are untouched (its own filter matrices are built by its first real block)."""
        scratch = Synth(self.sample_rate, voices=1, settings=replace(self.settings))
        block = np.zeros((max(1, int(frames)), 1), dtype=np.float32)
        for waveform in range(len(WAVEFORMS)):
            scratch.settings.waveform = waveform
            scratch.schedule(scratch.time, 69, 100, block.shape[0])
            scratch.render(block)

    def render(self, out: np.ndarray) -> None:
        """Render the next block into out (frames, channels) float32; advances `time` by frames."""
        frames = out.shape[0]
        start, end = self.time, self.time + frames
        s = self.settings
        self._start_due(start, end, s)
        mix = self._mix(start, frames, int(s.waveform))
        y = self._filter.process(mix, float(s.cutoff), float(s.resonance))
        target = 10.0 ** (float(s.gain) / 20.0)
        ramp = np.arange(1, frames + 1, dtype=np.float64) / frames  # 1/frames .. 1
        y *= self._gain + (target - self._gain) * ramp
        self._gain = target
        np.clip(y, -1.0, 1.0, out=y)
        out[:] = y[:, None]
        self._sounding = [n for n in self._sounding if n.end(self.fade) > end]
        self.time = end

    def _start_due(self, start: int, end: int, s: SynthSettings) -> None:
        while self._inbox:
            item = self._inbox.popleft()
            if item is None:
                self._silence(start)
            else:
                heapq.heappush(self._pending, item)
        while self._pending and self._pending[0][0] < end:
            t, seq, pitch, velocity, duration = heapq.heappop(self._pending)
            if t < start:
                self.counts["late"] += 1
                t = start
            self._start_note(_Note(t, seq, pitch, velocity, duration, s, self.sample_rate))

    def _silence(self, t: int) -> None:
        self._pending.clear()
        for note in self._sounding:
            note.cut = min(note.cut, t)
        self._slots = [None] * self.voices

    def _start_note(self, note: _Note) -> None:
        slot = self._pick_slot(note.on)
        old = self._slots[slot]
        if old is not None and old.end(self.fade) > note.on:
            old.cut = min(old.cut, note.on)
            self.counts["stolen"] += 1
        self._slots[slot] = note
        self._sounding.append(note)
        self.counts["notes"] += 1

    def _pick_slot(self, t: int) -> int:
        """A free slot, else the quietest released note's, else the oldest note's."""
        for i, note in enumerate(self._slots):
            if note is None or note.end(self.fade) <= t:
                return i
        held = [(n.on, n.seq, i) for i, n in enumerate(self._slots) if n is not None and t < n.on + n.gate]
        released = [
            (n.level(t), n.on, n.seq, i) for i, n in enumerate(self._slots) if n is not None and t >= n.on + n.gate
        ]
        if released:
            return min(released)[-1]
        return min(held)[-1]

    def _mix(self, start: int, frames: int, waveform: int) -> np.ndarray:
        """Sum of every note sounding in [start, start + frames): (frames,) float64."""
        rows = [n for n in self._sounding if n.on < start + frames]
        if not rows:
            return np.zeros(frames)
        cols = np.array(
            [
                [n.on, n.inc, n.amp, n.attack, n.decay, n.sustain, n.release, n.gate, min(n.cut - n.on, 1e15)]
                for n in rows
            ]
        ).T[:, :, None]  # (9, notes, 1)
        on, inc, amp, attack, decay, sustain, release, gate, cut = cols
        n = (start - on) + np.arange(frames, dtype=np.float64)  # (notes, frames) samples since note-on
        phase = ((n + 1.0) * inc) % 1.0
        level = envelope(n, attack, decay, sustain, release, gate)
        fade = np.clip((cut + self.fade - n) / self.fade, 0.0, 1.0)  # 1 until stolen, then down to 0
        return (oscillator(waveform, phase, inc) * level * fade * amp).sum(axis=0)
