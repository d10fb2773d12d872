"""The show's core: the part of a show that applies input events, standing on its own.

It owns the address space (registry and verbs), the event queue, the tempo, the
drain phases and everyone told about changes (listeners, announcers, applied
hooks), and the per-frame control step (events, smoothing, tempo, modulation
hooks). The picture (scenes, deck, renderer, output) is `engine.stage.show.Show`,
which is a ShowCore; control modules, the patch router, modulation and the tests
use a bare ShowCore where no picture is needed.

Verbs are applied through the one verb table (engine.core.space.VERBS): a verb's
handler "owner.method" is looked up among the objects provided with `provide()`
("show", "tempo", "learn", "seq", ...). A verb whose owner is not running (MIDI
learn without MIDI, say) is rejected and counted, like an unknown param.

Pure module: no torch, pygame, sockets or ports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from engine.core.events import Event, EventQueue
from engine.core.params import ParamStage, Registry
from engine.core.ratelog import first_and_every
from engine.core.space import VERBS, AddressSpace, Verb, space_of
from engine.core.tempo import Tempo

log = logging.getLogger(__name__)

ChangeListener = Callable[[str, float, str], None]  # (param address, applied value, event source)
Phase = ParamStage  # the drain before the forward pass ("model") / before present ("post")
AppliedHook = Callable[[Event, int, str], None]  # (event, frame index, phase), before it is applied
FrameHook = Callable[[Any], None]  # called with the show (a ShowCore or a Show)
Announcer = Callable[[str, Any], None]  # (OSC address, argument): what the show says that is no param
# An OSC address that is not a param address, routed by a patch file: (OSC arguments,
# receive time on the perf_counter clock) -> events to enqueue. Called on the OSC thread.
OscRoute = Callable[[list, float], list[Event]]


class EventSource(Protocol):
    """Where a replayed show takes its events from instead of the queue (engine.core.eventlog)."""

    def take(self, frame: int, phase: str) -> list[Event]: ...


class ShowCore:
    """Applies events to the address space; see the module docstring."""

    def __init__(
        self,
        registry: Registry,
        queue: EventQueue | None = None,
        *,
        verbs: Sequence[Verb] = VERBS,
        space: AddressSpace | None = None,
        tempo: Tempo | None = None,
        now: Callable[[], float] = time.perf_counter,
        strict: bool = False,
    ) -> None:
        # The space the show was built in (engine.stage.build); a bare registry (tests) gets
        # the space around it, with `verbs`.
        self.space: AddressSpace = space if space is not None else space_of(registry, verbs)
        self.registry = registry
        self.queue = queue if queue is not None else EventQueue()
        self._now = now
        self.strict = strict  # offline renders re-raise hook errors instead of counting them
        self.running = True
        self.t = 0.0  # show time of the current frame, seconds (from the clock)
        self._dt = 0.0
        self.frame_count = 0
        self.hook_errors = 0  # exceptions from model/frame hooks (each hook's own bug; the frame goes on)
        self.scene_loads = 0  # scenes loaded so far (modules that keep state per load compare it)
        self.scene_name = ""  # the playing scene's name (status senders, learn's title)
        # Told about every param change an input caused (feedback to OSC/MIDI);
        # values that animate on their own (smoothing, paths) are not reported.
        self.listeners: list[ChangeListener] = []
        # Told about what the show says that is not a param value, as (OSC address, argument):
        # each finished line of generated text as ("/text/line", line). OSC sends them on.
        self.announcers: list[Announcer] = []
        # Called every frame after the events and the tempo step, just before the deck moves
        # and the forward pass (modulation: LFOs, beat and audio features setting params).
        self.model_hooks: list[FrameHook] = []
        # Called after every present (status senders, port watchers' bookkeeping). A hook may
        # remove itself: the loop walks a copy, so the hook after it still runs that frame.
        # A hook that raises is counted in hook_errors; it never stops the frame or the show.
        self.frame_hooks: list[FrameHook] = []
        # Told about every input event just before it is applied (the event log recorder).
        self.applied_hooks: list[AppliedHook] = []
        # Patch-defined OSC addresses (friendly names for OSC apps), filled by the patch loader.
        self.osc_routes: dict[str, OscRoute] = {}
        # A recorded performance to replay instead of the queue (render --events).
        self.replay: EventSource | None = None
        self._deferred: list[Event] = []  # drained after the forward pass, applied next frame
        self.draining: Phase = "model"  # the drain being applied (what an event log records)
        # The objects that apply verbs, by owner name (Verb.handler = "owner.method").
        self._owners: dict[str, object] = {"core": self}
        # Drain phases of internal verbs whose phase depends on what they set (patch routes).
        self._verb_phases: dict[str, Phase] = {}
        # BPM and beat position (read by status senders; beat-timed scenes follow it).
        self.tempo = tempo if tempo is not None else Tempo(registry)
        self.provide("tempo", self.tempo)

    @property
    def dt(self) -> float:
        """Seconds of show time the current frame advanced."""
        return self._dt

    # -- verb owners ------------------------------------------------------
    def provide(self, owner: str, obj: object) -> None:
        """`obj` applies the verbs whose handler is "owner.<method>" from now on."""
        mine = [v for v in self.space.verbs if v.owner == owner]
        missing = [v.handler for v in mine if not callable(getattr(obj, v.method, None))]
        if missing:
            raise TypeError(f"{type(obj).__name__} provides {owner!r} but lacks {', '.join(missing)}")
        self._owners[owner] = obj

    def withdraw(self, owner: str, obj: object) -> None:
        """Stop `obj` applying its verbs (if it still is the one that does)."""
        if self._owners.get(owner) is obj:
            del self._owners[owner]

    def set_verb_phase(self, address: str, phase: Phase | None) -> None:
        """The drain an internal verb is applied in (None: back to its table entry's)."""
        if phase is None:
            self._verb_phases.pop(address, None)
        else:
            self._verb_phases[address] = phase

    # -- applying ---------------------------------------------------------
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
        verb = self.space.verb(ev.address)
        owner = self._owners.get(verb.owner) if verb is not None else None
        if verb is None or owner is None:
            self.registry.rejected += 1
            return
        if ev.value is None and verb.value is not None:  # a shortcut verb: its fixed argument
            ev = Event(ev.kind, ev.address, verb.value, ev.t, ev.source)
        getattr(owner, verb.method)(ev)

    # The core's own verbs (owner "core").
    def quit(self, ev: Event) -> None:
        self.stop()

    def flip_blackout(self, ev: Event) -> None:
        self.apply(Event("toggle", "/master/blackout", t=ev.t, source=ev.source))

    def flip_freeze(self, ev: Event) -> None:
        self.apply(Event("toggle", "/master/freeze", t=ev.t, source=ev.source))

    def stop(self) -> None:
        """Ask the loop to end after the current frame (signal handlers call this)."""
        self.running = False

    def set_title(self, text: str) -> None:
        """A short state line for the operator (the window title; learn says what is armed)."""

    # -- phases -----------------------------------------------------------
    def apply_phase(self, phase: Phase) -> None:
        self.draining = phase
        for ev in self._take(phase):
            self.record_and_apply(ev, phase)

    def record(self, ev: Event, phase: Phase) -> None:
        """Tell the applied hooks (the event-log recorder) about `ev`, applied in this frame's `phase`."""
        for hook in self.applied_hooks:
            hook(ev, self.frame_count, phase)

    def record_and_apply(self, ev: Event, phase: Phase) -> None:
        self.record(ev, phase)
        self.apply(ev)

    def _take(self, phase: Phase) -> list[Event]:
        """This phase's events: from the replayed log, or drained from the queue."""
        if self.replay is not None:
            return self.replay.take(self.frame_count, phase)
        events = self.queue.drain(self._now())
        if phase == "model":
            deferred, self._deferred = self._deferred, []
            return deferred + events if deferred else events
        now: list[Event] = []
        for ev in events:
            (now if self.phase_of(ev) == "post" else self._deferred).append(ev)
        return now

    def phase_of(self, ev: Event) -> Phase:
        """The drain `ev` may be applied in when it arrives during the forward pass."""
        if ev.kind == "verb":
            phase = self._verb_phases.get(ev.address)
            if phase is not None:
                return phase
            verb = self.space.verb(ev.address)
            return verb.phase if verb is not None else "model"
        return self.registry.stage(ev.address)

    # -- one frame of control ---------------------------------------------
    def step_controls(self, t: float, dt: float) -> None:
        """The control part of a frame: every waiting event, smoothing, the tempo, then the
        model hooks (modulation). The show's deck and forward pass follow."""
        self.t, self._dt = t, dt
        self.apply_phase("model")
        self.registry.smooth(dt)
        self.tempo.advance(dt)
        self.run_hooks(self.model_hooks)

    def end_frame(self) -> None:
        """After a present: count the frame, then the frame hooks."""
        self.frame_count += 1
        self.run_hooks(self.frame_hooks)

    def tick(self, dt: float) -> None:
        """One frame with no picture: controls, then the frame's end (tests, control-only runs)."""
        self.step_controls(self.t + dt, dt)
        self.end_frame()

    def run_hooks(self, hooks: list[FrameHook]) -> None:
        """Each hook on its own: one that raises is counted and logged (its first failure and
        every 1000th), and the hooks after it, the frame and the show go on (strict: raise).
        Walks a copy, so a hook may remove itself."""
        for hook in tuple(hooks):
            try:
                hook(self)
            except Exception:
                if self.strict:
                    raise
                self.hook_errors += 1
                if first_and_every(self.hook_errors, 1000):
                    log.exception(
                        "%s failed (%d hook errors so far); the show goes on",
                        getattr(hook, "__qualname__", repr(hook)),
                        self.hook_errors,
                    )
