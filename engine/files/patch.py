"""Patch files (`patches/*.toml`): which controller gesture drives which param.

A patch is a list of routes. Each route names a `source` table with a `type`
("midi", "osc", or one of the modulation sources "audio", "lfo" and "beat",
see docs/MODULATION.md) and a target: a param `address` or a `verb`.

    name = "Korg nanoKONTROL2"
    [midi]                      # defaults for every MIDI source in this file
    port = "nanoKONTROL2"       # substring of the input port name (any port if absent)
    channel = 1                 # 1-16
    [[route]]
    name = "fader 1"
    source = { type = "midi", cc = 0 }          # or cc14 = 0-31, nrpn = 0-16383,
    address = "/master/brightness"              #   note = 0-127, pitchbend = true, program = 0-127
    range = [0.0, 1.0]          # param units; default: the param's (scene's) range
    curve = "linear"            # linear | exponential | logarithmic
    invert = false
    takeover = "pickup"         # jump | pickup | scale
    smoothing = 0.0             # seconds (one-pole glide of this route's moves)
    feedback = true             # echo the value to --midi-feedback
    pickup_led = { cc = 64 }    # a light on --midi-feedback, lit while this pick-up
                                #   control waits to be picked up (note = n also;
                                #   channel, on = 127, off = 0 optional)
    [[route]]
    source = { type = "midi", cc = 41 }
    verb = "/show/next"         # mode "trigger": fires on press (CC >= 64, note-on)
    [[route]]
    source = { type = "osc", address = "/brightness" }   # input = [0, 1] by default
    address = "/master/brightness"

Modes: absolute (knobs, faders, 14-bit, NRPN, pitch bend, OSC floats),
relative (encoders: `encoding` twos = 1/127 or offset = 65/63, `step` in param
units per tick), trigger (a verb with an optional `value`, or set the param to
`value`), toggle (a bool param), gate (range high while held, low on release),
velocity (a note's velocity across the range).

Modulation routes (engine.control.modulation evaluates them every frame):

    [[route]]
    source = { type = "audio", feature = "onset" }   # rms | low | mid | high | onset; input = [0, 1]
    address = "/deck/a/pulse"
    [[route]]
    source = { type = "lfo", shape = "sine", beats = 8 }   # or rate = 0.25 (Hz); phase = 0..1; seed
    address = "/deck/a/latent/2"
    mode = "add"                # swing around the param's own value ...
    amount = 1.5                # ... by up to this much (param units); default mode "absolute"
    [[route]]
    source = { type = "beat", division = 1, shape = "pulse", decay = 0.15 }   # or shape = "ramp"
    address = "/master/brightness"
    range = [0.6, 1.0]

They take range, curve, invert, smoothing, mode ("absolute" or "add") and
amount (add only); not verbs, takeover or feedback.

Everything is checked when the show starts; the first problem stops it with one
`PatchError` (a StartupError) naming the file, the route (number from 1, and its name), the
key and what was expected. Across files, a later file's routes for a source
replace the earlier files' routes for that source; inside one file several
routes may share a source (one fader driving two params).

Pure module: no ports, sockets, pygame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.core.checks import Checker, parse_toml
from engine.core.params import Registry
from engine.core.space import space_of
from engine.dsp.analysis import FEATURES as AUDIO_FEATURES  # numpy-only: no sound device
from engine.errors import PatchError

CURVES = ("linear", "exponential", "logarithmic")
TAKEOVERS = ("jump", "pickup", "scale")
MIDI_KINDS = ("cc", "cc14", "nrpn", "note", "pitchbend", "program")
MODULATION_TYPES = ("audio", "lfo", "beat")  # sources that move on their own, every frame
SOURCE_TYPES = ("midi", "osc", *MODULATION_TYPES)
LFO_SHAPES = ("sine", "triangle", "saw", "square", "random")
BEAT_SHAPES = ("pulse", "ramp")
MODULATION_MODES = ("absolute", "add")
MODES_BY_KIND = {
    "cc": ("absolute", "relative", "trigger", "toggle", "gate"),
    "cc14": ("absolute",),
    "nrpn": ("absolute", "relative"),
    "pitchbend": ("absolute",),
    "note": ("trigger", "toggle", "gate", "velocity"),
    "program": ("trigger",),
    "osc": ("absolute", "trigger", "toggle", "gate"),
}
_NUMBER_LIMITS = {"cc": 127, "cc14": 31, "nrpn": 16383, "note": 127, "program": 127}
_TOP_KEYS = {"name", "description", "midi", "route"}
_ROUTE_KEYS = set(
    "name source address verb value mode range curve invert takeover smoothing feedback "
    "feedback_channel feedback_on feedback_off step encoding bits amount pickup_led".split()
)
_MIDI_KEYS = {"type", "port", "channel", *MIDI_KINDS}
_OSC_KEYS = {"type", "address", "input"}
_AUDIO_KEYS = {"type", "feature", "input"}
_LFO_KEYS = {"type", "shape", "rate", "beats", "phase", "seed"}
_BEAT_KEYS = {"type", "division", "shape", "decay", "phase"}
# Route keys a modulation route may not have (they belong to controls a hand moves).
_CONTROL_ONLY_KEYS = (
    "verb",
    "value",
    "takeover",
    "feedback",
    "feedback_channel",
    "feedback_on",
    "feedback_off",
    "step",
    "encoding",
    "bits",
    "pickup_led",
)
_LED_KEYS = {"cc", "note", "channel", "on", "off"}
MAX_LFO_HZ = 50.0  # faster than this aliases against any frame rate
MAX_PERIOD_BEATS = 1024.0
EXP_K = 4.0  # curve steepness: exponential(p) = (2^(4p) - 1) / 15, so the middle of the travel gives 20%


@dataclass(frozen=True)
class MidiSource:
    kind: str  # one of MIDI_KINDS
    number: int  # controller, 14-bit MSB controller, NRPN number, note, program (0 for pitch bend)
    channel: int  # 0-15 (files say 1-16)
    port: str | None = None  # case-insensitive substring of the port name; None = any port
    type: str = "midi"

    def key(self) -> tuple:
        return ("midi", (self.port or "").lower(), self.channel, self.kind, self.number)

    def matches_port(self, port_name: str) -> bool:
        return self.port is None or self.port.lower() in port_name.lower()

    def describe(self) -> str:
        what = "pitch bend" if self.kind == "pitchbend" else f"{self.kind} {self.number}"
        return f"{what} ch {self.channel + 1}" + (f" on '{self.port}'" if self.port else "")


@dataclass(frozen=True)
class OscSource:
    address: str
    input: tuple[float, float] = (0.0, 1.0)  # the sender's value range
    type: str = "osc"

    def key(self) -> tuple:
        return ("osc", self.address)

    def describe(self) -> str:
        return f"OSC {self.address}"


@dataclass(frozen=True)
class AudioSource:
    """A feature of --audio-in (engine.dsp.analysis), each 0..1; `input` maps a part of it to 0..1."""

    feature: str  # one of AUDIO_FEATURES
    input: tuple[float, float] = (0.0, 1.0)  # feature values read as position 0 and 1
    type: str = "audio"

    def key(self) -> tuple:
        return ("audio", self.feature)

    def describe(self) -> str:
        return f"audio {self.feature}"


@dataclass(frozen=True)
class LfoSource:
    """A low-frequency oscillator: `rate` Hz on show time, or a period of `beats` on the tempo's beat."""

    shape: str  # one of LFO_SHAPES
    rate: float | None = None  # cycles per second of show time
    beats: float | None = None  # period in beats (phase-locked to the tempo)
    phase: float = 0.0  # cycles, 0..1, added to the position in the cycle
    seed: int = 0  # random (sample & hold): which sequence of values
    type: str = "lfo"

    def key(self) -> tuple:
        return ("lfo", self.shape, self.rate, self.beats, self.phase, self.seed)

    def describe(self) -> str:
        period = f"{self.rate:g} Hz" if self.rate is not None else f"every {self.beats:g} beats"
        return f"LFO {self.shape} {period}"


