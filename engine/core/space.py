"""The whole address space, assembled in one place from declarative tables.

Params (master, tempo, every deck's picture, melody and text params, the synth)
and verbs (addresses that do something rather than hold a value) are declared
here once. OSC dispatch, patch validation, keys, OSCQuery, `run_show.py params`
and the show's event core all read the same `AddressSpace`, so an address the
OSC space advertises is one a patch may route to.

Decks are values: every deck in `AddressSpace.decks` gets the same params and
the same deck verbs under `/deck/<name>/...`; "a" is only the default table.

Adding a verb is one `Verb` entry in `VERBS`: its address, the argument it takes
(which fixes how OSC reads it), the drain it is applied in, and the handler that
applies it, named "owner.method" (the owner is the object that provides it to
the show's event core, e.g. "show", "tempo", "learn", "seq").

Pure module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.core.params import Param, ParamStage, Registry
from engine.dsp.synth import synth_params
from engine.seq.params import seq_deck_params

# The decks a show has unless its config says otherwise: a plays, b cues the next scene (engine.stage.mixer).
DECKS: tuple[str, ...] = ("a", "b")
LATENT_OFFSETS = 8  # /deck/<d>/latent/1 .. /latent/8

# (address, type, default, lo, hi, unit, smoothing s, description, stage)
MASTER_TABLE: tuple[tuple, ...] = (
    ("/master/brightness", "float", 1.0, 0.0, 1.0, "", 0.0, "overall brightness, applied just before present", "post"),
    ("/master/speed", "float", 1.0, 0.0, 4.0, "x", 0.1, "multiplier on every deck's path speed", "model"),
    ("/master/blackout", "bool", 0.0, 0.0, 1.0, "", 0.0, "fade to black (1) or back (0)", "post"),
    ("/master/blackout_fade", "float", 0.5, 0.0, 10.0, "s", 0.0, "blackout fade time", "post"),
    ("/master/freeze", "bool", 0.0, 0.0, 1.0, "", 0.0, "hold the current picture; the path stops", "model"),
    (
        "/tempo/bpm",
        "float",
        120.0,
        20.0,
        300.0,
        "BPM",
        0.0,
        "tempo in beats per minute (set it, tap it with /tempo/tap; MIDI clock or Link overwrite it)",
        "model",
    ),
)

CROSSFADE = "/mixer/crossfade"
CURVE = "/mixer/curve"
BLEND = "/mixer/blend"
FADE_TIME = "/mixer/fade_time"
FADE_BEATS = "/mixer/fade_beats"
QUANTIZE = "/mixer/quantize"

CURVES = ("linear", "equal_power", "cut")  # /mixer/curve 0, 1, 2
BLENDS = ("mix", "add", "multiply", "screen", "difference")  # /mixer/blend 0..4

# The mixer's params (engine.stage.mixer): (address, type, default, lo, hi, unit, smoothing s, description, stage).
MIXER_TABLE: tuple[tuple, ...] = (
    (CROSSFADE, "float", 0.0, 0.0, 1.0, "", 0.03, "0 = deck a alone, 1 = deck b alone", "model"),
    (CURVE, "int", 0.0, 0.0, 2.0, "", 0.0, "crossfade curve: 0 linear, 1 equal power, 2 cut at the middle", "model"),
    (
        BLEND,
        "int",
        0.0,
        0.0,
        4.0,
        "",
        0.0,
        "what the middle of the crossfade shows: 0 mix, 1 add, 2 multiply, 3 screen, 4 difference",
        "model",
    ),
    (FADE_TIME, "float", 2.0, 0.0, 600.0, "s", 0.0, "length of /mixer/fade (when fade_beats is 0)", "model"),
    (FADE_BEATS, "float", 0.0, 0.0, 256.0, "beats", 0.0, "length of /mixer/fade in beats (0: use fade_time)", "model"),
    (
        QUANTIZE,
        "float",
        0.0,
        0.0,
        64.0,
        "beats",
        0.0,
        "fade and cut start on the next multiple of this many beats (1 = next beat, 4 = next bar; 0 = at once)",
        "model",
    ),
)


SETLIST_AUTO = "/setlist/auto"
PRESET_MORPH = "/preset/morph"
PRESET_TABLE: tuple[tuple, ...] = (
    (
        SETLIST_AUTO,
        "bool",
        1.0,
        0.0,
        1.0,
        "",
        0.0,
        "with --setlist: 1 = items change on their own after their dwell, 0 = only by /setlist/next, prev, goto",
        "model",
    ),
    (
        PRESET_MORPH,
        "float",
        0.0,
        0.0,
        60.0,
        "s",
        0.0,
        "/preset/recall glides params and slerps the decks' latents over this many seconds (0: at once)",
        "model",
    ),
)

# The picture params of one deck, under /deck/<d>/ (their defaults and ranges are narrowed per scene).
# (name, type, default, lo, hi, unit, smoothing s, description)
DECK_TABLE: tuple[tuple, ...] = (
    ("speed", "float", 1.0, 0.0, 4.0, "x", 0.1, "path speed multiplier"),
    (
        "truncation",
        "float",
        1.0,
        0.0,
        2.0,
        "",
        0.05,
        "scale of the latent vector: below 1 is calmer and more typical, above 1 wilder",
    ),
    # No smoothing on the two below: modulation (onsets, LFOs) drives them and a kick must be sharp.
    (
        "pulse",
        "float",
        0.0,
        0.0,
        3.0,
        "sigma",
        0.0,
        "kick along a fixed latent direction: each rise of this value pushes the picture that far, "
        "then it springs back to rest in pulse_decay seconds (route audio onsets here)",
    ),
    ("pulse_decay", "float", 0.3, 0.02, 5.0, "s", 0.0, "how long a pulse takes to spring back"),
    (
        "motion",
        "float",
        0.0,
        0.0,
        4.0,
        "x",
        0.0,
        "extra path speed added to speed (x the scene's rate): it accumulates into the path "
        "position, so loud passages travel further and the walk never jumps back",
    ),
    # Keyframe paths (kinds keyframes and pictures): the scene's hold and travel times, live.
    (
        "hold",
        "float",
        0.0,
        0.0,
        3600.0,
        "s|beats",
        0.0,
        "keyframe paths: time standing on each key (seconds; beats in a beat-timed scene)",
    ),
    (
        "travel",
        "float",
        4.0,
        0.05,
        3600.0,
        "s|beats",
        0.0,
        "keyframe paths: time travelling from one key to the next (seconds; beats in a beat-timed scene)",
    ),
    (
        "scrub",
        "float",
        0.0,
        0.0,
        1.0,
        "",
        0.05,
        "keyframe paths: moving it moves the picture to that point of the loop (0 = first key, 1 = the end)",
    ),
    *(
        (
            f"latent/{i}",
            "float",
            0.0,
            -3.0,
            3.0,
            "sigma",
            0.05,
            f"offset along latent direction {i} (a fixed random unit direction per scene seed)",
        )
        for i in range(1, LATENT_OFFSETS + 1)
    ),
)

# How OSC reads a verb's arguments (engine.control.osc_dispatch has one reader per kind):
#   trigger: no argument or a number; fires on non-zero, ignores the 0 that follows
#   scene:   a scene name, or a 1-based index as a number or a digit string
#   index:   the same reading: a 1-based index, or a name (a keyframe's picture file)
#   address: a param address (string), or nothing (a trigger)
#   text:    one string
#   port:    a UDP port number (answered by the OSC dispatcher itself)
#   value:   any one argument, passed on as it is (internal verbs)
ArgKind = Literal["trigger", "scene", "index", "address", "text", "port", "value"]
OSC_TAGS: dict[str, str] = {
    "trigger": "",
    "scene": "s",
    "index": "s",
    "address": "s",
    "text": "s",
    "port": "i",
    "value": "",
}


def pick_index(value: object, names: Sequence[Sequence[str]]) -> int | None:
    """The 0-based item a "scene" or "index" verb argument names: a 1-based number or digit
    string, or one of an item's names (case-insensitive); None if it names none of them."""
    index: int | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        index = int(value) - 1
    elif isinstance(value, str):
        text = value.strip()
        if text.isdecimal():
            index = int(text) - 1
        else:
            index = next((i for i, aliases in enumerate(names) if text.lower() in (a.lower() for a in aliases)), None)
    return index if index is not None and 0 <= index < len(names) else None


