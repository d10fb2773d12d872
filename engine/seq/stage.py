"""The sequence layers on stage: the playing scene's melody and text, stepped by the show.

`SeqLayer` attaches to a Show as a frame hook (it runs after each present, in
the slack before the next frame, so it never delays a picture). Each frame it

- generates the melody ahead on the tempo's beat grid (`LOOKAHEAD_S` seconds
  of beats), snaps note starts to `notes/subdivision` with `notes/swing`, and
  hands each note to the note sinks with its show time in seconds: the synth
  (sample-accurate on the audio clock), MIDI out, the note log;
- advances the text by the frame's dt and gives finished lines to the text
  layer (drawn by the output before present) and to the announcers
  (OSC `/text/line`);
- applies the `/deck/a/notes/*`, `/deck/a/text/*` and `/synth/*` params.

A scene change, a blackout and `notes/on` = 0 release every sounding note
(panic) and restart the melody on the next whole beat. All of it depends only
on show time, the tempo and the params, so an offline render with the
fixed-step clock hears and shows what the live show did.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from engine.models.notes import Note
from engine.seq.scales import SCALE_NAMES

if TYPE_CHECKING:
    from engine.seq.notes import NoteStream
    from engine.seq.text import TextStream

log = logging.getLogger(__name__)

LOOKAHEAD_S = 0.2  # seconds of melody generated ahead: > one frame + the audio ring's latency
NOTE_FIELDS = ("temperature", "top_k", "density", "key", "scale", "low", "high")
TEXT_FIELDS = ("temperature", "top_k", "rate", "line_length")


class NoteSink(Protocol):
    def note(self, t: float, pitch: int, velocity: int, duration_s: float) -> float: ...

    def panic(self) -> None: ...


@dataclass
class NoteCounts:
    notes: int = 0
    panics: int = 0
    param_errors: int = 0


class NotePlayer:
    """One scene's NoteStream on the beat grid; notes go to `sink.note(t, ...)`."""

    def __init__(self, stream: NoteStream, base: str) -> None:
        self.stream = stream
        self.base = f"{base}/notes"
        self._applied: dict[str, float] = {}
        self._seed: int | None = None
        self.playing = False
        self._last_start = -math.inf  # beat of the last note started
        self.counts = NoteCounts()

    def restart(self, beat: float) -> None:
        """Start again on the next whole beat (after a scene change, a blackout, a mute)."""
        self.stream.reset(seed=self._seed, beat=float(math.ceil(beat - 1e-9)))
        self._last_start = -math.inf
        self.playing = True

    def apply_params(self, get: Callable[[str], float]) -> None:
        """Registry -> stream params, only when something changed; a bad mix (no pitch left
        in the register) is logged once per change and the old params kept."""
        values = {f: get(f"{self.base}/{f}") for f in NOTE_FIELDS}
        if values != self._applied:
            self._applied = values
            changes: dict[str, Any] = {f: int(values[f]) for f in ("top_k", "key", "low", "high")}
            changes.update(
                temperature=values["temperature"],
                density=values["density"],
                scale=SCALE_NAMES[int(values["scale"]) - 1],
            )
            try:
                self.stream.set_params(**changes)
            except ValueError as e:
                self.counts.param_errors += 1
                log.warning("notes: %s; keeping the previous settings", e)
        seed = int(get(f"{self.base}/seed"))
        if self._seed is None:
            self._seed = seed
        elif seed != self._seed:
            self._seed = seed
            self.playing = False  # restarted with the new seed by the next step

    def step(self, t: float, beat: float, bpm: float, get: Callable[[str], float], sink: NoteSink) -> None:
        """Generate up to LOOKAHEAD_S ahead of (t, beat) and schedule what was generated."""
        if not self.playing or self.stream.position < beat - 1.0:
            self.restart(beat)
        spb = 60.0 / bpm  # seconds per beat
        subdivision, swing = int(get(f"{self.base}/subdivision")), get(f"{self.base}/swing")
        gain = get(f"{self.base}/velocity")
        for note in self.stream.next_notes(beat + LOOKAHEAD_S / spb):
            self._play(note, t, beat, spb, subdivision, swing, gain, sink)

    def _play(
        self, note: Note, t: float, beat: float, spb: float, subdivision: int, swing: float, gain: float, sink: NoteSink
    ) -> None:
        from engine.seq.notes import quantize

        start = max(quantize(note.beat, subdivision, swing), beat)  # never in the past
        step = 1.0 / subdivision
        while start <= self._last_start + 1e-9:  # a melody: two notes never share a grid point
            start = quantize(start + step, subdivision, swing)
        self._last_start = start
        velocity = min(127, max(1, round(note.velocity * gain)))
        if gain <= 0.0:
            return
        sink.note(t + (start - beat) * spb, note.pitch, velocity, max(note.duration_beats, 1e-3) * spb)
        self.counts.notes += 1