@dataclass(frozen=True)
class BeatSource:
    """The tempo's beat: a ramp 0..1 over each period, or a pulse of 1 decaying from each period's start."""

    division: float = 1.0  # period in beats: 1 every beat, 4 every bar (4/4), 0.5 eighth notes
    shape: str = "pulse"  # one of BEAT_SHAPES
    decay: float = 0.1  # pulse: seconds for the pulse to fall to 1/e
    phase: float = 0.0  # fraction of the period the beat is delayed by (0.5: off-beat)
    type: str = "beat"

    def key(self) -> tuple:
        return ("beat", self.division, self.shape, self.decay, self.phase)

    def describe(self) -> str:
        return f"beat {self.shape} every {self.division:g} beat(s)"


ModulationSource = AudioSource | LfoSource | BeatSource
Source = MidiSource | OscSource | AudioSource | LfoSource | BeatSource


@dataclass(frozen=True)
class Led:
    """A controller light that --midi-feedback drives (a CC value or a note's velocity)."""

    kind: str  # "cc" or "note"
    number: int  # 0-127
    channel: int | None = None  # 0-15; None: the route's feedback channel
    on: int = 127
    off: int = 0

    def message(self, lit: bool, default_channel: int) -> tuple[int, int, int]:
        ch = default_channel if self.channel is None else self.channel
        status = (0x90 if self.kind == "note" else 0xB0) | ch  # note-on velocity 0 is "off" everywhere
        return (status, self.number, self.on if lit else self.off)