# Internal verb addresses the control modules build events with.
ROUTE_VERB = "/patch/route/"  # + the route's id: a patch route that needs the loop
FEATURES_VERB = "/modulation/features"  # audio features recorded in an event log
TRIGGER_NOTE = "trigger: fires on 1 or no argument, ignores 0"


@dataclass(frozen=True)
class Verb:
    """One verb. `address` may hold "{deck}" (one verb per deck) or end with "/" (a family
    of internal verbs, e.g. one per patch route). `handler` is "owner.method": the event
    core calls that method of the object its owner provided (none provided: the event is
    rejected and counted). Owner "osc" verbs are answered by the OSC dispatcher and never
    reach the show. `osc=False` verbs are internal (keys, MIDI clock, patch routes): not
    listed, not accepted by address over OSC, but recorded in and replayed from event logs."""

    address: str
    arg: ArgKind
    description: str
    handler: str
    phase: ParamStage = "model"  # the drain it is applied in when it arrives during the forward pass
    osc: bool = True
    value: float | str | None = None  # fixed argument: the verb is a shortcut for handler(value)
    # `handler` split once here: the event core reads both for every verb event it applies.
    owner: str = field(init=False)
    method: str = field(init=False)

    def __post_init__(self) -> None:
        owner, _, method = self.handler.partition(".")
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "method", method)

    @property
    def args(self) -> str:
        """The OSC type tags it takes, for listings ("" = none: a trigger)."""
        return OSC_TAGS[self.arg]


