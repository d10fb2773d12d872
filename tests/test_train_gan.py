"""GAN trainer end to end at tiny size, plus the shared trainer pieces and the distance."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.eval.features import image_features
from engine.eval.metrics import detail_energy_share, mmd2_unbiased, palette_spread
from engine.flags import build_parser, train_options
from engine.models.checkpoint import load_generator, read_model, read_state, save_state
from engine.models.fastgan import FastGANConfig, FastGenerator
from engine.models.gan import GANConfig, Generator
from engine.train import gan as gan_train
from engine.train.common import (
    Budget,
    CheckpointTimer,
    optimizer_from_flat,
    optimizer_to_flat,
    out_paths,
    resolve_device,
)
from engine.train.distance import sample_distance, sample_distance_levels
from engine.train.gan import (
    GanTrainOptions,
    _GanRun,
    detail_floor_loss,
    diff_augment,
    lecam_loss,
    palette_floor_loss,
    per_path,
    train_gan,
    training_dtype,
)

TINY = {"size": 64, "latent_dim": 16, "channels": 32, "batch": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        base = rng.integers(0, 255, (1, 1, 3))
        noise = rng.integers(-40, 40, (72 + 8 * i, 80, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"img{i}.png")
    (folder / "readme.txt").write_text("skip me")
    return folder


def _opts(data_dir: Path, out: Path, **kwargs: object) -> GanTrainOptions:
    # first_checkpoint_s large: only the final checkpoint is written (keeps tests fast).
    return GanTrainOptions(data=str(data_dir), out=str(out), device="cpu", first_checkpoint_s=1e9, **{**TINY, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize("arch", ["fast", "classic"])
def test_train_writes_files_and_resumes(data_dir: Path, tmp_path: Path, arch: str) -> None:
    out = tmp_path / "trained" / "tiny"
    # --keep last: the model file follows the resumed run (--keep best has its own tests below).
    summary = train_gan(_opts(data_dir, out, steps=3, arch=arch, keep="last"), progress=False)
    model, png, state = out_paths(out)
    assert summary["steps"] == 3 and summary["resumed_from_step"] is None
    assert summary["skipped"] == 1 and summary["skipped_names"] == ["readme.txt"]
    assert summary["paths"] == {"model": str(model), "png": str(png), "state": str(state)}
    g, meta = load_generator(model)
    assert type(g) is (FastGenerator if arch == "fast" else Generator)
    assert meta["config"]["arch"] == arch
    assert g(torch.randn(1, 16)).shape == (1, 3, 64, 64)
    assert meta["steps"] == 3
    assert meta["data"] == {"folder": "data", "images": 4, "skipped": 1}
    metric_keys = {"sample_distance_start", "sample_distance", "sample_distance_real", "sample_kid", "images_per_s"}
    assert set(meta["metrics"]) == metric_keys
    assert 0 < meta["metrics"]["sample_distance_real"] < meta["metrics"]["sample_distance_start"]
    assert summary["sample_distance_real"] == pytest.approx(meta["metrics"]["sample_distance_real"], abs=1e-6)
    with Image.open(png) as im:
        assert im.size == (4 * 64, 4 * 64)
    _, st = read_state(state, "gan")
    assert st["step"] == 3

    resumed = train_gan(_opts(data_dir, out, steps=2, resume=True, arch=arch, keep="last"), progress=False)
    assert resumed["resumed_from_step"] == 3 and resumed["steps"] == 5
    assert resumed["sample_distance_start"] == pytest.approx(summary["sample_distance_start"])
    assert read_model(model, "gan")[1]["steps"] == 5


def test_resume_without_state_is_clear(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training state"):
        train_gan(_opts(data_dir, tmp_path / "none", steps=1, resume=True), progress=False)


def test_resume_with_other_config_is_clear(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cfg"
    train_gan(_opts(data_dir, out, steps=1), progress=False)
    with pytest.raises(ValueError, match="--size"):
        train_gan(_opts(data_dir, out, steps=1, resume=True, channels=64), progress=False)


def test_resume_with_other_arch_is_clear(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "arch"
    train_gan(_opts(data_dir, out, steps=1, arch="classic"), progress=False)
    with pytest.raises(ValueError, match="--arch"):
        train_gan(_opts(data_dir, out, steps=1, resume=True, arch="fast"), progress=False)


def test_resume_of_a_state_file_without_arch_is_classic(data_dir: Path, tmp_path: Path) -> None:
    # State files written before the fast family have a config without "arch".
    out = tmp_path / "old"
    train_gan(_opts(data_dir, out, steps=1, arch="classic"), progress=False)
    state_path = out_paths(out)[2]
    tensors, state = read_state(state_path, "gan")
    state["config"] = {k: v for k, v in state["config"].items() if k != "arch"}
    save_state(state_path, tensors, kind="gan", state=state)
    assert train_gan(_opts(data_dir, out, steps=1, resume=True, arch="classic"), progress=False)["steps"] == 2


def test_bad_options(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="power of two"):
        train_gan(_opts(data_dir, tmp_path / "x", steps=1, size=100), progress=False)
    with pytest.raises(ValueError, match="does not exist"):
        train_gan(_opts(tmp_path / "missing", tmp_path / "x", steps=1), progress=False)
    with pytest.raises(ValueError, match="preset"):
        train_gan(_opts(data_dir, tmp_path / "x", steps=1, preset="huge"), progress=False)
    with pytest.raises(ValueError, match="--precision must be one of fp32, bf16, auto, got 'fp16'"):
        train_gan(_opts(data_dir, tmp_path / "x", steps=1, precision="fp16"), progress=False)


@pytest.mark.parametrize("arch", ["fast", "classic"])
def test_bf16_training_keeps_fp32_weights_and_files(data_dir: Path, tmp_path: Path, arch: str) -> None:
    opts = _opts(data_dir, tmp_path / "bf", steps=2, arch=arch, precision="bf16")
    run = _GanRun(opts, torch.device("cpu"))
    assert run.dtype == torch.bfloat16
    seen: list[torch.dtype] = []
    hook = run.g.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    d_loss, g_loss = run.train_step()
    hook.remove()
    assert seen == [torch.bfloat16]  # G's training pass ran under autocast
    assert np.isfinite(d_loss) and np.isfinite(g_loss)
    params = [*run.g.parameters(), *run.d.parameters(), *run.ema_g.parameters()]
    assert all(p.dtype == torch.float32 for p in params)
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in params)
    assert run.generate(run.grid_z[:2]).dtype == torch.float32  # sampling is not autocast
    summary = train_gan(opts, progress=False)
    assert summary["steps"] == 2 and np.isfinite(summary["sample_distance"])


def test_fp32_training_is_unchanged_by_the_precision_option(data_dir: Path, tmp_path: Path) -> None:
    # "fp32" must be the same arithmetic as before the option: two runs give equal weights.
    weights = []
    for name in ("a", "b"):
        run = _GanRun(_opts(data_dir, tmp_path / name, steps=1, precision="fp32"), torch.device("cpu"))
        assert run.dtype == torch.float32
        run.train_step()
        weights.append(torch.cat([p.detach().flatten() for p in run.g.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_training_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert gan_train.bf16_is_native(torch.device("meta")) is False
    with monkeypatch.context() as m:  # a torch without the CPU probes: no native bf16, no crash
        m.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
        m.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
        assert gan_train.bf16_is_native(cpu) is False
    assert training_dtype("fp32", cpu) == torch.float32
    assert training_dtype("bf16", cpu) == torch.bfloat16
    monkeypatch.setattr(gan_train, "bf16_is_native", lambda _device: True)
    assert training_dtype("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(gan_train, "bf16_is_native", lambda _device: False)
    assert training_dtype("auto", cpu) == torch.float32  # emulated bf16 is slower than fp32
    assert _flags("--data", "d", "--out", "o", "--precision", "bf16").precision == "bf16"
    with pytest.raises(SystemExit):
        _flags("--data", "d", "--out", "o", "--precision", "fp8")
    # The show's own --precision keeps its choices (fp16 is a show precision, not a training one).
    assert build_parser().parse_args(["show", "--precision", "fp16"]).precision == "fp16"
    with pytest.raises(SystemExit):
        _flags("--data", "d", "--out", "o", "--precision", "fp16")


def test_palette_spread_is_the_mean_distance_of_mean_colours() -> None:
    flat = torch.zeros(3, 3, 8, 8)
    flat[1] += 0.5  # mean colours (0,0,0), (.5,.5,.5), (-.3, 0, .3): L1 means .5, .2, .5 (/ 2: 0..1 scale)
    flat[2, 0] -= 0.3
    flat[2, 2] += 0.3
    assert float(palette_spread(flat)) == pytest.approx((0.5 + 0.2 + 0.5) / 3 / 2)
    # Texture that leaves the mean colour alone adds nothing: only the palette counts.
    checker = torch.tensor([1.0, -1.0]).repeat(32).view(1, 1, 8, 8)  # zero mean
    textured = flat + torch.tensor([0.1, 0.4, 0.9]).view(3, 1, 1, 1) * checker
    assert float(palette_spread(textured)) == pytest.approx(float(palette_spread(flat)), abs=1e-6)
    assert float(palette_spread(flat[:1])) == 0.0  # one image: no pairs
    assert palette_spread(flat.bfloat16()).dtype == torch.float32


def test_palette_floor_pushes_only_below_the_pictures_spread() -> None:
    same = torch.zeros(4, 3, 8, 8, requires_grad=True)  # one shared palette: the collapse
    loss, ratio = palette_floor_loss(same + 0.01 * torch.arange(4.0).view(4, 1, 1, 1), real_spread=0.1)
    assert 0.0 < ratio < 0.2 and float(loss.detach()) == pytest.approx(1.0 - ratio)
    loss.backward()
    assert same.grad is not None and float(same.grad.abs().sum()) > 0.0  # G is pushed apart
    varied = torch.linspace(-0.5, 0.5, 4).view(4, 1, 1, 1).expand(4, 3, 8, 8).clone().requires_grad_(True)
    loss, ratio = palette_floor_loss(varied, real_spread=0.1)
    assert ratio > 1.0 and float(loss.detach()) == 0.0  # as varied as the pictures: no push past the data
    loss.backward()
    assert varied.grad is not None and float(varied.grad.abs().sum()) == 0.0


def test_palette_floor_weight_defaults_and_training(data_dir: Path, tmp_path: Path) -> None:
    assert GanTrainOptions("d", "o", arch="fast").palette_weight() == 1.0
    assert GanTrainOptions("d", "o", arch="classic").palette_weight() == 0.0  # the classic trains as it always did
    assert GanTrainOptions("d", "o", arch="classic", palette_floor=0.5).palette_weight() == 0.5
    assert _flags("--data", "d", "--out", "o", "--palette-floor", "2").palette_weight() == 2.0
    assert _flags("--data", "d", "--out", "o", "--arch", "classic").palette_weight() == 0.0
    with pytest.raises(ValueError, match="--palette-floor must be from 0 .off. to 100, got -1"):
        train_gan(_opts(data_dir, tmp_path / "x", steps=1, palette_floor=-1.0), progress=False)
    run = _GanRun(_opts(data_dir, tmp_path / "on", steps=1), torch.device("cpu"))
    assert run.real_spread == pytest.approx(float(palette_spread(run.eval_real)))
    assert run.real_spread > 0.0  # the fixture's pictures have different base colours
    run.train_step()
    assert np.isfinite(run.palette) and "pal" in run.bar_fields((0.0, 0.0))
    off = _GanRun(_opts(data_dir, tmp_path / "off", steps=1, palette_floor=0.0), torch.device("cpu"))
    off.train_step()
    assert np.isnan(off.palette) and "pal" not in off.bar_fields((0.0, 0.0))


def test_detail_floor_pushes_blur_towards_the_pictures_detail_and_no_further() -> None:
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1  # pixel noise: most energy at fine periods
    real_share = float(detail_energy_share(real).mean())
    ramp = torch.linspace(-1, 1, 32)
    blurred = (ramp.view(1, 1, 1, 32) * ramp.view(1, 1, 32, 1)).expand(4, 3, 32, 32).clone().requires_grad_(True)
    loss, ratio = detail_floor_loss(blurred, real_share)
    assert ratio < 0.1 and float(loss.detach()) == pytest.approx(1.0 - ratio, abs=1e-6)
    loss.backward()
    assert blurred.grad is not None and float(blurred.grad.abs().sum()) > 0.0
    # One gradient step along it raises the batch's detail share: the push goes the right way.
    stepped = blurred.detach() - 50.0 * blurred.grad
    assert float(detail_energy_share(stepped).mean()) > float(detail_energy_share(blurred).mean())
    sharp = real.clone().requires_grad_(True)
    loss, ratio = detail_floor_loss(sharp, real_share * 0.5)  # twice the pictures' detail: grain
    assert ratio > 1.0 and float(loss.detach()) == 0.0
    loss.backward()
    assert sharp.grad is not None and float(sharp.grad.abs().sum()) == 0.0
    # The same numbers as the report's measure when no gradient is kept.
    assert float(detail_energy_share(real, keep_grad=True).mean()) == pytest.approx(real_share, rel=1e-5)


def test_detail_ceiling_pushes_grain_back_and_leaves_the_band_alone() -> None:
    real = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    share = float(detail_energy_share(real).mean())
    grainy = real.clone().requires_grad_(True)
    loss, ratio = detail_floor_loss(grainy, share * 0.5, ceiling=1.25)  # twice the pictures' detail
    assert ratio == pytest.approx(2.0, rel=1e-5) and float(loss.detach()) == pytest.approx(0.75, rel=1e-4)
    loss.backward()
    assert grainy.grad is not None
    stepped = grainy.detach() - 50.0 * grainy.grad  # one step along it lowers the detail share
    assert float(detail_energy_share(stepped).mean()) < share
    inside = real.clone().requires_grad_(True)
    loss, ratio = detail_floor_loss(inside, share / 1.2, ceiling=1.25)  # within [1, 1.25]: no push either way
    assert 1.0 < ratio < 1.25 and float(loss.detach()) == 0.0


def test_detail_floor_is_on_for_fast_off_for_classic_and_can_be_turned_off(data_dir: Path, tmp_path: Path) -> None:
    assert GanTrainOptions("d", "o").detail_floor is None
    assert GanTrainOptions("d", "o", arch="fast").detail_weight() == 1.0
    assert GanTrainOptions("d", "o", arch="classic").detail_weight() == 0.0
    assert _flags("--data", "d", "--out", "o", "--detail-floor", "2").detail_floor == 2.0
    with pytest.raises(ValueError, match="--detail-floor must be from 0 .off. to 100, got -1"):
        train_gan(_opts(data_dir, tmp_path / "x", steps=1, detail_floor=-1.0), progress=False)
    off = _GanRun(_opts(data_dir, tmp_path / "off", steps=1, detail_floor=0.0), torch.device("cpu"))
    off.train_step()
    assert np.isnan(off.detail) and "det" not in off.bar_fields((0.0, 0.0))
    assert off.state_meta()["detail_floor"] == 0.0
    run = _GanRun(_opts(data_dir, tmp_path / "on", steps=1, arch="fast"), torch.device("cpu"))  # the default
    assert run.real_detail == pytest.approx(float(detail_energy_share(run.eval_real).mean()))
    run.train_step()
    assert np.isfinite(run.detail) and run.bar_fields((0.0, 0.0))["det"] == f"{run.detail:.2f}"
    assert run.state_meta()["detail_floor"] == 1.0 and run.state_meta()["detail_ceiling"] == 0.0


def test_detail_ceiling_flag_is_checked(data_dir: Path, tmp_path: Path) -> None:
    assert _flags("--data", "d", "--out", "o", "--detail-ceiling", "1.5").detail_ceiling == 1.5
    bad = (
        ({"detail_floor": 1.0, "detail_ceiling": 0.5}, "--detail-ceiling must be 0 .none. or a ratio from 1 to 100"),
        ({"detail_floor": 0.0, "detail_ceiling": 1.5}, "--detail-ceiling needs --detail-floor W > 0"),
        ({"arch": "classic", "detail_ceiling": 1.5}, "--detail-ceiling needs --detail-floor W > 0"),
    )
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            train_gan(_opts(data_dir, tmp_path / "x", steps=1, **kwargs), progress=False)
    run = _GanRun(_opts(data_dir, tmp_path / "on", steps=1, detail_floor=1.0, detail_ceiling=1.5), torch.device("cpu"))
    run.train_step()
    assert np.isfinite(run.detail) and run.state_meta()["detail_ceiling"] == 1.5


def test_checkpoint_log_line_carries_the_floors_ratios(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A log file has no progress bar: the checkpoint line is where `pal` and `det` are read.
    with caplog.at_level(logging.INFO, logger="engine.train.gan"):
        train_gan(_opts(data_dir, tmp_path / "on", steps=2, detail_floor=1.0), progress=False)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("checkpoint at step 2"))
    pattern = r"\(start [\d.]+, real crops [\d.]+\), KID [-+][\d.]+, palette [\d.]+, detail [\d.]+, "
    assert re.search(pattern + r"D real [-+][\d.]+(/[-+][\d.]+)* fake [-+][\d.]+(/[-+][\d.]+)* -> ", line), line


def test_every_checkpoint_measures_kid_too_and_the_model_file_keeps_its_own(data_dir: Path, tmp_path: Path) -> None:
    # The sample distance barely sees colour and KID mostly does (docs/TRAINING.md, "The photos'
    # second seeds"): each checkpoint measures both on the same samples.
    out = tmp_path / "kid"
    model, _, state = out_paths(out)
    run = _GanRun(_opts(data_dir, out, steps=2), torch.device("cpu"))
    assert run.real_features.shape == (64, 672) and math.isnan(run.kid)
    run.train_step()
    distance = run.measure()
    assert math.isfinite(distance) and math.isfinite(run.kid)
    fake = run.generate(run.eval_z)
    assert run.kid == mmd2_unbiased(run.real_features, image_features(fake))  # same samples, same crops
    run.checkpoint()
    kid = run.kid
    assert read_model(model, "gan")[1]["metrics"]["sample_kid"] == round(kid, 6)
    st = read_state(state, "gan")[1]
    assert st["sample_kid"] == st["kept_kid"] == kid
    again = _GanRun(_opts(data_dir, out, steps=1, resume=True), torch.device("cpu"))
    again.resume()
    assert (again.kid, again.kept_kid) == (kid, kid)


def test_lecam_loss_pulls_each_side_towards_the_others_average_and_no_further() -> None:
    # Anchors per path: real average 1, fake average -1 (main path), 2 and 0 (small path).
    anchors = torch.tensor([[1.0, 2.0], [-1.0, 0.0]])
    inside = lecam_loss(torch.tensor([[-2.0, -1.5], [-1.0, 0.0]]), torch.tensor([[1.0, 3.0], [2.0, 2.5]]), anchors)
    assert float(inside) == 0.0  # reals below the fake average, fakes above the real average: no push
    real = torch.tensor([1.0, -1.0, 1.0, 0.0], requires_grad=True)
    fake = torch.tensor([-1.0, 1.0, 1.0, 3.0], requires_grad=True)
    loss = lecam_loss(per_path(real, 2), per_path(fake, 2), anchors)  # (2 paths, batch 2) each
    # Main path: reals (1 - -1)^2 and 0, fakes (1 - -1)^2 and 0: means 2 and 2; small path: 1 and 0, 1 and 0.
    assert float(loss.detach()) == pytest.approx(2.0 + 2.0 + 0.5 + 0.5)
    loss.backward()
    assert real.grad is not None and fake.grad is not None
    assert real.grad[0] > 0 and real.grad[1] == 0 and fake.grad[0] < 0 and fake.grad[3] == 0  # reals down, fakes up


@pytest.mark.parametrize(("arch", "paths"), [("fast", 3), ("classic", 1)])  # fast: main, small, fine
def test_lecam_trains_and_its_anchors_survive_a_resume(data_dir: Path, tmp_path: Path, arch: str, paths: int) -> None:
    assert _flags("--data", "d", "--out", "o").lecam == 0.0
    assert _flags("--data", "d", "--out", "o", "--lecam", "0.3").lecam == 0.3
    with pytest.raises(ValueError, match="--lecam must be from 0 .off. to 100, got -1"):
        train_gan(_opts(data_dir, tmp_path / "x", steps=1, lecam=-1.0), progress=False)
    off = _GanRun(_opts(data_dir, tmp_path / "off", steps=1, arch=arch), torch.device("cpu"))
    assert off.logit_means is None and off.state_meta()["logit_means"] is None
    off.train_step()  # with LeCam off the means are tracked too (the log line shows them)
    assert off.logit_means is not None and off.logit_means.shape == (2, paths)
    out = tmp_path / "on"
    train_gan(_opts(data_dir, out, steps=3, arch=arch, lecam=0.3), progress=False)
    st = read_state(out_paths(out)[2], "gan")[1]
    anchors = torch.tensor(st["logit_means"])
    assert st["lecam"] == 0.3 and anchors.shape == (2, paths) and torch.isfinite(anchors).all()
    again = _GanRun(_opts(data_dir, out, steps=1, arch=arch, lecam=0.3, resume=True), torch.device("cpu"))
    again.resume()
    assert again.logit_means is not None and torch.equal(again.logit_means, anchors)
    again.train_step()  # moves them by 1 % towards this batch's means
    assert not torch.equal(again.logit_means, anchors)


def _scripted(run: _GanRun, monkeypatch: pytest.MonkeyPatch, distances: list[float]) -> None:
    """Make the run's sample distances these, one per checkpoint."""
    it = iter(distances)
    monkeypatch.setattr(run, "measure", lambda: next(it))