@dataclass(frozen=True)
class Route:
    file: Path
    index: int  # 1-based position in its file
    name: str
    source: Source
    mode: str
    address: str | None = None  # the param, or None for a verb route
    verb: str | None = None
    value: float | str | None = None  # trigger value (verb argument or param value)
    range: tuple[float, float] | None = None  # None: the param's current (scene) range
    curve: str = "linear"
    invert: bool = False
    takeover: str = "jump"
    smoothing: float = 0.0  # seconds
    feedback: bool = False
    feedback_channel: int | None = None  # 0-15; None: the source's channel
    feedback_on: int = 127  # note velocity / CC value for a lit button
    feedback_off: int = 0
    step: float | None = None  # relative mode: param units per tick; None: 1/128 of the range
    encoding: str = "twos"
    bits: int = 14  # NRPN data resolution: 14 (6 + 38) or 7 (6 only)
    amount: float | None = None  # mode "add": the largest offset, param units (modulation routes)
    pickup_led: Led | None = None  # lit while a pick-up route waits to be picked up

    @property
    def label(self) -> str:
        return f"{self.file}: route #{self.index}" + (f" ('{self.name}')" if self.name else "")

    @property
    def out_channel(self) -> int:
        """The channel feedback and pick-up lights go out on: feedback_channel, else the source's."""
        if self.feedback_channel is not None:
            return self.feedback_channel
        return self.source.channel if isinstance(self.source, MidiSource) else 0

    @property
    def needs_loop(self) -> bool:
        """Does the route need the param's current value (decided on the loop thread)?"""
        if self.is_modulation:
            return False  # the modulation engine evaluates these itself, every frame
        return self.mode == "relative" or self.takeover != "jump" or self.smoothing > 0.0

    @property
    def is_modulation(self) -> bool:
        """An audio, LFO or beat route (engine.control.modulation), not a control a hand moves."""
        return self.source.type in MODULATION_TYPES


# -- mapping: control position (0..1) <-> param value -------------------------


