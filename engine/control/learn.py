"""MIDI learn: two gestures bind a controller to a param.

1. Press L (the `/learn/start` verb with no value) to learn the param most
   recently changed by another input (a key, OSC), or send OSC
   `/learn/start /deck/a/speed` to name it. The window title says what is armed.
2. Move a control. The first CC, 14-bit pair, NRPN, note or pitch bend that
   arrives binds to that param, at once, and the binding is saved to the learn
   file (`--learn-save`, default `$XDG_CONFIG_HOME/latent-stage/learned.toml`,
   i.e. `~/.config/latent-stage/learned.toml`), which is itself a patch file
   loaded after the `--patch` files at the next start.

`/learn/cancel` disarms; `/learn/unlearn [address]` removes the learned
bindings of a param (default: the last one touched).

Threads: `offer` runs on MIDI receive threads and only records the captured
source under a lock, then enqueues `/learn/commit`; the commit (route table,
window title) runs on the loop thread and the file write on the MIDI port
thread (`submit`), written atomically (engine.files.atomic) so a crash never
leaves half a file.

A CC 0-31 may be the MSB of a 14-bit pair: learn waits for the next message;
CC n+32 on the same channel and port makes it a 14-bit binding, anything else
(or 0.25 s of silence, checked once a frame) a 7-bit one.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.control.midi_decode import Gesture
from engine.core.events import Event
from engine.files.atomic import atomic_write_text as save_atomically  # the name tests and callers know
from engine.files.patch import MidiSource, Route, dump_routes, renumber

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

LEARNABLE = {"cc", "cc14", "nrpn", "note", "pitchbend"}
MSB_WAIT = 0.25  # seconds to wait for the LSB of a possible 14-bit pair
HEADER = (
    "Written by MIDI learn (Latent Stage): a patch file, edit freely.\n"
    "Loaded after the --patch files whenever it is the --learn-save file."
)


def default_learn_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "latent-stage" / "learned.toml"


def stable_port(name: str) -> str:
    """The part of a port name that survives a replug (ALSA appends client:port numbers)."""
    return re.sub(r"\s+\d+:\d+$", "", name).strip()


def save_or_log(path: Path, text: str) -> None:
    """Save the learn file during the show: a failure (read-only place, a directory put
    there, a port name that is not UTF-8) is logged and the binding still works until the
    show ends. Without a port thread this runs inside the loop's drain, where an exception
    would cost the frame."""
    try:
        save_atomically(path, text)
    except (OSError, ValueError) as e:
        log.error("MIDI learn: could not save %s (%s); the binding lasts until the show ends", path, e)


def _shadows(learned: object, other: object) -> bool:
    """Would `other` also hear the control that `learned` binds (same kind, channel, number, port)?"""
    if not (isinstance(learned, MidiSource) and isinstance(other, MidiSource)):
        return False
    if (learned.kind, learned.channel, learned.number) != (other.kind, other.channel, other.number):
        return False
    return other.port is None or learned.port is None or other.port.lower() in learned.port.lower()


class Learner:
    def __init__(
        self,
        show: Show,
        base: list[Route],
        learned: list[Route],
        file: Path,
        on_routes: Callable[[list[Route]], None],
        submit: Callable[[Callable[[], None]], None],
        *,
        has_input: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.show, self.file = show, file
        self.base, self.learned = list(base), list(learned)
        self._on_routes, self._submit = on_routes, submit
        self.has_input = has_input
        self.clock = clock
        self.armed: str | None = None  # param address waiting for a control
        self.last_touched: str | None = None
        self._lock = threading.Lock()
        self._pending: tuple[Gesture, str] | None = None  # a CC 0-31 that may be a 14-bit MSB
        self._captured: tuple[str, MidiSource] | None = None
        show.listeners.append(self._touched)
        show.frame_hooks.append(self._tick)
        show.provide("learn", self)

    def routes(self) -> list[Route]:
        """Patch routes, minus those a learned binding takes over, plus the learned ones."""
        return [r for r in self.base if not any(_shadows(b.source, r.source) for b in self.learned)] + self.learned

    # -- loop thread: verbs -----------------------------------------------------
    def _touched(self, address: str, _value: float, source: str) -> None:
        if source != "midi":
            self.last_touched = address

    def _title(self, text: str) -> None:
        self.show.set_title(text)

    def start(self, ev: Event) -> None:
        address = ev.value if isinstance(ev.value, str) and ev.value.strip() else self.last_touched
        if address is not None:
            address = address.strip()
        if address is None:
            log.warning("MIDI learn: no param touched yet; touch one (key, OSC) or send /learn/start <address>")
            self._title("learn: touch a param first")
            return
        if address not in self.show.registry:
            log.warning("MIDI learn: %r is not a param address", address)
            self._title(f"learn: unknown param {address}")
            return
        if not self.has_input:
            log.warning("MIDI learn: no MIDI input; start the show with --midi-in NAME")
            self._title("learn: no MIDI input (--midi-in)")
            return
        with self._lock:
            self.armed, self._pending, self._captured = address, None, None
        log.info("MIDI learn: move a control to bind it to %s", address)
        self._title(f"learn: move a control for {address}")

    def cancel(self, _ev: Event | None = None) -> None:
        with self._lock:
            was, self.armed, self._pending = self.armed, None, None
        if was:
            log.info("MIDI learn: cancelled (%s)", was)
            self._title("")

    def unlearn(self, ev: Event) -> None:
        address = ev.value if isinstance(ev.value, str) and ev.value.strip() else self.last_touched
        gone = [r for r in self.learned if r.address == address]
        if not gone:
            log.info("MIDI learn: nothing learned for %s", address)
            return
        self.learned = [r for r in self.learned if r.address != address]
        self._changed()
        log.info("MIDI learn: unlearned %s (%s)", address, ", ".join(r.source.describe() for r in gone))
        self._title(f"unlearned {address}")

    def commit(self, _ev: Event | None = None) -> None:
        with self._lock:
            captured, self._captured = self._captured, None
        if captured is None:
            return
        address, source = captured
        route = self._route(address, source)
        self.learned = [r for r in self.learned if r.source.key() != source.key()] + [route]
        self._changed()
        log.info("MIDI learn: %s -> %s (saved to %s)", source.describe(), address, self.file)
        self._title(f"learned {source.describe()} -> {address}")

    def _route(self, address: str, source: MidiSource) -> Route:
        is_bool = self.show.registry.param(address).type == "bool"
        if source.kind == "note":
            mode = "toggle" if is_bool else "velocity"
        else:
            mode = "toggle" if is_bool and source.kind == "cc" else "absolute"
        return Route(self.file, len(self.learned) + 1, f"learned {address}", source, mode, address=address)

    def _changed(self) -> None:
        self.learned = renumber(self.learned, self.file)
        self._on_routes(self.routes())
        text, path = dump_routes("learned", self.learned, HEADER), self.file
        self._submit(lambda: save_or_log(path, text))

    def _tick(self, _show: Show) -> None:
        """Frame hook: a lone CC 0-31 with no LSB after MSB_WAIT is a 7-bit control."""
        if self._pending is None:
            return
        with self._lock:
            if self._pending is not None and self.clock() - self._pending[0].t >= MSB_WAIT:
                g, port = self._pending
                self._capture(MidiSource("cc", g.number, g.channel, stable_port(port)), g.t)
        self.commit()

    # -- MIDI receive threads -----------------------------------------------------
    def offer(self, g: Gesture, port: str) -> bool:
        """True when learn consumed the gesture (it must not also move a param)."""
        if self.armed is None or g.kind not in LEARNABLE:
            return False
        with self._lock:
            if self.armed is None:
                return False
            if self._pending is not None:
                self._resolve_pending(g, port)
                return True
            if g.kind == "note" and g.value == 0:
                return True  # a release: wait for a press
            if g.kind == "cc" and g.number < 32:
                self._pending = (g, port)
                return True
            self._capture(MidiSource(g.kind, g.number, g.channel, stable_port(port)), g.t)
        return True

    def _resolve_pending(self, g: Gesture, port: str) -> None:
        first, first_port = self._pending  # type: ignore[misc]
        same = port == first_port and g.channel == first.channel and g.kind == "cc"
        kind = "cc14" if same and g.number == first.number + 32 else "cc"
        self._capture(MidiSource(kind, first.number, first.channel, stable_port(first_port)), g.t)

    def _capture(self, source: MidiSource, t: float) -> None:
        """Under the lock: remember the binding and ask the loop thread to commit it."""
        assert self.armed is not None
        self._captured = (self.armed, source)
        self.armed, self._pending = None, None
        self.show.queue.put(Event("verb", "/learn/commit", None, t, "midi"))
