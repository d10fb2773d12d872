"""Params of the sequence layers: the melody (`/deck/a/notes/...`), the text
(`/deck/a/text/...`) and the synth (`/synth/...`).

Deck params belong to the playing scene: a scene's [notes] and [text] tables
set their defaults (and the scene's [params] table may narrow ranges like any
deck param). The synth's params (`/synth/...`) are engine.dsp.synth's. Pure module: no torch, pygame or sound.
"""

from __future__ import annotations

from engine.core.params import Param
from engine.seq.scales import SCALE_NAMES

_SCALES_DOC = ", ".join(f"{i} {n}" for i, n in enumerate(SCALE_NAMES, 1))

# (name under notes/ or text/, type, default, lo, hi, unit, smoothing s, description)
NOTE_PARAMS: tuple[tuple, ...] = (
    ("on", "bool", 1.0, 0, 1, "", 0.0, "play the scene's melody (0 mutes it and releases its notes)"),
    ("temperature", "float", 1.0, 0.0, 2.0, "", 0.0, "sampling temperature: 0 most likely note, 1 as trained"),
    ("top_k", "int", 0.0, 0, 64, "", 0.0, "sample among the k most likely tokens (0 = all)"),
    ("density", "float", 0.5, 0.0, 1.0, "", 0.0, "how busy: higher = shorter notes and fewer rests"),
    ("key", "int", 0.0, 0, 11, "", 0.0, "tonic pitch class (0 C, 2 D, ... 11 B)"),
    ("scale", "int", 1.0, 1, len(SCALE_NAMES), "", 0.0, "scale: " + _SCALES_DOC),
    ("low", "int", 48.0, 0, 127, "MIDI", 0.0, "lowest pitch of the register"),
    ("high", "int", 84.0, 0, 127, "MIDI", 0.0, "highest pitch of the register"),
    ("subdivision", "int", 4.0, 1, 8, "per beat", 0.0, "quantisation grid: note starts snap to 1/N beat"),
    ("swing", "float", 0.0, 0.0, 0.75, "", 0.0, "delay of the off-beat grid steps (0 straight, 0.33 triplet feel)"),
    ("velocity", "float", 1.0, 0.0, 2.0, "x", 0.0, "multiplier on generated velocities"),
    ("seed", "int", 0.0, 0, 65535, "", 0.0, "sampling seed; a change restarts the melody with it"),
)
TEXT_PARAMS: tuple[tuple, ...] = (
    ("on", "bool", 1.0, 0, 1, "", 0.0, "generate and show the scene's text"),
    ("temperature", "float", 0.8, 0.0, 2.0, "", 0.0, "sampling temperature: 0 most likely character"),
    ("top_k", "int", 0.0, 0, 64, "", 0.0, "sample among the k most likely characters (0 = all)"),
    ("rate", "float", 15.0, 0.0, 100.0, "chars/s", 0.0, "characters generated per second"),
    ("seed", "int", 0.0, 0, 65535, "", 0.0, "sampling seed; a change restarts the text with it"),
    ("size", "float", 0.05, 0.01, 0.25, "of height", 0.0, "letter size as a fraction of the frame height"),
    ("red", "float", 1.0, 0.0, 1.0, "", 0.0, "text colour, red"),
    ("green", "float", 1.0, 0.0, 1.0, "", 0.0, "text colour, green"),
    ("blue", "float", 1.0, 0.0, 1.0, "", 0.0, "text colour, blue"),
    ("alpha", "float", 1.0, 0.0, 1.0, "", 0.05, "text opacity"),
    ("x", "float", 0.05, 0.0, 1.0, "of width", 0.05, "left edge of the text block"),
    ("y", "float", 0.65, 0.0, 1.0, "of height", 0.05, "top edge of the text block"),
    ("line_length", "int", 40.0, 8, 200, "chars", 0.0, "lines wrap at a word boundary near this length"),
    ("lines", "int", 4.0, 1, 20, "", 0.0, "lines visible at once"),
    ("fade", "float", 0.8, 0.0, 10.0, "s", 0.0, "seconds a line fades in, and out when it leaves"),
    ("scroll", "float", 0.3, 0.0, 10.0, "s", 0.0, "seconds the block takes to move up a line (0 jumps)"),
)


def _make(prefix: str, spec: tuple) -> Param:
    name, typ, default, lo, hi, unit, smoothing, description = spec
    return Param(f"{prefix}/{name}", typ, float(default), float(lo), float(hi), unit, smoothing, description)


def seq_deck_params(base: str) -> list[Param]:
    """The melody and text params of one deck (base = "/deck/a")."""
    return [_make(f"{base}/notes", s) for s in NOTE_PARAMS] + [_make(f"{base}/text", s) for s in TEXT_PARAMS]
