"""Presets on stage: save a snapshot, recall it at once or with a morph (owner "presets").

`/preset/save NAME` snapshots every param's target and each deck's scene and
path position into presets/NAME.toml (written on a worker thread, atomically:
a slow disk never holds a frame). `/preset/recall NAME` (or a 1-based index
into the names in order) brings them back: a deck whose scene differs loads it
(a cut: another model cannot be slerped to), float params glide and the
decks' latents slerp from where they are over `/preset/morph` seconds; int and
bool params switch at once. What the preset holds that this show lacks is
skipped and said once per recall. Moving a gliding param by hand ends its glide.

Offline (render --events) a save is kept in memory only, so a render never
writes presets and replays the recalls the live show made.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.core.events import Event
from engine.core.ratelog import first_and_every
from engine.core.space import PRESET_MORPH, pick_index
from engine.files.preset import DeckState, Preset, PresetError, check_name, save_preset

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

# A show keeps at most this many presets: a sender saving under ever new names (a flood, a
# script gone wrong) fills neither memory nor the disk. Saving over an existing name still works.
MAX_PRESETS = 256

# Params a preset does not hold: the morph time belongs to the recall, not the look.
NOT_SAVED = frozenset({PRESET_MORPH})


@dataclass
class _Glide:
    start: float
    end: float
    written: float  # the target the glide set last (a different target: moved by hand)


class PresetBank:
    """The show's presets by name and the glides of a recall in progress."""

    def __init__(self, folder: Path, presets: dict[str, Preset], write: bool = True) -> None:
        self._show: Show | None = None
        self.folder = folder
        self.presets = dict(presets)
        self.write = write  # False offline: saves stay in memory
        self.misses = 0  # save/recall requests that named nothing usable
        self.saved = 0
        self.recalled = 0
        self._glides: dict[str, _Glide] = {}
        self._glide_t = 0.0  # seconds into the current morph
        self._glide_total = 0.0
        self.writer: threading.Thread | None = None  # the last save's file writer

    def attach(self, show: Show) -> None:
        self._show = show

    @property
    def show(self) -> Show:
        assert self._show is not None, "PresetBank used before attach()"  # the Show attaches it in __init__
        return self._show

    def names(self) -> list[str]:
        return sorted(self.presets)

    # Verbs of owner "presets" (engine.core.space.VERBS).
    def save(self, ev: Event) -> None:
        try:
            name = check_name(ev.value)
        except PresetError as e:
            self._miss(f"/preset/save: {e}")
            return
        if name not in self.presets and len(self.presets) >= MAX_PRESETS:
            self._miss(f"/preset/save {name!r}: already {MAX_PRESETS} presets (save over one, or remove some)")
            return
        show = self.show
        params = {p.address: p.target for p in show.registry if p.address not in NOT_SAVED}
        decks = {d.name: DeckState(d.scene_name, d.playing.tau) for d in show.decks if d.scene is not None}
        preset = Preset(name, params, decks)
        self.presets[name] = preset
        self.saved += 1
        if self.write:
            self.writer = threading.Thread(target=self._write, args=(preset,), name=f"preset-{name}", daemon=True)
            self.writer.start()
        log.info("preset %r saved (%d params, decks %s)", name, len(params), ", ".join(decks))

    def _write(self, preset: Preset) -> None:
        try:
            path = save_preset(self.folder, preset)
        except OSError as e:
            log.warning("preset %r kept for this show only: cannot write %s (%s)", preset.name, self.folder, e)
            return
        log.info("preset %r written to %s", preset.name, path)

    def recall(self, ev: Event) -> None:
        names = self.names()
        index = pick_index(ev.value, [(n,) for n in names])
        if index is None:
            self._miss(f"/preset/recall: no preset {ev.value!r}; presets: {', '.join(names) or 'none'}")
            return
        self.apply(self.presets[names[index]], self.show.registry.get(PRESET_MORPH))

    def apply(self, preset: Preset, morph: float, immediate: bool = False) -> None:
        """Bring `preset` back, gliding over `morph` seconds (0: at once; `immediate`: not
        even smoothed, as a restored state); says what it skipped."""
        skipped = self._recall_decks(preset, morph) + self._recall_params(preset, morph, immediate)
        self.recalled += 1
        if skipped:
            log.warning("preset %r: recalled what applies; skipped %s", preset.name, "; ".join(skipped))
        else:
            log.info("preset %r recalled%s", preset.name, f" over {morph:g} s" if morph > 0.0 else "")

    def _recall_decks(self, preset: Preset, morph: float) -> list[str]:
        show, skipped = self.show, []
        scenes = show.scene_names()
        for name, state in preset.decks.items():
            deck = next((i for i, d in enumerate(show.decks) if d.name == name), None)
            if deck is None:
                skipped.append(f"deck {name} (this show has decks {', '.join(d.name for d in show.decks)})")
                continue
            if state.scene not in scenes:
                skipped.append(f"deck {name}'s scene {state.scene!r} (not loaded)")
                continue
            if show.decks[deck].scene_name != state.scene:
                show.select_on(deck, scenes.index(state.scene))
            show.decks[deck].glide_to(state.position, morph)
        return skipped

    def _recall_params(self, preset: Preset, morph: float, immediate: bool = False) -> list[str]:
        reg, unknown = self.show.registry, []
        self._glides.clear()
        for address, value in preset.params.items():
            if address not in reg or address in NOT_SAVED:
                unknown.append(address)
                continue
            p = reg.param(address)
            if morph > 0.0 and p.type == "float":
                end = p.coerce(value)
                self._glides[address] = _Glide(p.target, end, p.target)
            else:
                reg.set(address, value, immediate=immediate)
        self._glide_t, self._glide_total = 0.0, morph
        return [f"{len(unknown)} param(s) this show lacks: {', '.join(unknown[:5])}"] if unknown else []

    def step(self, dt: float) -> None:
        """Move the gliding params for this frame (dt in seconds)."""
        if not self._glides:
            return
        self._glide_t += dt
        done = min(self._glide_t / self._glide_total, 1.0) if self._glide_total > 0.0 else 1.0
        reg = self.show.registry
        for address, g in list(self._glides.items()):
            if reg.param(address).target != g.written:  # moved by hand since: it is the player's now
                del self._glides[address]
                continue
            g.written = reg.set(address, g.start + (g.end - g.start) * done, immediate=True) or g.end
        if done >= 1.0:
            self._glides.clear()

    def _miss(self, why: str) -> None:
        self.show.registry.rejected += 1
        self.misses += 1
        if first_and_every(self.misses, 100):
            log.warning("%s (%d such requests so far); the show goes on", why, self.misses)
