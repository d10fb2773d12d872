"""Streaming melodies: a NoteStream samples note events in beat time from a note model.

The caller (a scene, the MIDI output) asks for everything up to a beat:
``next_notes(until_beat)`` generates token by token while the stream's cursor
is before ``until_beat`` and returns the notes that start there, in beat time.
Calling it every frame with "now + a little lookahead" gives notes ahead of
time; chopping the beats into other calls gives the same notes (the random
draws depend only on the tokens, never on how the calls are sliced).

Sampling controls (StreamParams): temperature, top-k, density (how busy:
shifts probability between short and long durations and away from rests),
key + scale and register (low..high) mask pitch tokens, so every note obeys
them. A grammar mask keeps the token stream well formed (after NOTE only a
DUR may follow), so a note always has a duration. A primer (notes from a
file or played live) is fed through the state on every reset; ``prime()``
feeds more notes into the running state without moving the cursor.

Cheap by construction: the GRU is stepped with engine.models.seq.Stepper
(plain float32 numpy from the weights; a step is a table lookup plus a few
matrix-vector products), and masks are precomputed whenever the params
change. A note is 2 tokens (3 when the velocity changes); see docs/NOTES.md
for the measured cost per frame. Deterministic for a given model, params, seed and calls.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.models.notes import Note, NoteVocab
from engine.models.seq import SeqModel, Stepper, load_seq_model
from engine.seq.scales import SCALES

log = logging.getLogger(__name__)

MAX_EVENTS_PER_CALL = 256  # notes + rests per next_notes(); a far jump ahead is caught up over calls
MAX_ZERO_TIME = 3  # VEL/BOS tokens in a row before the next token must move time
DENSITY_REST = 2.0  # nats: density 1 makes rests e^-2 as likely, density 0 e^2
DENSITY_DUR = 1.0  # nats per octave of duration (halving/doubling) at density 0 or 1
MAX_PRIMER_NOTES = 512
_NEG = np.float32(-np.inf)


@dataclass
class StreamParams:
    """How a NoteStream samples; change with NoteStream.set_params(...).

    temperature: 0 = always the most likely token, 1 = the model, > 1 wilder.
    top_k: sample among the k most likely allowed tokens (0 = all).
    density: 0..1, 0.5 = as trained; higher = shorter notes and fewer rests.
    key: tonic pitch class 0..11 (0 = C). scale: a name in SCALES.
    low, high: MIDI pitch range (register) of generated notes.
    allow_restart: the model may end a tune (BOS) and start a new one.
    """

    temperature: float = 1.0
    top_k: int = 0
    density: float = 0.5
    key: int = 0
    scale: str = "chromatic"
    low: int = 0
    high: int = 127
    allow_restart: bool = True

    def validate(self, vocab: NoteVocab) -> None:
        """ValueError naming the first bad field; also when no pitch is left to play."""
        if not (isinstance(self.temperature, (int, float)) and 0.0 <= self.temperature <= 10.0):
            raise ValueError(f"temperature must be from 0 to 10, got {self.temperature!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be a whole number >= 0, got {self.top_k!r}")
        if not (isinstance(self.density, (int, float)) and 0.0 <= self.density <= 1.0):
            raise ValueError(f"density must be from 0 to 1, got {self.density!r}")
        if isinstance(self.key, bool) or not isinstance(self.key, int) or not 0 <= self.key <= 11:
            raise ValueError(f"key must be a pitch class 0..11 (0 = C), got {self.key!r}")
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; expected one of {sorted(SCALES)}")
        if not (isinstance(self.low, int) and isinstance(self.high, int) and 0 <= self.low <= self.high <= 127):
            raise ValueError(f"register must be 0 <= low <= high <= 127, got low={self.low!r} high={self.high!r}")
        if not allowed_pitches(self, vocab):
            raise ValueError(
                f"no pitch of scale {self.scale} in key {self.key} lies in the register "
                f"{self.low}..{self.high} and the model's range {vocab.pitch_low}..{vocab.pitch_high}"
            )


def allowed_pitches(params: StreamParams, vocab: NoteVocab) -> list[int]:
    """MIDI pitches the params let through, within the model's pitch range."""
    classes = {(params.key + c) % 12 for c in SCALES[params.scale]}
    lo, hi = max(params.low, vocab.pitch_low), min(params.high, vocab.pitch_high)
    return [p for p in range(lo, hi + 1) if p % 12 in classes]


