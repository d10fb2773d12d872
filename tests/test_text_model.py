"""Character vocabulary: fallbacks for unseen characters, <unk> never predicted, config, files.

The network itself (stepper == batch forward, state, model files) is tested
for both vocabularies in test_seq_model.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.models.checkpoint import ModelFileError, read_model, save_model
from engine.models.seq import SeqConfig, SeqModel, load_seq_model, save_seq_model
from engine.models.text import CharVocab, probabilities
from tests.test_seq_model import tiny

VOCAB = "\n !,.?Tabcdehilmnorstuwy"


def tiny_model(layers: int = 2, seed: int = 0, vocab: str = VOCAB) -> SeqModel:
    """A small random text model (eval mode), the same for the same seed."""
    return tiny(CharVocab(vocab), layers, seed)


def save_tiny(path: Path, model: SeqModel) -> Path:
    save_seq_model(path, model, data={"file": "test.txt"}, metrics={}, steps=0)
    return path


def test_unk_is_never_predicted() -> None:
    probs = probabilities(tiny_model()(torch.zeros(1, 5, dtype=torch.int64)))
    assert torch.all(probs[..., -1] == 0)
    assert torch.allclose(probs.sum(-1), torch.ones(1, 5))


def test_vocab_maps_unseen_characters() -> None:
    vocab = CharVocab(VOCAB)
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
    cfg = SeqConfig(CharVocab("ab\n"), embed=4, hidden=8, layers=1)
    assert SeqConfig.from_dict("text", cfg.to_dict()) == cfg
    assert cfg.to_dict() == {"vocab": "ab\n", "embed": 4, "hidden": 8, "layers": 1, "dropout": 0.0}
    assert cfg.vocab.size == 4 and cfg.vocab.unk == 3
    with pytest.raises(ValueError, match="repeated"):
        CharVocab("aab").validate()
    with pytest.raises(ValueError, match="hidden"):
        SeqConfig(CharVocab("ab"), hidden=0).validate()
    with pytest.raises(ValueError, match="unknown text config"):
        SeqConfig.from_dict("text", {"vocab": "ab", "size": 3})
    with pytest.raises(ValueError, match="vocab"):
        SeqConfig.from_dict("text", {"hidden": 3})


def test_model_file_round_trip_fp16(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_tiny(tmp_path / "t.safetensors", model)
    tensors, meta = read_model(path, "text")
    assert meta["kind"] == "text" and meta["config"]["vocab"] == VOCAB
    assert {t.dtype for t in tensors.values()} == {torch.float16}
    loaded, _ = load_seq_model(path, "text")
    assert not loaded.training and loaded.embed.weight.dtype == torch.float32
    idx = torch.randint(0, len(VOCAB), (1, 20), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(probabilities(loaded(idx)), probabilities(model(idx)), atol=5e-3)


def test_load_refuses_other_kinds_and_bad_files(tmp_path: Path) -> None:
    from tests.conftest import make_tiny_gan

    gan = make_tiny_gan(tmp_path / "gan.safetensors")
    with pytest.raises(ModelFileError, match="expected kind 'text'"):
        load_seq_model(gan, "text")
    bad = tmp_path / "bad.safetensors"
    model = tiny_model()
    save_model(bad, model.state_dict(), kind="text", config={"vocab": "ab"}, data={}, metrics={}, steps=0)
    with pytest.raises(ModelFileError, match="shape"):
        load_seq_model(bad, "text")
    pickled = tmp_path / "p.safetensors"
    pickled.write_bytes(b"\x80\x04\x95not safetensors")
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        load_seq_model(pickled, "text")
