"""Scene files (TOML) -> validated `SceneSpec`s.

A scene names a model, a latent path with its settings, defaults and ranges
for its deck params, and a seed. Everything is checked here, at startup, and
every problem is reported as one `SceneError` naming the file, the key and
what was expected (the checks are engine.core.checks, the same as patches use).
Loading the model itself happens in `engine.stage.deck`.

Example (scenes/default.toml):

    name = "Deep field"
    model = "../trained/deepfield.safetensors"
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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.checks import Checker, parse_toml
from engine.core.latent import PATH_KINDS, check_setting
from engine.core.space import DECKS, deck_params
from engine.errors import SceneError
from engine.files import REPO_ROOT
from engine.files.scene_seq import ParamSetting, load_seq_tables, resolve_model

DEFAULT_SCENE = REPO_ROOT / "scenes" / "default.toml"

_TOP_KEYS = {"name", "description", "model", "seed", "path", "params", "notes", "text", "synth"}
_PATH_COMMON = {"kind": str, "seconds_per_key": float, "beats_per_key": float, "bars_per_loop": float}
_SECONDS_PER_KEY = (0.05, 3600.0)
_BEATS_PER_KEY = (1.0 / 16.0, 4096.0)  # a 64th note .. 1024 bars
_BARS_PER_LOOP = (0.25, 4096.0)
# numpy's generators (latent paths, note sampling) take seeds >= 0; torch's take 64 bits.
MAX_SEED = 2**63 - 1
BEATS_PER_BAR = 4  # bars are 4/4: four quarter-note beats
# The loop length in keyframes of the path kinds that loop (walk never repeats).
_LOOP_KEYS = {"keyframes": ("keys", 8), "noise": ("period", 8.0)}
# Every deck has the same params: a scene names them without the /deck/<d>/ prefix.
_DECK_PARAMS = {p.address.removeprefix(f"/deck/{DECKS[0]}/"): p for p in deck_params(DECKS[0])}

__all__ = [
    "SceneError",
    "ParamSetting",
    "SceneSpec",
    "load_scene",
    "shipped_scenes",
    "DEFAULT_SCENE",
    "REPO_ROOT",
    "BEATS_PER_BAR",
]


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


def _path_settings(ck: Checker, table: Any) -> tuple[str, float, float | None, dict[str, Any]]:
    """(kind, seconds_per_key, beats_per_key or None, kind-specific settings)."""
    ck.table("path", table, "a table like [path] with kind = ...")
    kind = ck.choice("path.kind", table.get("kind", "keyframes"), sorted(PATH_KINDS))
    allowed = PATH_KINDS[kind]
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key in _PATH_COMMON:
            continue
        if key not in allowed:
            names = ", ".join(sorted(set(allowed) | set(_PATH_COMMON)))
            raise ck.fail(f"path.{key}", f"one of the settings of path kind '{kind}' ({names})", key)
        settings[key] = check_setting(ck, f"path.{key}", value, allowed[key])
    spk, bpk = _path_speed(ck, kind, table, settings)
    return kind, spk, bpk, settings


def _path_speed(ck: Checker, kind: str, table: dict, settings: dict[str, Any]) -> tuple[float, float | None]:
    """seconds_per_key, or beats_per_key (given, or from bars_per_loop): exactly one of them."""
    given = [k for k in ("seconds_per_key", "beats_per_key", "bars_per_loop") if k in table]
    if len(given) > 1:
        raise SceneError(
            f"{ck.file}: keys {' and '.join('path.' + k for k in given)}: expected only one "
            "(the path's speed in seconds, in beats, or its loop length in bars)"
        )
    spk = _ranged(ck, "path.seconds_per_key", table.get("seconds_per_key", 4.0), _SECONDS_PER_KEY, "seconds")
    if "beats_per_key" in table:
        return spk, _ranged(ck, "path.beats_per_key", table["beats_per_key"], _BEATS_PER_KEY, "beats")
    if "bars_per_loop" in table:
        if kind not in _LOOP_KEYS:
            loops = " or ".join(sorted(_LOOP_KEYS))
            raise ck.fail("path.bars_per_loop", f"a path kind that loops ({loops}); use beats_per_key", kind)
        bars = _ranged(ck, "path.bars_per_loop", table["bars_per_loop"], _BARS_PER_LOOP, "bars")
        name, default = _LOOP_KEYS[kind]
        return spk, bars * BEATS_PER_BAR / float(settings.get(name, default))
    return spk, None


def _ranged(ck: Checker, key: str, value: Any, bounds: tuple[float, float], unit: str) -> float:
    lo, hi = bounds
    return ck.number(key, value, lo, hi, f"{unit} between {lo:g} and {hi:g}")


def _params(ck: Checker, table: Any) -> dict[str, ParamSetting]:
    ck.table("params", table, "a table of deck param defaults")
    out: dict[str, ParamSetting] = {}
    for name, value in table.items():
        key = f"params.{name}"
        p = _DECK_PARAMS.get(name)
        if p is None:
            raise ck.fail(key, "a deck param (" + ", ".join(_DECK_PARAMS) + ")", name)
        if isinstance(value, dict):
            extra = set(value) - {"default", "min", "max"}
            if extra:
                raise ck.fail(f"{key}.{sorted(extra)[0]}", "only default, min, max")
            lo = ck.number(f"{key}.min", value.get("min", p.lo))
            hi = ck.number(f"{key}.max", value.get("max", p.hi))
            default = ck.number(f"{key}.default", value.get("default", min(max(p.default, lo), hi)))
        else:
            lo, hi, default = p.lo, p.hi, ck.number(key, value)
        if not p.lo <= lo <= hi <= p.hi:
            raise ck.fail(key, f"a range inside {p.lo}..{p.hi} with min <= max", [lo, hi])
        if not lo <= default <= hi:
            raise ck.fail(key, f"a default from {lo} to {hi}", default)
        out[name] = ParamSetting(default, lo, hi)
    return out


def _read(file: Path) -> dict:
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise SceneError(f"{file}: cannot read scene file ({e.strerror or e})") from None
    return parse_toml(file, raw, SceneError)


def load_scene(path: str | Path) -> SceneSpec:
    """Parse and validate one scene file; raises SceneError with file, key, expectation."""
    file = Path(path)
    data = _read(file)
    ck = Checker(file, SceneError)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ck.fail(unknown[0], "one of the scene keys " + ", ".join(sorted(_TOP_KEYS)))
    if "model" not in data:
        raise ck.fail("model", "a path to a .safetensors model file (the key is missing)")
    name = ck.text("name", data.get("name", file.stem))
    description = ck.text("description", data.get("description", ""))
    seed = ck.integer("seed", data.get("seed", 0), 0, MAX_SEED)
    kind, spk, bpk, settings = _path_settings(ck, data.get("path", {}))
    seq = load_seq_tables(ck, data)
    params = _params(ck, data.get("params", {}))
    return SceneSpec(
        file=file,
        name=name,
        description=description,
        model=resolve_model(ck, data["model"]),
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