def quantize(beat: float, subdivision: int = 4, swing: float = 0.0) -> float:
    """Snap `beat` to a grid of `subdivision` points per beat, with swing.

    swing 0..0.75 delays every second grid point (the off-beats) by swing
    grid steps: 1/3 gives the 2:1 triplet feel, 0.5 a dotted (3:1) feel.
    """
    if isinstance(subdivision, bool) or not isinstance(subdivision, int) or subdivision < 1:
        raise ValueError(f"subdivision must be a whole number >= 1 (points per beat), got {subdivision!r}")
    if not 0.0 <= swing <= 0.75:
        raise ValueError(f"swing must be from 0 to 0.75, got {swing!r}")
    index = math.floor(beat * subdivision + 0.5)
    q = index / subdivision
    return q + swing / subdivision if index % 2 else q


def _token_masks(vocab: NoteVocab, params: StreamParams) -> dict[str, np.ndarray]:
    """Additive float32 logit offsets (V,): -inf = forbidden, else the density bias.

    'after_note': only DUR may follow a NOTE. 'free': NOTE (scale/register),
    REST, VEL and BOS. 'timed': like 'free' but only tokens that move time.
    """
    v, spb = vocab.size, vocab.steps_per_beat
    s = 2.0 * (params.density - 0.5)  # -1 (sparse) .. +1 (busy)
    steps = np.arange(1, vocab.max_steps + 1, dtype=np.float32)
    length_bias = -s * DENSITY_DUR * np.log2(steps / spb)  # favours short (busy) or long (sparse)
    after_note = np.full(v, _NEG, np.float32)
    after_note[vocab.dur0 : vocab.rest0] = length_bias
    free = np.full(v, _NEG, np.float32)
    for pitch in allowed_pitches(params, vocab):
        free[vocab.note(pitch)] = 0.0
    free[vocab.rest0 : vocab.vel0] = length_bias - s * DENSITY_REST
    timed = free.copy()
    free[vocab.vel0 : vocab.size] = 0.0
    if params.allow_restart:
        free[vocab.BOS] = 0.0
    return {"after_note": after_note, "free": free, "timed": timed}


@dataclass
class _Cursor:
    """Decoding state of the token stream: time in steps, velocity, a NOTE waiting for its DUR."""

    step: int = 0
    velocity: int = 90
    pitch: int | None = None
    zero_run: int = 0


