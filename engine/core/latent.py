"""Paths through a generator's latent space, as pure functions of path time.

Path time ``tau`` is measured in KEYFRAMES: ``tau = 1.0`` is one keyframe
interval. The scene turns seconds into tau by integrating ``dt`` with its
``seconds_per_key`` and speed multipliers, so a path never sees the frame
rate: the same tau gives the same point at 30 fps, 60 fps or offline.

Every path is deterministic for a given seed and evaluating it has no side
effects a caller could observe (``RandomWalk`` keeps a small memo of knots, an
optimisation only). Outputs are ``(dim,)`` float32 vectors meant to be fed to a
generator that was trained on ``N(0, I)`` latents, so the random paths keep
each coordinate distributed as a standard normal at every tau (norm close to
``sqrt(dim)``).

Pure numpy (and engine.core.checks): no torch, no pygame, importable anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from engine.core.checks import Checker

__all__ = [
    "PATH_KINDS",
    "KeyframeLoop",
    "LatentPath",
    "NoiseLoop",
    "RandomWalk",
    "SettingSpec",
    "check_setting",
    "latent_directions",
    "lerp",
    "make_path",
    "picture_path",
    "slerp",
    "validate_path_settings",
]

# Below this sine of the angle between two directions, slerp's 1/sin(theta)
# weights lose precision; we switch to normalised lerp (nearly parallel) or to
# an explicit great half-circle (nearly antiparallel).
_SIN_EPS = 1e-6
# Norms below this are treated as the zero vector: it has no direction.
_NORM_EPS = 1e-12

# Domain tags mixed into the seeds so that e.g. make_path("walk", seed=3) and
# make_path("noise", seed=3) do not share random numbers.
_TAG_KEYS, _TAG_WALK, _TAG_NOISE, _TAG_DIRS = 0x4B455953, 0x57414C4B, 0x4E4F4953, 0x44495253


def _seed_word(value: int) -> int:
    """Map any Python int to a non-negative int (zigzag) for SeedSequence."""
    return 2 * value if value >= 0 else -2 * value - 1


def _rng(tag: int, seed: int, *extra: int) -> np.random.Generator:
    """A generator that depends only on (tag, seed, extra), on every platform."""
    words = [tag, _seed_word(int(seed)), *(_seed_word(int(e)) for e in extra)]
    return np.random.default_rng(np.random.SeedSequence(words))


# --------------------------------------------------------------------------
# Interpolation primitives
# --------------------------------------------------------------------------


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation ``a + (b - a) * t`` of two (dim,) vectors, float32."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    return (a64 + (b64 - a64) * float(t)).astype(np.float32)


def _perpendicular(u: np.ndarray) -> np.ndarray:
    """A deterministic unit vector orthogonal to unit vector ``u`` (dim >= 2)."""
    # The basis axis least aligned with u is the best conditioned choice.
    axis = np.zeros_like(u)
    axis[int(np.argmin(np.abs(u)))] = 1.0
    p = axis - u * float(u @ axis)
    return p / np.linalg.norm(p)


def _slerp_unit(ua: np.ndarray, ub: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between unit vectors (float64, (dim,))."""
    cos_theta = float(np.clip(ua @ ub, -1.0, 1.0))
    theta = math.acos(cos_theta)
    sin_theta = math.sin(theta)
    if sin_theta > _SIN_EPS:
        wa = math.sin((1.0 - t) * theta) / sin_theta
        wb = math.sin(t * theta) / sin_theta
        return wa * ua + wb * ub
    if cos_theta > 0.0:
        # Nearly parallel: the arc is a straight segment to within rounding.
        v = ua + (ub - ua) * t
        return v / np.linalg.norm(v)
    # Antiparallel: every great half-circle joins them; pick a fixed one.
    if ua.shape[0] < 2:
        return ua if t < 0.5 else ub
    perp = _perpendicular(ua)
    angle = math.pi * t
    return math.cos(angle) * ua + math.sin(angle) * perp


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of two (dim,) vectors, float32.

    Vectors need not be unit length: the direction moves along the great
    circle while the norm is interpolated linearly, so a path between two
    N(0, I) samples stays near the shell of radius ``sqrt(dim)`` instead of
    cutting through the low-density middle as ``lerp`` does. ``t = 0`` and
    ``t = 1`` return ``a`` and ``b`` exactly. Robust when ``a`` and ``b`` are
    (nearly) parallel, antiparallel, or when either is the zero vector (then
    it falls back to ``lerp``, since zero has no direction).
    """
    t = float(t)
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if t == 0.0:
        return a64.astype(np.float32)
    if t == 1.0:
        return b64.astype(np.float32)
    na = float(np.linalg.norm(a64))
    nb = float(np.linalg.norm(b64))
    if na < _NORM_EPS or nb < _NORM_EPS:
        return lerp(a64, b64, t)
    direction = _slerp_unit(a64 / na, b64 / nb, t)
    return (direction * (na + (nb - na) * t)).astype(np.float32)


# --------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------


@runtime_checkable
class LatentPath(Protocol):
    """Anything with a latent dimension and a pure ``at(tau)``.

    ``at(tau)`` returns a fresh (dim,) float32 array; tau is in keyframes.
    """

    dim: int

    def at(self, tau: float) -> np.ndarray: ...


def _smoothstep(f: float) -> float:
    """3f^2 - 2f^3: zero slope at both ends of a segment."""
    return f * f * (3.0 - 2.0 * f)


def _catmull_rom_weights(f: float) -> tuple[float, float, float, float]:
    """Uniform Catmull-Rom weights for points (p0, p1, p2, p3) at f in [0, 1).

    The curve passes through p1 at f=0 and p2 at f=1 with tangent
    (p2 - p0) / 2 at p1 and (p3 - p1) / 2 at p2, so neighbouring segments
    share position AND velocity (C1).
    """
    f2 = f * f
    f3 = f2 * f
    return (
        0.5 * (-f3 + 2.0 * f2 - f),
        0.5 * (3.0 * f3 - 5.0 * f2 + 2.0),
        0.5 * (-3.0 * f3 + 4.0 * f2 + f),
        0.5 * (f3 - f2),
    )


def _bspline_weights(f: float) -> tuple[float, float, float, float]:
    """Uniform cubic B-spline weights for knots (k0, k1, k2, k3) at f in [0, 1).

    The curve does not pass through the knots but is C2 (no kinks, no
    stops), which is what a wandering camera through latent space wants.
    """
    g = 1.0 - f
    f2 = f * f
    f3 = f2 * f
    return (g * g * g / 6.0, (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0, (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0, f3 / 6.0)


INTERPS = ("slerp", "lerp", "spline")
EASES = ("linear", "smooth")


class KeyframeLoop:
    """A closed loop through N keys: ``at(k) == keys[k % N]`` for integer k.

    The loop has period N keyframes and closes without a seam: segment N-1
    runs from keys[N-1] back to keys[0]. ``interp`` picks how a segment is
    traversed: "slerp" (great-circle direction, linear norm), "lerp"
    (straight line) or "spline" (periodic Catmull-Rom through the keys, so
    the velocity is continuous across keys and across the wrap too).
    ``ease="smooth"`` applies smoothstep to the position within each segment:
    motion eases in and out, pausing at every key (zero velocity there, which
    is still continuous). ``hold`` (0 <= hold < 1) is the share of each
    segment spent standing on its key before travelling to the next: a
    picture scene holds on each picture, then morphs. It may be changed
    between frames (the deck's hold and travel params set it). One key is
    allowed: the loop then stands on it.
    """

    def __init__(self, keys: np.ndarray, interp: str = "slerp", ease: str = "smooth", hold: float = 0.0) -> None:
        keys = np.asarray(keys, dtype=np.float64)
        if keys.ndim != 2 or keys.shape[0] < 1 or keys.shape[1] < 1:
            raise ValueError(f"keys: expected an (N >= 1, dim) array, got shape {keys.shape}")
        if interp not in INTERPS:
            raise ValueError(f"interp: expected one of {', '.join(INTERPS)}, got {interp!r}")
        if ease not in EASES:
            raise ValueError(f"ease: expected one of {', '.join(EASES)}, got {ease!r}")
        if not 0.0 <= hold < 1.0:
            raise ValueError(f"hold: expected a share from 0 to below 1, got {hold!r}")
        self.keys = keys  # (N, dim) float64, kept in double for exact key hits
        self.interp = interp
        self.ease = ease
        self.hold = float(hold)
        self.dim = int(keys.shape[1])

    @property
    def period(self) -> float:
        """Loop length in keyframes (= number of keys)."""
        return float(self.keys.shape[0])

    def position(self, tau: float) -> tuple[int, float]:
        """(key index k, eased share f of the way to key k+1) at path time tau."""
        n = self.keys.shape[0]
        u = float(tau) % n  # in [0, n); Python's % is non-negative for n > 0
        k = int(math.floor(u))
        f = u - k
        if k >= n:  # u rounded up to n for tau just below a multiple of n
            k, f = 0, 0.0
        if self.hold > 0.0:
            f = max(0.0, (f - self.hold) / (1.0 - self.hold))
        if self.ease == "smooth":
            f = _smoothstep(f)
        return k, f

    def at(self, tau: float) -> np.ndarray:
        """The (dim,) float32 point at path time ``tau`` keyframes."""
        n = self.keys.shape[0]
        k, f = self.position(tau)
        if self.interp == "spline":
            w = _catmull_rom_weights(f)
            idx = [(k - 1) % n, k, (k + 1) % n, (k + 2) % n]
            return (np.asarray(w) @ self.keys[idx]).astype(np.float32)
        a, b = self.keys[k], self.keys[(k + 1) % n]
        if f == 0.0:
            return a.astype(np.float32)
        return slerp(a, b, f) if self.interp == "slerp" else lerp(a, b, f)

    def with_key(self, key: np.ndarray, at: int | None = None) -> KeyframeLoop:
        """The same loop with one more key (a picture added live) at index `at` (None: the end)."""
        row = np.asarray(key, dtype=np.float64).reshape(1, self.dim)
        index = self.keys.shape[0] if at is None else at
        keys = np.concatenate([self.keys[:index], row, self.keys[index:]])
        return KeyframeLoop(keys, self.interp, self.ease, self.hold)


class RandomWalk:
    """A smooth, never-repeating wander that is still a pure function of tau.

    Knot ``i`` is an N(0, I) sample drawn from a generator seeded by
    ``(seed, i)``, placed at tau = ``i * smoothness``; the path is the
    uniform cubic B-spline through those knots (C2). A B-spline averages four
    knots, which would shrink the variance (to 0.48 at mid-segment), so each
    point is divided by ``sqrt(sum(w_i^2))``: every coordinate is then exactly
    N(0, 1) at every tau and the norm stays near ``sqrt(dim)``. That factor has
    zero slope at the knots, so the walk stays at least C1 (it is in fact C2).

    ``smoothness`` is the knot spacing in keyframes: larger is slower and
    broader. Any tau works, negative too, with no drift and no memory of the
    past: seeking to tau = 1e6 costs the same as tau = 0.
    """

    _MEMO_SIZE = 16  # knots kept; 4 are needed per call, a few more for seeks

    def __init__(self, dim: int, seed: int, smoothness: float = 1.0) -> None:
        if dim < 1:
            raise ValueError(f"dim: expected >= 1, got {dim}")
        if not smoothness > 0.0:
            raise ValueError(f"smoothness: expected > 0 keyframes, got {smoothness}")
        self.dim = int(dim)
        self.seed = int(seed)
        self.smoothness = float(smoothness)
        self._memo: dict[int, np.ndarray] = {}

    def knot(self, index: int) -> np.ndarray:
        """Knot ``index``: a (dim,) float64 N(0, I) sample fixed by (seed, index)."""
        cached = self._memo.get(index)
        if cached is None:
            cached = _rng(_TAG_WALK, self.seed, index).standard_normal(self.dim)
            if len(self._memo) >= self._MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))  # oldest inserted
            self._memo[index] = cached
        return cached

    def at(self, tau: float) -> np.ndarray:
        """The (dim,) float32 point at path time ``tau`` keyframes."""
        u = float(tau) / self.smoothness
        i = int(math.floor(u))
        f = u - i
        w = np.asarray(_bspline_weights(f))
        w /= math.sqrt(float(w @ w))  # keep unit variance per coordinate
        knots = np.stack([self.knot(i + j - 1) for j in range(4)])  # (4, dim)
        return (w @ knots).astype(np.float32)


class NoiseLoop:
    """A closed loop made of random Fourier components, exactly periodic.

    Coordinate j is ``sum_h a[j,h] cos(2 pi h tau / period) + b[j,h] sin(...)``
    for h = 1..harmonics with a, b ~ N(0, s_h^2). Since cos^2 + sin^2 = 1 the
    value at any tau is N(0, sum_h s_h^2); the s_h^2 fall off as 1/h^2 (low
    frequencies dominate, so the loop is smooth) and sum to 1, so every sample
    on the loop looks like an N(0, I) draw. ``period`` is in keyframes.
    """

    def __init__(self, dim: int, seed: int, period: float = 8.0, harmonics: int = 3) -> None:
        if dim < 1:
            raise ValueError(f"dim: expected >= 1, got {dim}")
        if not period > 0.0:
            raise ValueError(f"period: expected > 0 keyframes, got {period}")
        if harmonics < 1:
            raise ValueError(f"harmonics: expected >= 1, got {harmonics}")
        self.dim = int(dim)
        self.seed = int(seed)
        self.period = float(period)
        self.harmonics = int(harmonics)
        h = np.arange(1, harmonics + 1, dtype=np.float64)  # (H,)
        var = 1.0 / h**2
        std = np.sqrt(var / var.sum())  # (H,) per-harmonic amplitude
        # (dim, 2H): cosine coefficients then sine coefficients.
        coeffs = _rng(_TAG_NOISE, seed, harmonics).standard_normal((dim, 2 * harmonics))
        self._coeffs = coeffs * np.concatenate([std, std])[None, :]
        self._freqs = h  # (H,) cycles per period

    def at(self, tau: float) -> np.ndarray:
        """The (dim,) float32 point at path time ``tau`` keyframes."""
        # Reduce to one period first so huge tau does not lose phase precision.
        phase = 2.0 * math.pi * ((float(tau) % self.period) / self.period)
        angles = self._freqs * phase  # (H,)
        basis = np.concatenate([np.cos(angles), np.sin(angles)])  # (2H,)
        return (self._coeffs @ basis).astype(np.float32)


# --------------------------------------------------------------------------
# Factory and settings schema
# --------------------------------------------------------------------------


class SettingSpec(NamedTuple):
    """One allowed setting of a path kind.

    ``type``: the Python type a TOML value must have (an int is accepted
    where float is asked; a bool is never accepted as a number).
    ``default``: used when the scene leaves the setting out.
    ``allowed``: for numbers an inclusive ``(low, high)`` range, for strings a
    tuple of the allowed choices.
    """

    type: type
    default: object
    allowed: tuple


HOLD_MAX = 0.99  # the largest share of a keyframe interval a path may hold on its key

# PATH_KINDS[kind][setting] = SettingSpec(type, default, allowed). A plain
# tuple (type, default, allowed) compares equal, so loaders may unpack it.
PATH_KINDS: dict[str, dict[str, SettingSpec]] = {
    "keyframes": {
        "keys": SettingSpec(int, 8, (2, 256)),
        "interp": SettingSpec(str, "slerp", INTERPS),
        "ease": SettingSpec(str, "smooth", EASES),
        "hold": SettingSpec(float, 0.0, (0.0, HOLD_MAX)),
    },
    # Keys from pictures (encoded by a VAE or projected into a GAN when the scene loads,
    # engine.stage.keyframes): a scene's [path] names them; make_path cannot build it alone.
    "pictures": {
        "interp": SettingSpec(str, "slerp", INTERPS),
        "ease": SettingSpec(str, "smooth", EASES),
        "hold": SettingSpec(float, 0.0, (0.0, HOLD_MAX)),
        # GAN models only: Adam steps of each picture's projection (engine.stage.projection).
        "project_steps": SettingSpec(int, 150, (1, 5000)),
    },
    "walk": {"smoothness": SettingSpec(float, 1.0, (0.05, 1000.0))},
    "noise": {"period": SettingSpec(float, 8.0, (0.5, 100000.0)), "harmonics": SettingSpec(int, 3, (1, 16))},
}


def check_setting(ck: Checker, key: str, value: object, spec: SettingSpec) -> object:
    """Validate one value against its spec; return it converted to spec.type.

    One rule for scene files (a SceneError naming file and key) and make_path (a
    ValueError naming the kind): `ck` says which.
    """
    if spec.type is str:
        return ck.choice(key, ck.text(key, value), spec.allowed)
    low, high = spec.allowed
    if spec.type is int:
        return ck.integer(key, value, low, high)
    return ck.number(key, value, low, high, f"a value from {low} to {high}")


def validate_path_settings(kind: str, settings: dict[str, object]) -> dict[str, object]:
    """Check settings for a path kind; return them complete with defaults.

    Raises ValueError naming the unknown kind, the unknown setting, or the
    setting whose value has the wrong type or is out of range.
    """
    if kind not in PATH_KINDS:
        raise ValueError(f"unknown path kind {kind!r}; expected one of {', '.join(PATH_KINDS)}")
    specs = PATH_KINDS[kind]
    unknown = sorted(set(settings) - set(specs))
    if unknown:
        raise ValueError(
            f"path kind {kind!r}: unknown setting(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(specs)}"
        )
    out = {name: spec.default for name, spec in specs.items()}
    ck = Checker(f"path kind {kind!r}", ValueError)
    for name, value in settings.items():
        out[name] = check_setting(ck, name, value, specs[name])
    return out


def _make_keyframes(dim: int, seed: int, s: dict[str, Any]) -> LatentPath:
    keys = _rng(_TAG_KEYS, seed).standard_normal((int(s["keys"]), dim))  # (N, dim)
    return KeyframeLoop(keys, interp=str(s["interp"]), ease=str(s["ease"]), hold=float(s["hold"]))


def picture_path(keys: np.ndarray, **settings: object) -> KeyframeLoop:
    """The loop of a "pictures" path through keys (N, dim) that came from pictures."""
    s: dict[str, Any] = validate_path_settings("pictures", settings)
    return KeyframeLoop(keys, interp=str(s["interp"]), ease=str(s["ease"]), hold=float(s["hold"]))


def _make_walk(dim: int, seed: int, s: dict[str, Any]) -> LatentPath:
    return RandomWalk(dim, seed, smoothness=float(s["smoothness"]))


def _make_noise(dim: int, seed: int, s: dict[str, Any]) -> LatentPath:
    return NoiseLoop(dim, seed, period=float(s["period"]), harmonics=int(s["harmonics"]))


_BUILDERS: dict[str, Callable[[int, int, dict[str, object]], LatentPath]] = {
    "keyframes": _make_keyframes,
    "walk": _make_walk,
    "noise": _make_noise,
}


def make_path(kind: str, dim: int, seed: int, **settings: object) -> LatentPath:
    """Build a path of ``kind`` (a key of PATH_KINDS) in a ``dim``-d latent space.

    Settings are validated against PATH_KINDS (ValueError naming the unknown
    kind or setting, or the bad value); omitted settings take their defaults.
    The same (kind, dim, seed, settings) always gives the same path.
    """
    checked = validate_path_settings(kind, settings)
    if kind not in _BUILDERS:
        raise ValueError(f"path kind {kind!r} is built from its pictures (picture_path), not from a seed")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim: expected a positive int, got {dim!r}")
    return _BUILDERS[kind](dim, int(seed), checked)


def latent_directions(dim: int, count: int, seed: int) -> np.ndarray:
    """``count`` orthonormal random directions in R^dim, as (count, dim) float32.

    Used as the axes of the live ``/deck/<d>/latent/<i>`` offsets: being
    orthonormal, two knobs never push the latent the same way and an offset
    of 1.0 moves it by exactly one unit. Deterministic per (dim, seed), and
    prefix-stable: the first k rows are the same for any ``count >= k``, so
    adding knobs to a scene does not change what the existing ones do.
    """
    if count < 0 or count > dim:
        raise ValueError(f"count: expected 0 <= count <= dim ({dim}), got {count}")
    # Draw row by row so direction i only depends on the first (i+1)*dim
    # numbers of the stream; QR (Gram-Schmidt order) keeps that prefix property.
    gauss = _rng(_TAG_DIRS, seed, dim).standard_normal((count, dim))  # (count, dim)
    q, r = np.linalg.qr(gauss.T)  # q: (dim, count) with orthonormal columns
    # Fix the signs so the result is unique (QR is defined up to column signs).
    signs = np.where(np.diag(r) < 0.0, -1.0, 1.0)
    return (q * signs[None, :]).T.astype(np.float32)
