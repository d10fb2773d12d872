"""Performances as event logs: record every applied input event, replay it offline.

A show is a pure function of (scene files, model files, seed, event log), so a
live performance recorded with `show --record-events FILE` renders again with
`render --events FILE`, frame for frame, at any size.

The file is JSON lines. The first line is a header, then one line per event in
the order the loop applied them, with the frame index and the drain phase
("model": before the forward pass, "post": before present) it was applied at,
and a last line with the frame count when the show ended cleanly (the event below is
one line in the file):

    {"latent_stage_events": 1, "fps": 60.0, "scenes": ["/abs/scenes/default.toml"], "tempo_source": "internal"}
    {"frame": 120, "phase": "post", "t": 8812.004, "source": "osc", "kind": "set",
     "address": "/master/brightness", "value": 0.2}
    {"end_frame": 1200}

`t` is the receive time on the source's clock (perf_counter seconds); replay
hands it back unchanged, so tap tempo and MIDI clock follow the same beats.

Recording is flushed once per frame (a crash loses at most that frame's
events); a write error is logged once and recording stops, the show goes on.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from engine.core.checks import finite_number
from engine.core.events import Event
from engine.core.tempo import SOURCES, TempoSource
from engine.errors import EventLogError, StartupError

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

FORMAT_KEY = "latent_stage_events"
FORMAT_VERSION = 1
PHASES = ("model", "post")
KINDS = ("set", "toggle", "scale", "verb")


class EventRecorder:
    """Appends each applied event to a JSON-lines file; attach() it to a show."""

    def __init__(
        self,
        path: Path,
        *,
        fps: float,
        scenes: list[Path],
        tempo_source: str,
        patches: list[Path] | None = None,
        presets: Path | None = None,
        setlist: Path | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise StartupError(f"--record-events {self.path}: cannot write ({e.strerror or e})") from None
        self.recorded = 0
        self.failed = False
        header = {
            FORMAT_KEY: FORMAT_VERSION,
            "fps": float(fps),
            "scenes": [str(Path(s).resolve()) for s in scenes],
            "tempo_source": tempo_source,
            "patches": [str(Path(p).resolve()) for p in patches or []],  # for their modulation routes
        }
        if presets is not None:  # the folder /preset/recall reads (a render reads the same one)
            header["presets"] = str(Path(presets).resolve())
        if setlist is not None:  # the set the autopilot played (a render plays it again)
            header["setlist"] = str(Path(setlist).resolve())
        self._write(header)
        self.flush()

    def attach(self, show: Show) -> None:
        show.applied_hooks.append(self.record)
        show.frame_hooks.append(lambda _show: self.flush())

    def record(self, ev: Event, frame: int, phase: str) -> None:
        line = {
            "frame": frame,
            "phase": phase,
            "t": ev.t,
            "source": ev.source,
            "kind": ev.kind,
            "address": ev.address,
            "value": ev.value,
        }
        if self._write(line):
            self.recorded += 1

    def _write(self, obj: dict[str, Any]) -> bool:
        if self._file is None:
            return False
        try:
            self._file.write(json.dumps(obj) + "\n")
            return True
        except (OSError, ValueError) as e:  # ValueError: a value json cannot encode
            self._fail(e)
            return False

    def flush(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
        except OSError as e:
            self._fail(e)

    def _fail(self, error: Exception) -> None:
        log.error("event log %s: write failed (%s); recording stopped, the show goes on", self.path, error)
        self.failed = True
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # the file is already broken; the error above said so

    def close(self, end_frame: int | None = None) -> None:
        """Write the end marker (frames played) and close; idempotent."""
        if self._file is None:
            return
        if end_frame is not None:
            self._write({"end_frame": end_frame})
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def stats(self) -> dict[str, Any]:
        return {"events_recorded": self.recorded, "event_log_failed": self.failed}


@dataclass
class EventLog:
    """A validated event log: events by (frame, phase), in their applied order."""

    path: Path
    fps: float
    scenes: list[Path]
    tempo_source: TempoSource
    events: dict[tuple[int, str], list[Event]] = field(default_factory=dict)
    patches: list[Path] = field(default_factory=list)  # the live show's --patch files (modulation)
    presets: Path | None = None  # the live show's presets folder
    setlist: Path | None = None  # the live show's --setlist
    end_frame: int | None = None  # frames the live show played, when it ended cleanly
    count: int = 0

    @property
    def frames(self) -> int:
        """Frames to render: the live show's length, or up to the last event."""
        if self.end_frame is not None:
            return self.end_frame
        return max((f for f, _ in self.events), default=-1) + 1

    def at_fps(self, fps: float) -> EventLog:
        """The same performance for a render at another frame rate: each event moves to the
        first frame at or after its show time (frame / recorded fps), in its order and
        phase; the length scales likewise. At the recorded rate: this log itself."""
        if abs(fps - self.fps) < 1e-9:
            return self
        ratio = fps / self.fps

        def frame_at(frame: int) -> int:
            return math.ceil(frame * ratio - 1e-9)

        events: dict[tuple[int, str], list[Event]] = {}
        for (frame, phase), evs in sorted(self.events.items(), key=lambda item: (item[0][0], PHASES.index(item[0][1]))):
            events.setdefault((frame_at(frame), phase), []).extend(evs)
        end = None if self.end_frame is None else frame_at(self.end_frame)
        return replace(self, fps=float(fps), events=events, end_frame=end)


