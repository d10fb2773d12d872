"""Note tokens: round trip, folding and clamping, layout, config checks.

The network itself (stepper == batch forward, model files) is tested for both
vocabularies in test_seq_model.py.
"""

from __future__ import annotations

import pytest

from engine.models.notes import Note, NoteVocab


def _melody() -> list[Note]:
    """On the 12-step grid, in range, velocities at bin centres (88, 120), with a rest."""
    return [
        Note(1.0, 60, 88, 0.5),  # pickup after a 1-beat rest
        Note(1.5, 62, 88, 0.25),
        Note(1.75, 64, 88, 1.0 / 3),
        Note(2.0 + 1.0 / 12, 65, 120, 1.0),  # off the 16th grid, on the 12-step grid
        Note(4.0, 67, 120, 4.0),  # the longest DUR (48 steps)
        Note(9.0, 72, 88, 0.5),  # after a 1-beat rest
    ]


def test_tokens_round_trip() -> None:
    vocab = NoteVocab()
    melody = _melody()
    tokens = vocab.encode(melody)
    assert tokens[0] == vocab.BOS and vocab.kind(tokens[1]) == "rest"
    assert vocab.decode(tokens) == melody
    assert vocab.encode(vocab.decode(tokens)) == tokens
    kinds = [vocab.kind(t) for t in tokens]
    assert kinds.count("vel") == 3  # only where the loudness changes
    assert kinds.count("note") == kinds.count("dur") == len(melody)


def test_encode_folds_clamps_and_absorbs() -> None:
    vocab = NoteVocab()
    notes = [Note(0.0, 10, 64, 0.9), Note(1.0, 120, 64, 6.0), Note(7.0, 60, 64, 1.0), Note(7.0, 55, 64, 1.0)]
    out = vocab.decode(vocab.encode(notes), velocity=64)
    # pitch 10 -> 22 (octaves up), 0.9-beat note then a 0.1-beat gap -> legato 1 beat,
    # pitch 120 -> 108, 6 beats -> 4 (longest token) + rest, two notes at one step -> the higher.
    assert [(n.beat, n.pitch, n.duration_beats) for n in out] == [(0.0, 22, 1.0), (1.0, 108, 4.0), (7.0, 60, 1.0)]
    assert vocab.encode([Note(5.0, 60, 90, 1.0)], bos=False)[1:] == [vocab.note(60), vocab.dur(12)]


def test_vocab_layout() -> None:
    vocab = NoteVocab()
    kinds = [vocab.kind(t) for t in range(vocab.size)]
    assert kinds.count("bos") == 1 and kinds.count("note") == 88
    assert kinds.count("dur") == kinds.count("rest") == 48 and kinds.count("vel") == 8
    assert vocab.value(vocab.note(60)) == 60 and vocab.value(vocab.rest(7)) == 7
    with pytest.raises(ValueError):
        vocab.kind(vocab.size)


def test_vocab_config_is_checked() -> None:
    assert NoteVocab.from_dict(NoteVocab().to_dict()) == NoteVocab()
    assert set(NoteVocab.KEYS) == set(NoteVocab().to_dict())
    with pytest.raises(ValueError, match="pitch_high"):
        NoteVocab(pitch_low=60, pitch_high=65).validate()
    with pytest.raises(ValueError, match="velocity_bins"):
        NoteVocab.from_dict({"velocity_bins": 1.5})
