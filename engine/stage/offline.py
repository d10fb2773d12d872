"""Offline render: the show loop on a fixed-step clock into an mp4 or PNG folder.

Deterministic: the same scene, seed, size and frame count give the same
frames, because time comes only from `FixedClock` and the model runs with a
fixed thread count. With an event log (`render --events`), the recorded
inputs are applied at the frames and phases they were applied at live.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.config import StageConfig
from engine.core.clock import FixedClock
from engine.core.eventlog import EventLog, EventReplay
from engine.devices.recorder import FrameWriter, compose, open_writer
from engine.errors import StartupError
from engine.files.scene import SceneSpec
from engine.files.setlist import SetlistSpec
from engine.seq.layer import OfflineSeq, has_seq
from engine.stage.build import build_show
from engine.stage.deck import load_scenes
from engine.stage.show import FrameBuffer, Show

log = logging.getLogger(__name__)
CPU = torch.device("cpu")


class RecordOutput(FrameBuffer):
    """An `Output` that encodes each presented frame, scaled to the output size."""

    def __init__(self, writer: FrameWriter, size: tuple[int, int], aspect: str) -> None:
        super().__init__()
        self._writer, self.size, self.aspect = writer, size, aspect
        self.frames = 0
        self.overlay: Any = None  # has draw(frame (H, W, 3) uint8): text over the composed frame

    def present(self) -> None:
        h, w = self._buf.shape[:2]
        frame = self._buf if (w, h) == self.size else compose(self._buf, self.size, self.aspect)
        if self.overlay is not None:
            self.overlay.draw(frame)  # text at output resolution, as the live window draws it
        self._writer.write(frame)
        self.frames += 1

    def poll(self) -> list[str]:
        return []

    def set_title(self, title: str) -> None:
        pass

    def close(self, ok: bool = True, audio: Path | None = None) -> None:
        """Finish the file (with `audio` as its sound); on failure abort, so no half file
        takes the final name."""
        if ok:
            self._writer.close(audio=audio)
        else:
            self._writer.abort()


def _modulate(show: Show, patches: list[Path]) -> None:
    """The patches' LFO, beat and audio routes (audio: the features a replayed log recorded)."""
    from engine.control.modulation import ModulationControl, modulation_routes

    routes = modulation_routes(patches, show.space)
    if routes:
        ModulationControl(show, routes)


@dataclass
class RenderResult:
    out: Path
    frames: int
    size: tuple[int, int]
    fps: int
    audio: bool = False  # the scenes made sound: the MP4 has a sound track (a PNG folder an audio.wav)


def render(
    specs: list[SceneSpec],
    *,
    seconds: float | None,
    fps: int,
    out: str,
    size: tuple[int, int] | None = None,
    aspect: str = "fit",
    render_size: int | None = None,
    device: torch.device = CPU,
    precision: str = "fp32",
    events: EventLog | None = None,
    patches: list[Path] | None = None,
    presets: Path | None = None,
    two_decks: str = "auto",
    setlist: SetlistSpec | None = None,
) -> RenderResult:
    """Render `seconds` (None: the event log's length) at `fps` to `out` (FILE.mp4 or DIR/),
    starting with the first scene; `events` replays a recorded performance."""
    if seconds is None and events is None:
        raise ValueError("render needs seconds or an event log")
    frames = events.frames if seconds is None and events is not None else max(1, round((seconds or 0) * fps))
    scenes = load_scenes(specs, device, precision)
    native = render_size or scenes[0].size
    size = size or (native, native)
    try:
        writer = open_writer(out, size, fps)
    except ValueError as e:
        raise StartupError(str(e)) from None
    output = RecordOutput(writer, size, aspect)
    stage = StageConfig(
        device=str(device),
        precision=precision,
        render_size=render_size,
        tempo_source=events.tempo_source if events is not None else "internal",
        # The recorded show's presets folder (its recalls read it), else the one given.
        presets=(events.presets if events is not None else None) or presets or StageConfig.presets,
        two_decks=two_decks,
    )
    show = build_show(stage, FixedClock(fps), output, scenes, strict=True, setlist=setlist)
    if events is not None:
        show.replay = EventReplay(events)
    _modulate(show, patches if patches is not None else (events.patches if events is not None else []))
    with tempfile.TemporaryDirectory(prefix="latent-stage-render-") as tmp:
        seq = OfflineSeq(show, output, fps, Path(tmp) / "sound.wav") if has_seq(show) else None
        try:
            show.run(frames=frames)
            wav = seq.finish(frames / fps) if seq is not None else None
        except BaseException:
            output.close(ok=False)
            raise
        output.close(audio=wav)
    return RenderResult(Path(out), output.frames, size, fps, audio=wav is not None)
