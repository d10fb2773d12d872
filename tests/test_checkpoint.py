"""Model files: round trip, atomicity, and one clear ModelFileError per kind of bad file."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import safetensors.torch
import torch

from engine.models.checkpoint import (
    FORMAT_VERSION,
    ModelFileError,
    load_generator,
    read_model,
    read_state,
    save_model,
    save_state,
)
from engine.models.gan import GANConfig, Generator

CONFIG = GANConfig(size=64, latent_dim=8, channels=32)


def _save_gan(path: Path, config: GANConfig = CONFIG) -> Generator:
    torch.manual_seed(0)
    g = Generator(config)
    save_model(
        path,
        g.state_dict(),
        kind="gan",
        config=config.to_dict(),
        data={"folder": "x", "images": 4, "skipped": 1},
        metrics={"sample_distance": 0.5},
        steps=12,
    )
    return g


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    g = _save_gan(path)
    tensors, meta = read_model(path, expect_kind="gan")
    assert all(t.dtype == torch.float16 for t in tensors.values())
    assert meta["format"] == FORMAT_VERSION and meta["kind"] == "gan"
    assert meta["config"] == CONFIG.to_dict()
    assert meta["data"] == {"folder": "x", "images": 4, "skipped": 1}
    assert meta["metrics"] == {"sample_distance": 0.5}
    assert meta["steps"] == 12 and meta["torch"] == torch.__version__
    loaded, meta2 = load_generator(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert next(loaded.parameters()).dtype == torch.float32
    z = torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z), g(z), atol=2e-2, rtol=0)  # fp16 on disk
    assert not list(tmp_path.glob(".*.tmp")), "temp files left behind"


def test_metadata_is_all_strings(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _save_gan(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        raw = fh.metadata()
    assert all(isinstance(v, str) for v in raw.values())
    assert json.loads(raw["config"]) == CONFIG.to_dict()


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.safetensors"
    with pytest.raises(ModelFileError, match="nope.safetensors.*not found"):
        read_model(path, "gan")


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    _save_gan(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.safetensors.*not a valid safetensors"):
        load_generator(path)


def test_pickle_renamed(tmp_path: Path) -> None:
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ModelFileError, match="evil.safetensors.*not a valid safetensors"):
        read_model(path, "gan")


def test_wrong_kind(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_model(path, {"w": torch.zeros(2)}, kind="text", config={}, data={}, metrics={}, steps=1)
    with pytest.raises(ModelFileError, match="t.safetensors.*expected kind 'gan', file holds 'text'"):
        load_generator(path)


def test_plain_safetensors_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelFileError, match="plain.safetensors.*lacks metadata"):
        read_model(path, None)


@pytest.mark.parametrize(
    "name, version, config, match",
    [("future", "99", "{}", "format version '99'"), ("badjson", "1", "{oops", "'config'")],
)
def test_bad_metadata_names_the_file_and_what(tmp_path: Path, name: str, version: str, config: str, match: str):
    path = tmp_path / f"{name}.safetensors"
    meta = {"format": version, "kind": "gan", "config": config, "data": "{}", "metrics": "{}", "steps": "1"}
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path), metadata=meta)
    with pytest.raises(ModelFileError, match=f"{name}.safetensors.*{match}"):
        read_model(path, "gan")


def test_shape_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "shape.safetensors"
    g = Generator(CONFIG)
    other = GANConfig(size=64, latent_dim=8, channels=64)  # config says 64 channels, weights have 32
    save_model(path, g.state_dict(), kind="gan", config=other.to_dict(), data={}, metrics={}, steps=1)
    with pytest.raises(ModelFileError, match=r"shape.safetensors.*tensor 'fc.weight' has shape"):
        load_generator(path)


def test_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "cfg.safetensors"
    save_model(path, {"w": torch.zeros(2)}, kind="gan", config={"size": 100}, data={}, metrics={}, steps=1)
    with pytest.raises(ModelFileError, match="cfg.safetensors.*power of two"):
        load_generator(path)


def test_missing_tensor(tmp_path: Path) -> None:
    path = tmp_path / "few.safetensors"
    sd = Generator(CONFIG).state_dict()
    sd.pop("to_rgbs.0.bias")
    save_model(path, sd, kind="gan", config=CONFIG.to_dict(), data={}, metrics={}, steps=1)
    with pytest.raises(ModelFileError, match="few.safetensors.*lacks tensor 'to_rgbs.0.bias'"):
        load_generator(path)


def test_overwrite_is_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _save_gan(path)
    save_model(path, {"w": torch.ones(3)}, kind="notes", config={}, data={}, metrics={}, steps=2)
    tensors, meta = read_model(path, "notes")
    assert meta["steps"] == 2 and list(tensors) == ["w"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_state_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.state.safetensors"
    tensors = {"g.w": torch.randn(3, 3), "rng": torch.arange(5, dtype=torch.uint8), "step": torch.tensor(7.0)}
    save_state(path, tensors, kind="gan", state={"step": 7, "nested": {"a": [1, 2]}})
    got, state = read_state(path, "gan")
    assert state == {"step": 7, "nested": {"a": [1, 2]}}
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype
        torch.testing.assert_close(got[k], v)
    with pytest.raises(ModelFileError, match="s.state.safetensors.*gan-state"):
        read_state(path, "text")
    with pytest.raises(ModelFileError, match="s.state.safetensors"):
        read_model(path, "gan")  # a state file is not a model file
