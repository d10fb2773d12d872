"""Streaming text: a TextStream samples characters from a text model as show time passes.

The show calls ``advance(dt)`` once per frame; the stream emits the characters
due at ``rate`` characters per second (usually zero or one per frame), keeps
the current line and hands out finished lines (wrapped at a word boundary
near ``line_length`` characters, or at a newline) for the typography layer.

Cheap by construction: the GRU is stepped one character at a time with
engine.models.seq.Stepper (float32 numpy from the model's weights, the first
layer's input projection precomputed for every character, so layer 0 costs
one row lookup plus the recurrent matrix-vector product). Measured on the
2-core CPU with the shipped model (hidden 512): see docs/TEXT.md.

Deterministic: the same model, params, seed, primers and sequence of dt give
the same characters (numpy's PCG64 generator for sampling, float32 CPU maths).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from engine.models.seq import SeqModel, Stepper
from engine.models.text import CharVocab

log = logging.getLogger(__name__)

MAX_BURST = 64  # characters per advance(); after a stall the backlog is dropped, not typed out at once
MAX_PRIMER = 256  # characters of a primer fed through the state (the last ones are kept)
MAX_PENDING = 4 * MAX_PRIMER  # primer characters waiting; past it the oldest are dropped (a flood)
MAX_RATE = 1000.0  # characters per second
MAX_DT = 10.0  # seconds; a longer dt (a stall) counts as this much
MAX_LINE = 1000
START_CONTEXT = "\n"  # what the state has "read" after reset(): the start of a line


@dataclass
class TextStreamParams:
    """What a performer changes live. Out-of-range values are clamped, never rejected, mid-show.

    temperature: divides the logits; lower is more conservative; 0 picks the most likely character.
    top_k: sample among the k most likely characters only (0: all of them).
    rate: characters per second of show time.
    line_length: a line is wrapped at the last space before it grows past this many characters.
    seed: the sampler's random seed (applied by reset()).
    """

    temperature: float = 0.8
    top_k: int = 0
    rate: float = 20.0
    line_length: int = 40
    seed: int = 0

    def clamped(self) -> TextStreamParams:
        """A copy with every field in range (NaN becomes the default)."""

        def num(value: float, low: float, high: float, default: float) -> float:
            value = float(value)
            return default if value != value else min(max(value, low), high)

        return replace(
            self,
            temperature=num(self.temperature, 0.0, 10.0, 0.8),
            top_k=int(num(self.top_k, 0, 1_000_000, 0)),
            rate=num(self.rate, 0.0, MAX_RATE, 20.0),
            line_length=int(num(self.line_length, 1, MAX_LINE, 40)),
        )


def sample_index(logits: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    """Draw a character index from logits (V,); the last class (<unk>) is never drawn."""
    scores = logits[:-1].astype(np.float64)
    if temperature <= 0.0:
        return int(np.argmax(scores))
    scores = scores / temperature
    if 0 < top_k < scores.size:
        kth = np.partition(scores, scores.size - top_k)[scores.size - top_k]
        scores = np.where(scores >= kth, scores, -np.inf)
    weights = np.exp(scores - scores.max())
    cumulative = np.cumsum(weights)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), scores.size - 1))


def wrap_line(line: str, line_length: int) -> tuple[str, str]:
    """Split a line that grew past `line_length`: (finished part, carried-over rest).

    Breaks at the last space at or before `line_length`; a single word longer
    than the line is cut at `line_length`.
    """
    cut = line.rfind(" ", 0, line_length + 1)
    if cut > 0:
        return line[:cut].rstrip(), line[cut + 1 :].lstrip(" ")
    return line[:line_length], line[line_length:]


class TextStream:
    """Characters from a text model at `rate` per second of show time, as lines."""

    def __init__(self, model: SeqModel, params: TextStreamParams | None = None, primer: str = "") -> None:
        if not isinstance(model.vocab, CharVocab):
            raise TypeError(f"TextStream needs a text model, got one of kind {model.vocab.KIND!r}")
        self.vocab: CharVocab = model.vocab
        self.kernel = Stepper(model)
        self.params = params or TextStreamParams()
        self.primer_dropped = 0  # primer characters dropped unread (over MAX_PENDING), for the stats
        self.reset()
        if primer:
            self.prime(primer)

    def reset(self, seed: int | None = None) -> None:
        """Forget the text so far: zero state, empty line, sampler reseeded (params.seed or `seed`)."""
        if seed is not None:
            self.params.seed = int(seed)
        self.rng = np.random.Generator(np.random.PCG64(self.params.seed))
        self.state = self.kernel.initial_state()  # (layers, H) float32
        self._logits, self.state = self.kernel.step(self.vocab.lookup(START_CONTEXT), self.state)  # (V,)
        self._due = 0.0  # characters owed, fractional
        # Primer characters not yet fed through the state, with their vocabulary index: an
        # echoed one is fed when it is emitted, like a sampled one; None marks one fed silently.
        self._pending: deque[tuple[str | None, int]] = deque(maxlen=MAX_PENDING)  # full: oldest dropped
        self._line: list[str] = []
        self._lines: deque[str] = deque(maxlen=1000)  # finished, not yet taken
        self._last_blank = True  # no blank line at the very start
        self.emitted = 0

    def prime(self, text: str, echo: bool = True) -> None:
        """Feed `text` through the state (e.g. OSC /text/prime); unseen characters are mapped.

        With `echo` the primer is also emitted, at the normal rate, before new
        characters are sampled, so the audience reads the prompt too; each of
        its characters then steps the state as it is emitted, not all now: 256
        steps at once took ~30 ms of one frame on the 2-core CPU (two dropped
        frames at 60 fps), one per emitted character costs what sampling does.
        The characters and the state after them are the same either way.
        """
        text = text[-MAX_PRIMER:]
        indices = self.vocab.encode(text)
        if echo or self._pending:  # behind echoed characters: fed in turn, after them
            over = len(self._pending) + len(text) - MAX_PENDING
            self._pending.extend(zip(text if echo else [None] * len(text), indices))
            if over > 0:  # primers faster than the rate types them: the newest are kept
                if self.primer_dropped == 0:
                    log.warning(
                        "text: primers arrive faster than they are typed; dropping the oldest "
                        "waiting characters (counted in primer_dropped)"
                    )
                self.primer_dropped += over
            return
        for idx in indices:
            self._logits, self.state = self.kernel.step(idx, self.state)

    def advance(self, dt: float) -> str:
        """Move show time on by `dt` seconds; returns the characters due (often '')."""
        p = self.params.clamped()
        dt = float(dt)
        if dt > 0.0:  # also skips NaN
            self._due += p.rate * min(dt, MAX_DT)
        count = int(self._due)
        if count == 0:
            return ""
        self._due -= count
        if count > MAX_BURST:
            count, self._due = MAX_BURST, 0.0
        out = []
        for _ in range(count):
            char = self._next_char(p)
            self._add_to_line(char, p.line_length)
            out.append(char)
        self.emitted += count
        return "".join(out)

    def _next_char(self, p: TextStreamParams) -> str:
        while self._pending:
            char, idx = self._pending.popleft()
            self._logits, self.state = self.kernel.step(idx, self.state)
            if char is not None:
                return char
        idx = sample_index(self._logits, p.temperature, p.top_k, self.rng)
        self._logits, self.state = self.kernel.step(idx, self.state)
        return self.vocab.chars[idx]

    def _add_to_line(self, char: str, line_length: int) -> None:
        if char == "\n":
            self._finish("".join(self._line).rstrip())
            self._line.clear()
            return
        self._line.append(char)
        if len(self._line) > line_length:
            done, rest = wrap_line("".join(self._line), line_length)
            self._finish(done)
            self._line[:] = rest

    def _finish(self, line: str) -> None:
        if not line.strip():
            if self._last_blank:  # at most one blank line in a row
                return
            line = ""
        self._last_blank = not line
        self._lines.append(line)

    @property
    def current_line(self) -> str:
        """The line being written (not yet finished)."""
        return "".join(self._line)

    def take_lines(self) -> list[str]:
        """Finished lines since the last call, oldest first ('' marks a paragraph break)."""
        lines = list(self._lines)
        self._lines.clear()
        return lines
