"""MIDI folders for the note trainer: forgiving loading, melody extraction, split by file.

Loading rules (load_midi_folder):
- The folder is searched recursively in sorted path order; dotfiles and
  dot-folders are ignored. Files ending in .mid/.midi (any case) are read with
  mido; every other file is skipped and counted, as the image trainer does.
- Skipped with a reason (counted, named in the log and the summary): files
  mido cannot parse (corrupt, truncated), type 2 files (independent patterns,
  no shared timeline), files without notes, drum-only files (every note on
  MIDI channel 10, mido channel 9) and files without a part of MIN_NOTES notes.
- Parts: one per (track, channel), so type 0 files (all channels in one
  track) and type 1 files (one part per track) are treated alike. Channel 10
  (drums) is never used. A part is melodic if it has MIN_NOTES notes and a
  median pitch of at least BASS_MEDIAN (C3); if no part is, the part with the
  highest median pitch is used. At most MAX_PARTS parts per file (highest
  median first), so one orchestral file cannot outweigh a folder of tunes.
- Each part becomes monophonic by the skyline rule (highest pitch at each
  onset, each note cut at the next onset) and is split into separate melodies
  at silences longer than MAX_REST_BEATS. Time is in beats: ticks divided by
  the file's ticks_per_beat, so tempo changes do not matter. Each melody
  keeps its offset within the bar (from the first time signature, default
  4/4) as a leading rest, so pickups stay pickups.
"""

from __future__ import annotations

import io
import logging
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np

from engine.errors import TrainSetupError
from engine.models.notes import Note, NoteVocab
from engine.train.common import folder_files

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
DRUM_CHANNEL = 9  # MIDI channel 10
MIN_NOTES = 8
BASS_MEDIAN = 48  # C3: parts whose median pitch is lower are taken for bass lines
MAX_PARTS = 4
MAX_REST_BEATS = 8.0
VAL_FRACTION = 0.1

# (start tick, end tick, pitch, velocity)
RawNote = tuple[int, int, int, int]


class SkipFile(Exception):
    """This file holds nothing the note trainer can use; the message says why."""


@dataclass
class MidiFileMelodies:
    """The melodies of one usable file; name is relative to the scanned folder."""

    name: str
    melodies: list[list[Note]]


@dataclass
class MidiScan:
    """What load_midi_folder found: usable files plus the skipped ones with reasons."""

    folder: str
    files: list[MidiFileMelodies] = field(default_factory=list)
    skipped_names: list[str] = field(default_factory=list)
    skip_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def loaded(self) -> int:
        return len(self.files)

    @property
    def skipped(self) -> int:
        return len(self.skipped_names)

    def skip(self, name: str, reason: str) -> None:
        self.skipped_names.append(name)
        self.skip_reasons[name] = reason


def _track_notes(track: mido.MidiTrack) -> dict[int, list[RawNote]]:
    """channel -> notes of one track, in ticks; a re-struck or unterminated note ends there."""
    tick = 0
    sounding: dict[tuple[int, int], tuple[int, int]] = {}  # (channel, pitch) -> (start, velocity)
    out: dict[int, list[RawNote]] = {}

    def close(key: tuple[int, int], end: int) -> None:
        start, vel = sounding.pop(key)
        out.setdefault(key[0], []).append((start, max(end, start), key[1], vel))

    for msg in track:
        tick += msg.time
        if msg.type not in ("note_on", "note_off"):
            continue
        key = (msg.channel, msg.note)
        if key in sounding:
            close(key, tick)
        if msg.type == "note_on" and msg.velocity > 0:
            sounding[key] = (tick, msg.velocity)
    for key in list(sounding):
        close(key, tick)
    return out


def _bar_beats(mid: mido.MidiFile) -> float:
    """Beats per bar from the first time signature (quarter-note beats), default 4."""
    for track in mid.tracks:
        for msg in track:
            if msg.type == "time_signature":
                return msg.numerator * 4.0 / msg.denominator
    return 4.0


def _pick_parts(parts: list[list[RawNote]]) -> list[list[RawNote]]:
    """Melodic parts (MIN_NOTES notes, median pitch >= BASS_MEDIAN), highest first, or the highest one."""
    big = [p for p in parts if len(p) >= MIN_NOTES]
    if not big:
        raise SkipFile(f"no part with at least {MIN_NOTES} notes")
    big.sort(key=lambda p: statistics.median(n[2] for n in p), reverse=True)
    melodic = [p for p in big if statistics.median(n[2] for n in p) >= BASS_MEDIAN]
    return (melodic or big[:1])[:MAX_PARTS]


def _skyline(part: list[RawNote]) -> list[RawNote]:
    """Highest pitch at each onset; every note ends no later than the next onset."""
    top: dict[int, RawNote] = {}
    for note in part:
        if note[0] not in top or note[2] > top[note[0]][2]:
            top[note[0]] = note
    onsets = sorted(top)
    out = []
    for i, start in enumerate(onsets):
        _, end, pitch, vel = top[start]
        if i + 1 < len(onsets):
            end = min(end, onsets[i + 1])
        out.append((start, end, pitch, vel))
    return out