def shape(p: float, curve: str) -> float:
    """Control position 0..1 -> fraction of the range 0..1."""
    if curve == "exponential":
        return (2.0 ** (EXP_K * p) - 1.0) / (2.0**EXP_K - 1.0)
    if curve == "logarithmic":
        return math.log2(1.0 + p * (2.0**EXP_K - 1.0)) / EXP_K
    return p


def unshape(y: float, curve: str) -> float:
    """Inverse of `shape` (exponential and logarithmic are each other's inverse)."""
    if curve == "exponential":
        return shape(y, "logarithmic")
    if curve == "logarithmic":
        return shape(y, "exponential")
    return y


def to_value(route: Route, position: float, lo: float, hi: float) -> float:
    """Position 0..1 (clamped) -> param units; (lo, hi) is the range when the route has none."""
    p = min(max(position, 0.0), 1.0)
    if route.invert:
        p = 1.0 - p
    a, b = route.range or (lo, hi)
    return a + shape(p, route.curve) * (b - a)


def to_position(route: Route, value: float, lo: float, hi: float) -> float:
    """Param value -> position 0..1 (feedback, scale takeover)."""
    a, b = route.range or (lo, hi)
    y = 0.0 if b == a else min(max((value - a) / (b - a), 0.0), 1.0)
    p = unshape(y, route.curve)
    return 1.0 - p if route.invert else p


# -- loading ------------------------------------------------------------------


@dataclass
class Patch:
    file: Path
    name: str
    routes: list[Route]


def read_toml(file: Path) -> dict:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise PatchError(f"{file}: patch file not found") from None
    except OSError as e:
        raise PatchError(f"{file}: cannot read the patch file: {e.strerror}") from None
    return parse_toml(file, raw, PatchError)


def load_patch(file: Path | str, registry: Registry, verbs: Iterable[str] | None = None) -> Patch:
    """Read and validate one patch file against the registry and the verbs a route may fire
    (default: those of the address space around the registry, engine.core.space)."""
    file = Path(file)
    data = read_toml(file)
    ck = Checker(file, PatchError)
    ck.unknown(data, _TOP_KEYS)
    name = ck.text("name", data.get("name", file.stem))
    defaults = _midi_defaults(ck, data.get("midi", {}))
    table = data.get("route", [])
    if not isinstance(table, list) or not all(isinstance(r, dict) for r in table):
        raise ck.fail("route", "a list of [[route]] tables", table)
    known = frozenset(verbs) if verbs is not None else space_of(registry).verb_addresses()
    routes = [_route(file, i + 1, r, defaults, registry, known) for i, r in enumerate(table)]
    return Patch(file, name, routes)


def _midi_defaults(ck: Checker, table: Any) -> dict:
    if not isinstance(table, dict):
        raise ck.fail("midi", "a table like [midi] with port and channel")
    ck.unknown(table, {"port", "channel"}, "midi.")
    out: dict[str, Any] = {}
    if "port" in table:
        out["port"] = ck.text("midi.port", table["port"]) or None
    if "channel" in table:
        out["channel"] = ck.integer("midi.channel", table["channel"], 1, 16) - 1
    return out


def _route(file: Path, index: int, r: dict, defaults: dict, registry: Registry, verbs: frozenset) -> Route:
    name = r.get("name", "")
    label = f" ('{name}')" if isinstance(name, str) and name else ""
    ck = Checker(file, PatchError, f"route #{index}{label}: ")
    ck.unknown(r, _ROUTE_KEYS)
    ck.text("name", name)
    if "source" not in r:
        raise ck.fail("source", 'a source table such as { type = "midi", cc = 0 }')
    source = _source(ck, r["source"], defaults, index)
    if source.type in MODULATION_TYPES:
        return _modulation_route(ck, file, index, name, source, r, registry)  # type: ignore[arg-type]
    if "amount" in r:
        raise ck.fail("amount", "no amount on a MIDI or OSC route (only audio, lfo and beat routes add)", r["amount"])
    address, verb = _target(ck, r, registry, verbs)
    kind = source.kind if isinstance(source, MidiSource) else "osc"
    mode = _mode(ck, r, kind, address, verb, registry)
    fields: dict[str, Any] = {
        "file": file,
        "index": index,
        "name": name,
        "source": source,
        "mode": mode,
        "address": address,
        "verb": verb,
    }
    fields.update(_options(ck, r, address, mode, registry))
    if "pickup_led" in fields and not isinstance(source, MidiSource):
        raise ck.fail("pickup_led", "a MIDI route (the light is on the controller that moves it)", r["pickup_led"])
    if "value" in r:
        fields["value"] = _trigger_value(ck, r["value"], address, mode, registry)
    return Route(**fields)


