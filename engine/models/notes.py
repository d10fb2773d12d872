"""Melody tokens: the vocabulary the note models speak (pitch / duration / rest / velocity).

A melody is a monophonic list of Note(beat, pitch, velocity, duration_beats).
Time is in beats (quarter notes of the MIDI file's ticks_per_beat), quantised
to ``steps_per_beat`` steps (12 by default: 16th notes are 3 steps, eighth-note
triplets 4, so both straight and triplet rhythms sit on the grid). The tokens:

    BOS            start of a melody (also the separator between melodies)
    NOTE p         a note of pitch p starts now (pitch_low..pitch_high)
    DUR d          ... and sounds for d steps; time moves on by d (1..max_steps)
    REST d         silence of d steps (1..max_steps)
    VEL b          velocity bin b from now on (0..velocity_bins-1); only on change

So one note is NOTE+DUR (plus VEL when the loudness changes) and time moves
only through DUR and REST. Notes longer than max_steps are shortened to
max_steps and the remaining time becomes REST; silences shorter than a
quarter beat after a note are absorbed into the note (legato), so ragged
note-offs do not turn into a stream of tiny rests.

The network is engine.models.seq's SeqModel with a NoteVocab as its
vocabulary; model files of kind "notes" store the NoteVocab fields beside
the network size in their config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from engine.models.config import config_from_dict


@dataclass(frozen=True)
class Note:
    """One note in beat time; pitch and velocity are MIDI numbers (0..127)."""

    beat: float
    pitch: int
    velocity: int
    duration_beats: float


@dataclass(frozen=True)
class NoteVocab:
    """Token layout: [BOS] [NOTE pitch_low..pitch_high] [DUR 1..max] [REST 1..max] [VEL bins].

    steps_per_beat: time grid (12 = 16ths and triplets). max_steps: longest
    DUR/REST token in steps. pitch_low/pitch_high: MIDI pitch range with a
    token each (others are folded in by octaves). velocity_bins: loudness levels.
    """

    steps_per_beat: int = 12
    max_steps: int = 48
    pitch_low: int = 21
    pitch_high: int = 108
    velocity_bins: int = 8

    KIND: ClassVar[str] = "notes"  # the model-file kind of this vocabulary
    KEYS: ClassVar[tuple[str, ...]] = (
        "steps_per_beat",
        "max_steps",
        "pitch_low",
        "pitch_high",
        "velocity_bins",
    )  # its keys in a model file's config
    BOS: ClassVar[int] = 0

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what was expected."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"notes config '{f.name}' must be a whole number, got {value!r}")
        checks = (
            ("steps_per_beat", 1 <= self.steps_per_beat <= 96, "from 1 to 96"),
            ("max_steps", 1 <= self.max_steps <= 16 * self.steps_per_beat, "from 1 to 16 beats of steps"),
            ("pitch_low", 0 <= self.pitch_low <= 116, "from 0 to 116"),
            ("pitch_high", self.pitch_low + 11 <= self.pitch_high <= 127, "pitch_low + 11 .. 127 (an octave)"),
            ("velocity_bins", 1 <= self.velocity_bins <= 128, "from 1 to 128"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"notes config '{name}' must be {expected}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoteVocab:
        """Build and validate from a model file's config keys (KEYS); missing keys default."""
        return config_from_dict(cls, data, "notes config")

    @property
    def note0(self) -> int:
        return 1

    @property
    def dur0(self) -> int:
        return self.note0 + self.pitch_high - self.pitch_low + 1

    @property
    def rest0(self) -> int:
        return self.dur0 + self.max_steps

    @property
    def vel0(self) -> int:
        return self.rest0 + self.max_steps

    @property
    def size(self) -> int:
        return self.vel0 + self.velocity_bins

    def note(self, pitch: int) -> int:
        return self.note0 + self.fold(pitch) - self.pitch_low

    def dur(self, steps: int) -> int:
        return self.dur0 + min(max(steps, 1), self.max_steps) - 1

    def rest(self, steps: int) -> int:
        return self.rest0 + min(max(steps, 1), self.max_steps) - 1

    def vel(self, velocity: int) -> int:
        return self.vel0 + self.velocity_bin(velocity)

    def fold(self, pitch: int) -> int:
        """Move a pitch by octaves into [pitch_low, pitch_high]."""
        while pitch < self.pitch_low:
            pitch += 12
        while pitch > self.pitch_high:
            pitch -= 12
        return pitch

    def velocity_bin(self, velocity: int) -> int:
        return min(max(int(velocity), 0) * self.velocity_bins // 128, self.velocity_bins - 1)

    def bin_velocity(self, b: int) -> int:
        """Centre of velocity bin b, as a MIDI velocity 1..127."""
        width = 128 / self.velocity_bins
        return max(1, min(127, int(b * width + width / 2)))

    def kind(self, token: int) -> str:
        """'bos' | 'note' | 'dur' | 'rest' | 'vel'; ValueError outside the vocabulary."""
        if token == self.BOS:
            return "bos"
        for name, start, end in (
            ("note", self.note0, self.dur0),
            ("dur", self.dur0, self.rest0),
            ("rest", self.rest0, self.vel0),
            ("vel", self.vel0, self.size),
        ):
            if start <= token < end:
                return name
        raise ValueError(f"token {token} is outside the vocabulary (size {self.size})")

    def value(self, token: int) -> int:
        """Pitch for NOTE, steps for DUR/REST, bin for VEL, 0 for BOS."""
        kind = self.kind(token)
        base = {
            "bos": 0,
            "note": self.note0 - self.pitch_low,
            "dur": self.dur0 - 1,
            "rest": self.rest0 - 1,
            "vel": self.vel0,
        }[kind]
        return token - base

    def encode(self, notes: Sequence[Note], bos: bool = True) -> list[int]:
        """Monophonic notes (beat time) -> tokens; see the module docstring.

        With bos=True (a training melody) time counts from beat 0, so a pickup
        keeps its leading rest; with bos=False (a primer fed to a running
        stream) the tokens start at the first note.
        """
        spb = self.steps_per_beat
        events = sorted(((round(n.beat * spb), -int(n.pitch), n) for n in notes), key=lambda e: e[:2])
        onsets: list[tuple[int, Note]] = []
        for step, _, note in events:
            if not onsets or onsets[-1][0] != step:  # same step twice: keep the highest pitch
                onsets.append((step, note))
        tokens = [self.BOS] if bos else []
        cursor = onsets[0][0] if onsets and not bos else 0
        vel_bin = -1
        for i, (step, note) in enumerate(onsets):
            self._rests(tokens, step - cursor)
            if self.velocity_bin(note.velocity) != vel_bin:
                vel_bin = self.velocity_bin(note.velocity)
                tokens.append(self.vel0 + vel_bin)
            length = max(1, round(note.duration_beats * spb))
            if i + 1 < len(onsets):
                gap = onsets[i + 1][0] - step
                length = min(length, gap)
                if gap - length < max(1, spb // 4):  # absorb short silences (legato)
                    length = gap
            length = min(length, self.max_steps)
            tokens += [self.note(int(note.pitch)), self.dur(length)]
            cursor = step + length
        return tokens

    def _rests(self, tokens: list[int], steps: int) -> None:
        while steps > 0:
            tokens.append(self.rest(min(steps, self.max_steps)))
            steps -= self.max_steps

    def decode(self, tokens: Sequence[int], start_beat: float = 0.0, velocity: int = 90) -> list[Note]:
        """Tokens -> notes from start_beat; ill-formed pieces (NOTE without DUR) are dropped."""
        step, pitch, notes = 0, None, []
        for token in tokens:
            kind, value = self.kind(int(token)), self.value(int(token))
            if kind == "note":
                pitch = value
            elif kind == "vel":
                velocity = self.bin_velocity(value)
            elif kind in ("dur", "rest"):
                if kind == "dur" and pitch is not None:
                    notes.append(
                        Note(start_beat + step / self.steps_per_beat, pitch, velocity, value / self.steps_per_beat)
                    )
                step += value
                pitch = None
        return notes