FRONT_NOTE = "on the front deck (a while /mixer/crossfade < 0.5, else b)"
VERBS: tuple[Verb, ...] = (
    Verb(
        "/show/scene",
        "scene",
        "go to a scene by name or 1-based index (a string or a number) " + FRONT_NOTE,
        "show.select_scene",
    ),
    Verb("/show/next", "trigger", f"next scene {FRONT_NOTE}; " + TRIGGER_NOTE, "show.next_scene"),
    Verb("/show/prev", "trigger", f"previous scene {FRONT_NOTE}; " + TRIGGER_NOTE, "show.prev_scene"),
    Verb(
        "/show/cue/next",
        "trigger",
        "next scene on the back deck (the one not in front), ready to fade to; " + TRIGGER_NOTE,
        "show.cue_next",
    ),
    Verb("/show/cue/prev", "trigger", "previous scene on the back deck; " + TRIGGER_NOTE, "show.cue_prev"),
    Verb("/deck/{deck}/scene", "scene", "load a scene into this deck (name or 1-based index)", "show.deck_scene"),
    Verb("/deck/{deck}/next", "trigger", "this deck's next scene; " + TRIGGER_NOTE, "show.deck_next"),
    Verb("/deck/{deck}/prev", "trigger", "this deck's previous scene; " + TRIGGER_NOTE, "show.deck_prev"),
    Verb(
        "/mixer/fade",
        "trigger",
        "fade to the other deck over fade_time s (or fade_beats), from the next quantize beat; " + TRIGGER_NOTE,
        "mixer.fade",
    ),
    Verb("/mixer/cut", "trigger", "cut to the other deck (on the next quantize beat); " + TRIGGER_NOTE, "mixer.cut"),
    Verb("/show/blackout", "trigger", "flip /master/blackout; " + TRIGGER_NOTE, "core.flip_blackout", phase="post"),
    Verb("/show/freeze", "trigger", "flip /master/freeze; " + TRIGGER_NOTE, "core.flip_freeze"),
    Verb("/show/quit", "trigger", "end the show (the Esc key)", "core.quit", osc=False),
    Verb("/show/hud", "trigger", "show or hide the operator HUD window (the H key); " + TRIGGER_NOTE, "hud.toggle"),
    Verb("/setlist/next", "trigger", "with --setlist: the next item now (its fade); " + TRIGGER_NOTE, "setlist.next"),
    Verb("/setlist/prev", "trigger", "with --setlist: the item played before; " + TRIGGER_NOTE, "setlist.prev"),
    Verb(
        "/setlist/goto",
        "scene",
        "with --setlist: go to an item (1-based number, or its scene file or preset name)",
        "setlist.goto",
    ),
    Verb(
        "/preset/save",
        "text",
        "snapshot every param and each deck's scene and place as presets/NAME.toml",
        "presets.save",
    ),
    Verb(
        "/preset/recall",
        "scene",
        "recall a preset by name or 1-based index (names in order); params glide, latents slerp over /preset/morph s",
        "presets.recall",
    ),
    Verb("/tempo/tap", "trigger", "tap tempo (handled by the tempo control); " + TRIGGER_NOTE, "tempo.tap"),
    Verb("/tempo/start", "trigger", "restart the beat at 0 and run (as MIDI Start); " + TRIGGER_NOTE, "tempo.start"),
    Verb("/tempo/stop", "trigger", "hold the beat (as MIDI Stop); " + TRIGGER_NOTE, "tempo.stop"),
    Verb(
        "/tempo/continue",
        "trigger",
        "run the beat on from where it held (as MIDI Continue); " + TRIGGER_NOTE,
        "tempo.resume",
    ),
    Verb("/tempo/clock", "value", "one MIDI clock tick (24 per beat)", "tempo.clock_tick", osc=False),
    Verb("/tempo/song_position", "value", "MIDI song position (16ths)", "tempo.song_position", osc=False),
    Verb("/tempo/link_bpm", "value", "the Link session's tempo", "tempo.link_bpm", osc=False),
    Verb("/tempo/link_beat", "value", "the Link session's beat", "tempo.link_beat", osc=False),
    Verb("/learn/start", "address", "MIDI learn for this param address (handled by the MIDI control)", "learn.start"),
    Verb("/learn/cancel", "trigger", "disarm MIDI learn; " + TRIGGER_NOTE, "learn.cancel"),
    Verb("/learn/unlearn", "address", "remove the learned MIDI bindings of this param address", "learn.unlearn"),
    Verb("/learn/commit", "value", "a control moved while learn was armed: bind it", "learn.commit", osc=False),
    Verb(
        "/text/prime",
        "text",
        "feed this text into the playing scene's text stream (it is shown, then continued)",
        "seq.prime",
    ),
    Verb(
        "/notes/played",
        "value",
        "a note played on --midi-in that primes the melody (--notes-prime)",
        "seq.played",
        osc=False,
    ),
    Verb(
        "/deck/{deck}/notes/reset", "trigger", "restart the melody on the next beat; " + TRIGGER_NOTE, "seq.reset_notes"
    ),
    Verb("/deck/{deck}/text/reset", "trigger", "restart the text (and its primer); " + TRIGGER_NOTE, "seq.reset_text"),
    Verb(
        "/deck/{deck}/keyframe",
        "index",
        "keyframe paths: jump to key k (1-based number, or a picture's file name)",
        "keys.goto_keyframe",
    ),
    Verb(
        "/deck/{deck}/keyframe/add",
        "text",
        "pictures paths: add this picture file as a key (encoded off the frame loop; joins at the loop's end)",
        "keys.add_keyframe",
    ),
    Verb("/ping", "trigger", "answered with /pong to the sender's address and port", "osc.ping"),
    Verb(
        "/feedback/subscribe", "port", "send feedback and status to the sender's IP at this UDP port", "osc.subscribe"
    ),
    Verb("/feedback/unsubscribe", "port", "stop feedback to the sender's IP at this UDP port", "osc.subscribe"),
    # Internal: what a patch route or the audio analysis did, recorded in event logs.
    Verb(ROUTE_VERB, "value", "a patch route that needs the loop (takeover, glide, toggle)", "routes.fire", osc=False),
    Verb(
        FEATURES_VERB,
        "value",
        "audio features recorded live, replayed by render --events",
        "modulation.replay",
        osc=False,
    ),
)

