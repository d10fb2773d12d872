"""scripts/g_detail.py: per-block detail of a fast generator, on tiny model files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from engine.models.checkpoint import save_model
from engine.models.fastgan import FastGANConfig, FastGenerator
from tests.conftest import REPO, make_tiny_gan, make_tiny_vae

_spec = importlib.util.spec_from_file_location("g_detail", REPO / "scripts" / "g_detail.py")
assert _spec is not None and _spec.loader is not None
g_detail = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(g_detail)

TINY = FastGANConfig(size=64, latent_dim=8, channels=16, min_channels=8, two_convs_up_to=16)


def _fast_model(path: Path, top_strength: float) -> Path:
    torch.manual_seed(0)
    g = FastGenerator(TINY)
    with torch.no_grad():
        g.blocks[-1].layers[-1].strength.fill_(top_strength)
    save_model(path, g.state_dict(), kind="gan", config=TINY.to_dict(), data={"folder": "t"}, metrics={}, steps=0)
    return path


def _run(capsys, *args: str) -> tuple[int, list[dict]]:
    status = g_detail.main(["g_detail.py", *args])
    out = capsys.readouterr().out
    return status, [json.loads(line) for line in out.splitlines()]


def test_noise_in_the_top_block_shows_as_its_detail(tmp_path, capsys):
    quiet = _fast_model(tmp_path / "quiet.safetensors", 0.0)
    noisy = _fast_model(tmp_path / "noisy.safetensors", 3.0)
    status, rows = _run(capsys, str(quiet), str(noisy), "--samples", "4")
    assert status == 0
    assert [r["model"] for r in rows] == [str(quiet), str(noisy)]
    for row in rows:
        assert [b["side"] for b in row["blocks"]] == [8, 16, 32, 64]
        assert all(0.0 <= b["detail_share"] <= 1.0 for b in row["blocks"])
    assert rows[0]["blocks"][-1]["noise_strength"] == 0.0
    assert rows[1]["blocks"][-1]["noise_strength"] == 3.0
    # White noise at 64 px puts about (1 - pi/16) of its energy at periods <= 4 px; smooth maps far less.
    assert rows[1]["blocks"][-1]["detail_share"] > 2 * rows[0]["blocks"][-1]["detail_share"]
    assert rows[1]["image_detail_share"] > rows[0]["image_detail_share"]
    # The blocks below the noisy one are the same in both files.
    assert rows[0]["blocks"][:-1] == rows[1]["blocks"][:-1]


def test_a_classic_model_is_refused_by_name(tmp_path, capsys):
    path = make_tiny_gan(tmp_path / "classic.safetensors", size=64)
    assert g_detail.main(["g_detail.py", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_a_missing_or_other_kind_file_is_a_clear_error(tmp_path, capsys):
    assert g_detail.main(["g_detail.py", str(tmp_path / "nope.safetensors")]) == 2
    assert "nope.safetensors" in capsys.readouterr().err
    vae = make_tiny_vae(tmp_path / "vae.safetensors")
    assert g_detail.main(["g_detail.py", str(vae)]) == 2
    assert "expected kind 'gan'" in capsys.readouterr().err
