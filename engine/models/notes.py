"""Event-based melody RNN: a GRU over pitch / duration / rest / velocity tokens.

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

The network (nanoGPT style: config dataclass beside the module) is
embedding -> GRU (layers x hidden) -> linear to logits. ``forward`` runs a
batch (B, T) -> (B, T, V); ``step`` runs one token for streaming, and
``NumpyStepper`` runs the same step from the weights in plain numpy (no
torch dispatch: several times faster at batch 1 on the CPU, see docs/NOTES.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from engine.models.checkpoint import load_module, save_model
from engine.models.config import config_from_dict

Tensor = torch.Tensor
KIND = "notes"


@dataclass(frozen=True)
class Note:
    """One note in beat time; pitch and velocity are MIDI numbers (0..127)."""

    beat: float
    pitch: int
    velocity: int
    duration_beats: float


@dataclass
class NoteConfig:
    """Constructor arguments of NoteRNN, including the vocabulary; stored in model files.

    steps_per_beat: time grid (12 = 16ths and triplets). max_steps: longest
    DUR/REST token in steps. pitch_low/pitch_high: MIDI pitch range with a
    token each (others are folded in by octaves). velocity_bins: loudness
    levels. embed/hidden/layers: network size. dropout: between GRU layers
    and before the output layer, training only.
    """

    steps_per_beat: int = 12
    max_steps: int = 48
    pitch_low: int = 21
    pitch_high: int = 108
    velocity_bins: int = 8
    embed: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what was expected."""
        for f in fields(self):
            value = getattr(self, f.name)
            want_float = f.name == "dropout"
            ok = isinstance(value, (int, float)) if want_float else isinstance(value, int)
            if isinstance(value, bool) or not ok:
                raise ValueError(f"notes config '{f.name}' must be a number, got {value!r}")
        checks = (
            ("steps_per_beat", 1 <= self.steps_per_beat <= 96, "from 1 to 96"),
            ("max_steps", 1 <= self.max_steps <= 16 * self.steps_per_beat, "from 1 to 16 beats of steps"),
            ("pitch_low", 0 <= self.pitch_low <= 116, "from 0 to 116"),
            ("pitch_high", self.pitch_low + 11 <= self.pitch_high <= 127, "pitch_low + 11 .. 127 (an octave)"),
            ("velocity_bins", 1 <= self.velocity_bins <= 128, "from 1 to 128"),
            ("embed", 1 <= self.embed <= 4096, "from 1 to 4096"),
            ("hidden", 1 <= self.hidden <= 4096, "from 1 to 4096"),
            ("layers", 1 <= self.layers <= 8, "from 1 to 8"),
            ("dropout", 0.0 <= self.dropout < 1.0, "in [0, 1)"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"notes config '{name}' must be {expected}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NoteConfig":
        """Build and validate a config; unknown keys are an error, missing keys default."""
        return config_from_dict(cls, data, "notes config")

    def vocab(self) -> "NoteVocab":
        return NoteVocab(self.steps_per_beat, self.max_steps, self.pitch_low, self.pitch_high,
                         self.velocity_bins)


@dataclass(frozen=True)
class NoteVocab:
    """Token layout: [BOS] [NOTE pitch_low..pitch_high] [DUR 1..max] [REST 1..max] [VEL bins]."""

    steps_per_beat: int
    max_steps: int
    pitch_low: int
    pitch_high: int
    velocity_bins: int

    BOS = 0

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
        for name, start, end in (("note", self.note0, self.dur0), ("dur", self.dur0, self.rest0),
                                 ("rest", self.rest0, self.vel0), ("vel", self.vel0, self.size)):
            if start <= token < end:
                return name
        raise ValueError(f"token {token} is outside the vocabulary (size {self.size})")

    def value(self, token: int) -> int:
        """Pitch for NOTE, steps for DUR/REST, bin for VEL, 0 for BOS."""
        kind = self.kind(token)
        base = {"bos": 0, "note": self.note0 - self.pitch_low, "dur": self.dur0 - 1,
                "rest": self.rest0 - 1, "vel": self.vel0}[kind]
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
                    notes.append(Note(start_beat + step / self.steps_per_beat, pitch, velocity,
                                      value / self.steps_per_beat))
                step += value
                pitch = None
        return notes


class NoteRNN(nn.Module):
    """tokens (B, T) -> next-token logits (B, T, V); GRU state (layers, B, hidden)."""

    def __init__(self, config: NoteConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.vocab = config.vocab()
        v = self.vocab.size
        self.embed = nn.Embedding(v, config.embed)
        self.gru = nn.GRU(config.embed, config.hidden, num_layers=config.layers, batch_first=True,
                          dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, v)
        self._token = torch.zeros(1, 1, dtype=torch.long)  # reused by step()

    def initial_state(self, batch: int = 1) -> Tensor:
        """Zero GRU state (layers, batch, hidden) on the model's device."""
        return torch.zeros(self.config.layers, batch, self.config.hidden, device=self.head.weight.device)

    def forward_state(self, tokens: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T) int tokens and optional state -> (logits (B, T, V), new state (L, B, H))."""
        if tokens.dim() != 2:
            raise ValueError(f"NoteRNN expects tokens of shape (B, T), got {tuple(tokens.shape)}")
        x = self.embed(tokens)  # (B, T, E)
        out, state = self.gru(x, state)  # (B, T, H), (L, B, H)
        return self.head(self.drop(out)), state  # (B, T, V)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.forward_state(tokens)[0]

    @torch.inference_mode()
    def step(self, token: int, state: Tensor | None) -> tuple[Tensor, Tensor]:
        """One token -> (logits (V,), new state (L, 1, H)); None state = start of a stream."""
        self._token[0, 0] = int(token)
        logits, state = self.forward_state(self._token.to(self.head.weight.device), state)
        return logits[0, 0], state


def _sigmoid(x: np.ndarray) -> np.ndarray:
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    return np.reciprocal(x, out=x)


class NumpyStepper:
    """NoteRNN.step in plain float32 numpy, from the model's weights (same maths as nn.GRU).

    Layer 0's input projection of every token is precomputed into a table
    (V, 3H), so a step costs one row lookup plus, per layer, one (3H, H)
    matrix-vector product (two for layers above 0) and the head. The state is
    a (layers, hidden) float32 array; step() returns new arrays, never aliases.
    """

    def __init__(self, model: NoteRNN) -> None:
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        self.layers, self.hidden = model.config.layers, model.config.hidden
        emb = sd["embed.weight"]  # (V, E)
        self.table0 = np.ascontiguousarray(emb @ sd["gru.weight_ih_l0"].T + sd["gru.bias_ih_l0"])  # (V, 3H)
        self.w_ih = [None] + [np.ascontiguousarray(sd[f"gru.weight_ih_l{k}"]) for k in range(1, self.layers)]
        self.b_ih = [None] + [sd[f"gru.bias_ih_l{k}"] for k in range(1, self.layers)]
        self.w_hh = [np.ascontiguousarray(sd[f"gru.weight_hh_l{k}"]) for k in range(self.layers)]  # (3H, H)
        self.b_hh = [sd[f"gru.bias_hh_l{k}"] for k in range(self.layers)]
        self.w_out = np.ascontiguousarray(sd["head.weight"])  # (V, H)
        self.b_out = sd["head.bias"]
        h3 = 3 * self.hidden
        self._gh = np.empty(h3, np.float32)  # scratch buffers, reused every step
        self._gi = np.empty(h3, np.float32)

    def initial_state(self) -> np.ndarray:
        return np.zeros((self.layers, self.hidden), np.float32)

    def step(self, token: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One token -> (logits (V,) float32, new state (layers, hidden))."""
        hid = self.hidden
        new = np.empty_like(state)
        x = None
        for k in range(self.layers):
            if k == 0:
                gi = self.table0[token]  # (3H,) input gates of this token
            else:
                gi = np.dot(self.w_ih[k], x, out=self._gi)
                gi += self.b_ih[k]
            gh = np.dot(self.w_hh[k], state[k], out=self._gh)
            gh += self.b_hh[k]
            rz = _sigmoid(gi[: 2 * hid] + gh[: 2 * hid])  # (2H,) reset and update gates
            n = np.tanh(gi[2 * hid:] + rz[:hid] * gh[2 * hid:])  # (H,) candidate
            # h' = (1 - z) * n + z * h, written as n + z * (h - n)
            new[k] = n + rz[hid:] * (state[k] - n)
            x = new[k]
        return self.w_out @ x + self.b_out, new


def save_note_model(path: str | Path, model: NoteRNN, *, data: Mapping[str, Any],
                    metrics: Mapping[str, Any], steps: int) -> None:
    """Write a kind="notes" model file (fp16 weights; config = NoteConfig.to_dict())."""
    save_model(path, model.state_dict(), kind=KIND, config=model.config.to_dict(), data=data,
               metrics=metrics, steps=steps)


def load_note_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[NoteRNN, dict[str, Any]]:
    """Build the NoteRNN a model file describes (float32, eval mode, no gradients)."""
    return load_module(path, KIND, lambda config: NoteRNN(NoteConfig.from_dict(config)), device)
