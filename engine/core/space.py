"""The OSC address space beyond the params: verbs, and listings of both.

The params come from the registry (engine/core/params.py); the verbs are listed
here once, so the dispatcher, the OSCQuery document, `run_show.py params` and
the README say the same thing.

Pure module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.core.params import Registry


@dataclass(frozen=True)
class Verb:
    address: str
    args: str  # OSC type tags it takes ("" = none: a trigger; "s" = a string ...)
    description: str
    trigger: bool = False  # fires on 1 or no argument, ignores the 0 that follows


TRIGGER_NOTE = "trigger: fires on 1 or no argument, ignores 0"
VERBS: tuple[Verb, ...] = (
    Verb("/show/scene", "s", "go to a scene by name or 1-based index (a string or a number)"),
    Verb("/show/next", "", "next scene; " + TRIGGER_NOTE, trigger=True),
    Verb("/show/prev", "", "previous scene; " + TRIGGER_NOTE, trigger=True),
    Verb("/show/blackout", "", "flip /master/blackout; " + TRIGGER_NOTE, trigger=True),
    Verb("/show/freeze", "", "flip /master/freeze; " + TRIGGER_NOTE, trigger=True),
    Verb("/tempo/tap", "", "tap tempo (handled by the tempo control); " + TRIGGER_NOTE, trigger=True),
    Verb("/learn/start", "s", "MIDI learn for this param address (handled by the MIDI control)"),
    Verb("/learn/cancel", "", "disarm MIDI learn; " + TRIGGER_NOTE, trigger=True),
    Verb("/learn/unlearn", "s", "remove the learned MIDI bindings of this param address"),
    Verb("/text/prime", "s", "feed this text into the playing scene's text stream (it is shown, then continued)"),
    Verb("/deck/a/notes/reset", "", "restart the melody on the next beat; " + TRIGGER_NOTE, trigger=True),
    Verb("/deck/a/text/reset", "", "restart the text (and its primer); " + TRIGGER_NOTE, trigger=True),
    Verb("/ping", "", "answered with /pong to the sender's address and port"),
    Verb("/feedback/subscribe", "i", "send feedback and status to the sender's IP at this UDP port"),
    Verb("/feedback/unsubscribe", "i", "stop feedback to the sender's IP at this UDP port"),
)
VERB_BY_ADDRESS: dict[str, Verb] = {v.address: v for v in VERBS}

STATUS_MESSAGES: tuple[tuple[str, str, str], ...] = (
    ("/status/fps", "f", "frames presented per second over the last second"),
    ("/status/scene", "s", "name of the playing scene"),
    ("/status/bpm", "f", "tempo, when a tempo source runs"),
    ("/status/beat", "f", "beat position, when a tempo source runs"),
    ("/status/osc/received", "i", "OSC datagrams received"),
    ("/status/osc/dropped", "i", "OSC messages dropped (queue full, sender not allowed, unknown address)"),
    ("/status/osc/malformed", "i", "OSC datagrams or messages that could not be used"),
    ("/status/queue_max", "i", "largest event queue depth seen"),
)

OSC_TYPE = {"float": "f", "int": "i", "bool": "T"}  # param type -> OSC type tag it is sent with


def params_json(registry: Registry) -> list[dict[str, Any]]:
    """Every param (`Param.describe()`), then every verb (type "verb")."""
    rows: list[dict[str, Any]] = [p.describe() for p in registry]
    for v in VERBS:
        rows.append({"address": v.address, "type": "verb", "args": v.args, "description": v.description})
    return rows


def params_table(registry: Registry) -> str:
    """A plain-text table of params, then the verbs, for the terminal."""
    rows = [("address", "type", "range", "default", "unit", "description")]
    for p in registry:
        rows.append((p.address, p.type, f"{_num(p.lo)}..{_num(p.hi)}", _num(p.default), p.unit, p.description))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    lines.append("")
    lines.append("verbs")
    width = max(len(v.address) + len(v.args) for v in VERBS) + 1
    for v in VERBS:
        lines.append(f"{(v.address + ' ' + v.args).ljust(width)}  {v.description}")
    return "\n".join(line.rstrip() for line in lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
