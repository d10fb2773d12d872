"""The [notes], [text] and [synth] tables of a scene file.

    [notes]
    model = "../trained/nottingham.safetensors"   # a kind "notes" model file
    primer = "tune.mid"      # optional: a MIDI file whose melody starts the state
    key = "D"                # or 0..11; scale = "major" | "dorian" | ... (engine.seq.scales)
    temperature = 0.9        # and any other /deck/a/notes/<name> param: its default
    [text]
    model = "../trained/shakespeare.safetensors"  # a kind "text" model file
    primer = "ROMEO:"        # optional: text fed before generating
    font = "fonts/x.ttf"     # optional; default pygame's bundled sans
    colour = [1.0, 0.9, 0.8] # red, green, blue 0..1; and any /deck/a/text/<name> param
    [synth]
    waveform = "saw"         # sine | saw | square | triangle; and any /synth/<name> setting
    cutoff = 2000.0

Numbers become the defaults of the matching params (validated against their
ranges), so performers can move them live and a scene change restores them.
Also home of what scene.py shares with these tables (ParamSetting, resolve_model), so
scene.py imports this module and not the other way round. Pure module: no torch,
pygame or sound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.checks import Checker
from engine.core.params import Param
from engine.dsp.synth import WAVEFORMS, synth_params  # WAVEFORMS: /synth/waveform 0..3
from engine.errors import SceneError
from engine.files import REPO_ROOT
from engine.seq.params import NOTE_PARAMS, TEXT_PARAMS
from engine.seq.scales import SCALE_NAMES, key_index


@dataclass(frozen=True)
class ParamSetting:
    """A param's default and range as a scene sets them."""

    default: float
    lo: float
    hi: float


@dataclass(frozen=True)
class NotesSpec:
    model: Path
    primer: Path | None = None


@dataclass(frozen=True)
class TextSpec:
    model: Path
    primer: str = ""
    font: Path | None = None


@dataclass(frozen=True)
class SeqTables:
    notes: NotesSpec | None = None
    text: TextSpec | None = None
    params: dict[str, ParamSetting] = field(default_factory=dict)  # "notes/temperature" -> default
    synth: dict[str, float] = field(default_factory=dict)  # "cutoff" -> value


def _specs(table: tuple[tuple, ...]) -> dict[str, tuple]:
    return {s[0]: s for s in table}


_NOTE = _specs(NOTE_PARAMS)
_TEXT = _specs(TEXT_PARAMS)


def resolve_model(ck: Checker, value: Any, key: str = "model") -> Path:
    """A model path relative to the scene's folder, then to the repository root."""
    return ck.existing_file(key, value, "model file", (Path(ck.file).parent, REPO_ROOT))


def _value(ck: Checker, key: str, value: Any, typ: str, lo: float, hi: float) -> float:
    if typ == "bool":
        return float(ck.boolean(key, value))
    v = ck.number(key, value)
    if typ == "int" and not v.is_integer():
        raise ck.fail(key, "a whole number", value)
    if not lo <= v <= hi:
        raise ck.fail(key, f"a value from {lo:g} to {hi:g}", value)
    return v


def _defaults(ck: Checker, section: str, table: dict, specs: dict[str, tuple], skip: set[str]) -> dict:
    out: dict[str, ParamSetting] = {}
    for name, value in table.items():
        if name in skip:
            continue
        spec = specs.get(name)
        if spec is None:
            allowed = sorted(skip | set(specs))
            raise ck.fail(f"{section}.{name}", "one of " + ", ".join(allowed))
        _, typ, _default, lo, hi = spec[:5]
        v = _value(ck, f"{section}.{name}", value, typ, lo, hi)
        out[f"{section}/{name}"] = ParamSetting(v, float(lo), float(hi))
    return out


def _table(ck: Checker, data: dict, section: str) -> dict | None:
    table = data.get(section)
    return None if table is None else ck.table(section, table, f"a [{section}] table")