def _melodies(line: list[RawNote], ticks_per_beat: int, bar_beats: float) -> list[list[Note]]:
    """A monophonic line in ticks -> melodies in beats, split at long silences."""
    pieces: list[list[RawNote]] = [[]]
    for note in line:
        if pieces[-1] and (note[0] - pieces[-1][-1][1]) / ticks_per_beat > MAX_REST_BEATS:
            pieces.append([])
        pieces[-1].append(note)
    out = []
    for piece in pieces:
        if len(piece) < MIN_NOTES:
            continue
        first = piece[0][0] / ticks_per_beat
        origin = first - math.fmod(first, bar_beats)  # keep the offset within the bar
        out.append([Note((s / ticks_per_beat) - origin, p, v, (e - s) / ticks_per_beat) for s, e, p, v in piece])
    return out


def read_midi_melodies(path: str | os.PathLike[str]) -> list[list[Note]]:
    """Melodies (monophonic, beat time) of one MIDI file; SkipFile says why there are none."""
    try:
        mid = mido.MidiFile(os.fspath(path))
    except Exception as exc:  # noqa: BLE001 - mido raises many types on bad bytes (OSError, EOFError, KeyError, ...)
        raise SkipFile(f"not a readable MIDI file ({type(exc).__name__}: {exc})") from exc
    if mid.type == 2:
        raise SkipFile("type 2 MIDI (independent patterns) is not supported")
    if mid.ticks_per_beat <= 0:
        raise SkipFile("SMPTE time division is not supported")
    parts: list[list[RawNote]] = []
    drums = 0
    for track in mid.tracks:
        for channel, notes in sorted(_track_notes(track).items()):
            if channel == DRUM_CHANNEL:
                drums += len(notes)
            else:
                parts.append(notes)
    if not parts:
        raise SkipFile("drum-only (every note on channel 10)" if drums else "no notes")
    bar = _bar_beats(mid)
    melodies = []
    for part in _pick_parts(parts):
        melodies += _melodies(_skyline(part), mid.ticks_per_beat, bar)
    if not melodies:
        raise SkipFile(f"no melody of at least {MIN_NOTES} notes")
    return melodies


def load_midi_folder(path: str | os.PathLike[str]) -> MidiScan:
    """Read every usable MIDI file under `path`; ValueError if none holds a melody."""
    root = Path(path)
    if not root.is_dir():
        raise TrainSetupError(f"MIDI folder '{root}' does not exist or is not a folder")
    scan = MidiScan(folder=str(root))
    for file in folder_files(root):
        rel = str(file.relative_to(root))
        if file.suffix.lower() not in MIDI_SUFFIXES:
            scan.skip(rel, "not a .mid/.midi file")
            continue
        try:
            scan.files.append(MidiFileMelodies(rel, read_midi_melodies(file)))
        except SkipFile as exc:
            log.debug("skipping %s: %s", rel, exc)
            scan.skip(rel, str(exc))
    if not scan.files:
        raise TrainSetupError(
            f"MIDI folder '{root}' holds no usable melody: {scan.skipped} file(s) skipped"
            + (f" ({_reason_counts(scan)})" if scan.skipped else "; it has no .mid/.midi files")
        )
    return scan


def _reason_counts(scan: MidiScan) -> str:
    counts: dict[str, int] = {}
    for reason in scan.skip_reasons.values():
        key = reason.split(" (")[0]
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {reason}" for reason, n in counts.items())


def split_by_file(count: int, seed: int, fraction: float = VAL_FRACTION) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices) over `count` files, fixed by `seed`.

    Held out: round(fraction * count) files, at least 1 (so a score exists)
    and at most count - 1. ValueError with fewer than 2 files.
    """
    if count < 2:
        raise TrainSetupError(f"need at least 2 usable MIDI files to hold one out for validation, got {count}")
    n_val = min(count - 1, max(1, round(fraction * count)))
    order = np.random.default_rng(seed).permutation(count)
    return sorted(int(i) for i in order[n_val:]), sorted(int(i) for i in order[:n_val])


def melody_tokens(melodies: Sequence[Sequence[Note]], vocab: NoteVocab) -> list[list[int]]:
    """Each melody -> its token list (starting with BOS)."""
    return [vocab.encode(m) for m in melodies]


def notes_to_midi_bytes(
    notes: Sequence[Note], ticks_per_beat: int = 480, bpm: float = 120.0, program: int = 0
) -> bytes:
    """A type 0 MIDI file (channel 1) playing `notes`; overlapping notes are cut by the next onset."""
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message); note-offs sort first
    for note in sorted(notes, key=lambda n: n.beat):
        start = round(note.beat * ticks_per_beat)
        end = max(start + 1, round((note.beat + note.duration_beats) * ticks_per_beat))
        pitch, vel = int(note.pitch), max(1, min(127, int(note.velocity)))
        events.append((start, 1, mido.Message("note_on", note=pitch, velocity=vel)))
        events.append((end, 0, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    tick = 0
    for at, _, msg in events:
        track.append(msg.copy(time=at - tick))
        tick = at
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()
