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

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.core.clock import Clock, Pacer, WorkEstimate
from engine.core.events import Event, EventQueue
from engine.core.params import Registry
from engine.core.ratelog import first_and_every
from engine.core.showcore import ShowCore
from engine.core.space import AddressSpace, pick_index
from engine.core.stats import FrameStats
from engine.core.tempo import Tempo
from engine.files.setlist import SetlistSpec
from engine.stage.deck import Deck, LoadedScene
from engine.stage.frame import FrameRenderer
from engine.stage.hours import OpeningHours
from engine.stage.mixer import SOLO_A, Mixer
from engine.stage.presets import PresetBank
from engine.stage.setlist import Autopilot

log = logging.getLogger(__name__)

# Key actions reported by an output's poll() -> the event they enqueue (verbs from the verb table).
KEY_EVENTS: dict[str, Event] = {
    "quit": Event("verb", "/show/quit"),
    "next": Event("verb", "/show/next"),
    "prev": Event("verb", "/show/prev"),
    "blackout": Event("toggle", "/master/blackout"),
    "freeze": Event("toggle", "/master/freeze"),
    "faster": Event("scale", "/master/speed", 1.25),
    "slower": Event("scale", "/master/speed", 0.8),
    "learn": Event("verb", "/learn/start"),  # applied by the MIDI control when it runs
    "tap": Event("verb", "/tempo/tap"),  # applied by the tempo
    "fade": Event("verb", "/mixer/fade"),  # two decks: fade to the other one
    "cut": Event("verb", "/mixer/cut"),
    "cue": Event("verb", "/show/cue/next"),  # the next scene on the back deck
    "hud": Event("verb", "/show/hud"),  # the operator HUD window (live shows with a display)
    "setlist_next": Event("verb", "/setlist/next"),  # with --setlist
    "setlist_prev": Event("verb", "/setlist/prev"),
}


def key_event(action: str, t: float) -> Event | None:
    """The event a key action enqueues: KEY_EVENTS, or "recall:NAME" / "save:NAME" (presets)."""
    verb, _, name = action.partition(":")
    if name and verb in ("recall", "save"):
        return Event("verb", f"/preset/{verb}", name, t, "key")
    template = KEY_EVENTS.get(action)
    return None if template is None else Event(template.kind, template.address, template.value, t, "key")


class Output(Protocol):
    """What the loop presents to: a window, a headless window, or a recorder."""

    overlay: Any  # None, or an object whose draw(frame (H, W, 3) uint8) puts text over the composed frame

    @property
    def frame_buffer(self) -> np.ndarray: ...  # (h, w, 3) uint8, written before present()

    def present(self) -> None: ...

    def poll(self) -> list[str]: ...

    def resize_frames(self, size: tuple[int, int]) -> None: ...

    def set_title(self, title: str) -> None: ...


class FrameBuffer:
    """The frame buffer of an output that presents from host memory (a recorder, a test's
    fake): (h, w, 3) uint8, reallocated when the playing scene's size changes."""

    def __init__(self) -> None:
        self._buf = np.zeros((0, 0, 3), np.uint8)

    @property
    def frame_buffer(self) -> np.ndarray:
        return self._buf

    def resize_frames(self, size: tuple[int, int]) -> None:
        w, h = size
        self._buf = np.zeros((h, w, 3), np.uint8)


def _deck_copy(scene: LoadedScene) -> LoadedScene:
    """A scene for another deck: the same model, its own path (a keyframe path's hold share
    and live keys change per deck), path time and pending keys."""
    return replace(scene, path=copy.deepcopy(scene.path), pending_keys=[])