OSC_TYPE = {"float": "f", "int": "i", "bool": "T"}  # param type -> OSC type tag it is sent with


def _param(address: str, spec: tuple, stage: ParamStage = "model") -> Param:
    typ, default, lo, hi, unit, smoothing, description = spec
    return Param(address, typ, float(default), float(lo), float(hi), unit, smoothing, description, stage)


def deck_params(deck: str) -> list[Param]:
    """The params of one deck: picture, melody and text; fresh objects (a registry owns their state)."""
    base = f"/deck/{deck}"
    return [_param(f"{base}/{row[0]}", row[1:]) for row in DECK_TABLE] + seq_deck_params(base)


class AddressSpace:
    """Every param (in `registry`) and every verb of a show with these decks."""

    def __init__(self, registry: Registry, decks: Sequence[str], verbs: Sequence[Verb]) -> None:
        self.registry = registry
        self.decks = tuple(decks)
        self.verbs = tuple(verbs)  # the table it was built from
        self._verbs: dict[str, Verb] = {}
        self._families: list[Verb] = []  # addresses ending with "/": any address under them
        for verb in verbs:
            if verb.owner == "mixer" and len(self.decks) < 2:  # one deck: nothing to mix
                continue
            if verb.address.endswith("/"):
                self._families.append(verb)
                continue
            for address in _expand(verb.address, self.decks):
                if address in self._verbs or address in registry:
                    raise ValueError(f"address {address} defined twice")
                self._verbs[address] = verb

    def verb(self, address: str) -> Verb | None:
        """The verb at `address` (an expanded address, or one under a family), else None."""
        verb = self._verbs.get(address)
        if verb is None:
            for family in self._families:
                if address.startswith(family.address):
                    return family
        return verb

    def osc_verbs(self) -> Iterator[tuple[str, Verb]]:
        """(address, verb) of every verb other programs may send, in table order."""
        return ((a, v) for a, v in self._verbs.items() if v.osc)

    def verb_addresses(self) -> frozenset[str]:
        """Every verb address a patch route may fire."""
        return frozenset(a for a, v in self._verbs.items() if v.osc and v.owner != "osc")


