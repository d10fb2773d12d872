"""The show loop: poll -> drain events -> apply -> step the deck -> render -> present.

The same loop drives a live window (LiveClock + Pacer or vsync) and an offline
render (FixedClock + a recording output), so a render is the live show's
picture, frame for frame. An exception inside a live frame is caught at the
frame boundary: the output keeps its last good frame, the error is logged once
with a count, and the show goes on.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Protocol

ChangeListener = Callable[[str, float, str], None]  # (param address, applied value, event source)
FrameHook = Callable[["Show"], None]

import numpy as np

from engine.clock import Clock, Pacer
from engine.deck import Deck, LoadedScene
from engine.events import Event, EventQueue
from engine.frame import FrameRenderer
from engine.params import Registry
from engine.stats import FrameStats

log = logging.getLogger(__name__)

# Key actions reported by an output's poll() -> the event they enqueue.
KEY_EVENTS: dict[str, Event] = {
    "quit": Event("verb", "/show/quit"),
    "next": Event("verb", "/show/next"),
    "prev": Event("verb", "/show/prev"),
    "blackout": Event("toggle", "/master/blackout"),
    "freeze": Event("toggle", "/master/freeze"),
    "faster": Event("scale", "/master/speed", 1.25),
    "slower": Event("scale", "/master/speed", 0.8),
    "learn": Event("verb", "/learn/start"),  # handled by the MIDI control when it runs
    "tap": Event("verb", "/tempo/tap"),  # handled by the tempo control
}
VerbHandler = Callable[[Event], None]
# An OSC address that is not a param address, routed by a patch file: (OSC arguments,
# receive time on the perf_counter clock) -> events to enqueue. Called on the OSC thread.
OscRoute = Callable[[list, float], list[Event]]


class Output(Protocol):
    """What the loop presents to: a window, a headless window, or a recorder."""

    @property
    def frame_buffer(self) -> np.ndarray: ...  # (h, w, 3) uint8, written before present()

    def present(self) -> None: ...

    def poll(self) -> list[str]: ...

    def resize_frames(self, size: tuple[int, int]) -> None: ...

    def set_title(self, title: str) -> None: ...


class Show:
    def __init__(
        self,
        scenes: list[LoadedScene],
        registry: Registry,
        queue: EventQueue,
        renderer: FrameRenderer,
        output: Output,
        clock: Clock,
        *,
        pacer: Pacer | None = None,
        stats: FrameStats | None = None,
        now: Callable[[], float] = time.perf_counter,
        strict: bool = False,
    ) -> None:
        if not scenes:
            raise ValueError("a show needs at least one scene")
        self.scenes = scenes
        self.registry = registry
        self.queue = queue
        self.renderer = renderer
        self.output = output
        self.clock = clock
        self.pacer = pacer
        self.stats = stats
        self._now = now
        self.strict = strict  # offline renders re-raise frame errors instead of holding the last frame
        self.deck = Deck("a", registry)
        self.scene_index = 0
        self.running = True
        self.blackout_level = 0.0  # 0 = picture, 1 = black; fades at /master/blackout_fade
        self.frame_errors = 0
        self.frame_count = 0
        self.t = 0.0  # show time of the current frame, seconds (from the clock)
        # Told about every param change an input caused (feedback to OSC/MIDI);
        # values that animate on their own (smoothing, paths) are not reported.
        self.listeners: list[ChangeListener] = []
        # Called after every present (status senders, port watchers' bookkeeping).
        self.frame_hooks: list[FrameHook] = []
        # Verbs beyond the show's own, registered by control modules (/learn/start, /tempo/tap).
        self.verbs: dict[str, VerbHandler] = {}
        # Patch-defined OSC addresses (friendly names for OSC apps), filled by the patch loader.
        self.osc_routes: dict[str, OscRoute] = {}
        self._select(0)

    # -- scenes ---------------------------------------------------------
    def _select(self, index: int) -> None:
        self.scene_index = index % len(self.scenes)
        scene = self.scenes[self.scene_index]
        self.deck.load(scene)
        size = self.renderer.output_size(scene.size)
        if self.output.frame_buffer.shape[:2] != (size, size):
            self.output.resize_frames((size, size))
        self.renderer.reset()
        self.output.set_title(f"Latent Stage - {scene.spec.name}")
        log.info("scene %d/%d: %s", self.scene_index + 1, len(self.scenes), scene.spec.name)

    # -- events ---------------------------------------------------------
    def apply(self, ev: Event) -> None:
        reg = self.registry
        applied: float | None = None
        if ev.kind == "set" and isinstance(ev.value, (int, float)):
            applied = reg.set(ev.address, ev.value)
        elif ev.kind == "toggle":
            applied = reg.toggle(ev.address)
        elif ev.kind == "scale" and isinstance(ev.value, (int, float)):
            applied = reg.scale(ev.address, ev.value)
        elif ev.kind == "verb":
            self._verb(ev)
        else:
            reg.rejected += 1
        if applied is not None:
            for listener in self.listeners:
                listener(ev.address, applied, ev.source)

    def _verb(self, ev: Event) -> None:
        address = ev.address
        if address == "/show/quit":
            self.running = False
        elif address == "/show/next":
            self._select(self.scene_index + 1)
        elif address == "/show/prev":
            self._select(self.scene_index - 1)
        elif address == "/show/scene":
            self._select_by(ev.value)
        elif address in ("/show/blackout", "/show/freeze"):
            self.apply(Event("toggle", "/master/" + address.rsplit("/", 1)[1], t=ev.t, source=ev.source))
        elif address in self.verbs:
            self.verbs[address](ev)
        else:
            self.registry.rejected += 1

    def scene_names(self) -> list[str]:
        return [sc.spec.name for sc in self.scenes]

    def _select_by(self, value: float | str | None) -> None:
        """A scene by 1-based index (number or digit string) or by name (case-insensitive)
        or scene file stem; anything else is rejected and counted."""
        index: int | None = None
        if isinstance(value, (int, float)) and float(value).is_integer():
            index = int(value) - 1
        elif isinstance(value, str):
            text = value.strip()
            if text.isdigit():
                index = int(text) - 1
            else:
                for i, sc in enumerate(self.scenes):
                    if text.lower() in (sc.spec.name.lower(), sc.spec.file.stem.lower()):
                        index = i
                        break
        if index is None or not 0 <= index < len(self.scenes):
            self.registry.rejected += 1
            return
        self._select(index)

    # -- one frame ------------------------------------------------------
    def frame(self) -> None:
        t, dt = self.clock.tick()
        self.t = t
        for action in self.output.poll():
            template = KEY_EVENTS.get(action)
            if template is not None:
                self.queue.put(Event(template.kind, template.address, template.value, self._now(), "key"))
        for ev in self.queue.drain(self._now()):
            self.apply(ev)
        reg = self.registry
        reg.smooth(dt)
        self._fade_blackout(dt)
        frozen = reg.get("/master/freeze") >= 0.5
        if not frozen or not self.renderer.has_frame:
            if not frozen:
                self.deck.advance(dt, reg.get("/master/speed"))
            scene = self.deck.scene
            assert scene is not None  # set in __init__
            self.renderer.forward(scene.generator, self.deck.latent())
        gain = reg.get("/master/brightness") * (1.0 - self.blackout_level)
        self.renderer.convert(gain, self.output.frame_buffer)

    def _fade_blackout(self, dt: float) -> None:
        target = self.registry.get("/master/blackout")
        fade = self.registry.get("/master/blackout_fade")
        if fade <= 0.0:
            self.blackout_level = target
            return
        step = dt / fade
        if self.blackout_level < target:
            self.blackout_level = min(target, self.blackout_level + step)
        else:
            self.blackout_level = max(target, self.blackout_level - step)

    def run(self, seconds: float | None = None, frames: int | None = None) -> None:
        """Loop until quit, stop(), `seconds` of show time or `frames` more frames."""
        end = None if frames is None else self.frame_count + frames
        while self.running:
            if end is not None and self.frame_count >= end:
                break
            try:
                self.frame()
            except Exception:
                if self.strict:
                    raise
                self.frame_errors += 1
                if self.frame_errors == 1 or self.frame_errors % 1000 == 0:
                    log.exception("frame failed (%d so far); holding the last good frame", self.frame_errors)
            if self.pacer is not None:
                self.pacer.wait()
            self.output.present()
            self.frame_count += 1
            if self.stats is not None:
                self.stats.presented(self._now())
            for hook in self.frame_hooks:
                hook(self)
            if seconds is not None and self.t >= seconds:
                break

    def stop(self) -> None:
        """Ask the loop to end after the current frame (signal handlers call this)."""
        self.running = False
