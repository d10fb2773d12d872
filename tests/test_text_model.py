"""Character-level text model: config, vocabulary fallbacks, stream == batch, model files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.models.checkpoint import ModelFileError, read_model, save_model
from engine.models.text import TextConfig, TextModel, Vocab, load_text_model, probabilities
from engine.seq.text import GRUStepper

VOCAB = "\n !,.?Tabcdehilmnorstuwy"


def tiny_model(layers: int = 2, seed: int = 0, vocab: str = VOCAB) -> TextModel:
    """A small random text model (eval mode), the same for the same seed."""
    torch.manual_seed(seed)
    model = TextModel(TextConfig(vocab=vocab, embed=8, hidden=24, layers=layers))
    # Larger output weights than the init: makes the probability checks meaningful.
    with torch.no_grad():
        model.head.weight.mul_(4.0)
    return model.eval().requires_grad_(False)


def save_tiny(path: Path, model: TextModel) -> Path:
    save_model(path, model.state_dict(), kind="text", config=model.config.to_dict(),
               data={"file": "test.txt"}, metrics={}, steps=0)
    return path


@pytest.mark.parametrize("layers", [1, 2])
def test_step_by_step_equals_batch_forward(layers: int) -> None:
    model = tiny_model(layers)
    idx = torch.randint(0, model.config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1))
    batch = probabilities(model(idx))  # (3, 40, V)
    state = model.initial_state(3)
    stepped = []
    for t in range(idx.shape[1]):
        logits, state = model.step(idx[:, t], state)  # (3, V)
        stepped.append(probabilities(logits))
    assert torch.allclose(torch.stack(stepped, dim=1), batch, atol=1e-5, rtol=0)
    # The stepper the live sampler uses gives the same probabilities too.
    kernel = GRUStepper(model)
    np_state = kernel.initial_state()
    np_probs = [probabilities(torch.from_numpy(kernel.step(int(i), np_state))) for i in idx[0]]
    assert torch.allclose(torch.stack(np_probs), batch[0], atol=1e-5, rtol=0)


def test_state_carries_over_between_calls() -> None:
    model = tiny_model()
    idx = torch.randint(0, len(VOCAB), (2, 30), generator=torch.Generator().manual_seed(2))
    whole = model(idx)
    first, state = model.scan(idx[:, :12])
    second, _ = model.scan(idx[:, 12:], state)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-6)


def test_unk_is_never_predicted() -> None:
    probs = probabilities(tiny_model()(torch.zeros(1, 5, dtype=torch.int64)))
    assert torch.all(probs[..., -1] == 0)
    assert torch.allclose(probs.sum(-1), torch.ones(1, 5))


def test_vocab_maps_unseen_characters() -> None:
    vocab = Vocab(VOCAB)
    unk = vocab.unk
    assert vocab.encode("Tab") == [VOCAB.index("T"), VOCAB.index("a"), VOCAB.index("b")]
    # accents stripped, other case, whitespace to space / newline, else <unk>
    assert vocab.encode("é") == [VOCAB.index("e")]
    assert vocab.encode("B") == [VOCAB.index("b")]
    assert vocab.encode("\t") == [VOCAB.index(" ")]
    assert vocab.encode("\r") == [VOCAB.index("\n")]
    assert vocab.encode("Z") == [unk] and vocab.encode("\U0001f600") == [unk]
    assert vocab.encode("\x07") == [VOCAB.index(" ")]
    assert vocab.decode([0, 1, unk]) == "\n \ufffd"


def test_config_validation_and_round_trip() -> None:
    cfg = TextConfig(vocab="ab\n", embed=4, hidden=8, layers=1)
    assert TextConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.vocab_size == 4 and cfg.unk == 3
    with pytest.raises(ValueError, match="repeated"):
        TextConfig(vocab="aab").validate()
    with pytest.raises(ValueError, match="hidden"):
        TextConfig(vocab="ab", hidden=0).validate()
    with pytest.raises(ValueError, match="unknown text config"):
        TextConfig.from_dict({"vocab": "ab", "size": 3})
    with pytest.raises(ValueError, match="vocab"):
        TextConfig.from_dict({"hidden": 3})


def test_model_file_round_trip_fp16(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_tiny(tmp_path / "t.safetensors", model)
    tensors, meta = read_model(path, "text")
    assert meta["kind"] == "text" and meta["config"]["vocab"] == VOCAB
    assert {t.dtype for t in tensors.values()} == {torch.float16}
    loaded, _ = load_text_model(path)
    assert not loaded.training and loaded.embed.weight.dtype == torch.float32
    idx = torch.randint(0, len(VOCAB), (1, 20), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(probabilities(loaded(idx)), probabilities(model(idx)), atol=5e-3)


def test_load_refuses_other_kinds_and_bad_files(tmp_path: Path) -> None:
    from tests.conftest import make_tiny_gan

    gan = make_tiny_gan(tmp_path / "gan.safetensors")
    with pytest.raises(ModelFileError, match="expected kind 'text'"):
        load_text_model(gan)
    bad = tmp_path / "bad.safetensors"
    model = tiny_model()
    save_model(bad, model.state_dict(), kind="text", config={"vocab": "ab"}, data={}, metrics={}, steps=0)
    with pytest.raises(ModelFileError, match="shape"):
        load_text_model(bad)
    pickled = tmp_path / "p.safetensors"
    pickled.write_bytes(b"\x80\x04\x95not safetensors")
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        load_text_model(pickled)