class TextPlayer:
    """One scene's TextStream: characters by show time, finished lines out."""

    def __init__(self, stream: TextStream, base: str, primer: str) -> None:
        self.stream = stream
        self.base = f"{base}/text"
        self.primer = primer
        self._seed: int | None = None
        self.lines = 0

    def restart(self) -> None:
        self.stream.reset(seed=self._seed)
        if self.primer:
            self.stream.prime(self.primer)

    def apply_params(self, get: Callable[[str], float]) -> None:
        p = self.stream.params
        p.temperature, p.rate = get(f"{self.base}/temperature"), get(f"{self.base}/rate")
        p.top_k, p.line_length = int(get(f"{self.base}/top_k")), int(get(f"{self.base}/line_length"))
        seed = int(get(f"{self.base}/seed"))
        if seed != self._seed:
            self._seed = seed
            self.restart()

    def step(self, dt: float) -> list[str]:
        self.stream.advance(dt)
        lines = self.stream.take_lines()
        self.lines += len(lines)
        return lines


class NoteLog:
    """`--note-log FILE`: one JSON line per generated note, flushed every frame."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = open(path, "w", encoding="utf-8")  # OSError: a startup error
        self.errors = 0

    def write(self, t: float, pitch: int, velocity: int, duration_s: float) -> None:
        if self._f is None:
            return
        try:
            self._f.write(
                json.dumps({"t": round(t, 6), "pitch": pitch, "velocity": velocity, "duration": round(duration_s, 6)})
                + "\n"
            )
        except OSError as e:
            self._fail(e)

    def flush(self) -> None:
        if self._f is not None:
            try:
                self._f.flush()
            except OSError as e:
                self._fail(e)

    def _fail(self, e: OSError) -> None:
        self.errors += 1
        log.error("note log %s: %s; no more notes are logged (the show goes on)", self.path, e)
        self.close()

    def close(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass


class PhraseListener:
    """Notes played live (verb /notes/played "pitch:velocity", at show times) gathered into a
    phrase; after a beat of silence the phrase, in beats, is handed over as a primer."""

    GAP_BEATS = 1.0  # silence that ends a phrase
    MAX_NOTES = 64

    def __init__(self) -> None:
        self._held: dict[int, tuple[float, int]] = {}  # pitch -> (show time on, velocity)
        self._done: list[tuple[float, float, int, int]] = []  # (t on, t off, pitch, velocity)
        self.rejected = 0

    def played(self, value: object, t: float) -> None:
        try:
            pitch, velocity = (int(x) for x in str(value).split(":"))
        except ValueError:
            self.rejected += 1
            return
        if not (0 <= pitch <= 127 and 0 <= velocity <= 127):
            self.rejected += 1
        elif velocity:
            self._held[pitch] = (t, velocity)
        elif pitch in self._held:
            t_on, vel = self._held.pop(pitch)
            self._done.append((t_on, t, pitch, vel))
            del self._done[: -self.MAX_NOTES]

    def phrase(self, t: float, bpm: float) -> list[Note]:
        """The finished phrase as Notes in beats from its first note, once a beat of silence
        has passed (else [])."""
        if self._held or not self._done or t - max(n[1] for n in self._done) < self.GAP_BEATS * 60.0 / bpm:
            return []
        bps = bpm / 60.0
        start = self._done[0][0]
        notes = [
            Note((on - start) * bps, pitch, vel, max(off - on, 1e-3) * bps)
            for on, off, pitch, vel in sorted(self._done)
        ]
        self._done.clear()
        return notes
