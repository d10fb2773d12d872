"""The fast GAN family (engine.models.fastgan) and the arch switch (engine.models.gan_arch), at tiny size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.models.checkpoint import ModelFileError, load_generator, save_model
from engine.models.fastgan import FastDiscriminator, FastGANConfig, FastGenerator
from engine.models.gan import GANConfig, Generator
from engine.models.gan_arch import PRESETS, gan_config_from_dict, preset_config

TINY = FastGANConfig(size=64, latent_dim=8, channels=32, min_channels=8, two_convs_up_to=16)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_range_and_channels_last(size: int) -> None:
    config = FastGANConfig(size=size, latent_dim=8, channels=32, min_channels=8, two_convs_up_to=16)
    # Seeded: with some unseeded inits D's sum-pooled logits were large enough that the two
    # paths' float rounding (same ops, another order in oneDNN) passed assert_close's tolerance.
    torch.manual_seed(size)
    g, d = FastGenerator(config).eval(), FastDiscriminator(config).eval()  # eval: no power iteration
    with torch.no_grad():
        img = g(torch.randn(3, 8))
    assert img.shape == (3, 3, size, size)
    assert img.min() >= -1.0 and img.max() <= 1.0
    # NHWC strides, like the classic Generator: permute(0, 2, 3, 1) is a free view for display code.
    assert img.is_contiguous(memory_format=torch.channels_last)
    assert img.permute(0, 2, 3, 1).is_contiguous()
    logits, recon = d.real_pass(img, quadrant=3)
    assert d(img).shape == (3,) and logits.shape == (3,)
    torch.testing.assert_close(logits, d(img))
    assert recon.dim() == 0 and torch.isfinite(recon) and recon > 0


def test_batch_one_equals_batched_and_inference_is_deterministic() -> None:
    torch.manual_seed(0)
    g = FastGenerator(TINY).eval()
    with torch.no_grad():  # noise strengths start at 0: give the fixed noise something to do
        for name, p in g.named_parameters():
            if name.endswith("strength"):
                p.fill_(0.5)
    z = torch.randn(3, 8)
    with torch.no_grad():
        batched = g(z)
        single = g(z[1:2])
        again = g(z[1:2])
    torch.testing.assert_close(single[0], batched[1], atol=1e-5, rtol=1e-4)
    assert torch.equal(single, again)  # fixed noise: a held z is a still frame


def test_training_noise_is_fresh_and_seeded() -> None:
    torch.manual_seed(0)
    g = FastGenerator(TINY).train()
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("strength"):
                p.fill_(0.5)
    z = torch.randn(1, 8)
    g.set_training_noise(torch.Generator().manual_seed(1))
    a, b = g(z), g(z)
    assert not torch.equal(a, b)
    g.set_training_noise(torch.Generator().manual_seed(1))
    assert torch.equal(g(z), a)
    assert not torch.equal(g.eval()(z), a)  # eval uses the stored maps instead


def test_gradients_reach_every_generator_and_decoder_weight() -> None:
    g, d = FastGenerator(TINY), FastDiscriminator(TINY)
    img = g(torch.randn(4, 8))
    logits, recon = d.real_pass(img, quadrant=1)
    (logits.mean() + recon).backward()
    assert all(p.grad is not None for p in g.parameters())
    assert all(p.grad is not None for p in d.parameters())


def test_small_path_judges_the_pooled_picture_only() -> None:
    config = FastGANConfig(**{**TINY.to_dict(), "d_small": 16})
    torch.manual_seed(0)
    d = FastDiscriminator(config).eval()  # eval: no power iteration, so two calls agree
    img = torch.rand(3, 3, 64, 64) * 2 - 1
    logits, recon = d.real_pass(img, quadrant=0)
    assert d(img).shape == (6,) and logits.shape == (6,)  # the main path's 3, then the small path's 3
    torch.testing.assert_close(logits, d(img))
    assert d.small is not None
    # Texture finer than the pool's 4 px cells (zero mean per cell) leaves the small path's logits as they were.
    grain = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(32, 32) * 0.3  # (64, 64) checkerboard
    with torch.no_grad():
        torch.testing.assert_close(d.small(img + grain), d.small(img), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(d.small(img + 0.3), d.small(img))  # a colour shift it sees
    (logits.mean() + recon).backward()
    assert all(p.grad is not None for p in d.small.parameters())
    assert FastDiscriminator(TINY).small is None and FastGANConfig().d_small == 0  # files from before: none


def test_fine_path_judges_the_finest_band_only() -> None:
    config = FastGANConfig(**{**TINY.to_dict(), "d_small": 16, "d_fine": 1})
    torch.manual_seed(0)
    d = FastDiscriminator(config).eval()  # eval: no power iteration, so two calls agree
    img = torch.rand(3, 3, 64, 64) * 2 - 1
    logits, recon = d.real_pass(img, quadrant=1)
    assert d(img).shape == (9,) and logits.shape == (9,)  # main, small, then the fine path's 3
    assert d.fine is not None
    with torch.no_grad():
        torch.testing.assert_close(logits[6:], d.fine(img))
        # A colour shift leaves the band, and so the path's logits, as they were
        torch.testing.assert_close(d.fine(img + 0.3), d.fine(img), atol=1e-5, rtol=1e-4)
        grain = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(32, 32) * 0.3  # (64, 64) checkerboard
        assert not torch.allclose(d.fine(img + grain), d.fine(img))  # grain it sees
    (logits.mean() + recon).backward()
    assert all(p.grad is not None for p in d.fine.parameters())
    assert FastDiscriminator(TINY).fine is None and FastGANConfig().d_fine == 0  # files from before: none


def test_d_sees_the_finest_detail_through_a_wider_first_conv_or_a_second_top_conv() -> None:
    config = FastGANConfig(**{**TINY.to_dict(), "size": 128, "d_rgb_kernel": 3, "d_top_convs": 2})
    d = FastDiscriminator(config)
    assert d.from_rgb.weight.shape[-2:] == (3, 3)
    assert [len(block.convs) for block in d.to16] == [2, 2, 2]  # 128 px: the flag's 2; 64 and 32 px: 2 as ever
    assert [len(block.convs) for block in FastDiscriminator(FastGANConfig(**{**TINY.to_dict(), "size": 128})).to16] == [
        1,
        2,
        2,
    ]
    img = torch.rand(2, 3, 128, 128) * 2 - 1
    logits, recon = d.real_pass(img, quadrant=2)
    (logits.mean() + recon).backward()
    assert all(p.grad is not None for p in d.parameters())
    old = {k: v for k, v in TINY.to_dict().items() if k not in ("d_rgb_kernel", "d_top_convs")}
    assert gan_config_from_dict(old) == TINY  # state files from before the fields: today's D


@pytest.mark.parametrize("mode", ["nearest", "bicubic"])
def test_upsample_mode_is_a_config_field_that_a_model_file_keeps(mode: str, tmp_path: Path) -> None:
    config = FastGANConfig(**{**TINY.to_dict(), "upsample": mode})
    torch.manual_seed(0)
    g = FastGenerator(config).eval()
    assert all(block.mode == mode for block in g.blocks)
    z = torch.randn(2, 8)
    with torch.no_grad():
        img = g(z)
    assert img.shape == (2, 3, 64, 64) and img.min() >= -1.0 and img.max() <= 1.0
    # The same weights upsampled another way draw another picture: the field is used.
    other = FastGenerator(TINY).eval()
    other.load_state_dict(g.state_dict())
    with torch.no_grad():
        assert not torch.allclose(other(z), img)
    path = tmp_path / "g.safetensors"
    save_model(path, g.state_dict(), kind="gan", config=config.to_dict(), data={}, metrics={}, steps=1)
    loaded = load_generator(path)[0]
    assert isinstance(loaded, FastGenerator) and loaded.config.upsample == mode
    assert all(block.mode == mode for block in loaded.blocks)
    old = {k: v for k, v in TINY.to_dict().items() if k != "upsample"}
    assert gan_config_from_dict(old).upsample == "bilinear"  # files from before the field


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"size": 100}, "power of two"),
        ({"d_rgb_kernel": 5}, "'d_rgb_kernel' must be 1 or 3, got 5"),
        ({"d_top_convs": 3}, "'d_top_convs' must be 1 or 2, got 3"),
        ({"d_fine": 2}, "'d_fine' must be 0 or 1, got 2"),
        ({"upsample": "cubic"}, "'upsample' must be one of bilinear, bicubic, nearest, got 'cubic'"),
        ({"upsample": 2}, "'upsample' must be one of"),
        ({"d_small": 4}, "'d_small' must be 0 \\(none\\) or a power of two from 8 to size / 2 \\(64\\), got 4"),
        ({"d_small": 24}, "d_small"),
        ({"d_small": 128}, "d_small"),
        ({"two_convs_up_to": 24}, "two_convs_up_to"),
        ({"size": 64, "two_convs_up_to": 128}, "two_convs_up_to"),
        ({"channels": 8, "min_channels": 16}, "min_channels"),
        ({"channels": 8.0}, "integer"),
        ({"arch": "classic"}, "arch"),
    ],
)
def test_invalid_config(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        FastGANConfig(**kwargs).validate()


def test_config_from_dict_picks_the_arch() -> None:
    old = {"size": 64, "latent_dim": 8, "channels": 32, "min_channels": 8}  # a file from before "arch"
    assert gan_config_from_dict(old) == GANConfig(64, 8, 32, 8)
    assert gan_config_from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="'arch' must be one of \\['classic', 'fast'\\], got 'turbo'"):
        gan_config_from_dict({**old, "arch": "turbo"})
    with pytest.raises(ValueError, match="two_convs_up_to"):  # a fast-only key on a classic config
        gan_config_from_dict({**old, "two_convs_up_to": 16})


def test_presets_and_overrides() -> None:
    for arch, presets in PRESETS.items():
        for name, values in presets.items():
            config = preset_config(arch, name)
            assert config.arch == arch and config.to_dict().items() >= values.items()
    assert preset_config("classic", "live") == GANConfig()
    assert preset_config("fast", "live") == FastGANConfig(d_small=16, d_rgb_kernel=3, d_fine=1)  # D's: a preset's
    assert preset_config("fast", "gpu", size=128).d_small == 16  # 1/8 of a smaller size, as the preset's
    assert preset_config("fast", "gpu", size=128, d_small=32).d_small == 32  # unless given
    small = preset_config("fast", "gpu", size=64, channels=16)  # the preset's other fields shrink with them
    assert (small.size, small.channels, small.min_channels) == (64, 16, 16)
    assert isinstance(small, FastGANConfig) and small.two_convs_up_to == 64
    with pytest.raises(ValueError, match="preset"):
        preset_config("fast", "huge")
    with pytest.raises(ValueError, match="arch"):
        preset_config("turbo", "live")


def _save(path: Path, g: torch.nn.Module, config: dict) -> None:
    save_model(path, g.state_dict(), kind="gan", config=config, data={}, metrics={}, steps=1)


def test_old_file_loads_classic_and_fast_file_loads_fast(tmp_path: Path) -> None:
    classic = Generator(GANConfig(64, 8, 32, 8))
    old_config = {k: v for k, v in classic.config.to_dict().items() if k != "arch"}
    _save(tmp_path / "old.safetensors", classic, old_config)
    loaded, meta = load_generator(tmp_path / "old.safetensors")
    assert type(loaded) is Generator and "arch" not in meta["config"]

    torch.manual_seed(0)
    fast = FastGenerator(TINY).eval()
    _save(tmp_path / "fast.safetensors", fast, TINY.to_dict())
    loaded, meta = load_generator(tmp_path / "fast.safetensors")
    assert type(loaded) is FastGenerator and meta["config"]["arch"] == "fast"
    assert not loaded.training
    z = torch.randn(2, 8)
    with torch.no_grad():  # the noise maps travel in the file (fp16 on disk)
        torch.testing.assert_close(loaded(z), fast(z), atol=2e-2, rtol=0)


def test_bad_arch_in_file_is_a_model_file_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.safetensors"
    _save(path, FastGenerator(TINY), {**TINY.to_dict(), "arch": "turbo"})
    with pytest.raises(ModelFileError, match="odd.safetensors.*bad GAN config.*'arch'.*'turbo'"):
        load_generator(path)
    # A fast config over classic weights: the tensors do not fit, and the error says which.
    _save(path, Generator(GANConfig(64, 8, 32, 8)), TINY.to_dict())
    with pytest.raises(ModelFileError, match="odd.safetensors"):
        load_generator(path)


def test_a_scene_naming_a_fast_model_plays_still_frames_when_held(tmp_path: Path) -> None:
    from engine.files.scene import load_scene
    from engine.stage.deck import load_scenes
    from tests.fakes import FakeOutput, built_show

    torch.manual_seed(0)
    g = FastGenerator(TINY)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("strength"):
                p.fill_(0.5)
    _save(tmp_path / "fast.safetensors", g, TINY.to_dict())
    (tmp_path / "fast.toml").write_text('model = "fast.safetensors"\n')
    scenes = load_scenes([load_scene(tmp_path / "fast.toml")], torch.device("cpu"))
    assert scenes[0].size == 64 and scenes[0].latent_dim == 8
    # The deck traces and freezes the generator when that gives the eager output bit for bit.
    assert not isinstance(scenes[0].generator, FastGenerator)
    out = FakeOutput()
    show = built_show(scenes, output=out)
    show.registry.set("/master/freeze", 1.0)  # hold the picture: the path stops
    show.run(frames=3)
    assert out.presents == 3
    assert all((f == out.frames[0]).all() for f in out.frames[1:])  # fixed noise: no flicker
