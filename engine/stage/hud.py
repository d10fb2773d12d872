"""What the operator HUD shows, as data: text lines and the frame-time graph's values.

The HUD window (engine.devices.hud) draws this a few times a second, never on
the output. Kept apart from pygame so it is tested without a display.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.stage.show import Show

WARNINGS_KEPT = 6


class WarningTail(logging.Handler):
    """The last few warnings and errors of the show's log, for the HUD (any thread may log)."""

    def __init__(self, keep: int = WARNINGS_KEPT) -> None:
        super().__init__(level=logging.WARNING)
        self._lines: deque[str] = deque(maxlen=keep)
        self._lock_tail = threading.Lock()
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).splitlines()[0][:160]
        except Exception:  # noqa: BLE001 - a bad log call must not break the show's logging
            return
        with self._lock_tail:
            self._lines.append(line)

    def lines(self) -> list[str]:
        with self._lock_tail:
            return list(self._lines)


def hud_lines(show: Show, controls: dict[str, Any], warnings: list[str]) -> list[str]:
    """The HUD's text, top to bottom: rate, decks and mixer, tempo, inputs, warnings."""
    reg = show.registry
    lines = []
    stats = show.stats
    if stats is not None:
        recent = stats.recent(120)
        fps = len(recent) / sum(recent) if recent and sum(recent) > 0 else 0.0
        worst = max(recent, default=0.0) * 1000.0
        lines.append(f"{fps:5.1f} fps   worst of last {len(recent)}: {worst:.1f} ms   frame {show.frame_count}")
    for i, deck in enumerate(show.decks):
        rate = show.deck_forwards[i]
        lines.append(f"deck {deck.name}: {deck.scene_name}   ({rate} forward passes)")
    if show.mixer is not None:
        x = reg.get("/mixer/crossfade")
        state = "fading" if show.mixer.running else ("half rate" if show._half else "")
        lines.append(f"crossfade {x:.2f} {_bar(x)} {state}".rstrip())
    pilot = show.autopilot
    if pilot is not None:
        auto = "" if reg.get("/setlist/auto") >= 0.5 else ", held"
        lines.append(
            f"setlist {pilot.spec.name!r} ({pilot.spec.mode}{auto}): item {pilot.index + 1}/{len(pilot.spec.items)} "
            f"{pilot.item.label}"
        )
    blackout = " BLACKOUT" if show.blackout_level > 0.0 else ""
    frozen = " FROZEN" if reg.get("/master/freeze") >= 0.5 else ""
    lines.append(f"{show.tempo.bpm:6.1f} BPM  beat {show.tempo.beat:8.2f}  ({show.tempo.source}){blackout}{frozen}")
    lines += _inputs(controls)
    if warnings:
        lines.append("warnings:")
        lines += [f"  {w}" for w in warnings]
    return lines


def _bar(x: float, width: int = 20) -> str:
    """a [=====|-----] b: where the crossfader stands."""
    at = min(max(int(round(x * width)), 0), width)
    return "a [" + "=" * at + "|" + "-" * (width - at) + "] b"


def _inputs(controls: dict[str, Any]) -> list[str]:
    lines = []
    osc = controls.get("osc", {})
    if osc:
        lines.append(
            f"OSC: {osc.get('received', 0)} received, {osc.get('dropped', 0)} dropped, "
            f"{osc.get('malformed', 0)} malformed"
        )
        clients = osc.get("clients") or {}
        lines += [f"  {who}: {n}" for who, n in list(clients.items())[:4]]
    midi = controls.get("midi", {})
    if midi:
        lines.append(f"MIDI: {midi.get('received', 0)} received, {midi.get('dropped', 0)} dropped")
        ports = midi.get("port_counts") or midi.get("ports") or {}
        if isinstance(ports, dict):  # name -> messages received
            lines += [f"  {name}: {n}" for name, n in list(ports.items())[:4]]
        else:  # names only
            lines += [f"  {name}" for name in list(ports)[:4]]
    return lines


def frame_graph(show: Show, count: int = 240) -> tuple[list[float], float]:
    """The last `count` frame intervals in ms and the target period in ms (the graph's line)."""
    if show.stats is None:
        return [], 0.0
    return [x * 1000.0 for x in show.stats.recent(count)], show.stats.target_period * 1000.0


StatsSource = Callable[[], dict[str, Any]]