def _source(ck: Checker, s: Any, defaults: dict, index: int) -> Source:
    if not isinstance(s, dict):
        raise ck.fail("source", 'a table such as { type = "midi", cc = 0 }', s)
    typ = s.get("type", "midi")
    ck.choice("source.type", typ, SOURCE_TYPES)
    if typ in MODULATION_TYPES:
        return _modulation_source(ck, s, typ, index)
    if typ == "osc":
        ck.unknown(s, _OSC_KEYS, "source.")
        addr = ck.text("source.address", s.get("address"))
        if not addr.startswith("/") or " " in addr or len(addr) < 2:
            raise ck.fail("source.address", "an OSC address such as /brightness", addr)
        inp = _input_range(ck, s)
        return OscSource(addr, inp)
    ck.unknown(s, _MIDI_KEYS, "source.")
    kinds = [k for k in MIDI_KINDS if k in s]
    if len(kinds) != 1:
        raise ck.fail("source", "exactly one of " + ", ".join(MIDI_KINDS), sorted(kinds))
    kind = kinds[0]
    if kind == "pitchbend":
        if s[kind] is not True:
            raise ck.fail("source.pitchbend", "true", s[kind])
        number = 0
    else:
        number = ck.integer(f"source.{kind}", s[kind], 0, _NUMBER_LIMITS[kind])
    channel = defaults.get("channel", 0)  # 0-15; files say 1-16
    if "channel" in s:
        channel = ck.integer("source.channel", s["channel"], 1, 16) - 1
    port = defaults.get("port")
    if "port" in s:
        port = ck.text("source.port", s["port"]) or None
    return MidiSource(kind, number, channel, port)


def _target(ck: Checker, r: dict, registry: Registry, verbs: frozenset) -> tuple[str | None, str | None]:
    if ("address" in r) == ("verb" in r):
        raise ck.fail("address", "either address (a param) or verb, not both or neither")
    if "address" in r:
        address = ck.text("address", r["address"])
        if address not in registry:
            raise ck.fail("address", "a param address (see `run_show.py params`)", address)
        return address, None
    verb = ck.text("verb", r["verb"])
    if verb not in verbs:
        raise ck.fail("verb", "one of " + ", ".join(sorted(verbs)), verb)
    return None, verb


def _mode(ck: Checker, r: dict, kind: str, address: str | None, verb: str | None, registry: Registry) -> str:
    is_bool = address is not None and registry.param(address).type == "bool"
    if verb is not None:
        default = "trigger"
    elif kind == "note":
        default = "toggle" if is_bool else "velocity"
    elif kind == "program":
        default = "trigger"
    else:
        default = "toggle" if is_bool and kind in ("cc", "osc") else "absolute"
    mode = ck.choice("mode", r.get("mode", default), MODES_BY_KIND[kind])
    if verb is not None and mode != "trigger":
        raise ck.fail("mode", "trigger (a verb can only be triggered)", mode)
    if mode == "toggle" and not is_bool:
        raise ck.fail("mode", f"a mode other than toggle: {address} is not a bool param", mode)
    return mode