def _steps(run: _GanRun, n: int) -> list[bytes]:
    """n steps with a checkpoint after each; the grid PNG's bytes after each."""
    grids = []
    for _ in range(n):
        run.train_step()
        run.checkpoint()
        grids.append(run.sample_path.read_bytes())
    return grids


def test_keep_best_holds_the_lowest_distance_and_the_state_the_latest(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # On a few pictures the EMA generator's distance falls, then climbs again long before the
    # budget ends (docs/TRAINING.md, "Which checkpoint the model file keeps"): keep the low point.
    out = tmp_path / "best"
    model, png, state = out_paths(out)
    run = _GanRun(_opts(data_dir, out, steps=3), torch.device("cpu"))
    run.distance_start = 0.9
    _scripted(run, monkeypatch, [0.5, 0.3, 0.4])
    with caplog.at_level(logging.INFO, logger="engine.train.gan"):
        grids = _steps(run, 3)
    meta = read_model(model, "gan")[1]
    assert meta["steps"] == 2 and meta["metrics"]["sample_distance"] == 0.3  # the model file's own distance
    assert grids[2] == grids[1] != grids[0]  # the grid shows the kept model
    st = read_state(state, "gan")[1]
    assert (st["step"], st["sample_distance"], st["kept_step"], st["kept_distance"]) == (3, 0.4, 2, 0.3)
    assert "checkpoint at step 3: sample distance 0.4000 (start 0.9000, real crops " in caplog.text
    assert "-> not kept (best 0.3000 at step 2)" in caplog.text
    assert run.outcome().endswith("sample distance 0.9000 -> 0.4000, model file: step 2 (0.3000)")
    assert run.results()["kept_step"] == 2

    # A resume remembers the kept checkpoint: a worse one does not overwrite it, a better one does.
    again = _GanRun(_opts(data_dir, out, steps=2, resume=True), torch.device("cpu"))
    again.resume()
    assert again.kept == (0.3, 2)
    _scripted(again, monkeypatch, [0.35, 0.2])
    _steps(again, 1)
    assert read_model(model, "gan")[1]["steps"] == 2
    _steps(again, 1)
    assert read_model(model, "gan")[1]["steps"] == 5 and again.kept == (0.2, 5)


def test_keep_last_and_state_files_from_before_keep(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "last"
    model, _, state = out_paths(out)
    run = _GanRun(_opts(data_dir, out, steps=2, keep="last"), torch.device("cpu"))
    _scripted(run, monkeypatch, [0.3, 0.5])
    grids = _steps(run, 2)
    assert read_model(model, "gan")[1]["steps"] == 2 and grids[0] != grids[1]
    # A state file written before --keep: its model file held the latest checkpoint.
    tensors, st = read_state(state, "gan")
    save_state(state, tensors, kind="gan", state={k: v for k, v in st.items() if not k.startswith("kept_")})
    again = _GanRun(_opts(data_dir, out, steps=1, resume=True), torch.device("cpu"))
    again.resume()
    assert again.kept == (0.5, 2)
    # The first checkpoint of a run is always kept, even a NaN one: there is always a model file.
    fresh = _GanRun(_opts(data_dir, tmp_path / "nan", steps=1), torch.device("cpu"))
    _scripted(fresh, monkeypatch, [float("nan"), 0.4])
    _steps(fresh, 2)
    assert read_model(out_paths(tmp_path / "nan")[0], "gan")[1]["steps"] == 2
    assert fresh.kept == (0.4, 2)
    with pytest.raises(ValueError, match="--keep must be one of best, last, got 'first'"):
        train_gan(_opts(data_dir, tmp_path / "x", steps=1, keep="first"), progress=False)


def _flags(*argv: str) -> GanTrainOptions:
    options = train_options(build_parser().parse_args(["train", "gan", *argv]))
    assert isinstance(options, GanTrainOptions)
    return options


def test_cli_flags_round_trip() -> None:
    opts = _flags("--data", "d", "--out", "trained/x", "--size", "64", "--steps", "7", "--batch", "8", "--seed", "3")
    assert (opts.data, opts.out, opts.size, opts.steps, opts.minutes, opts.batch, opts.seed) == (
        "d",
        "trained/x",
        64,
        7,
        None,
        8,
        3,
    )
    assert opts.device == "auto" and not opts.resume
    assert (opts.checkpoint_every_s, opts.first_checkpoint_s) == (60.0, 30.0)
    assert (opts.keep, _flags("--data", "d", "--out", "o", "--keep", "last").keep) == ("best", "last")
    fast = _flags("--data", "d", "--out", "o", "--checkpoint-every", "0.5")
    assert (fast.checkpoint_every_s, fast.first_checkpoint_s) == (0.5, 0.5)
    for bad in (["--checkpoint-every", "0"], ["--steps", "3", "--minutes", "2"], ["--steps", "0"], ["--keep", "x"]):
        with pytest.raises(SystemExit):
            _flags("--data", "d", "--out", "o", *bad)


def test_arch_and_preset_flags() -> None:
    opts = _flags("--data", "d", "--out", "o")
    assert (opts.arch, opts.preset, opts.generator_lr()) == ("fast", "live", opts.lr)
    assert opts.gan_config() == FastGANConfig(d_small=16, d_rgb_kernel=3, d_fine=1)
    hd = _flags("--data", "d", "--out", "o", "--preset", "hd", "--channels", "64")
    assert (hd.gan_config().size, hd.gan_config().channels) == (256, 64)  # flags override the preset
    classic = _flags("--data", "d", "--out", "o", "--arch", "classic", "--min-channels", "32")
    assert classic.gan_config() == GANConfig(min_channels=32) and classic.generator_lr() == classic.lr / 4
    for bad in (["--arch", "turbo"], ["--preset", "huge"]):
        with pytest.raises(SystemExit):
            _flags("--data", "d", "--out", "o", *bad)


def _assert_setup_errors(data_dir: Path, tmp_path: Path, bad: tuple[tuple[dict, str], ...]) -> None:
    """Each (options, message): train_gan refuses to start with a ValueError matching the message."""
    for kw, message in bad:
        with pytest.raises(ValueError, match=message):
            train_gan(_opts(data_dir, tmp_path / "x", steps=1, **kw), progress=False)


def test_two_convs_up_to_flag(data_dir: Path, tmp_path: Path) -> None:
    wide = _flags("--data", "d", "--out", "o", "--preset", "wide", "--two-convs-up-to", "128")
    config = wide.gan_config()
    assert isinstance(config, FastGANConfig) and (config.two_convs_up_to, config.min_channels) == (128, 32)
    assert _flags("--data", "d", "--out", "o").gan_config().two_convs_up_to == 32  # the preset's
    bad = (
        ({"two_convs_up_to": 48}, "'two_convs_up_to' must be a power of two from 4 to size"),
        ({"two_convs_up_to": 32, "arch": "classic"}, "--two-convs-up-to applies to --arch fast only"),
    )
    _assert_setup_errors(data_dir, tmp_path, bad)


def test_d_small_flag_and_a_run_with_it(data_dir: Path, tmp_path: Path) -> None:
    opts = _flags("--data", "d", "--out", "o", "--d-small", "32")
    config = opts.gan_config()
    assert isinstance(config, FastGANConfig) and config.d_small == 32
    assert _flags("--data", "d", "--out", "o").gan_config().d_small == 16  # the preset's, 1/8 of 128 px
    assert _flags("--data", "d", "--out", "o", "--d-small", "0").gan_config().d_small == 0  # off
    bad = (
        ({"d_small": 12}, "'d_small' must be 0 \\(none\\) or a power of two from 8 to size / 2 \\(32\\), got 12"),
        ({"d_small": 16, "arch": "classic"}, "--d-small applies to --arch fast only"),
    )
    _assert_setup_errors(data_dir, tmp_path, bad)
    out = tmp_path / "small"
    summary = train_gan(_opts(data_dir, out, steps=2, d_small=16), progress=False)
    assert summary["steps"] == 2 and np.isfinite(summary["sample_distance"])
    _, state = read_state(out_paths(out)[2], "gan")
    assert state["config"]["d_small"] == 16
    # The shipped file holds G alone: it loads whatever D trained it.
    assert isinstance(load_generator(out_paths(out)[0])[0], FastGenerator)
    with pytest.raises(ValueError, match="--d-small"):  # resuming with another D is refused, naming the flag
        train_gan(_opts(data_dir, out, steps=3, resume=True, d_small=0), progress=False)


def test_d_finest_view_flags_reach_the_config_and_guard_resume(data_dir: Path, tmp_path: Path) -> None:
    config = _flags(
        "--data", "d", "--out", "o", "--d-rgb-kernel", "3", "--d-top-convs", "2", "--d-fine", "1"
    ).gan_config()
    assert isinstance(config, FastGANConfig) and (config.d_rgb_kernel, config.d_top_convs, config.d_fine) == (3, 2, 1)
    assert _flags("--data", "d", "--out", "o").gan_config() == FastGANConfig(d_small=16, d_rgb_kernel=3, d_fine=1)
    bad = (
        ({"d_rgb_kernel": 3, "arch": "classic"}, "--d-rgb-kernel applies to --arch fast only"),
        ({"d_top_convs": 2, "arch": "classic"}, "--d-top-convs applies to --arch fast only"),
        ({"d_fine": 1, "arch": "classic"}, "--d-fine applies to --arch fast only"),
        ({"upsample": "nearest", "arch": "classic"}, "--upsample applies to --arch fast only"),
    )
    _assert_setup_errors(data_dir, tmp_path, bad)
    out = tmp_path / "finest"
    train_gan(_opts(data_dir, out, steps=2, d_rgb_kernel=1, d_fine=0), progress=False)  # D as before the presets'
    _, state = read_state(out_paths(out)[2], "gan")
    assert (state["config"]["d_rgb_kernel"], state["config"]["d_top_convs"], state["config"]["d_fine"]) == (1, 1, 0)
    with pytest.raises(ValueError, match="--d-rgb-kernel/--d-top-convs/--d-fine"):  # another D: refused, naming them
        train_gan(_opts(data_dir, out, steps=3, resume=True), progress=False)
    train_gan(_opts(data_dir, out, steps=3, resume=True, d_rgb_kernel=1, d_fine=0), progress=False)  # as it was


def test_upsample_flag_reaches_the_config_and_guards_resume(data_dir: Path, tmp_path: Path) -> None:
    config = _flags("--data", "d", "--out", "o", "--upsample", "nearest").gan_config()
    assert isinstance(config, FastGANConfig) and config.upsample == "nearest"
    assert _flags("--data", "d", "--out", "o").gan_config().upsample == "bilinear"  # type: ignore[union-attr]
    with pytest.raises(SystemExit):  # argparse names the choices
        _flags("--data", "d", "--out", "o", "--upsample", "cubic")
    out = tmp_path / "near"
    train_gan(_opts(data_dir, out, steps=2, upsample="nearest"), progress=False)
    assert load_generator(out_paths(out)[0])[0].config.upsample == "nearest"
    with pytest.raises(ValueError, match="--upsample"):  # another G than the state's: refused, naming the flag
        train_gan(_opts(data_dir, out, steps=3, resume=True), progress=False)


def test_flag_defaults_are_the_options_defaults() -> None:
    opts = _flags("--data", "d", "--out", "o")
    assert opts == GanTrainOptions(data="d", out="o")
    assert (opts.minutes, opts.steps, opts.resume, opts.device, opts.seed) == (None, None, False, "auto", 0)
    assert Budget(opts.steps, opts.minutes).seconds == 600.0  # 10 minutes by default
    with pytest.raises(AttributeError):  # frozen: nothing below the CLI changes its options
        opts.seed = 1  # type: ignore[misc]


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")


def test_budget_steps_and_minutes() -> None:
    b = Budget(steps=2)
    assert not b.exhausted()
    b.step()
    b.step()
    assert b.exhausted() and b.fraction() == 1.0
    m = Budget(minutes=1.0)
    assert not m.exhausted(now=m.start + 59.0) and m.exhausted(now=m.start + 60.0)
    with pytest.raises(ValueError):
        Budget(steps=1, minutes=1.0)


def test_checkpoint_timer() -> None:
    timer = CheckpointTimer(every_s=60.0, first_s=30.0, start=100.0)
    assert not timer.due(129.9) and timer.due(130.0)
    timer.mark(131.0)
    assert not timer.due(190.0) and timer.due(191.0)


def test_out_paths() -> None:
    model, png, state = out_paths("trained/NAME")
    assert (str(model), str(png), str(state)) == (
        "trained/NAME.safetensors",
        "trained/NAME.png",
        "trained/NAME.state.safetensors",
    )
    assert out_paths("trained/NAME.safetensors")[0] == model
    with pytest.raises(ValueError):
        out_paths("trained/")


def test_optimizer_flat_round_trip() -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.0, 0.99))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, extra = optimizer_to_flat(opt, "opt")
    fresh = torch.optim.Adam(model.parameters(), lr=1.0)
    optimizer_from_flat(fresh, tensors, "opt", extra)
    assert fresh.param_groups[0]["lr"] == 1e-3
    torch.testing.assert_close(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_diff_augment_is_differentiable_and_deterministic() -> None:
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    a = diff_augment(x, torch.Generator().manual_seed(0))
    b = diff_augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_sample_distance_identical_vs_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    # "real": smooth coloured blobs; "noise": uniform noise.
    real = torch.nn.functional.interpolate(
        torch.rand(16, 3, 8, 8, generator=gen) * 2 - 1, size=64, mode="bilinear", align_corners=False
    )
    noise = torch.rand(16, 3, 64, 64, generator=gen) * 2 - 1
    assert sample_distance(real, real) < 1e-6
    far = sample_distance(noise, real)
    assert far > 0.3
    assert sample_distance(noise, real, seed=0) == far  # reproducible
    near = sample_distance(real.flip(3), real)  # same statistics, other samples
    assert near < far / 3
    with pytest.raises(ValueError):
        sample_distance(real, real[:, :, :32])


def test_sample_distance_levels_tell_fine_from_coarse() -> None:
    gen = torch.Generator().manual_seed(1)
    real = torch.nn.functional.interpolate(
        torch.rand(16, 3, 8, 8, generator=gen) * 2 - 1, size=64, mode="bilinear", align_corners=False
    )
    levels = sample_distance_levels(real, real.flip(3))
    assert len(levels) == 3 and sum(levels) / 3 == sample_distance(real, real.flip(3))  # 64, 32 px bands; 16 px
    grain = (real + 0.3 * torch.randn(real.shape, generator=gen)).clamp(-1, 1)  # same layout, added grain
    fine, *_, coarse = sample_distance_levels(grain, real)
    assert fine > 10 * coarse  # grain shows at the finest level, not in the 16 px colours
    tinted = (real + 0.5).clamp(-1, 1)  # same texture, other colours
    fine, *_, coarse = sample_distance_levels(tinted, real)
    assert coarse > 3 * fine
