"""Show state that survives a restart: `show --state FILE` saves it, `--resume-state FILE`
brings it back.

The state is what a preset holds (every param, each deck's scene and path
position) plus the setlist's item and how long it has played, and the tempo's
beat. It is snapshotted on the frame loop every `every_s` seconds (a dict of a
few hundred numbers, well under a millisecond) and written as JSON by a worker
thread, atomically (engine.files.atomic: a power cut leaves the old file or the
new one), and once more at a clean exit.

A state file that cannot be read, is not JSON, or is not a Latent Stage state
(a foreign or damaged file) never stops a show: it starts fresh, says so once,
and the bad file is moved aside (FILE.bad-YYYYmmdd-HHMMSS) so the next save
does not destroy the evidence. What the state names that this show lacks (a
scene not loaded, a param of another version) is skipped, as with presets.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.files.atomic import atomic_write_text
from engine.files.preset import DeckState, Preset
from engine.stage.presets import NOT_SAVED

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

FORMAT_KEY = "latent_stage_state"
FORMAT_VERSION = 1
EVERY_S = 5.0


def snapshot(show: Show) -> dict[str, Any]:
    """The show's state as JSON-ready data."""
    state: dict[str, Any] = {
        FORMAT_KEY: FORMAT_VERSION,
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "params": {p.address: p.target for p in show.registry if p.address not in NOT_SAVED},
        "decks": {d.name: {"scene": d.scene_name, "position": d.playing.tau} for d in show.decks if d.scene},
        "tempo": {"bpm": show.tempo.bpm, "beat": show.tempo.beat},
    }
    pilot = show.autopilot
    if pilot is not None:
        state["setlist"] = {"file": str(pilot.spec.file.resolve()), "item": pilot.index, "played_s": pilot.played()}
    return state


def restore(show: Show, path: Path) -> bool:
    """Bring the state in `path` back into `show` (before its first frame); False (and the
    show starts fresh) when there is none or it is unusable (moved aside, said once)."""
    if not path.exists():
        log.info("state: %s does not exist yet; starting fresh", path)
        return False
    try:
        state = _parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        aside = _move_aside(path)
        log.warning("state: %s is unusable (%s); starting fresh, the file is kept as %s", path, e, aside)
        return False
    decks = {name: DeckState(str(d["scene"]), float(d["position"])) for name, d in state["decks"].items()}
    show.presets.apply(Preset("state", state["params"], decks), 0.0, immediate=True)
    bpm = state["tempo"]["bpm"]
    show.registry.set("/tempo/bpm", bpm, immediate=True)
    show.tempo.beat = float(state["tempo"]["beat"])
    pilot, played = show.autopilot, state.get("setlist")
    if pilot is not None and played is not None and played.get("file") == str(pilot.spec.file.resolve()):
        pilot.resume_at(int(played["item"]), float(played["played_s"]))
    log.info("state: resumed from %s (saved %s)", path, state.get("saved", "?"))
    return True


def _parse(text: str) -> dict[str, Any]:
    """A state dict whose shape is checked (ValueError says what is wrong)."""
    state = json.loads(text)
    if not isinstance(state, dict) or state.get(FORMAT_KEY) != FORMAT_VERSION:
        raise ValueError(f'not a Latent Stage state (no "{FORMAT_KEY}": {FORMAT_VERSION})')
    params, decks, tempo = state.get("params"), state.get("decks"), state.get("tempo")
    if not isinstance(params, dict) or not all(_finite(v) for v in params.values()):
        raise ValueError("'params' is not a table of numbers")
    if not isinstance(decks, dict) or not all(
        isinstance(d, dict) and isinstance(d.get("scene"), str) and _finite(d.get("position")) for d in decks.values()
    ):
        raise ValueError("'decks' is not a table of {scene, position}")
    if not isinstance(tempo, dict) or not _finite(tempo.get("bpm")) or not _finite(tempo.get("beat")):
        raise ValueError("'tempo' is not {bpm, beat}")
    played = state.get("setlist")
    if played is not None and not (
        isinstance(played, dict) and isinstance(played.get("item"), int) and _finite(played.get("played_s"))
    ):
        raise ValueError("'setlist' is not {file, item, played_s}")
    return state


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _move_aside(path: Path) -> Path:
    aside = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.replace(aside)
    except OSError as e:
        log.warning("state: cannot move %s aside (%s)", path, e)
    return aside


class StateSaver:
    """A frame hook: a snapshot every `every_s` seconds, written by its own thread (newest wins)."""

    def __init__(self, path: Path, every_s: float = EVERY_S, now: Callable[[], float] = time.perf_counter) -> None:
        self.path = path
        self.every_s = every_s
        self._now = now
        self._next = 0.0
        self._jobs: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=1)
        self.saved = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="state-saver", daemon=True)
        self._thread.start()

    def __call__(self, show: Show) -> None:
        t = self._now()
        if t < self._next:
            return
        self._next = t + self.every_s
        state = snapshot(show)
        try:
            self._jobs.put_nowait(state)
        except queue.Full:  # the last one is still being written: this one waits for the next turn
            self._next = t

    def _run(self) -> None:
        while (state := self._jobs.get()) is not None:
            self._write(state)

    def _write(self, state: dict[str, Any]) -> None:
        try:
            atomic_write_text(self.path, json.dumps(state, indent=1))
            self.saved += 1
        except OSError as e:
            self.errors += 1
            if self.errors == 1 or self.errors % 100 == 0:
                log.warning("state: cannot write %s (%s; %d failures); the show goes on", self.path, e, self.errors)

    def close(self, show: Show) -> None:
        """The last state, written now (a clean exit), then the thread ends."""
        try:
            self._jobs.put(None, timeout=5.0)
        except queue.Full:  # the writer is stuck on a write (a hung disk): do not hang the exit too
            pass
        self._thread.join(timeout=5.0)
        self._write(snapshot(show))