def _file(ck: Checker, key: str, value: Any, what: str) -> Path:
    return ck.existing_file(key, value, what, (Path(ck.file).parent,))


def _notes(ck: Checker, table: dict) -> tuple[NotesSpec, dict[str, ParamSetting]]:
    table = dict(table)
    if "model" not in table:
        raise ck.fail("notes.model", "a path to a notes model file (the key is missing)")
    model = resolve_model(ck, table["model"], "notes.model")
    primer = _file(ck, "notes.primer", table["primer"], "MIDI file") if "primer" in table else None
    if isinstance(table.get("key"), str):
        k = key_index(table["key"])
        if k is None:
            raise ck.fail("notes.key", "a key name (C, C#, Db ... B) or 0..11", table["key"])
        table["key"] = k
    if "scale" in table:
        table["scale"] = SCALE_NAMES.index(ck.choice("notes.scale", table["scale"], SCALE_NAMES)) + 1
    params = _defaults(ck, "notes", table, _NOTE, {"model", "primer"})
    lo = params.get("notes/low", ParamSetting(_NOTE["low"][2], 0, 127)).default
    hi = params.get("notes/high", ParamSetting(_NOTE["high"][2], 0, 127)).default
    if lo > hi:
        raise ck.fail("notes.low", f"a lowest pitch not above notes.high ({hi:g})", lo)
    return NotesSpec(model, primer), params


def _text(ck: Checker, table: dict) -> tuple[TextSpec, dict[str, ParamSetting]]:
    table = dict(table)
    if "model" not in table:
        raise ck.fail("text.model", "a path to a text model file (the key is missing)")
    model = resolve_model(ck, table["model"], "text.model")
    primer = ck.text("text.primer", table.get("primer", ""))
    font = _file(ck, "text.font", table["font"], "font file (.ttf/.otf)") if "font" in table else None
    if font is not None:
        from engine.stage.textlayer import font_problem  # pygame: only for scenes with a font

        problem = font_problem(font)
        if problem is not None:
            raise ck.fail("text.font", f"a font file that FreeType reads ({font} {problem})")
    colour = table.pop("colour", None)
    params = _defaults(ck, "text", table, _TEXT, {"model", "primer", "font"})
    if colour is not None:
        if not isinstance(colour, list) or len(colour) != 3:
            raise ck.fail("text.colour", "[red, green, blue], each 0..1", colour)
        for name, c in zip(("red", "green", "blue"), colour):
            params[f"text/{name}"] = ParamSetting(_value(ck, "text.colour", c, "float", 0.0, 1.0), 0.0, 1.0)
    return TextSpec(model, primer, font), params


def _synth(ck: Checker, table: dict) -> dict[str, float]:
    specs: dict[str, Param] = {p.address.removeprefix("/synth/"): p for p in synth_params()}
    out: dict[str, float] = {}
    for name, value in table.items():
        p = specs.get(name)
        if p is None:
            raise ck.fail(f"synth.{name}", "one of " + ", ".join(specs))
        if name == "waveform" and isinstance(value, str):
            value = WAVEFORMS.index(ck.choice("synth.waveform", value, WAVEFORMS))
        out[name] = _value(ck, f"synth.{name}", value, p.type, p.lo, p.hi)
    return out


def load_seq_tables(ck: Checker, data: dict) -> SeqTables:
    """Validate the scene's [notes], [text] and [synth] tables (SceneError naming the key)."""
    notes = text = None
    params: dict[str, ParamSetting] = {}
    if (t := _table(ck, data, "notes")) is not None:
        notes, p = _notes(ck, t)
        params.update(p)
    if (t := _table(ck, data, "text")) is not None:
        text, p = _text(ck, t)
        params.update(p)
    synth = _synth(ck, t) if (t := _table(ck, data, "synth")) is not None else {}
    return SeqTables(notes, text, params, synth)


__all__ = [
    "ParamSetting",
    "NotesSpec",
    "TextSpec",
    "SeqTables",
    "load_seq_tables",
    "resolve_model",
    "SceneError",
    "WAVEFORMS",
]
