"""Latent paths: interpolation maths, loop closure, determinism, validation."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.latent import (
    PATH_KINDS,
    KeyframeLoop,
    LatentPath,
    NoiseLoop,
    RandomWalk,
    latent_directions,
    lerp,
    make_path,
    picture_path,
    slerp,
    validate_path_settings,
)

DIM = 64
EPS = 1e-7  # keyframes; a hair either side of a wrap


def _keys(n: int = 5, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim))


# ----------------------------------------------------------------- lerp/slerp


def test_lerp_endpoints_and_midpoint() -> None:
    a, b = _keys(2)
    np.testing.assert_allclose(lerp(a, b, 0.0), a, rtol=1e-6)
    np.testing.assert_allclose(lerp(a, b, 1.0), b, rtol=1e-6)
    np.testing.assert_allclose(lerp(a, b, 0.5), (a + b) / 2, rtol=1e-5, atol=1e-6)
    assert lerp(a, b, 0.3).dtype == np.float32


def test_slerp_endpoints_exact_and_norm_interpolated() -> None:
    a, b = _keys(2)
    b = b * 3.0  # different norms: direction on the sphere, norm linear
    assert np.array_equal(slerp(a, b, 0.0), a.astype(np.float32))
    assert np.array_equal(slerp(a, b, 1.0), b.astype(np.float32))
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    for t in (0.1, 0.5, 0.9):
        v = slerp(a, b, t)
        assert v.dtype == np.float32
        assert np.linalg.norm(v) == pytest.approx(na + (nb - na) * t, rel=1e-5)


def test_slerp_keeps_norm_where_lerp_shrinks() -> None:
    a, b = _keys(2, dim=512)
    mid = slerp(a, b, 0.5)
    assert np.linalg.norm(mid) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2, rel=1e-5)
    assert np.linalg.norm(lerp(a, b, 0.5)) < 0.8 * np.linalg.norm(mid)


def test_slerp_unit_vectors_angle_is_linear() -> None:
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.0, 1.0, 0.0])
    v = slerp(a, b, 1 / 3)
    np.testing.assert_allclose(v, [np.cos(np.pi / 6), np.sin(np.pi / 6), 0.0], atol=1e-6)


def test_slerp_nearly_equal_vectors() -> None:
    a = _keys(1)[0]
    b = a + 1e-9
    v = slerp(a, b, 0.5)
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(v, a, rtol=1e-5, atol=1e-6)


def test_slerp_antiparallel_is_finite_and_on_the_shell() -> None:
    a = _keys(1)[0]
    for t in (0.25, 0.5, 0.75):
        v = slerp(a, -a, t)
        assert np.all(np.isfinite(v))
        assert np.linalg.norm(v) == pytest.approx(np.linalg.norm(a), rel=1e-5)
    # Halfway along the half-circle is orthogonal to both ends.
    assert abs(float(slerp(a, -a, 0.5) @ a)) < 1e-3 * float(a @ a)


def test_slerp_with_zero_vector_falls_back_to_lerp() -> None:
    a = np.zeros(DIM)
    b = _keys(1)[0]
    np.testing.assert_allclose(slerp(a, b, 0.25), 0.25 * b, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- keyframes


@pytest.mark.parametrize("interp", ["slerp", "lerp", "spline"])
@pytest.mark.parametrize("ease", ["linear", "smooth"])
def test_keyframe_loop_hits_keys_and_loops(interp: str, ease: str) -> None:
    keys = _keys(5)
    path = KeyframeLoop(keys, interp=interp, ease=ease)
    assert isinstance(path, LatentPath)
    for k in range(-5, 11):
        np.testing.assert_allclose(path.at(float(k)), keys[k % 5], rtol=1e-6, atol=1e-6)
    assert path.at(2.3).dtype == np.float32
    assert path.at(2.3).shape == (DIM,)


@pytest.mark.parametrize("interp", ["slerp", "lerp", "spline"])
@pytest.mark.parametrize("ease", ["linear", "smooth"])
def test_keyframe_loop_has_no_seam_at_the_wrap(interp: str, ease: str) -> None:
    keys = _keys(4)
    path = KeyframeLoop(keys, interp=interp, ease=ease)
    n = 4.0
    before, after = path.at(n - EPS), path.at(n + EPS)
    scale = np.linalg.norm(keys[0])
    assert np.linalg.norm(before - after) < 1e-4 * scale
    np.testing.assert_allclose(path.at(-EPS), before, atol=1e-4)


def test_spline_velocity_is_continuous_across_keys_and_wrap() -> None:
    keys = _keys(4)
    path = KeyframeLoop(keys, interp="spline", ease="linear")
    h = 1e-4
    for k in (1.0, 2.0, 4.0):  # 4.0 is the wrap
        left = (path.at(k).astype(np.float64) - path.at(k - h)) / h
        right = (path.at(k + h).astype(np.float64) - path.at(k)) / h
        assert np.linalg.norm(left - right) < 0.02 * np.linalg.norm(left)
    # Whereas plain slerp has a kink at a key.
    kinked = KeyframeLoop(keys, interp="slerp", ease="linear")
    left = (kinked.at(2.0).astype(np.float64) - kinked.at(2.0 - h)) / h
    right = (kinked.at(2.0 + h).astype(np.float64) - kinked.at(2.0)) / h
    assert np.linalg.norm(left - right) > 0.1 * np.linalg.norm(left)


def _integrate_tau(fps: int, seconds: float, seconds_per_key: float, speed: float) -> list[float]:
    """What the scene does: tau advances by dt * speed / seconds_per_key per frame."""
    tau, out = 0.0, [0.0]
    dt = 1.0 / fps
    for _ in range(round(seconds * fps)):
        tau += dt * speed / seconds_per_key
        out.append(tau)
    return out


@pytest.mark.parametrize("kind", ["keyframes", "walk", "noise"])
def test_same_points_at_30_and_60_fps(kind: str) -> None:
    path = make_path(kind, DIM, seed=3)
    taus30 = _integrate_tau(30, 4.0, seconds_per_key=0.5, speed=1.5)
    taus60 = _integrate_tau(60, 4.0, seconds_per_key=0.5, speed=1.5)
    for k in range(0, len(taus30), 7):  # t = k / 30 s is frame 2k at 60 fps
        np.testing.assert_allclose(path.at(taus30[k]), path.at(taus60[2 * k]), atol=1e-4)
        # and exactly equal for the same tau, whatever fps produced it
        assert np.array_equal(path.at(k / 30 * 3.0), path.at((2 * k) / 60 * 3.0))


def test_keyframe_loop_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="interp"):
        KeyframeLoop(_keys(3), interp="cubic")
    with pytest.raises(ValueError, match="ease"):
        KeyframeLoop(_keys(3), ease="bounce")
    with pytest.raises(ValueError, match="keys"):
        KeyframeLoop(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="hold"):
        KeyframeLoop(_keys(3), hold=1.0)


def test_keyframe_loop_holds_on_each_key_then_travels() -> None:
    keys = _keys(3)
    loop = KeyframeLoop(keys, interp="lerp", ease="linear", hold=0.4)
    for k in range(3):
        for f in (0.0, 0.2, 0.39):  # the hold: exactly the key
            np.testing.assert_array_equal(loop.at(k + f), keys[k].astype(np.float32))
    # travel: the remaining 60 % of the segment goes linearly to the next key
    np.testing.assert_allclose(loop.at(0.7), 0.5 * (keys[0] + keys[1]), rtol=1e-6)
    np.testing.assert_allclose(loop.at(2.999999), keys[0], atol=1e-4)  # the wrap back to key 0


def test_keyframe_loop_of_one_key_stands_still_and_grows() -> None:
    one = KeyframeLoop(_keys(1))
    np.testing.assert_array_equal(one.at(0.3), one.at(7.9))
    two = one.with_key(np.ones(one.dim))
    assert two.period == 2.0 and one.period == 1.0
    np.testing.assert_array_equal(two.at(1.0), np.ones(one.dim, np.float32))


# ---------------------------------------------------------------- walk, noise


def _max_step(path: LatentPath, start: float, stop: float, dtau: float) -> float:
    taus = np.arange(start, stop, dtau)
    pts = np.stack([path.at(t) for t in taus]).astype(np.float64)
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).max())


def test_walk_deterministic_per_seed_and_differs_across_seeds() -> None:
    a, b, c = RandomWalk(DIM, 7), RandomWalk(DIM, 7), RandomWalk(DIM, 8)
    for tau in (0.0, 0.37, 12.5, -3.2, 1e5 + 0.25):
        assert np.array_equal(a.at(tau), b.at(tau))
        assert not np.allclose(a.at(tau), c.at(tau))
    # Order of evaluation does not matter (the knot memo is invisible).
    fresh = RandomWalk(DIM, 7)
    assert np.array_equal(fresh.at(12.5), a.at(12.5))


def test_walk_is_smooth_and_does_not_repeat() -> None:
    walk = RandomWalk(DIM, 1, smoothness=2.0)
    scale = np.sqrt(DIM)
    assert _max_step(walk, -4.0, 20.0, 1e-3) < 0.01 * scale
    assert np.linalg.norm(walk.at(0.0) - walk.at(40.0)) > 0.5 * scale


def test_walk_stays_near_the_typical_set() -> None:
    dim = 512
    walk = RandomWalk(dim, 2)
    norms = np.array([np.linalg.norm(walk.at(t)) for t in np.linspace(-10, 30, 157)])
    assert np.all(np.abs(norms / np.sqrt(dim) - 1.0) < 0.15)
    coords = np.stack([walk.at(t) for t in np.arange(0.5, 200.0, 1.0)])
    assert abs(coords.std() - 1.0) < 0.05


def test_noise_exactly_periodic_deterministic_and_smooth() -> None:
    loop = NoiseLoop(DIM, 5, period=6.0, harmonics=3)
    same = NoiseLoop(DIM, 5, period=6.0, harmonics=3)
    for tau in (0.0, 0.3, 2.9, 5.999):
        assert np.array_equal(loop.at(tau), same.at(tau))
        for cycles in (1, 2, -1, 1000):
            np.testing.assert_allclose(loop.at(tau + cycles * 6.0), loop.at(tau), atol=1e-5)
    assert not np.allclose(loop.at(1.0), NoiseLoop(DIM, 6, period=6.0).at(1.0))
    assert _max_step(loop, 0.0, 6.0, 1e-3) < 0.01 * np.sqrt(DIM)


def test_noise_samples_look_like_standard_normal() -> None:
    dim = 1024
    loop = NoiseLoop(dim, 9, period=10.0, harmonics=4)
    pts = np.stack([loop.at(t) for t in np.linspace(0.0, 10.0, 40, endpoint=False)])
    assert abs(pts.mean()) < 0.05
    assert abs(pts.std() - 1.0) < 0.05
    norms = np.linalg.norm(pts, axis=1) / np.sqrt(dim)
    assert np.all(np.abs(norms - 1.0) < 0.15)


# ------------------------------------------------------------------ make_path


def test_make_path_defaults_and_settings() -> None:
    path = make_path("keyframes", DIM, seed=1, keys=3, interp="spline", ease="linear")
    assert isinstance(path, KeyframeLoop) and path.keys.shape == (3, DIM)
    assert np.array_equal(path.at(1.5), make_path("keyframes", DIM, 1, keys=3, interp="spline", ease="linear").at(1.5))
    assert isinstance(make_path("walk", DIM, 1), RandomWalk)
    noise = make_path("noise", DIM, 1, period=4)
    assert isinstance(noise, NoiseLoop) and noise.period == 4.0
    assert make_path("keyframes", DIM, 1).keys.shape == (PATH_KINDS["keyframes"]["keys"].default, DIM)


def test_path_kinds_schema_shape() -> None:
    for kind, settings in PATH_KINDS.items():
        for name, (typ, default, allowed) in settings.items():
            assert isinstance(default, typ), (kind, name)
            if typ is str:
                assert default in allowed
            else:
                low, high = allowed
                assert low <= default <= high
        if kind == "pictures":  # built from its pictures' keys, not from a seed
            with pytest.raises(ValueError, match="picture_path"):
                make_path(kind, 8, 0)
            assert picture_path(np.ones((2, 8))).period == 2.0
        else:
            make_path(kind, 8, 0)  # every other kind builds with its defaults


@pytest.mark.parametrize(
    ("kind", "settings", "needle"),
    [
        ("spiral", {}, "spiral"),
        ("keyframes", {"count": 3}, "count"),
        ("walk", {"period": 2.0}, "period"),
        ("keyframes", {"interp": "cubic"}, "interp"),
        ("keyframes", {"keys": 1}, "keys"),
        ("keyframes", {"keys": 2.5}, "keys"),
        ("keyframes", {"keys": True}, "keys"),
        ("noise", {"period": "long"}, "period"),
        ("noise", {"period": 0.0}, "period"),
    ],
)
def test_make_path_rejects_with_a_named_error(kind: str, settings: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        make_path(kind, DIM, 0, **settings)


def test_validate_fills_defaults() -> None:
    assert validate_path_settings("noise", {"period": 3}) == {"period": 3.0, "harmonics": 3}


# ---------------------------------------------------------------- directions


def test_latent_directions_orthonormal_deterministic_prefix_stable() -> None:
    dirs = latent_directions(DIM, 8, seed=4)
    assert dirs.shape == (8, DIM) and dirs.dtype == np.float32
    np.testing.assert_allclose(dirs @ dirs.T, np.eye(8), atol=1e-5)
    assert np.array_equal(dirs, latent_directions(DIM, 8, seed=4))
    assert not np.allclose(dirs, latent_directions(DIM, 8, seed=5))
    np.testing.assert_allclose(latent_directions(DIM, 3, seed=4), dirs[:3], atol=1e-5)
    with pytest.raises(ValueError, match="count"):
        latent_directions(4, 5, seed=0)
