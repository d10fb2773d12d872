"""The show loop: poll -> drain events -> apply -> step the deck -> render -> present.

Late application: each event is applied as late as its param allows. The loop
drains the queue twice per frame: just before the forward pass (everything
that is waiting is applied) and again just before convert/present (only
"post" params such as brightness and blackout take effect in this frame; the
rest waits for the next frame's first drain, as the model has already run).
With a pacer, the frame starts just in time: the loop sleeps until its
estimated work fits before the deadline, so inputs are read as late as possible.

The same loop drives a live window (LiveClock + Pacer or vsync) and an offline
render (FixedClock + a recording output), so a render is the live show's
picture, frame for frame. An exception inside a live frame is caught at the
frame boundary: the output keeps its last good frame, the error is logged once
with a count, and the show goes on.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Literal, Protocol

import numpy as np

from engine.core.clock import Clock, Pacer, WorkEstimate
from engine.stage.deck import Deck, LoadedScene
from engine.core.events import Event, EventQueue
from engine.stage.frame import FrameRenderer
from engine.core.params import Registry
from engine.core.ratelog import first_and_every
from engine.core.stats import FrameStats
from engine.core.tempo import Tempo

ChangeListener = Callable[[str, float, str], None]  # (param address, applied value, event source)
FrameHook = Callable[["Show"], None]
Phase = Literal["model", "post"]  # the drain before the forward pass / before present
AppliedHook = Callable[[Event, int, str], None]  # (event, frame index, phase), before it is applied

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


class EventSource(Protocol):
    """Where a replayed show takes its events from instead of the queue (engine.core.eventlog)."""

    def take(self, frame: int, phase: str) -> list[Event]: ...


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
        tempo: Tempo | None = None,
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
        self.scene_loads = 0  # scenes loaded so far (modules that keep state per load compare it)
        self.scene_misses = 0  # /show/scene requests naming no scene (logged first and every 100th)
        self.running = True
        self.blackout_level = 0.0  # 0 = picture, 1 = black; fades at /master/blackout_fade
        self.frame_errors = 0
        self.hook_errors = 0  # exceptions from model/frame hooks (each hook's own bug; the frame goes on)
        self.frame_count = 0
        self.t = 0.0  # show time of the current frame, seconds (from the clock)
        # Told about every param change an input caused (feedback to OSC/MIDI);
        # values that animate on their own (smoothing, paths) are not reported.
        self.listeners: list[ChangeListener] = []
        # Told about what the show says that is not a param value, as (OSC address, argument):
        # each finished line of generated text as ("/text/line", line). OSC sends them on.
        self.announcers: list[Callable[[str, Any], None]] = []
        # Called every frame after the events and the tempo step, just before the deck moves
        # and the forward pass (modulation: LFOs, beat and audio features setting params).
        self.model_hooks: list[FrameHook] = []
        # Called after every present (status senders, port watchers' bookkeeping). A hook may
        # remove itself: the loop walks a copy, so the hook after it still runs that frame.
        # A hook that raises is counted in hook_errors; it never stops the frame or the show.
        self.frame_hooks: list[FrameHook] = []
        # Verbs beyond the show's own, registered by control modules (/learn/start, /tempo/tap).
        self.verbs: dict[str, VerbHandler] = {}
        # Patch-defined OSC addresses (friendly names for OSC apps), filled by the patch loader.
        self.osc_routes: dict[str, OscRoute] = {}
        # The drain a verb is applied in when it arrives during the forward pass: "post" only
        # for verbs that change nothing but post params; every other verb waits for "model".
        self.verb_stages: dict[str, Phase] = {"/show/blackout": "post"}
        # BPM and beat position (read by status senders; beat-timed scenes follow it).
        self.tempo = tempo if tempo is not None else Tempo(registry)
        self.verbs.update(self.tempo.handlers())
        # Told about every input event just before it is applied (the event log recorder).
        self.applied_hooks: list[AppliedHook] = []
        # A recorded performance to replay instead of the queue (render --events).
        self.replay: EventSource | None = None
        self._deferred: list[Event] = []  # drained after the forward pass, applied next frame
        self._dt = 0.0
        # Seconds each part of a frame takes (high quantiles), to start each just in time.
        self._model_work = WorkEstimate(quantile=0.95)  # frame start to the end of the forward pass
        self._post_work = WorkEstimate(quantile=0.9, margin=0.0, initial=0.001)  # last drain and convert
        self._present_work = WorkEstimate(quantile=0.9, initial=0.001)  # output.present()
        self._select(0)

    @property
    def dt(self) -> float:
        """Seconds of show time the current frame advanced."""
        return self._dt

    # -- scenes ---------------------------------------------------------
    def _select(self, index: int) -> None:
        self.scene_loads += 1  # also when the same scene is selected again: its params were reset
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
            if text.isdecimal():
                index = int(text) - 1
            else:
                for i, sc in enumerate(self.scenes):
                    if text.lower() in (sc.spec.name.lower(), sc.spec.file.stem.lower()):
                        index = i
                        break
        if index is None or not 0 <= index < len(self.scenes):
            self.registry.rejected += 1
            self.scene_misses += 1
            if first_and_every(self.scene_misses, 100):  # a typo in the other app, most often
                log.warning("no scene %r (%d such requests so far); scenes: %s", value, self.scene_misses,
                            ", ".join(f"{i + 1} {name!r}" for i, name in enumerate(self.scene_names())))
            return
        self._select(index)

    # -- one frame ------------------------------------------------------
    def frame(self) -> None:
        """One frame without pacing (the present is the caller's)."""
        self.frame_model()
        self.frame_post()

    def frame_model(self) -> None:
        """Clock, keys, every waiting event, path step and the forward pass."""
        t, dt = self.clock.tick()
        self.t, self._dt = t, dt
        for action in self.output.poll():
            template = KEY_EVENTS.get(action)
            if template is not None:
                self.queue.put(Event(template.kind, template.address, template.value, self._now(), "key"))
        self._apply_phase("model")
        reg = self.registry
        reg.smooth(dt)
        self.tempo.advance(dt)
        self._run_hooks(self.model_hooks)
        frozen = reg.get("/master/freeze") >= 0.5
        if frozen:
            self.deck.hold(self.tempo.beat)
        else:
            self.deck.advance(dt, reg.get("/master/speed"), self.tempo.beat)
        if not frozen or not self.renderer.has_frame:
            scene = self.deck.scene
            assert scene is not None  # set in __init__
            self.renderer.forward(scene.generator, self.deck.latent())

    def frame_post(self) -> None:
        """Events that arrived during the forward pass (post-model params now, the rest
        next frame), the blackout fade, and the conversion into the output's buffer."""
        self._apply_phase("post")
        self._fade_blackout(self._dt)
        reg = self.registry
        gain = reg.get("/master/brightness") * (1.0 - self.blackout_level)
        self.renderer.convert(gain, self.output.frame_buffer)

    def _apply_phase(self, phase: Phase) -> None:
        for ev in self._take(phase):
            for hook in self.applied_hooks:
                hook(ev, self.frame_count, phase)
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
            (now if self._stage(ev) == "post" else self._deferred).append(ev)
        return now

    def _stage(self, ev: Event) -> Phase:
        if ev.kind == "verb":
            return self.verb_stages.get(ev.address, "model")
        return self.registry.stage(ev.address)

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
            self._paced_frame()
            self._guarded(self.output.present, self._present_work)
            self.frame_count += 1
            if self.stats is not None:
                self.stats.presented(self._now())
            self._run_hooks(self.frame_hooks)
            if seconds is not None and self.t >= seconds:
                break

    def _paced_frame(self) -> None:
        """frame_model then frame_post, each started just in time for the present."""
        pacer = self.pacer
        post_lead = self._post_work.lead + self._present_work.lead
        if pacer is not None:
            pacer.hold(self._model_work.lead + post_lead)
        ok = self._guarded(self.frame_model, self._model_work)
        if pacer is not None:
            pacer.wait(post_lead)
        if ok:
            self._guarded(self.frame_post, self._post_work)

    @property
    def input_to_present_s(self) -> float:
        """Expected seconds from the model phase's input read to the frame's present: the
        paced loop starts that early; a vsync-paced one presents about a frame later."""
        if self.pacer is None:
            return self._dt
        return self._model_work.lead + self._post_work.lead + self._present_work.lead

    def leads_ms(self) -> dict[str, float]:
        """How far before each frame deadline (ms) the model part, post part and present start."""
        post, present = self._post_work.lead * 1000.0, self._present_work.lead * 1000.0
        return {"model": round(self._model_work.lead * 1000.0 + post + present, 3),
                "post": round(post + present, 3), "present": round(present, 3)}

    def _guarded(self, part: Callable[[], None], work: WorkEstimate) -> bool:
        """Run one part of a frame; an exception holds the last good frame (strict: raise)."""
        start = self._now()
        try:
            part()
            return True
        except Exception:
            if self.strict:
                raise
            self.frame_errors += 1
            if first_and_every(self.frame_errors, 1000):
                log.exception("frame failed (%d so far); holding the last good frame", self.frame_errors)
            return False
        finally:
            work.observe(self._now() - start)

    def _run_hooks(self, hooks: list[FrameHook]) -> None:
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
                    log.exception("%s failed (%d hook errors so far); the show goes on",
                                  getattr(hook, "__qualname__", repr(hook)), self.hook_errors)

    def stop(self) -> None:
        """Ask the loop to end after the current frame (signal handlers call this)."""
        self.running = False
