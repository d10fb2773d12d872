"""The VAE family: model, trainer (hold-out, resume, flags), and its evaluation report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from engine.errors import TrainSetupError
from engine.eval.metrics import psnr, ssim
from engine.eval.options import EvalOptions
from engine.eval.report import evaluate
from engine.flags import build_parser, train_options
from engine.models.checkpoint import load_image_model, load_vae, read_model
from engine.models.vae import VAE, VAEConfig, vae_preset_config
from engine.train.common import out_paths
from engine.train.vae import VaeTrainOptions, split_holdout, train_vae

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"size": 64, "latent_channels": 4, "latent_side": 4, "channels": 32, "batch": 4}


def _config(**kw: int) -> VAEConfig:
    return VAEConfig(**{"size": 64, "latent_channels": 4, "latent_side": 4, "channels": 32, "min_channels": 8, **kw})


def test_vae_shapes_and_batch_independence() -> None:
    torch.manual_seed(0)
    vae = VAE(_config()).eval().requires_grad_(False)
    assert vae.config.latent_dim == 64
    img = torch.rand(3, 3, 64, 64) * 2 - 1
    z = vae.encode(img)
    assert z.shape == (3, 64)
    out = vae(z)
    assert out.shape == (3, 3, 64, 64) and float(out.abs().max()) <= 1.0
    # pixel norm, no batch statistics: sample i of a batch is the same latent decoded alone
    torch.testing.assert_close(vae(z[1:2]), out[1:2], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, 64\)"):
        vae(torch.zeros(1, 63))
    with pytest.raises(ValueError, match="pictures"):
        vae.encode(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("size", 100, "'size' must be one of"),
        ("latent_side", 3, "'latent_side' must be a power of two"),
        ("latent_side", 32, "'latent_side' must be a power of two"),
        ("latent_channels", 0, "'latent_channels'"),
        ("min_channels", 64, "min_channels <= channels"),
        ("channels", True, "'channels' must be an integer"),
    ],
)
def test_vae_config_names_the_bad_field(field: str, value: object, needle: str) -> None:
    data = {**_config().to_dict(), field: value}
    with pytest.raises(ValueError, match=needle):
        VAEConfig.from_dict(data)
    with pytest.raises(ValueError, match="unknown VAE config key"):
        VAEConfig.from_dict({**_config().to_dict(), "latent_dim": 64})


def test_presets() -> None:
    live = vae_preset_config("live")
    assert (live.size, live.latent_dim) == (128, 256)
    assert vae_preset_config("live", latent_side=4, latent_channels=16).latent_dim == 256
    with pytest.raises(ValueError, match="preset"):
        vae_preset_config("huge")


def test_split_holdout_is_seeded_and_never_takes_everything() -> None:
    names = [f"p{i}.png" for i in range(20)]
    held = split_holdout(names, 0.1, seed=3)
    assert len(held) == 2 and held == split_holdout(names, 0.1, seed=3)
    assert held != split_holdout(names, 0.1, seed=4) or held != split_holdout(names, 0.1, seed=5)
    assert len(split_holdout(names[:4], 0.1, 0)) == 1  # at least one picture ...
    assert split_holdout(names[:1], 0.1, 0) == []  # ... but never the only one
    assert len(split_holdout(names[:2], 0.5, 0)) == 1
    assert split_holdout(names, 0.0, 0) == []


def test_psnr_and_ssim() -> None:
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(psnr(a, a).min()) == 100.0
    torch.testing.assert_close(ssim(a, a), torch.ones(2))
    noisy = (a + 0.2 * torch.randn_like(a)).clamp(-1, 1)
    assert 10.0 < float(psnr(noisy, a).mean()) < 30.0
    assert float(ssim(noisy, a).mean()) < 0.99
    other = torch.rand(2, 3, 32, 32) * 2 - 1
    assert abs(float(ssim(other, a).mean())) < 0.1  # unrelated noise: no shared structure


@pytest.fixture()
def picture_dir(tmp_path: Path) -> Path:
    """Twelve pictures of four blurred quarters, each quarter one of four colours (so a picture
    the model never saw is a new arrangement of what it saw), and one file that is not a picture."""
    folder = tmp_path / "pics"
    folder.mkdir()
    rng = np.random.default_rng(0)
    palette = np.array([[230, 40, 40], [40, 200, 60], [50, 70, 230], [240, 220, 60]])
    for i in range(12):
        cells = palette[rng.integers(0, 4, (2, 2))]  # (2, 2, 3)
        img = np.kron(cells, np.ones((40, 48, 1))).astype(np.uint8)  # (80, 96, 3)
        Image.fromarray(img).filter(ImageFilter.GaussianBlur(6)).save(folder / f"p{i:02d}.png")
    (folder / "notes.txt").write_text("not a picture")
    return folder


def _opts(data: Path, out: Path, **kw: object) -> VaeTrainOptions:
    return VaeTrainOptions(data=str(data), out=str(out), device="cpu", first_checkpoint_s=1e9, **{**TINY, **kw})  # type: ignore[arg-type]


def test_train_holds_out_writes_files_resumes_and_evaluates(picture_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "trained" / "v"
    summary = train_vae(_opts(picture_dir, out, steps=4, adv_start=0.5), progress=False)
    model, png, state = out_paths(out)
    assert summary["steps"] == 4 and summary["images"] == 12 and summary["skipped_names"] == ["notes.txt"]
    assert len(summary["held_out"]) == 1 and "held_psnr" in summary
    vae, meta = load_vae(model)
    assert meta["data"]["held_out"] == summary["held_out"] and meta["data"]["split_seed"] == 0
    assert isinstance(load_image_model(model)[0], VAE)
    with Image.open(png) as grid:
        assert grid.size == (8 * 64, 3 * 64)  # pictures, reconstructions, samples
    resumed = train_vae(_opts(picture_dir, out, steps=2, resume=True), progress=False)
    assert resumed["resumed_from_step"] == 4 and read_model(model, "vae")[1]["steps"] == 6
    with pytest.raises(TrainSetupError, match="held out"):
        train_vae(_opts(picture_dir, out, steps=1, resume=True, holdout=0.3), progress=False)

    result = evaluate(EvalOptions(model=str(model), data=str(picture_dir), samples=8, device="cpu"))
    text = result.report.read_text()
    assert "held_gain_db" in text and "reconstructions.png" in text
    assert (result.report.parent / "reconstructions.png").exists()
    stored = read_model(model, "vae")[1]["metrics"]
    for key in ("held_psnr", "held_ssim", "mean_picture_psnr", "held_gain_db", "train_psnr", "kid"):
        assert stored["eval_" + key] == result.numbers[key]


def test_a_short_training_beats_the_mean_picture_on_held_out_pictures(picture_dir: Path, tmp_path: Path) -> None:
    """The VAE learns something that carries over to pictures it never saw: after 150 tiny
    steps its held-out reconstructions beat the seen pictures' mean picture by over 3 dB."""
    out = tmp_path / "v"
    train_vae(_opts(picture_dir, out, steps=150, holdout=0.2, adv=0.0, lr=2e-3), progress=False)  # ~4 s
    numbers = evaluate(EvalOptions(model=str(out) + ".safetensors", data=str(picture_dir), samples=8)).numbers
    assert numbers["held_gain_db"] >= 3.0, numbers


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--kl", "-1"], "--kl must be from 0"),
        (["--holdout", "0.9"], "--holdout must be from 0 to 0.5"),
        (["--adv-start", "2"], "--adv-start"),
        (["--latent-side", "3"], "latent_side"),
        (["--lr", "nan"], "--lr"),
    ],
)
def test_bad_flags_are_named(picture_dir: Path, tmp_path: Path, flags: list[str], needle: str) -> None:
    args = build_parser().parse_args(["train", "vae", "--data", str(picture_dir), "--out", str(tmp_path / "x"), *flags])
    with pytest.raises(TrainSetupError, match=needle):
        train_vae(train_options(args), progress=False)


def test_flags_build_the_options(picture_dir: Path) -> None:
    args = build_parser().parse_args(
        ["train", "vae", "--data", str(picture_dir), "--out", "trained/v", "--latent-side", "4", "--kl", "0.2"]
    )
    opts = train_options(args)
    assert isinstance(opts, VaeTrainOptions)
    assert (opts.latent_side, opts.kl, opts.holdout, opts.preset) == (4, 0.2, 0.1, "live")
    assert json.loads(json.dumps(opts.vae_config().to_dict()))["latent_side"] == 4
