"""Musical scales as pitch-class sets (semitones above the key's tonic).

Pure module: shared by the note sampler, the scene files and the param
registry (where a scale is chosen by its 1-based index in SCALE_NAMES).
"""

from __future__ import annotations

SCALES: dict[str, tuple[int, ...]] = {
    "chromatic": tuple(range(12)),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}
SCALE_NAMES: tuple[str, ...] = tuple(SCALES)  # param /deck/a/notes/scale = 1-based index here
KEY_NAMES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}


def key_index(name: str) -> int | None:
    """'C' -> 0, 'f#' -> 6, 'Bb' -> 10; None if not a key name."""
    text = name.strip()
    text = text[:1].upper() + text[1:]
    text = _FLATS.get(text, text)
    return KEY_NAMES.index(text) if text in KEY_NAMES else None