class EventReplay:
    """An `EventSource` for `Show.replay`: hands each frame and phase its logged events."""

    def __init__(self, log_: EventLog) -> None:
        self.log = log_

    def take(self, frame: int, phase: str) -> list[Event]:
        return list(self.log.events.get((frame, phase), ()))


def load_event_log(path: str | Path) -> EventLog:
    """Read and validate a log; any bad line is an EventLogError naming file and line."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EventLogError(f"{file}: cannot read event log ({getattr(e, 'strerror', None) or e})") from None
    if not lines:
        raise EventLogError(f"{file}: empty event log (expected a header line)")
    header = _parse(file, 1, lines[0])
    result = _header(file, header)
    last_frame = -1
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        obj = _parse(file, number, text)
        if result.end_frame is not None:
            raise EventLogError(f"{file}: line {number}: nothing may follow the end_frame line")
        if set(obj) == {"end_frame"}:
            result.end_frame = _count(file, number, "end_frame", obj["end_frame"], last_frame)
            continue
        frame, phase, ev = _event(file, number, obj)
        if frame < last_frame:
            raise EventLogError(f"{file}: line {number}: frame {frame} comes after frame {last_frame}")
        last_frame = frame
        result.events.setdefault((frame, phase), []).append(ev)
        result.count += 1
    return result


def _parse(file: Path, number: int, text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise EventLogError(f"{file}: line {number}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise EventLogError(f"{file}: line {number}: expected a JSON object")
    return obj


def _header(file: Path, obj: dict[str, Any]) -> EventLog:
    if obj.get(FORMAT_KEY) != FORMAT_VERSION:
        raise EventLogError(f'{file}: line 1: expected the header {{"{FORMAT_KEY}": {FORMAT_VERSION}, ...}}')
    fps, scenes, source = obj.get("fps"), obj.get("scenes"), obj.get("tempo_source", "internal")
    if not finite_number(fps) or fps <= 0:
        raise EventLogError(f"{file}: line 1: key 'fps': expected a number > 0, got {fps!r}")
    if not isinstance(scenes, list) or not scenes or not all(isinstance(s, str) for s in scenes):
        raise EventLogError(f"{file}: line 1: key 'scenes': expected a list of scene file paths")
    if source not in SOURCES:
        raise EventLogError(f"{file}: line 1: key 'tempo_source': expected {', '.join(SOURCES)}")
    patches = obj.get("patches", [])
    if not isinstance(patches, list) or not all(isinstance(p, str) for p in patches):
        raise EventLogError(f"{file}: line 1: key 'patches': expected a list of patch file paths")
    presets, setlist = obj.get("presets"), obj.get("setlist")
    if presets is not None and not isinstance(presets, str):
        raise EventLogError(f"{file}: line 1: key 'presets': expected the presets folder's path")
    if setlist is not None and not isinstance(setlist, str):
        raise EventLogError(f"{file}: line 1: key 'setlist': expected the setlist file's path")
    paths, patch_paths = [Path(s) for s in scenes], [Path(p) for p in patches]
    folder = Path(presets) if presets is not None else None
    played = Path(setlist) if setlist is not None else None
    return EventLog(
        file, float(fps), paths, cast(TempoSource, source), patches=patch_paths, presets=folder, setlist=played
    )


def _event(file: Path, number: int, obj: dict[str, Any]) -> tuple[int, str, Event]:
    def bad(key: str, expected: str) -> EventLogError:
        return EventLogError(f"{file}: line {number}: key '{key}': expected {expected}, got {obj.get(key)!r}")

    missing = [k for k in ("frame", "phase", "kind", "address") if k not in obj]
    if missing:
        raise EventLogError(
            f"{file}: line {number}: key '{missing[0]}' is missing (expected frame, phase, kind, "
            "address, and optionally value, t, source)"
        )
    frame = obj["frame"]
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise bad("frame", "a frame index >= 0")
    if obj["phase"] not in PHASES:
        raise bad("phase", "model or post")
    if obj["kind"] not in KINDS:
        raise bad("kind", "one of " + ", ".join(KINDS))
    if not isinstance(obj["address"], str) or not obj["address"].startswith("/"):
        raise bad("address", "an address starting with /")
    value = obj.get("value")
    if isinstance(value, bool) or not (value is None or isinstance(value, (int, float, str))):
        raise bad("value", "a number, a string or null")
    t = obj.get("t", 0.0)
    if not finite_number(t):
        raise bad("t", "a time in seconds")
    source = obj.get("source", "")
    if not isinstance(source, str):
        raise bad("source", "a string")
    return frame, obj["phase"], Event(obj["kind"], obj["address"], value, float(t), source)


def _count(file: Path, number: int, key: str, value: Any, last_frame: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= last_frame:
        raise EventLogError(f"{file}: line {number}: key '{key}': expected a frame count > {last_frame}, got {value!r}")
    return value