def _options(ck: Checker, r: dict, address: str | None, mode: str, registry: Registry) -> dict:
    out: dict[str, Any] = {}
    if "range" in r:
        lo, hi = ck.pair("range", r["range"])
        p = registry.param(address) if address else None
        if p is None or not (p.hard_lo <= min(lo, hi) and max(lo, hi) <= p.hard_hi):
            span = f"{p.hard_lo}..{p.hard_hi}" if p else "a param route"
            raise ck.fail("range", f"[low, high] inside {span}", r["range"])
        out["range"] = (lo, hi)
    if "curve" in r:
        out["curve"] = ck.choice("curve", r["curve"], CURVES)
    if "invert" in r:
        out["invert"] = ck.boolean("invert", r["invert"])
    if "takeover" in r:
        out["takeover"] = ck.choice("takeover", r["takeover"], TAKEOVERS)
        if out["takeover"] != "jump" and mode != "absolute":
            raise ck.fail("takeover", "jump (pickup and scale need an absolute control)", out["takeover"])
    if "smoothing" in r:
        out["smoothing"] = ck.number("smoothing", r["smoothing"], 0.0, 60.0, "seconds from 0 to 60")
        if out["smoothing"] > 0 and mode not in ("absolute", "relative", "add"):
            raise ck.fail("smoothing", "0 on a button route (only absolute and relative moves glide)", r["smoothing"])
    out.update(_feedback_options(ck, r, address))
    if "pickup_led" in r:
        if out.get("takeover") != "pickup":
            raise ck.fail("pickup_led", 'a route with takeover = "pickup"', r["pickup_led"])
        out["pickup_led"] = _led(ck, "pickup_led", r["pickup_led"])
    if "step" in r:
        out["step"] = ck.number("step", r["step"])
        if mode != "relative" or out["step"] <= 0:
            raise ck.fail("step", 'a number > 0, on a route with mode = "relative"', r["step"])
    if "encoding" in r:
        out["encoding"] = ck.choice("encoding", r["encoding"], ("twos", "offset"))
    if "bits" in r:
        out["bits"] = ck.integer("bits", r["bits"], 7, 14)
        if out["bits"] not in (7, 14):
            raise ck.fail("bits", "7 or 14", r["bits"])
    return out


def _feedback_options(ck: Checker, r: dict, address: str | None) -> dict:
    out: dict[str, Any] = {}
    if "feedback" in r:
        out["feedback"] = ck.boolean("feedback", r["feedback"])
        if out["feedback"] and address is None:
            raise ck.fail("feedback", "false on a verb route (only param values are echoed)", True)
    if "feedback_channel" in r:
        out["feedback_channel"] = ck.integer("feedback_channel", r["feedback_channel"], 1, 16) - 1
    for key in ("feedback_on", "feedback_off"):
        if key in r:
            out[key] = ck.integer(key, r[key], 0, 127)
    return out


def _led(ck: Checker, key: str, t: Any) -> Led:
    if not isinstance(t, dict) or ("cc" in t) == ("note" in t):
        raise ck.fail(key, "a table with cc = 0-127 or note = 0-127, like { cc = 64 }", t)
    ck.unknown(t, _LED_KEYS, key + ".")
    kind = "cc" if "cc" in t else "note"
    number = ck.integer(f"{key}.{kind}", t[kind], 0, 127)
    channel = ck.integer(f"{key}.channel", t["channel"], 1, 16) - 1 if "channel" in t else None
    on = ck.integer(f"{key}.on", t.get("on", 127), 0, 127)
    off = ck.integer(f"{key}.off", t.get("off", 0), 0, 127)
    return Led(kind, number, channel, on, off)


def _trigger_value(ck: Checker, v: Any, address: str | None, mode: str, registry: Registry) -> float | str:
    if mode != "trigger":
        raise ck.fail("value", "no value except on a trigger route", v)
    if address is None:
        if isinstance(v, str):
            return v
        return ck.number("value", v)
    p = registry.param(address)
    return ck.number("value", v, p.hard_lo, p.hard_hi, f"a value from {p.hard_lo} to {p.hard_hi}")


