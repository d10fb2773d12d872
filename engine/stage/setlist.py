"""The autopilot: a setlist's items played on time (owner "setlist").

An item starts when its fade in starts and plays `dwell` (seconds, or beats
of the tempo) before the next item's fade starts. A scene item is loaded into
the back deck and the mixer fades to it over the item's fade (0: a cut); a
preset item is recalled with its fade as the morph. The next item is the
following one (sequence), any other one (random) or the next of a shuffled
bag (each item once per cycle, never the same item twice in a row across
cycles). Draws come from the setlist's seed and the timing from show time, so
a render of the same events plays the same set.

`/setlist/next`, `/setlist/prev` (the item played before) and `/setlist/goto`
(a 1-based number or an item's scene or preset name) change at once with the
target item's fade and restart its dwell. `/setlist/auto` 0 stops the clock
(items change only by those verbs). While the show is frozen the dwell waits.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.core.events import Event
from engine.core.ratelog import first_and_every
from engine.core.space import SETLIST_AUTO, pick_index
from engine.errors import StartupError
from engine.files.setlist import SetlistItem, SetlistSpec

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

HISTORY = 64  # items remembered for /setlist/prev


class Autopilot:
    """Steps a setlist on `show`; the Show calls step() once a frame before its mixer."""

    def __init__(self, show: Show, spec: SetlistSpec) -> None:
        self.show = show
        self.spec = spec
        files = [sc.spec.file.resolve() for sc in show.scenes]
        self._scene: dict[Path, int] = {f: i for i, f in reversed(list(enumerate(files)))}  # first wins
        for n, item in enumerate(spec.items, start=1):
            self._check(n, item)
        self._rng = np.random.default_rng(spec.seed)
        self._bag: list[int] = []
        self.index = 0
        self.history: deque[int] = deque(maxlen=HISTORY)
        self.changes = 0  # items started after the first (status, tests)
        self.misses = 0
        self._start: tuple[float, float] | None = None  # (show time s, beat) the item started at
        self._last: tuple[float, float] = (0.0, 0.0)
        self._resumed: float | None = None  # seconds the resumed item had played (resume_at)

    def _check(self, n: int, item: SetlistItem) -> None:
        where = f"{self.spec.file}: item #{n}"
        if item.scene is not None and item.scene.resolve() not in self._scene:
            raise StartupError(f"{where}: key 'scene': {item.scene} is not among the show's scenes")
        if item.preset is not None and item.preset not in self.show.presets.presets:
            names = ", ".join(self.show.presets.names()) or "none"
            raise StartupError(
                f"{where}: key 'preset': expected a preset in {self.show.presets.folder} ({names}), got {item.preset!r}"
            )

    @property
    def item(self) -> SetlistItem:
        return self.spec.items[self.index]

    def step(self, t: float, beat: float, frozen: bool = False) -> None:
        """This frame's part: start the set, or the next item when the dwell is over."""
        if self._start is None:
            self._begin(t, beat)
            return
        last_t, last_beat = self._last
        self._last = (t, beat)
        if frozen or self.show.registry.get(SETLIST_AUTO) < 0.5:  # the dwell waits
            start_t, start_beat = self._start
            self._start = (start_t + t - last_t, start_beat + beat - last_beat)
            return
        start_t, start_beat = self._start
        dwell = self.item.dwell
        elapsed = (beat - start_beat) if dwell.beats else (t - start_t)
        if elapsed >= dwell.length:
            self._go(self._next_index(), t, beat)

    def played(self) -> float:
        """Seconds the current item has played (a saved state's)."""
        return 0.0 if self._start is None else self._last[0] - self._start[0]

    def resume_at(self, index: int, played_s: float) -> None:
        """Before the first frame: go on with item `index` (0-based; out of range: the first)
        as if it had played `played_s` seconds; the decks were restored by the caller."""
        self.index = index if 0 <= index < len(self.spec.items) else 0
        self._resumed = max(played_s, 0.0)

    def _begin(self, t: float, beat: float) -> None:
        """The first item, at once on the front deck (no fade into the show's first frame); a
        resumed item keeps the decks as restored and the time it had played."""
        item = self.item
        if self._resumed is not None:
            played = self._resumed
            self._start, self._last = (t - played, beat - played * self.show.tempo.bpm / 60.0), (t, beat)
            log.info(
                "setlist %r: resumed at item %d/%d %s", self.spec.name, self.index + 1, len(self.spec.items), item.label
            )
            return
        if item.scene is not None:
            front, scene = self.show.front, self._scene[item.scene.resolve()]
            if self.show.deck_scene_index(front) != scene:  # already playing it: keep its params (--set)
                self.show.select_on(front, scene)
        else:
            self.show.presets.apply(self.show.presets.presets[item.preset or ""], 0.0)
        self._start = self._last = (t, beat)
        log.info("setlist %r (%s): item 1/%d %s", self.spec.name, self.spec.mode, len(self.spec.items), item.label)

    def _go(self, index: int, t: float, beat: float) -> None:
        self.history.append(self.index)
        self.index = index
        item, show = self.item, self.show
        fade = item.fade
        if item.scene is not None:
            scene = self._scene[item.scene.resolve()]
            if show.mixer is None:  # one deck: a cut
                show.select_on(0, scene)
            else:
                show.select_on(show.back, scene)
                show.mixer.transition(fade.length, fade.beats)
        else:
            seconds = fade.length * 60.0 / show.tempo.bpm if fade.beats else fade.length
            show.presets.apply(show.presets.presets[item.preset or ""], seconds)
        self._start = self._last = (t, beat)
        self.changes += 1
        log.info("setlist: item %d/%d %s", index + 1, len(self.spec.items), item.label)

    def _next_index(self) -> int:
        n = len(self.spec.items)
        if n == 1:
            return 0
        if self.spec.mode == "sequence":
            return (self.index + 1) % n
        if self.spec.mode == "random":  # any other item
            return int((self.index + 1 + self._rng.integers(n - 1)) % n)
        if not self._bag:  # bag: a new shuffled cycle that does not start with the item playing
            bag = [int(i) for i in self._rng.permutation(n)]
            if bag[0] == self.index:
                bag[0], bag[1] = bag[1], bag[0]
            self._bag = bag
        return self._bag.pop(0)

    # Verbs of owner "setlist" (engine.core.space.VERBS).
    def next(self, ev: Event) -> None:
        self._go(self._next_index(), *self._last)

    def prev(self, ev: Event) -> None:
        back = self.history.pop() if self.history else (self.index - 1) % len(self.spec.items)
        self._go(back, *self._last)
        self.history.pop()  # going back is not a step to come back to

    def goto(self, ev: Event) -> None:
        names = [_names(item) for item in self.spec.items]
        index = pick_index(ev.value, names)
        if index is None:
            self.show.registry.rejected += 1
            self.misses += 1
            if first_and_every(self.misses, 100):
                log.warning("/setlist/goto %r: no such item (%d such requests so far)", ev.value, self.misses)
            return
        self._go(index, *self._last)


def _names(item: SetlistItem) -> tuple[str, ...]:
    if item.scene is not None:
        return (item.scene.name, item.scene.stem)
    return (item.preset or "",)
