"""Scene files (TOML) -> validated `SceneSpec`s.

A scene names a model, a latent path with its settings, defaults and ranges
for its deck params, and a seed. Everything is checked here, at startup, and
every problem is reported as one `SceneError` naming the file, the key and
what was expected. Loading the model itself happens in `engine.stage.deck`.

Example (scenes/default.toml):

    name = "Paintings"
    model = "../trained/paintings.safetensors"
    seed = 7
    [path]
    kind = "keyframes"        # keyframes | walk | noise
    seconds_per_key = 4.0     # or beats_per_key = 2 (follows the tempo), or
    keys = 8                  # bars_per_loop = 4 (keyframes/noise: the whole loop, 4/4 bars)
    [params]
    truncation = 0.8                                  # default only
    speed = { default = 1.0, min = 0.25, max = 2.0 }  # default and range

Pure module: no pygame, torch.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from engine.core.latent import PATH_KINDS
from engine.core.space import DECKS, deck_params

REPO_ROOT = Path(__file__).resolve().parents[2]  # engine/files/scene.py -> the repository
DEFAULT_SCENE = REPO_ROOT / "scenes" / "default.toml"

_TOP_KEYS = {"name", "description", "model", "seed", "path", "params", "notes", "text", "synth"}
_PATH_COMMON = {"kind": str, "seconds_per_key": float, "beats_per_key": float, "bars_per_loop": float}
_SECONDS_PER_KEY = (0.05, 3600.0)
_BEATS_PER_KEY = (1.0 / 16.0, 4096.0)  # a 64th note .. 1024 bars
_BARS_PER_LOOP = (0.25, 4096.0)
BEATS_PER_BAR = 4  # bars are 4/4: four quarter-note beats
# The loop length in keyframes of the path kinds that loop (walk never repeats).
_LOOP_KEYS = {"keyframes": ("keys", 8), "noise": ("period", 8.0)}
# Every deck has the same params: a scene names them without the /deck/<d>/ prefix.
_DECK_PARAMS = {p.address.removeprefix(f"/deck/{DECKS[0]}/"): p for p in deck_params(DECKS[0])}


class SceneError(ValueError):
    """A scene file that cannot be played; the message names file, key, expectation."""


@dataclass(frozen=True)
class ParamSetting:
    default: float
    lo: float
    hi: float


@dataclass(frozen=True)
class SceneSpec:
    file: Path
    name: str
    description: str
    model: Path
    seed: int
    path_kind: str
    seconds_per_key: float
    path_settings: dict[str, Any] = field(default_factory=dict)
    params: dict[str, ParamSetting] = field(default_factory=dict)  # name under /deck/<d>/
    # Path speed in beats instead of seconds (None: seconds_per_key applies); bars_per_loop
    # in the file is turned into this. Keyframe boundaries are phase-aligned to the beat.
    beats_per_key: float | None = None
    # The [notes], [text] and [synth] tables (engine.files.scene_seq.SeqTables); None: picture only.
    seq: Any = None


def _fail(file: Path, key: str, expected: str, got: Any = None) -> SceneError:
    tail = "" if got is None else f", got {got!r}"
    return SceneError(f"{file}: key '{key}': expected {expected}{tail}")


def _number(file: Path, key: str, v: Any) -> float:
    # bool is an int subclass in Python; a TOML `true` is not a number here.
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _fail(file, key, "a finite number", v)
    return float(v)


def _integer(file: Path, key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(file, key, "an integer", v)
    return v


def resolve_model(file: Path, value: Any, key: str = "model") -> Path:
    """A model path relative to the scene's folder, then to the repository root."""
    if not isinstance(value, str) or not value:
        raise _fail(file, key, "a path to a .safetensors model file (string)", value)
    p = Path(value).expanduser()
    candidates = [p] if p.is_absolute() else [file.parent / p, REPO_ROOT / p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    tried = " or ".join(str(c) for c in candidates)
    raise _fail(file, key, f"an existing model file (tried {tried})", value)


def _path_settings(file: Path, table: Any) -> tuple[str, float, float | None, dict[str, Any]]:
    """(kind, seconds_per_key, beats_per_key or None, kind-specific settings)."""
    if not isinstance(table, dict):
        raise _fail(file, "path", "a table like [path] with kind = ...", table)
    kind = table.get("kind", "keyframes")
    if kind not in PATH_KINDS:
        raise _fail(file, "path.kind", "one of " + ", ".join(sorted(PATH_KINDS)), kind)
    allowed = PATH_KINDS[kind]
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key in _PATH_COMMON:
            continue
        if key not in allowed:
            names = ", ".join(sorted(set(allowed) | set(_PATH_COMMON)))
            raise _fail(file, f"path.{key}", f"one of the settings of path kind '{kind}' ({names})", key)
        settings[key] = _setting(file, f"path.{key}", value, allowed[key])
    spk, bpk = _path_speed(file, kind, table, settings)
    return kind, spk, bpk, settings


def _path_speed(file: Path, kind: str, table: dict, settings: dict[str, Any]) -> tuple[float, float | None]:
    """seconds_per_key, or beats_per_key (given, or from bars_per_loop): exactly one of them."""
    given = [k for k in ("seconds_per_key", "beats_per_key", "bars_per_loop") if k in table]
    if len(given) > 1:
        raise SceneError(
            f"{file}: keys {' and '.join('path.' + k for k in given)}: expected only one "
            "(the path's speed in seconds, in beats, or its loop length in bars)"
        )
    spk = _ranged(file, "path.seconds_per_key", table.get("seconds_per_key", 4.0), _SECONDS_PER_KEY, "seconds")
    if "beats_per_key" in table:
        return spk, _ranged(file, "path.beats_per_key", table["beats_per_key"], _BEATS_PER_KEY, "beats")
    if "bars_per_loop" in table:
        if kind not in _LOOP_KEYS:
            loops = " or ".join(sorted(_LOOP_KEYS))
            raise _fail(file, "path.bars_per_loop", f"a path kind that loops ({loops}); use beats_per_key", kind)
        bars = _ranged(file, "path.bars_per_loop", table["bars_per_loop"], _BARS_PER_LOOP, "bars")
        name, default = _LOOP_KEYS[kind]
        return spk, bars * BEATS_PER_BAR / float(settings.get(name, default))
    return spk, None


def _ranged(file: Path, key: str, value: Any, bounds: tuple[float, float], unit: str) -> float:
    v = _number(file, key, value)
    if not bounds[0] <= v <= bounds[1]:
        raise _fail(file, key, f"{unit} between {bounds[0]:g} and {bounds[1]:g}", v)
    return v


def _setting(file: Path, key: str, value: Any, rule: tuple) -> Any:
    typ, _default, allowed = rule
    if typ is int:
        v: Any = _integer(file, key, value)
    elif typ is float:
        v = _number(file, key, value)
    elif not isinstance(value, typ):
        raise _fail(file, key, f"a {typ.__name__}", value)
    else:
        v = value
    if isinstance(allowed, tuple) and len(allowed) == 2 and all(isinstance(x, (int, float)) for x in allowed):
        if not allowed[0] <= v <= allowed[1]:
            raise _fail(file, key, f"a value from {allowed[0]} to {allowed[1]}", value)
    elif allowed and v not in allowed:
        raise _fail(file, key, "one of " + ", ".join(map(str, allowed)), value)
    return v


def _params(file: Path, table: Any) -> dict[str, ParamSetting]:
    if not isinstance(table, dict):
        raise _fail(file, "params", "a table of deck param defaults", table)
    out: dict[str, ParamSetting] = {}
    for name, value in table.items():
        key = f"params.{name}"
        p = _DECK_PARAMS.get(name)
        if p is None:
            raise _fail(file, key, "a deck param (" + ", ".join(_DECK_PARAMS) + ")", name)
        if isinstance(value, dict):
            extra = set(value) - {"default", "min", "max"}
            if extra:
                raise _fail(file, f"{key}.{sorted(extra)[0]}", "only default, min, max")
            lo = _number(file, f"{key}.min", value.get("min", p.lo))
            hi = _number(file, f"{key}.max", value.get("max", p.hi))
            default = _number(file, f"{key}.default", value.get("default", min(max(p.default, lo), hi)))
        else:
            lo, hi, default = p.lo, p.hi, _number(file, key, value)
        if not p.lo <= lo <= hi <= p.hi:
            raise _fail(file, key, f"a range inside {p.lo}..{p.hi} with min <= max", [lo, hi])
        if not lo <= default <= hi:
            raise _fail(file, key, f"a default from {lo} to {hi}", default)
        out[name] = ParamSetting(default, lo, hi)
    return out


def load_scene(path: str | Path) -> SceneSpec:
    """Parse and validate one scene file; raises SceneError with file, key, expectation."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise SceneError(f"{file}: cannot read scene file ({e.strerror or e})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SceneError(f"{file}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _fail(file, unknown[0], "one of the scene keys " + ", ".join(sorted(_TOP_KEYS)))
    if "model" not in data:
        raise _fail(file, "model", "a path to a .safetensors model file (the key is missing)")
    name = data.get("name", file.stem)
    description = data.get("description", "")
    for key, v in (("name", name), ("description", description)):
        if not isinstance(v, str):
            raise _fail(file, key, "a string", v)
    seed = _integer(file, "seed", data.get("seed", 0))
    kind, spk, bpk, settings = _path_settings(file, data.get("path", {}))
    from engine.files.scene_seq import load_seq_tables  # here: it builds on this module's helpers

    seq = load_seq_tables(file, data)
    params = _params(file, data.get("params", {}))
    return SceneSpec(
        file=file,
        name=name,
        description=description,
        model=resolve_model(file, data["model"]),
        seed=seed,
        path_kind=kind,
        seconds_per_key=spk,
        path_settings=settings,
        params={**seq.params, **params},
        beats_per_key=bpk,
        seq=seq if (seq.notes or seq.text or seq.synth) else None,
    )


def shipped_scenes() -> list[Path]:
    """Every scene file in the repository's scenes/ folder, default first."""
    files = sorted((REPO_ROOT / "scenes").glob("*.toml"))
    return sorted(files, key=lambda p: p.name != "default.toml")
