"""NoteStream: scale, register, top-k, density, primer, determinism; quantize()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models.notes import Note, NoteVocab
from engine.models.seq import SeqConfig, SeqModel
from engine.seq.notes import SCALES, NoteStream, StreamParams, frame_costs, quantize


@pytest.fixture(scope="module")
def model() -> SeqModel:
    torch.manual_seed(3)
    net = SeqModel(SeqConfig(NoteVocab(), embed=8, hidden=24, layers=2)).eval()
    with torch.no_grad():  # larger weights: an untrained net whose output depends on its input
        for param in net.parameters():
            param.mul_(4.0)
    return net


def _notes(model: SeqModel, beats: float = 64.0, seed: int = 0, **params: object) -> list[Note]:
    stream = NoteStream(model, StreamParams(**params), seed=seed)  # type: ignore[arg-type]
    return stream.next_notes(beats)


def test_scale_and_register_are_respected(model: SeqModel) -> None:
    notes = _notes(model, key=2, scale="dorian", low=60, high=72, temperature=1.5, density=0.9)
    assert len(notes) > 20
    allowed = {(2 + c) % 12 for c in SCALES["dorian"]}
    assert all(60 <= n.pitch <= 72 and n.pitch % 12 in allowed for n in notes)
    assert all(n.duration_beats > 0 and 1 <= n.velocity <= 127 for n in notes)
    beats = [n.beat for n in notes]
    assert beats == sorted(beats) and all(b + 1e-9 >= a.beat + a.duration_beats for a, b in zip(notes, beats[1:]))


def test_top_k_keeps_only_the_k_best(model: SeqModel) -> None:
    stream = NoteStream(model, StreamParams(top_k=3, temperature=2.0), seed=0)
    stream._logits = np.linspace(0.0, 1.0, model.vocab.size, dtype=np.float32)
    mask = stream._masks["free"]
    best = set(np.argsort(stream._logits + mask)[-3:].tolist())
    assert {stream._sample() for _ in range(300)} == best
    # top_k=1 is greedy whatever the seed or temperature.
    greedy = _notes(model, 16.0, seed=1, temperature=0.0)
    assert _notes(model, 16.0, seed=2, top_k=1, temperature=1.7) == greedy


def test_density_makes_it_busier(model: SeqModel) -> None:
    sparse = sum(len(_notes(model, 64.0, seed=s, density=0.0)) for s in range(3))
    busy = sum(len(_notes(model, 64.0, seed=s, density=1.0)) for s in range(3))
    assert busy > 2 * sparse


def test_same_seed_same_notes_however_the_calls_are_sliced(model: SeqModel) -> None:
    whole = _notes(model, 32.0, seed=5)
    stream = NoteStream(model, seed=5)
    sliced = [n for i in range(1, 321) for n in stream.next_notes(i * 0.1)]
    assert sliced == whole
    assert _notes(model, 32.0, seed=6) != whole
    stream.reset(beat=100.0)
    again = stream.next_notes(132.0)
    assert [(round(n.beat - 100.0, 9), n.pitch) for n in again] == [(round(n.beat, 9), n.pitch) for n in whole]


def test_primer_conditions_and_reset_restores(model: SeqModel) -> None:
    primer = [Note(float(i), 60 + 2 * i, 100, 1.0) for i in range(8)]
    plain = NoteStream(model, seed=1).next_notes(16.0)
    primed = NoteStream(model, seed=1, primer=primer)
    first = primed.next_notes(16.0)
    assert first != plain and first[0].beat >= 0.0
    primed.reset()
    assert primed.next_notes(16.0) == first
    primed.reset()
    primed.prime(primer[:2])  # live notes fed mid-stream; the cursor does not move
    assert primed.position == 0.0 and primed.next_notes(16.0) != first


def test_bad_params_are_clear(model: SeqModel) -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        NoteStream(model, StreamParams(scale="lydian dominant"))
    stream = NoteStream(model)
    with pytest.raises(ValueError, match="no pitch"):
        stream.set_params(scale="major", key=0, low=61, high=61)  # C#: not in C major
    with pytest.raises(ValueError, match="key"):
        stream.set_params(key=12)
    assert stream.params.key == 0  # a refused change leaves the params as they were


def test_quantize_grid_and_swing() -> None:
    assert quantize(0.26, 4) == 0.25 and quantize(0.49, 4) == 0.5 and quantize(1.13, 2) == 1.0
    assert quantize(0.26, 4, swing=1 / 3) == pytest.approx(0.25 + 1 / 12)  # off-beat delayed
    assert quantize(0.5, 4, swing=0.5) == 0.5  # on-beats do not move
    with pytest.raises(ValueError):
        quantize(0.1, 4, swing=0.8)
    with pytest.raises(ValueError):
        quantize(0.1, 0)


def test_frame_costs_reports(model: SeqModel) -> None:
    stats = frame_costs(NoteStream(model, StreamParams(density=1.0)), frames=120)
    assert stats["frames"] == 120 and stats["notes"] > 0 and stats["median_ms"] >= 0.0