class NoteStream:
    """Generates a melody ahead of time in beats; see the module docstring.

    model: a SeqModel over a NoteVocab (or use NoteStream.from_file).
    params: StreamParams. seed: numpy PCG64 seed for sampling. primer: notes
    fed on every reset.
    """

    def __init__(
        self, model: SeqModel, params: StreamParams | None = None, seed: int = 0, primer: Sequence[Note] = ()
    ) -> None:
        if not isinstance(model.vocab, NoteVocab):
            raise TypeError(f"NoteStream needs a note model, got one of kind {model.vocab.KIND!r}")
        self.vocab: NoteVocab = model.vocab
        self._stepper = Stepper(model)
        self.params = StreamParams()
        self.set_params(**vars(params or StreamParams()))
        self.seed = seed
        self._primer = self._primer_tokens(primer)
        self._fresh: tuple[np.ndarray, np.ndarray | None, _Cursor] | None = None
        self.reset(seed=seed)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> NoteStream:
        """Load a kind="notes" model file and stream from it (ModelFileError if bad)."""
        model, _ = load_seq_model(path, NoteVocab.KIND)
        return cls(model, **kwargs)

    @property
    def position(self) -> float:
        """The cursor in beats: where the next generated event will start."""
        return self._origin + self._cur.step / self.vocab.steps_per_beat

    def set_params(self, **changes: Any) -> None:
        """Change sampling params (validated); takes effect from the next token."""
        params = replace(self.params, **changes)
        params.validate(self.vocab)
        self.params = params
        self._masks = _token_masks(self.vocab, params)

    def reset(self, seed: int | None = None, beat: float = 0.0) -> None:
        """Back to the start: fresh state, BOS and the primer fed; cursor at `beat`."""
        if seed is not None:
            self.seed = seed
        self._rng = np.random.default_rng(self.seed)
        if self._fresh is None:  # state after BOS + primer, computed once
            self._state, self._logits, self._cur = self._stepper.initial_state(), None, _Cursor()
            for token in [self.vocab.BOS, *self._primer]:
                self._feed(token)
            self._cur = _Cursor(velocity=self._cur.velocity)  # the primer's time is not ours
            self._fresh = (self._state, self._logits, replace(self._cur))
        self._state, self._logits, cur = self._fresh
        self._cur = replace(cur)
        self._origin = float(beat)

    def prime(self, notes: Sequence[Note]) -> None:
        """Feed notes (e.g. just played live) into the running state; the cursor stays."""
        step = self._cur.step
        for token in self._primer_tokens(notes):
            self._feed(token)
        self._cur.step = step

    def _primer_tokens(self, notes: Sequence[Note]) -> list[int]:
        notes = sorted(notes, key=lambda n: n.beat)[-MAX_PRIMER_NOTES:]  # the latest ones
        return self.vocab.encode(notes, bos=False) if notes else []

    def next_notes(self, until_beat: float) -> list[Note]:
        """Generate while the cursor is before `until_beat`; the notes started, in beat time."""
        out: list[Note] = []
        for _ in range(MAX_EVENTS_PER_CALL):
            if self.position >= until_beat:
                break
            note = self._next_event()
            if note is not None:
                out.append(note)
        return out

    def _next_event(self) -> Note | None:
        """Sample tokens until time moves (a note or a rest); at most MAX_ZERO_TIME + 2 tokens."""
        while True:
            before = self._cur.step
            pitch = self._cur.pitch
            token = self._sample()
            self._feed(token)
            if self._cur.step != before:
                if self.vocab.kind(token) == "dur" and pitch is not None:
                    spb = self.vocab.steps_per_beat
                    return Note(self._origin + before / spb, pitch, self._cur.velocity, (self._cur.step - before) / spb)
                return None

    def _feed(self, token: int) -> None:
        """Step the model and the decoding cursor by one token."""
        self._logits, self._state = self._stepper.step(token, self._state)
        cur, vocab = self._cur, self.vocab
        kind, value = vocab.kind(token), vocab.value(token)
        cur.zero_run = cur.zero_run + 1 if kind in ("vel", "bos") else 0
        if kind == "note":
            cur.pitch = value
        elif kind == "vel":
            cur.velocity = vocab.bin_velocity(value)
        elif kind in ("dur", "rest"):
            cur.step += value
            cur.pitch = None

    def _sample(self) -> int:
        """One token from the current logits under the params and the grammar."""
        p, cur = self.params, self._cur
        if cur.pitch is not None:
            mask = self._masks["after_note"]
        else:
            mask = self._masks["timed" if cur.zero_run >= MAX_ZERO_TIME else "free"]
        if p.temperature <= 0.0:
            return int(np.argmax(self._logits + mask))
        z = self._logits * np.float32(1.0 / p.temperature) + mask  # (V,) scaled logits + offsets
        if 0 < p.top_k < z.size:
            kth = np.partition(z, -p.top_k)[-p.top_k]
            z = np.where(z >= kth, z, _NEG)
        z -= z.max()
        np.exp(z, out=z)
        cdf = np.cumsum(z)
        return int(min(np.searchsorted(cdf, self._rng.random() * cdf[-1], side="right"), z.size - 1))


def frame_costs(
    stream: NoteStream, frames: int = 3600, fps: float = 60.0, bpm: float = 120.0, lookahead_beats: float = 1.0
) -> dict[str, float]:
    """Time next_notes() once per video frame as a show would; milliseconds per frame.

    Each frame asks for everything up to now + lookahead; most frames generate
    nothing and some a note or two. Returns median, p99, max and notes made.
    """
    costs = []
    notes = 0
    beats_per_frame = bpm / 60.0 / fps
    for i in range(frames):
        t0 = time.perf_counter()
        notes += len(stream.next_notes(i * beats_per_frame + lookahead_beats))
        costs.append((time.perf_counter() - t0) * 1000.0)
    costs.sort()
    return {
        "frames": frames,
        "notes": notes,
        "median_ms": statistics.median(costs),
        "p99_ms": costs[int(0.99 * (frames - 1))],
        "max_ms": costs[-1],
        "mean_ms": statistics.fmean(costs),
    }
