"""The evaluation report's numbers on sets whose answer is known (engine.eval.metrics, features)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.eval import metrics
from engine.eval.features import feature_net_version, image_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gauss(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def test_kid_is_about_zero_for_one_distribution_and_larger_for_another() -> None:
    a = _gauss(64, 32, 0)
    same, _ = metrics.kid(a, a.clone(), seed=1)
    other, other_std = metrics.kid(a, _gauss(64, 32, 2, shift=1.0), seed=1)
    assert abs(same) < 0.05 * other
    assert other > 0.1 and other_std < other
    with pytest.raises(ValueError, match="at least 4"):
        metrics.kid(a[:3], a[:3])


def test_mmd2_unbiased_by_hand_on_sets_of_unequal_size() -> None:
    # D = 1, so the kernel is (x * y + 1)^3. Real {0, 1}: k(0, 1) = 1, off-diagonal mean 1.
    # Fake {1, 1, 2}: k(1, 1) = 8, k(1, 2) = 27; off-diagonal pairs 8, 27, 27 twice each: mean 62 / 3.
    # Cross: k(0, .) = 1 three times, k(1, 1) = 8 twice, k(1, 2) = 27: mean 46 / 6.
    real, fake = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [1.0], [2.0]])
    assert metrics.mmd2_unbiased(real, fake) == pytest.approx(1.0 + 62 / 3 - 2 * 46 / 6)
    a = _gauss(64, 32, 0)
    assert abs(metrics.mmd2_unbiased(a, _gauss(32, 32, 5))) < 0.1 * metrics.mmd2_unbiased(a, _gauss(32, 32, 5, 1.0))


def test_prdc_is_one_for_identical_sets_and_low_for_disjoint_ones() -> None:
    a = _gauss(40, 16, 3)
    same = metrics.prdc(a, a.clone())
    assert (same["precision"], same["recall"], same["coverage"]) == (1.0, 1.0, 1.0)
    assert same["density"] == pytest.approx(6 / 5)  # each real 5-NN ball holds itself and its 5 neighbours
    far = metrics.prdc(a, _gauss(40, 16, 4, shift=20.0))
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_pairwise_and_nearest_distances() -> None:
    assert metrics.mean_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    black, white = -torch.ones(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    assert metrics.pixel_pairwise_rms(torch.cat([black, white])) == pytest.approx(1.0)
    bank = torch.cat([black, white, torch.zeros(1, 3, 8, 8)])
    dist, index = metrics.nearest_rms(torch.cat([white, 0.1 * torch.ones(1, 3, 8, 8)]), bank)
    assert index.tolist() == [1, 2]
    assert dist[0] == pytest.approx(0.0, abs=1e-3) and dist[1] == pytest.approx(0.05, abs=1e-3)


def _stripes(n: int, size: int, seed: int) -> torch.Tensor:
    """Vertical stripes of random period and phase plus a little noise: (n, 3, size, size)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.arange(size).float()
    out = []
    for _ in range(n):
        period, phase = 4 + 8 * float(torch.rand(1, generator=gen)), 6.28 * float(torch.rand(1, generator=gen))
        row = torch.sin(6.2832 * x / period + phase)
        out.append(row.expand(3, size, size) * 0.8 + 0.05 * torch.randn(3, size, size, generator=gen))
    return torch.stack(out)


def _blobs(n: int, size: int, seed: int) -> torch.Tensor:
    """Isotropic texture: noise at every scale (n, 3, size, size) in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(n, 3, size, size)
    for side in (size // 8, size // 4, size // 2, size):
        noise = torch.randn(n, 3, side, side, generator=gen)
        out += torch.nn.functional.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)
    return (0.3 * out).tanh()


def test_axis_energy_is_high_for_stripes() -> None:
    striped = float(metrics.axis_energy_share(_stripes(8, 64, 0)).mean())
    texture = float(metrics.axis_energy_share(_blobs(8, 64, 1)).mean())
    assert striped > 0.8 and texture < 0.3
    assert striped / texture > 3.0


def test_detail_energy_tells_blur_from_grain() -> None:
    texture = _blobs(8, 64, 2)
    blurred = torch.nn.functional.interpolate(
        torch.nn.functional.avg_pool2d(texture, 4), scale_factor=4.0, mode="bilinear", align_corners=False
    )
    grainy = (texture + 0.5 * torch.randn(texture.shape, generator=torch.Generator().manual_seed(3))).clamp(-1, 1)
    share = {
        name: float(metrics.detail_energy_share(x).mean())
        for name, x in (("texture", texture), ("blurred", blurred), ("grainy", grainy))
    }
    assert share["blurred"] < 0.1 * share["texture"] and share["grainy"] > 1.5 * share["texture"]
    # White noise has 1 - pi / 16 of its energy past a quarter cycle per px (the disc
    # of radius S / 4 covers pi / 16 of the S x S spectrum).
    white = metrics.detail_energy_share(torch.rand(16, 3, 64, 64, generator=torch.Generator().manual_seed(4)))
    assert float(white.mean()) == pytest.approx(1.0 - math.pi / 16.0, abs=0.03)
    flat = metrics.detail_energy_share(torch.zeros(2, 3, 16, 16))
    assert torch.equal(flat, torch.zeros(2))  # no energy: a share of 0, not NaN


def test_walk_change_finds_a_jump() -> None:
    t = torch.linspace(0.0, 1.0, 40).view(40, 1, 1, 1)
    smooth = (t * 2.0 - 1.0).expand(40, 3, 16, 16).clone()  # even steps
    calm = metrics.change_stats(metrics.frame_changes(smooth))
    assert calm["ratio"] == pytest.approx(1.0, abs=1e-3)
    jumpy = smooth.clone()
    jumpy[20:] -= 1.0  # one frame jumps by far more than a step
    stats = metrics.change_stats(metrics.frame_changes(jumpy))
    assert stats["ratio"] > 10.0 and stats["max"] > 10 * stats["median"]
    assert stats["p99"] <= stats["max"]
    still = metrics.change_stats(metrics.frame_changes(torch.zeros(5, 3, 4, 4)))
    assert still["ratio"] == 1.0 and math.isfinite(still["ratio"])


def test_total_variation() -> None:
    assert metrics.total_variation(torch.tensor([1.0, 1.0]), torch.tensor([5.0, 5.0])) == 0.0
    assert metrics.total_variation(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])) == 1.0
    assert metrics.total_variation(torch.tensor([3.0, 1.0]), torch.tensor([1.0, 1.0])) == pytest.approx(0.25)


def test_random_features_are_fixed_and_tell_textures_apart() -> None:
    images = _blobs(6, 64, 5)
    first, again = image_features(images), image_features(images.clone())
    assert first.shape == (6, 672) and torch.equal(first, again)  # a fixed network: same input, same features
    assert feature_net_version(64).endswith("@64px") and feature_net_version(64) != feature_net_version(128)
    stripes = image_features(_stripes(6, 64, 6))
    within = metrics.mean_pairwise_distance(first)
    between = float(torch.cdist(first, stripes).mean())
    assert between > 1.5 * within
    with pytest.raises(ValueError, match="at least 32 px"):
        image_features(torch.zeros(1, 3, 16, 16))