# -- modulation routes (audio, lfo, beat) --------------------------------------


def _input_range(ck: Checker, s: dict) -> tuple[float, float]:
    """An OSC or audio source's `input`: the values read as control positions 0 and 1."""
    inp = ck.pair("source.input", s["input"]) if "input" in s else (0.0, 1.0)
    if inp[0] == inp[1]:
        raise ck.fail("source.input", "two different numbers", list(inp))
    return inp


def _modulation_source(ck: Checker, s: dict, typ: str, index: int) -> ModulationSource:
    if typ == "audio":
        ck.unknown(s, _AUDIO_KEYS, "source.")
        if "feature" not in s:
            raise ck.fail("source.feature", "one of " + ", ".join(AUDIO_FEATURES))
        feature = ck.choice("source.feature", s["feature"], AUDIO_FEATURES)
        inp = _input_range(ck, s)
        return AudioSource(feature, inp)
    if typ == "lfo":
        return _lfo_source(ck, s, index)
    ck.unknown(s, _BEAT_KEYS, "source.")
    shape_ = ck.choice("source.shape", s.get("shape", "pulse"), BEAT_SHAPES)
    division = _positive(ck, "source.division", s.get("division", 1.0), MAX_PERIOD_BEATS, "beats")
    if "decay" in s and shape_ != "pulse":
        raise ck.fail("source.decay", 'no decay on a ramp (only shape = "pulse" decays)', s["decay"])
    decay = _positive(ck, "source.decay", s.get("decay", 0.1), 10.0, "seconds")
    return BeatSource(division, shape_, decay, _phase(ck, s))


def _lfo_source(ck: Checker, s: dict, index: int) -> LfoSource:
    ck.unknown(s, _LFO_KEYS, "source.")
    shape_ = ck.choice("source.shape", s.get("shape", "sine"), LFO_SHAPES)
    if ("rate" in s) == ("beats" in s):
        raise ck.fail("source.rate", "either rate (Hz) or beats (the period in beats), not both or neither")
    rate = _positive(ck, "source.rate", s["rate"], MAX_LFO_HZ, "Hz") if "rate" in s else None
    beats = _positive(ck, "source.beats", s["beats"], MAX_PERIOD_BEATS, "beats") if "beats" in s else None
    # The default seed is the route's number, so two random LFOs in one file differ.
    seed = ck.integer("source.seed", s["seed"], 0, 2**31 - 1) if "seed" in s else index
    return LfoSource(shape_, rate, beats, _phase(ck, s), seed)


def _positive(ck: Checker, key: str, v: Any, hi: float, unit: str) -> float:
    x = ck.number(key, v)
    if not 0.0 < x <= hi:
        raise ck.fail(key, f"{unit} above 0, at most {hi:g}", v)
    return x


def _phase(ck: Checker, s: dict) -> float:
    return ck.number("source.phase", s.get("phase", 0.0), 0.0, 1.0, "a fraction of the cycle from 0 to 1")


def _modulation_route(
    ck: Checker, file: Path, index: int, name: str, source: ModulationSource, r: dict, registry: Registry
) -> Route:
    for key in _CONTROL_ONLY_KEYS:
        if key in r:
            what = "address (a param)" if key == "verb" else "no " + key
            raise ck.fail(key, f"{what}: {source.type} sources modulate params", r[key])
    if "address" not in r:
        raise ck.fail("address", "a param address to modulate")
    address = ck.text("address", r["address"])
    if address not in registry:
        raise ck.fail("address", "a param address (see `run_show.py params`)", address)
    mode = ck.choice("mode", r.get("mode", "absolute"), MODULATION_MODES)
    fields: dict[str, Any] = {
        "file": file,
        "index": index,
        "name": name,
        "source": source,
        "mode": mode,
        "address": address,
    }
    fields.update(_options(ck, r, address, mode, registry))
    p = registry.param(address)
    span = p.hard_hi - p.hard_lo
    if mode == "add":
        if "range" in r:
            raise ck.fail("range", 'amount instead (mode = "add" moves around the param\'s own value)', r["range"])
        if "amount" not in r:
            raise ck.fail("amount", f'the largest offset in param units (mode = "add"), up to {span:g}')
        fields["amount"] = ck.number("amount", r["amount"])
        if abs(fields["amount"]) > span:
            raise ck.fail("amount", f"a number from {-span:g} to {span:g} (the param's range)", r["amount"])
    elif "amount" in r:
        raise ck.fail("amount", 'no amount unless mode = "add" (use range)', r["amount"])
    return Route(**fields)