def _expand(address: str, decks: tuple[str, ...]) -> list[str]:
    return [address.format(deck=d) for d in decks] if "{deck}" in address else [address]


def build_space(decks: Sequence[str] = DECKS, verbs: Sequence[Verb] = VERBS) -> AddressSpace:
    """The address space of a show with these decks (and these verbs: tests add their own)."""
    reg = Registry()
    for row in (*MASTER_TABLE, *(MIXER_TABLE if len(decks) > 1 else ()), *PRESET_TABLE):
        reg.add(_param(row[0], row[1:8], row[8]))
    for d in decks:
        for p in deck_params(d):
            reg.add(p)
    for p in synth_params():
        reg.add(p)
    return AddressSpace(reg, decks, verbs)


def space_of(registry: Registry, verbs: Sequence[Verb] = VERBS) -> AddressSpace:
    """The address space around a bare registry (from `build_registry`; tests and tools that
    hold no space): its decks are those it has params for. A show passes its space along."""
    decks = tuple(
        p.address.split("/")[2]
        for p in registry
        if p.address.startswith("/deck/") and p.address.endswith("/speed") and p.address.count("/") == 3
    )
    return AddressSpace(registry, decks, verbs)


def build_registry(decks: Sequence[str] = DECKS) -> Registry:
    """The params alone (what most readers of the space need)."""
    return build_space(decks).registry


def params_json(space: AddressSpace) -> list[dict[str, Any]]:
    """Every param (`Param.describe()`), then every verb other programs may send (type "verb")."""
    rows: list[dict[str, Any]] = [p.describe() for p in space.registry]
    for address, v in space.osc_verbs():
        rows.append({"address": address, "type": "verb", "args": v.args, "description": v.description})
    return rows


def params_table(space: AddressSpace) -> str:
    """A plain-text table of params, then the verbs, for the terminal."""
    rows = [("address", "type", "range", "default", "unit", "description")]
    for p in space.registry:
        rows.append((p.address, p.type, f"{_num(p.lo)}..{_num(p.hi)}", _num(p.default), p.unit, p.description))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    lines.append("")
    lines.append("verbs")
    verbs = list(space.osc_verbs())
    width = max(len(a) + len(v.args) for a, v in verbs) + 1
    for address, v in verbs:
        lines.append(f"{(address + ' ' + v.args).ljust(width)}  {v.description}")
    return "\n".join(line.rstrip() for line in lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