class Show(ShowCore):
    """A ShowCore with a picture: scenes on a deck, the renderer, the output, the clock."""

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
        space: AddressSpace | None = None,
        presets: PresetBank | None = None,
    ) -> None:
        if not scenes:
            raise ValueError("a show needs at least one scene")
        super().__init__(registry, queue, space=space, tempo=tempo, now=now, strict=strict)
        self.scenes = scenes
        self.renderer = renderer
        self.output = output
        self.clock = clock
        self.pacer = pacer
        self.stats = stats
        # One deck per name in the space ("a", "b"): each plays its own copy of every scene
        # (path time, live keys), sharing the loaded models. Deck a starts on the first
        # scene, deck b cues the second.
        self.decks = [Deck(name, registry) for name in self.space.decks]
        self._deck_scenes = [scenes] + [[_deck_copy(sc) for sc in scenes] for _ in self.decks[1:]]
        self._indices = [0] * len(self.decks)
        self.mixer = Mixer(registry, self.tempo) if len(self.decks) > 1 else None
        self.autopilot: Autopilot | None = None  # a --setlist's clock (use_setlist)
        self.hours: OpeningHours | None = None  # --hours: rests in black while closed (live shows)
        self.two_decks = "auto"  # full | half | auto: two visible decks' model rate (_half_rate)
        self._half = False
        self.deck_forwards = [0] * len(self.decks)  # forward passes per deck (the stats' model rates)
        self._deck_work = [WorkEstimate(quantile=0.9, initial=0.003) for _ in self.decks]  # s per forward
        for deck in self.decks:
            # Offline (strict) a picture added by a replayed event is encoded at once, so every
            # render of the same events joins it at the same frame.
            deck.adder.synchronous = strict
        self.scene_misses = 0  # scene requests naming no scene (logged first and every 100th)
        self.blackout_level = 0.0  # 0 = picture, 1 = black; fades at /master/blackout_fade
        self.frame_errors = 0
        self._title = ""
        # Seconds each part of a frame takes (high quantiles), to start each just in time.
        self._model_work = WorkEstimate(quantile=0.95)  # frame start to the end of the forward pass
        self._post_work = WorkEstimate(quantile=0.9, margin=0.0, initial=0.001)  # last drain and convert
        self._present_work = WorkEstimate(quantile=0.9, initial=0.001)  # output.present()
        # Presets (engine.stage.presets): the builder passes the show's folder; a bare show has
        # none and writes none.
        self.presets = presets if presets is not None else PresetBank(Path("presets"), {}, write=False)
        self.presets.attach(self)
        self.provide("presets", self.presets)
        self.provide("show", self)
        self.provide("keys", self)
        if self.mixer is not None:
            self.provide("mixer", self.mixer)
        for i in range(len(self.decks)):
            self._select(i, i if i < len(scenes) else 0, announce=False)
        self._announce()

    # -- decks and scenes -----------------------------------------------
    @property
    def deck(self) -> Deck:
        """Deck a: the melody, the text and status follow it."""
        return self.decks[0]

    @property
    def scene_index(self) -> int:
        """Deck a's scene (0-based)."""
        return self._indices[0]

    def deck_scene_index(self, deck: int) -> int:
        return self._indices[deck]

    @property
    def front(self) -> int:
        """The deck /show/next and friends act on: a while the crossfade is below 0.5, else b."""
        if self.mixer is None:
            return 0
        return 0 if self.registry.param("/mixer/crossfade").target < 0.5 else 1

    @property
    def back(self) -> int:
        """The deck not in front (with one deck: that deck)."""
        return (self.front + 1) % len(self.decks)

    def use_setlist(self, spec: SetlistSpec) -> None:
        """Play `spec` from the first frame (its scenes must be among this show's)."""
        self.autopilot = Autopilot(self, spec)
        self.provide("setlist", self.autopilot)

    def select_on(self, deck: int, index: int) -> None:
        """Load scene `index` (0-based) into deck `deck` (0 = a)."""
        self._select(deck, index)

    def _select(self, deck: int, index: int, announce: bool = True) -> None:
        self.scene_loads += 1  # also when the same scene is selected again: its params were reset
        scenes = self._deck_scenes[deck]
        self._indices[deck] = index % len(scenes)
        scene = scenes[self._indices[deck]]
        self.decks[deck].load(scene)
        if deck == 0:
            self.scene_name = scene.spec.name
        size = max(self.renderer.output_size(d.scene.size) for d in self.decks if d.scene is not None)
        self.renderer.set_size(size)
        if self.output.frame_buffer.shape[:2] != (size, size):
            self.output.resize_frames((size, size))
        self.renderer.reset(deck)
        if announce:
            self._announce(deck)

    def _announce(self, deck: int | None = None) -> None:
        self.set_title("")
        for i in range(len(self.decks)) if deck is None else (deck,):
            name = self.decks[i].name
            log.info("deck %s: scene %d/%d: %s", name, self._indices[i] + 1, len(self.scenes), self.decks[i].scene_name)

    def set_title(self, text: str) -> None:
        names = " | ".join(f"{d.name}: {d.scene_name}" for d in self.decks) if len(self.decks) > 1 else self.scene_name
        title = f"Latent Stage - {names}" + (f" - {text}" if text else "")
        if title != self._title:
            self._title = title
            self.output.set_title(title)

    # Verbs of owner "show" (engine.core.space.VERBS).
    def next_scene(self, ev: Event) -> None:
        self._select(self.front, self._indices[self.front] + 1)

    def prev_scene(self, ev: Event) -> None:
        self._select(self.front, self._indices[self.front] - 1)

    def select_scene(self, ev: Event) -> None:
        self._select_by(self.front, ev.value)

    def cue_next(self, ev: Event) -> None:
        back = self.back
        self._select(back, self._indices[back] + 1)

    def cue_prev(self, ev: Event) -> None:
        back = self.back
        self._select(back, self._indices[back] - 1)

    def deck_scene(self, ev: Event) -> None:
        self._select_by(self._deck_of(ev), ev.value)

    def deck_next(self, ev: Event) -> None:
        deck = self._deck_of(ev)
        self._select(deck, self._indices[deck] + 1)

    def deck_prev(self, ev: Event) -> None:
        deck = self._deck_of(ev)
        self._select(deck, self._indices[deck] - 1)

    def _deck_of(self, ev: Event) -> int:
        """The deck a /deck/<name>/... verb names (the space only expands its own decks)."""
        name = ev.address.split("/")[2]
        return next(i for i, d in enumerate(self.decks) if d.name == name)

    # Verbs of owner "keys": the deck the address names applies them.
    def goto_keyframe(self, ev: Event) -> None:
        self.decks[self._deck_of(ev)].goto_keyframe(ev)

    def add_keyframe(self, ev: Event) -> None:
        self.decks[self._deck_of(ev)].add_keyframe(ev)

    def scene_names(self) -> list[str]:
        return [sc.spec.name for sc in self.scenes]

    def _select_by(self, deck: int, value: float | str | None) -> None:
        """A scene by 1-based index (number or digit string) or by name (case-insensitive)
        or scene file stem; anything else is rejected and counted."""
        index = pick_index(value, [(sc.spec.name, sc.spec.file.stem) for sc in self.scenes])
        if index is None:
            self.registry.rejected += 1
            self.scene_misses += 1
            if first_and_every(self.scene_misses, 100):  # a typo in the other app, most often
                log.warning(
                    "no scene %r (%d such requests so far); scenes: %s",
                    value,
                    self.scene_misses,
                    ", ".join(f"{i + 1} {name!r}" for i, name in enumerate(self.scene_names())),
                )
            return
        self._select(deck, index)

    # -- one frame ------------------------------------------------------
    def frame(self) -> None:
        """One frame without pacing (the present is the caller's)."""
        self.frame_model()
        self.frame_post()

    def frame_model(self) -> None:
        """Clock, keys, every waiting event, path step and the forward pass."""
        t, dt = self.clock.tick()
        for action in self.output.poll():
            ev = key_event(action, self._now())
            if ev is not None:
                self.queue.put(ev)
        self.step_controls(t, dt)
        reg = self.registry
        frozen = reg.get("/master/freeze") >= 0.5
        self.presets.step(dt)
        resting = False
        if self.hours is not None:  # opening hours: closed and faded out, the show rests
            self.hours.step(dt)
            resting = self.hours.resting
        if self.autopilot is not None:
            self.autopilot.step(self.t, self.tempo.beat, frozen or resting)
        if self.mixer is not None:
            self.mixer.step(self.t)
        mix = self.mixer.mix() if self.mixer is not None else SOLO_A
        if resting:
            return
        for deck in self.decks:
            if frozen:
                deck.hold(self.tempo.beat)
            else:
                deck.advance(dt, reg.get("/master/speed"), self.tempo.beat)
        if frozen and self.renderer.has_frame:
            return
        half = all(mix.visible) and self._half_rate()
        for i, (deck, seen) in enumerate(zip(self.decks, mix.visible)):
            # At half rate each deck runs its model every other frame (the other's picture
            # is its last), unless it has none yet.
            if seen and not (half and i != self.frame_count % 2 and self.renderer.has_picture(i)):
                start = self._now()
                self.renderer.forward(deck.playing.generator, deck.latent(), slot=i)
                self._deck_work[i].observe(self._now() - start)
                self.deck_forwards[i] += 1
        if self.mixer is not None:
            self.renderer.compose(mix)

    def _half_rate(self) -> bool:
        """Whether two visible decks run their models at half rate: "half" always, "full"
        never, "auto" while both forward passes and the rest of the frame would take more
        than 90% of the frame period (back to full below 75%). Offline renders never switch
        by themselves (a render must not depend on how fast the machine is)."""
        if self.two_decks != "auto":
            return self.two_decks == "half"
        period = self.pacer.period if self.pacer is not None else (self.stats.target_period if self.stats else None)
        if self.strict or period is None:
            return False
        need = sum(w.lead for w in self._deck_work) + self._post_work.lead + self._present_work.lead
        was = self._half
        self._half = need > (0.75 if was else 0.9) * period
        if self._half != was:
            log.info(
                "two decks: models at %s rate (%.1f ms of work per %.1f ms frame)",
                "half" if self._half else "full",
                need * 1000.0,
                period * 1000.0,
            )
        return self._half

    def frame_post(self) -> None:
        """Events that arrived during the forward pass (post-model params now, the rest
        next frame), the blackout fade, and the conversion into the output's buffer."""
        self.apply_phase("post")
        self._fade_blackout(self._dt)
        reg = self.registry
        gain = reg.get("/master/brightness") * (1.0 - self.blackout_level)
        if self.hours is not None:
            gain *= self.hours.level
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
            self._paced_frame()
            self._guarded(self.output.present, self._present_work)
            if self.stats is not None:
                self.stats.presented(self._now())
            self.end_frame()
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
        return {
            "model": round(self._model_work.lead * 1000.0 + post + present, 3),
            "post": round(post + present, 3),
            "present": round(present, 3),
        }

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