def merge(patches: Iterable[Patch]) -> list[Route]:
    """All routes; a later file's routes for a source replace earlier files' routes for it."""
    out: list[Route] = []
    for patch in patches:
        mine = {r.source.key() for r in patch.routes}
        out = [r for r in out if r.source.key() not in mine] + list(patch.routes)
    return out


def load_patches(files: Iterable[Path | str], registry: Registry, verbs: Iterable[str] | None = None) -> list[Route]:
    known = frozenset(verbs) if verbs is not None else space_of(registry).verb_addresses()
    return merge(load_patch(f, registry, known) for f in files)


# -- writing (MIDI learn) -------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    text = str(v)
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def source_table(source: Source) -> dict:
    if isinstance(source, OscSource):
        return {"type": "osc", "address": source.address, "input": list(source.input)}
    if isinstance(source, AudioSource):
        return {"type": "audio", "feature": source.feature, "input": list(source.input)}
    if isinstance(source, LfoSource):
        period = {"rate": source.rate} if source.rate is not None else {"beats": source.beats}
        return {"type": "lfo", "shape": source.shape, **period, "phase": source.phase, "seed": source.seed}
    if isinstance(source, BeatSource):
        beat = {"type": "beat", "division": source.division, "shape": source.shape, "phase": source.phase}
        return {**beat, "decay": source.decay} if source.shape == "pulse" else beat
    t: dict[str, Any] = {"type": "midi"}
    if source.port:
        t["port"] = source.port
    t["channel"] = source.channel + 1
    t[source.kind] = True if source.kind == "pitchbend" else source.number
    return t


def dump_routes(name: str, routes: Iterable[Route], header: str = "") -> str:
    """A patch file holding these routes (only the keys that differ from the defaults)."""
    lines = [f"# {line}" for line in header.splitlines()] + [f"name = {_toml_value(name)}", ""]
    blank = Route(Path(), 0, "", MidiSource("cc", 0, 0), "absolute")
    for r in routes:
        lines.append("[[route]]")
        if r.name:
            lines.append(f"name = {_toml_value(r.name)}")
        lines.append(f"source = {_toml_value(source_table(r.source))}")
        lines.append(f"address = {_toml_value(r.address)}" if r.address else f"verb = {_toml_value(r.verb)}")
        lines.append(f"mode = {_toml_value(r.mode)}")
        for key in (
            "value",
            "range",
            "curve",
            "invert",
            "takeover",
            "smoothing",
            "feedback",
            "step",
            "encoding",
            "bits",
            "feedback_on",
            "feedback_off",
            "amount",
        ):
            v = getattr(r, key)
            if v is not None and v != getattr(blank, key):
                lines.append(f"{key} = {_toml_value(v)}")
        if r.feedback_channel is not None:
            lines.append(f"feedback_channel = {r.feedback_channel + 1}")
        if r.pickup_led is not None:
            led = r.pickup_led
            table = {
                led.kind: led.number,
                **({"channel": led.channel + 1} if led.channel is not None else {}),
                "on": led.on,
                "off": led.off,
            }
            lines.append(f"pickup_led = {_toml_value(table)}")
        lines.append("")
    return "\n".join(lines)


def renumber(routes: list[Route], file: Path) -> list[Route]:
    return [replace(r, file=file, index=i + 1) for i, r in enumerate(routes)]
