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
from engine.core.latent import HOLD_MAX, PATH_KINDS, check_setting
from engine.core.space import DECKS, deck_params
from engine.errors import SceneError
from engine.files import REPO_ROOT
from engine.files.folders import picture_files
from engine.files.scene_seq import ParamSetting, load_seq_tables, resolve_model

DEFAULT_SCENE = REPO_ROOT / "scenes" / "default.toml"

_TOP_KEYS = {"name", "description", "model", "seed", "path", "params", "notes", "text", "synth"}
_SECONDS_PER_KEY = (0.05, 3600.0)
_BEATS_PER_KEY = (1.0 / 16.0, 4096.0)  # a 64th note .. 1024 bars
_BARS_PER_LOOP = (0.25, 4096.0)
# numpy's generators (latent paths, note sampling) take seeds >= 0; torch's take 64 bits.
MAX_SEED = 2**63 - 1
BEATS_PER_BAR = 4  # bars are 4/4: four quarter-note beats
# A keyframe interval as a hold on the key, then a travel to the next: in seconds or in beats.
HOLD_TRAVEL = {"seconds": ("hold_seconds", "travel_seconds"), "beats": ("hold_beats", "travel_beats")}
HOLD_TRAVEL_KEYS = tuple(k for pair in HOLD_TRAVEL.values() for k in pair)
_DEFAULT_TRAVEL = 3.0  # seconds or beats, when only the hold is given
_PATH_COMMON = {"kind", "seconds_per_key", "beats_per_key", "bars_per_loop", "pictures", *HOLD_TRAVEL_KEYS}
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
    # Path kind "pictures": the picture files its keys come from, in order (folders expanded).
    pictures: tuple[Path, ...] = ()


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
            names = ", ".join(sorted(set(allowed) | _PATH_COMMON))
            raise ck.fail(f"path.{key}", f"one of the settings of path kind '{kind}' ({names})", key)
        settings[key] = check_setting(ck, f"path.{key}", value, allowed[key])
    spk, bpk = _path_speed(ck, kind, table, settings)
    return kind, spk, bpk, settings


def _path_speed(ck: Checker, kind: str, table: dict, settings: dict[str, Any]) -> tuple[float, float | None]:
    """seconds_per_key, or beats_per_key (given, from bars_per_loop, or hold + travel): exactly one way."""
    units = [u for u, pair in HOLD_TRAVEL.items() if any(k in table for k in pair)]
    given = [k for k in ("seconds_per_key", "beats_per_key", "bars_per_loop") if k in table] + units
    if len(given) > 1:
        keys = [f"path.{k}" if k not in HOLD_TRAVEL else f"path.hold_{k}/travel_{k}" for k in given]
        raise SceneError(
            f"{ck.file}: keys {' and '.join(keys)}: expected only one "
            "(the path's speed in seconds, in beats, its loop length in bars, or hold and travel times)"
        )
    spk = _ranged(ck, "path.seconds_per_key", table.get("seconds_per_key", 4.0), _SECONDS_PER_KEY, "seconds")
    if units:
        return _hold_travel(ck, kind, table, settings, units[0], spk)
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


def _hold_travel(
    ck: Checker, kind: str, table: dict, settings: dict[str, Any], unit: str, spk: float
) -> tuple[float, float | None]:
    """A keyframe interval given as hold_<unit> + travel_<unit>: its length, and settings["hold"] its share."""
    hold_key, travel_key = HOLD_TRAVEL[unit]
    if "hold" not in PATH_KINDS[kind]:
        raise ck.fail(f"path.{hold_key}", "a path kind with keys to hold on (keyframes or pictures)", kind)
    if "hold" in settings:
        raise ck.fail("path.hold", f"either the share hold or {hold_key}/{travel_key}, not both")
    bounds = _SECONDS_PER_KEY if unit == "seconds" else _BEATS_PER_KEY
    hold = ck.number(f"path.{hold_key}", table.get(hold_key, 0.0), 0.0, bounds[1], f"{unit} from 0 to {bounds[1]:g}")
    travel = _ranged(ck, f"path.{travel_key}", table.get(travel_key, _DEFAULT_TRAVEL), bounds, unit)
    settings["hold"] = min(hold / (hold + travel), HOLD_MAX)
    return (hold + travel, None) if unit == "seconds" else (spk, hold + travel)


def _pictures(ck: Checker, kind: str, table: dict) -> tuple[Path, ...]:
    """The picture files of a "pictures" path: files and folders (their pictures, sorted), relative
    to the scene's folder, then to the repository root."""
    if "pictures" not in table:
        if kind == "pictures":
            raise ck.fail("path.pictures", "a list of picture files or folders (the key is missing)")
        return ()
    if kind != "pictures":
        raise ck.fail("path.pictures", 'kind = "pictures" (keyframes from pictures)', kind)
    value = table["pictures"]
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not entries:
        raise ck.fail("path.pictures", "a picture file or folder, or a non-empty list of them", value)
    files: list[Path] = []
    for i, entry in enumerate(entries):
        key = f"path.pictures[{i}]"
        if not isinstance(entry, str) or not entry:
            raise ck.fail(key, "a path to a picture file or folder (string)", entry)
        p = Path(entry).expanduser()
        candidates = [p] if p.is_absolute() else [Path(ck.file).parent / p, REPO_ROOT / p]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise ck.fail(key, f"an existing picture file or folder (tried {' or '.join(map(str, candidates))})", entry)
        if found.is_dir():
            inside = picture_files(found)
            if not inside:
                raise ck.fail(key, f"a folder holding .png/.jpg/.jpeg/.webp pictures ('{found}' holds none)", entry)
            files += [f.resolve() for f in inside]
        else:
            files.append(found.resolve())
    return tuple(files)


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
    pictures = _pictures(ck, kind, data.get("path", {}))
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
        pictures=pictures,
    )


def shipped_scenes() -> list[Path]:
    """Every scene file in the repository's scenes/ folder, default first (setlists are not scenes)."""
    files = sorted(p for p in (REPO_ROOT / "scenes").glob("*.toml") if not p.name.endswith(".setlist.toml"))
    return sorted(files, key=lambda p: p.name != "default.toml")
