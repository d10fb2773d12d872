"""Note model: tokens round trip, streaming step == batch forward, model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from engine.models.checkpoint import ModelFileError
from engine.models.notes import (
    Note,
    NoteConfig,
    NoteRNN,
    NumpyStepper,
    load_note_model,
    save_note_model,
)
from tests.conftest import make_tiny_gan

TINY = NoteConfig(embed=8, hidden=24, layers=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    vocab = NoteConfig().vocab()
    melody = _melody()
    tokens = vocab.encode(melody)
    assert tokens[0] == vocab.BOS and vocab.kind(tokens[1]) == "rest"
    assert vocab.decode(tokens) == melody
    assert vocab.encode(vocab.decode(tokens)) == tokens
    kinds = [vocab.kind(t) for t in tokens]
    assert kinds.count("vel") == 3  # only where the loudness changes
    assert kinds.count("note") == kinds.count("dur") == len(melody)


def test_encode_folds_clamps_and_absorbs() -> None:
    vocab = NoteConfig().vocab()
    notes = [Note(0.0, 10, 64, 0.9), Note(1.0, 120, 64, 6.0), Note(7.0, 60, 64, 1.0), Note(7.0, 55, 64, 1.0)]
    out = vocab.decode(vocab.encode(notes), velocity=64)
    # pitch 10 -> 22 (octaves up), 0.9-beat note then a 0.1-beat gap -> legato 1 beat,
    # pitch 120 -> 108, 6 beats -> 4 (longest token) + rest, two notes at one step -> the higher.
    assert [(n.beat, n.pitch, n.duration_beats) for n in out] == [(0.0, 22, 1.0), (1.0, 108, 4.0), (7.0, 60, 1.0)]
    assert vocab.encode([Note(5.0, 60, 90, 1.0)], bos=False)[1:] == [vocab.note(60), vocab.dur(12)]


def test_vocab_layout() -> None:
    vocab = NoteConfig().vocab()
    kinds = [vocab.kind(t) for t in range(vocab.size)]
    assert kinds.count("bos") == 1 and kinds.count("note") == 88
    assert kinds.count("dur") == kinds.count("rest") == 48 and kinds.count("vel") == 8
    assert vocab.value(vocab.note(60)) == 60 and vocab.value(vocab.rest(7)) == 7
    with pytest.raises(ValueError):
        vocab.kind(vocab.size)


@pytest.mark.parametrize("layers", [1, 2])
def test_step_equals_forward(layers: int) -> None:
    torch.manual_seed(layers)
    config = NoteConfig(embed=8, hidden=24, layers=layers)
    model = NoteRNN(config).eval()
    tokens = torch.randint(0, model.vocab.size, (1, 40))
    with torch.no_grad():
        batch = torch.softmax(model(tokens)[0], dim=-1).numpy()  # (T, V)
    stepper = NumpyStepper(model)
    h_np, h_t = stepper.initial_state(), None
    for t in range(tokens.shape[1]):
        logits_np, h_np = stepper.step(int(tokens[0, t]), h_np)
        logits_t, h_t = model.step(int(tokens[0, t]), h_t)
        np.testing.assert_allclose(torch.softmax(logits_t, -1).numpy(), batch[t], atol=1e-5)
        p_np = np.exp(logits_np - logits_np.max())
        np.testing.assert_allclose(p_np / p_np.sum(), batch[t], atol=1e-5)


def test_forward_with_state_continues() -> None:
    torch.manual_seed(0)
    model = NoteRNN(TINY).eval()
    tokens = torch.randint(0, model.vocab.size, (3, 20))
    with torch.no_grad():
        whole = model(tokens)
        first, state = model.forward_state(tokens[:, :12])
        second, _ = model.forward_state(tokens[:, 12:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-5, rtol=0)


def test_model_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = NoteRNN(TINY)
    path = tmp_path / "m.safetensors"
    save_note_model(path, model, data={"folder": "x"}, metrics={"val_loss": 1.0}, steps=7)
    loaded, meta = load_note_model(path)
    assert meta["kind"] == "notes" and meta["steps"] == 7 and meta["config"] == TINY.to_dict()
    with safe_open(str(path), framework="pt") as fh:
        assert {fh.get_slice(k).get_dtype() for k in fh.keys()} == {"F16"}
    assert not loaded.training
    tokens = torch.randint(0, model.vocab.size, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens), model(tokens), atol=2e-2, rtol=0)  # fp16 weights


def test_loading_wrong_kind_or_config_is_clear(tmp_path: Path) -> None:
    gan = make_tiny_gan(tmp_path / "gan.safetensors")
    with pytest.raises(ModelFileError, match="expected kind 'notes'"):
        load_note_model(gan)
    with pytest.raises(ValueError, match="hidden"):
        NoteConfig(hidden=0).validate()
    with pytest.raises(ValueError, match="unknown notes config"):
        NoteConfig.from_dict({"hidden": 8, "colour": 1})
