"""Preset files (presets/NAME.toml): a snapshot of every param and each deck's scene and place.

    # Latent Stage preset
    name = "warm"
    [params]
    "/master/brightness" = 0.8
    "/deck/a/truncation" = 0.7
    "/mixer/crossfade" = 0.0
    [decks.a]
    scene = "Deep field"     # the scene's name
    position = 3.25          # path time in keys (where the latent walk stands)
    [decks.b]
    scene = "Tissue"
    position = 0.0

A preset is written atomically (engine.files.atomic) and read strictly: a bad
file at startup is one PresetError naming the file and the key. What a preset
holds that the show lacks (a param of another version, a scene not loaded) is
not an error: recall applies the rest and says what it skipped.

Pure module: no pygame, torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.checks import Checker, read_toml
from engine.errors import StartupError
from engine.files import REPO_ROOT
from engine.files.atomic import atomic_write_text

PRESETS_DIR = REPO_ROOT / "presets"
# A preset's name is its file's stem: letters, digits, "-", "_" and "." (not first), so a
# name sent over OSC can never point outside the presets folder.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class PresetError(StartupError, ValueError):
    """A preset file or name that cannot be used; names the file, key and expectation."""


@dataclass(frozen=True)
class DeckState:
    scene: str  # the scene's name
    position: float  # path time in keys


@dataclass(frozen=True)
class Preset:
    name: str
    params: dict[str, float] = field(default_factory=dict)
    decks: dict[str, DeckState] = field(default_factory=dict)


def check_name(name: object) -> str:
    """A preset name usable as a file stem; PresetError otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise PresetError(
            f"preset name {name!r}: expected 1-64 letters, digits, '-', '_' or '.' (not first), e.g. 'warm-2'"
        )
    return name


def preset_path(folder: Path, name: str) -> Path:
    return folder / f"{check_name(name)}.toml"


def to_toml(preset: Preset) -> str:
    """The preset as TOML text (strings JSON-quoted: valid TOML basic strings)."""
    lines = ["# Latent Stage preset (run_show.py params lists presets; /preset/recall NAME recalls one)"]
    lines.append(f"name = {json.dumps(preset.name)}")
    lines.append("")
    lines.append("[params]")
    lines += [f"{json.dumps(a)} = {float(v)!r}" for a, v in preset.params.items()]
    for deck, state in preset.decks.items():
        lines += ["", f"[decks.{deck}]", f"scene = {json.dumps(state.scene)}", f"position = {float(state.position)!r}"]
    return "\n".join(lines) + "\n"


def save_preset(folder: Path, preset: Preset) -> Path:
    """Write presets/NAME.toml atomically; returns its path (OSError if it cannot be written)."""
    path = preset_path(folder, preset.name)
    atomic_write_text(path, to_toml(preset))
    return path


def load_preset(path: Path) -> Preset:
    """Read and check one preset file; PresetError naming the file and key."""
    data = read_toml(path, PresetError, "preset")
    ck = Checker(path, PresetError)
    ck.unknown(data, ("name", "params", "decks"))
    name = check_name_in(ck, data.get("name", path.stem))
    params = {}
    for address, value in ck.table("params", data.get("params", {}), "a table of param address = number").items():
        params[address] = ck.number(f"params.{address}", value)
    decks = {}
    for deck, table in ck.table("decks", data.get("decks", {}), "a table of deck tables").items():
        table = ck.table(f"decks.{deck}", table, "a table with scene and position")
        ck.unknown(table, ("scene", "position"), prefix=f"decks.{deck}.")
        scene = ck.text(f"decks.{deck}.scene", table.get("scene"))
        position = ck.number(f"decks.{deck}.position", table.get("position", 0.0), lo=0.0)
        decks[deck] = DeckState(scene, position)
    return Preset(name, params, decks)


def check_name_in(ck: Checker, name: object) -> str:
    try:
        return check_name(name)
    except PresetError:
        raise ck.fail("name", "1-64 letters, digits, '-', '_' or '.' (not first)", name) from None


def load_presets(folder: Path) -> dict[str, Preset]:
    """Every presets/*.toml by name (sorted); a missing folder holds none."""
    if not folder.is_dir():
        return {}
    presets = {}
    for path in sorted(folder.glob("*.toml")):
        preset = load_preset(path)
        if preset.name != path.stem:
            raise PresetError(f"{path}: key 'name': expected the file's name {path.stem!r}, got {preset.name!r}")
        presets[preset.name] = preset
    return presets
