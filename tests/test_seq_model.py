"""The one sequence network, for both vocabularies: stepper == batch forward, state, model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from engine.models.checkpoint import ModelFileError
from engine.models.notes import NoteVocab
from engine.models.seq import SeqConfig, SeqModel, Stepper, load_seq_model, save_seq_model
from engine.models.text import CharVocab
from tests.conftest import make_tiny_gan

VOCABS = {"notes": NoteVocab(), "text": CharVocab("\n !,.?Tabcdehilmnorstuwy")}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(vocab: NoteVocab | CharVocab, layers: int = 2, seed: int = 0) -> SeqModel:
    """A small random model (eval mode), the same for the same seed."""
    torch.manual_seed(seed)
    model = SeqModel(SeqConfig(vocab, embed=8, hidden=24, layers=layers))
    with torch.no_grad():  # larger output weights than the init: makes the logit checks meaningful
        model.head.weight.mul_(4.0)
    return model.eval().requires_grad_(False)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", ["notes", "text"])
def test_stepper_equals_batch_forward(kind: str, layers: int) -> None:
    model = tiny(VOCABS[kind], layers, seed=layers)
    tokens = torch.randint(0, model.vocab.size, (1, 40), generator=torch.Generator().manual_seed(1))
    batch, state = model.forward_state(tokens)  # (1, T, V), (L, 1, H)
    stepper = Stepper(model)
    h = stepper.initial_state()
    for t in range(tokens.shape[1]):
        before = h.copy()
        logits, h = stepper.step(int(tokens[0, t]), h)
        np.testing.assert_allclose(logits, batch[0, t].numpy(), atol=1e-5, rtol=1e-5)
        assert h is not before and not np.shares_memory(h, before)
    np.testing.assert_allclose(h, state[:, 0].numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["notes", "text"])
def test_state_carries_over_between_calls(kind: str) -> None:
    model = tiny(VOCABS[kind])
    tokens = torch.randint(0, model.vocab.size, (3, 20), generator=torch.Generator().manual_seed(2))
    whole = model(tokens)
    first, state = model.forward_state(tokens[:, :12])
    second = model(tokens[:, 12:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-5, rtol=0)
    assert torch.equal(model.initial_state(3), torch.zeros(2, 3, 24))


@pytest.mark.parametrize("kind", ["notes", "text"])
def test_model_file_round_trip_fp16(kind: str, tmp_path: Path) -> None:
    model = tiny(VOCABS[kind])
    path = tmp_path / "m.safetensors"
    save_seq_model(path, model, data={"folder": "x"}, metrics={"val_loss": 1.0}, steps=7)
    loaded, meta = load_seq_model(path, kind)
    assert meta["kind"] == kind and meta["steps"] == 7 and meta["config"] == model.config.to_dict()
    assert loaded.config == model.config and not loaded.training
    with safe_open(str(path), framework="pt") as fh:
        assert {fh.get_slice(k).get_dtype() for k in fh.keys()} == {"F16"}
        # Text files name the GRU "rnn", as the shipped trained/shakespeare.safetensors does.
        gru = {k.split(".")[0] for k in fh.keys()} - {"embed", "head"}
    assert gru == {"rnn" if kind == "text" else "gru"}
    tokens = torch.randint(0, model.vocab.size, (2, 10), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loaded(tokens), model(tokens), atol=5e-2, rtol=0)  # fp16 weights


@pytest.mark.parametrize("kind", ["notes", "text"])
def test_config_round_trip_and_clear_errors(kind: str, tmp_path: Path) -> None:
    config = tiny(VOCABS[kind]).config
    assert SeqConfig.from_dict(kind, config.to_dict()) == config
    with pytest.raises(ValueError, match=f"{kind} config 'hidden'"):
        SeqConfig(VOCABS[kind], hidden=0).validate()
    with pytest.raises(ValueError, match=f"unknown {kind} config key"):
        SeqConfig.from_dict(kind, {**config.to_dict(), "colour": 1})
    with pytest.raises(ModelFileError, match=f"expected kind '{kind}'"):
        load_seq_model(make_tiny_gan(tmp_path / "gan.safetensors"), kind)
