"""Setlist files (scenes/NAME.setlist.toml): scenes or presets, each with a dwell and a fade.

    name = "Gallery"
    mode = "sequence"        # sequence | random | bag (shuffled, each once per cycle)
    seed = 0                 # random and bag draw from it: a render repeats the live order
    dwell_seconds = 20.0     # how long an item plays, from the start of its fade in (or dwell_bars)
    fade_seconds = 3.0       # the crossfade into the next item (or fade_bars); 0 = a cut

    [[item]]
    scene = "default.toml"   # a scene file, relative to this file
    dwell_seconds = 40.0     # an item may set its own dwell and fade

    [[item]]
    preset = "calm"          # or a preset (presets/NAME.toml): recalled with the fade as its morph

A bad setlist stops startup with one SetlistError naming the file, the item and
the key (a missing scene file, a fade longer than its dwell, an unknown mode).

Pure module: no pygame, torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.checks import Checker, read_toml
from engine.errors import StartupError
from engine.files.scene import BEATS_PER_BAR, REPO_ROOT

MODES = ("sequence", "random", "bag")
SUFFIX = ".setlist.toml"
DEFAULT_SETLIST = REPO_ROOT / "scenes" / f"default{SUFFIX}"
_TOP = {"name", "mode", "seed", "item", "dwell_seconds", "dwell_bars", "fade_seconds", "fade_bars"}
_ITEM = {"scene", "preset", "dwell_seconds", "dwell_bars", "fade_seconds", "fade_bars"}
_LONGEST = 7 * 24 * 3600.0  # a week, in seconds (or beats)


class SetlistError(StartupError, ValueError):
    """A setlist file that cannot be played; names file, item, key and expectation."""


@dataclass(frozen=True)
class Timing:
    """A length in seconds, or in beats (given in bars) when `beats` is True."""

    length: float
    beats: bool = False


@dataclass(frozen=True)
class SetlistItem:
    scene: Path | None  # a scene file, or
    preset: str | None  # a preset's name
    dwell: Timing
    fade: Timing

    @property
    def label(self) -> str:
        return self.scene.stem if self.scene is not None else f"preset {self.preset}"


@dataclass(frozen=True)
class SetlistSpec:
    file: Path
    name: str
    mode: str
    seed: int
    items: tuple[SetlistItem, ...]

    @property
    def scene_files(self) -> list[Path]:
        """The scene files the items name, each once, in order."""
        seen: dict[Path, None] = {}
        for item in self.items:
            if item.scene is not None:
                seen.setdefault(item.scene, None)
        return list(seen)


def is_setlist(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def load_setlist(path: str | Path) -> SetlistSpec:
    """Read and check a setlist; SetlistError naming the file, item and key."""
    file = Path(path)
    data = read_toml(file, SetlistError, "setlist")
    ck = Checker(file, SetlistError)
    ck.unknown(data, _TOP)
    mode = ck.choice("mode", data.get("mode", "sequence"), MODES)
    seed = ck.integer("seed", data.get("seed", 0), 0, 2**63 - 1)
    default_dwell = _timing(ck, data, "dwell", Timing(20.0))
    default_fade = _timing(ck, data, "fade", Timing(3.0))
    rows = data.get("item")
    if not isinstance(rows, list) or not rows:
        raise ck.fail("item", "one or more [[item]] tables, each with scene = FILE or preset = NAME", rows)
    items = tuple(
        _item(ck.at(f"item #{i + 1}: "), file, row, default_dwell, default_fade) for i, row in enumerate(rows)
    )
    return SetlistSpec(file, ck.text("name", data.get("name", file.name.removesuffix(SUFFIX))), mode, seed, items)


def _item(ck: Checker, file: Path, row: Any, dwell: Timing, fade: Timing) -> SetlistItem:
    row = ck.table("item", row, "a table with scene = FILE or preset = NAME")
    ck.unknown(row, _ITEM)
    if ("scene" in row) == ("preset" in row):
        raise ck.fail("scene", "exactly one of scene = FILE or preset = NAME")
    scene = None
    if "scene" in row:
        scene = ck.existing_file("scene", row["scene"], "scene file", (file.parent, REPO_ROOT / "scenes"))
    preset = ck.text("preset", row["preset"]) if "preset" in row else None
    dwell, fade = _timing(ck, row, "dwell", dwell), _timing(ck, row, "fade", fade)
    if dwell.length <= 0.0:
        raise ck.fail(f"dwell_{_unit(dwell)}", "a dwell longer than 0", dwell.length)
    if dwell.beats == fade.beats and fade.length > dwell.length:
        raise ck.fail(f"fade_{_unit(fade)}", f"a fade no longer than the dwell ({dwell.length:g})", fade.length)
    return SetlistItem(scene, preset, dwell, fade)


def _timing(ck: Checker, table: dict, what: str, default: Timing) -> Timing:
    """`what`_seconds or `what`_bars (one of them), else `default`."""
    seconds, bars = f"{what}_seconds", f"{what}_bars"
    if seconds in table and bars in table:
        raise ck.fail(bars, f"only one of {seconds} and {bars}")
    if seconds in table:
        return Timing(ck.number(seconds, table[seconds], 0.0, _LONGEST))
    if bars in table:
        return Timing(ck.number(bars, table[bars], 0.0, _LONGEST / BEATS_PER_BAR) * BEATS_PER_BAR, beats=True)
    return default


def _unit(t: Timing) -> str:
    return "bars" if t.beats else "seconds"
