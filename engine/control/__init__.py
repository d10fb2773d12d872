"""Live control: inputs (OSC, MIDI, tempo sources) and their feedback outputs.

Every control module listed in MODULES offers one function, so the live show
never needs to know the details (their flags are engine.flags', their settings
engine.config.ShowConfig's):

    start(config: engine.config.ShowConfig, show: engine.stage.show.Show) -> Control | None
        open its sockets, ports and threads; attach to the show through
        show.queue (inputs only enqueue), show.listeners (feedback of changes
        inputs caused), show.frame_hooks (once-per-frame work), show.model_hooks
        (per-frame work before the forward pass: modulation) and show.provide(owner, obj)
        (the verbs of the verb table it applies, such as "learn" for /learn/start);
        None when its settings leave it off.

A Control has `close()` (idempotent; stops threads, closes ports, sends panic
where it matters) and `stats() -> dict`, merged into the show's stats JSON
under the module's own keys ("osc", "midi", ...).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.config import ShowConfig
    from engine.stage.show import Show

# Import paths of the control modules, in start order.
# Modulation comes last: it reads the patches after the MIDI control has checked them.
MODULES: tuple[str, ...] = (
    "engine.control.tempo_sync",
    "engine.control.osc",
    "engine.control.midi",
    "engine.control.modulation",
)


class Control(Protocol):
    def close(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in MODULES]


def start_controls(config: ShowConfig, show: Show) -> list[Control]:
    """Start every control module; if one fails at startup, close the ones already open."""
    started: list[Control] = []
    try:
        for module in modules():
            control = module.start(config, show)
            if control is not None:
                started.append(control)
    except BaseException:
        close_controls(started)
        raise
    return started


def close_controls(controls: list[Control]) -> None:
    for control in reversed(controls):
        control.close()


# Keys the stats JSON always has, so readers need no special case when an input is off.
IDLE_STATS: dict[str, dict[str, int]] = {
    "osc": {"received": 0, "dropped": 0, "malformed": 0},
    "midi": {"received": 0, "dropped": 0},
}


def control_stats(controls: list[Control]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: dict(v) for k, v in IDLE_STATS.items()}
    for control in controls:
        merged.update(control.stats())
    return merged
