"""Typed, frozen configuration: the CLI turns flags into these once (engine.flags); nothing
below it sees the parsed flags. Defaults live here, and the CLI's flags take theirs from these classes.

Pure module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.core.space import DECKS
from engine.core.tempo import TempoSource
from engine.files.preset import PRESETS_DIR

Aspect = Literal["fit", "fill", "stretch"]


@dataclass(frozen=True)
class StageConfig:
    """What every show is built from (live, offline render, each benchmark)."""

    device: str = "cpu"  # a resolved torch device name: "cpu" or "cuda"
    precision: str = "fp32"  # a resolved model precision: "fp32" or "fp16" (CUDA only)
    render_size: int | None = None  # the model's drawing size in px (None: its native size)
    tempo_source: TempoSource = "internal"
    decks: tuple[str, ...] = DECKS
    two_decks: str = "auto"  # full | half | auto: two visible decks' model rate (engine.stage.show)
    presets: Path = PRESETS_DIR  # presets/NAME.toml: read at startup, /preset/save writes here (live)


@dataclass(frozen=True)
class ShowConfig:
    """A live show: the stage, the window, and every input and output it opens."""

    stage: StageConfig = field(default_factory=StageConfig)
    # Window and pacing.
    size: tuple[int, int] | None = None  # window size in px (None: 1280x720, or the display's when fullscreen)
    aspect: Aspect = "fit"
    fps: float = 60.0
    fullscreen: bool = False
    display: int | None = None
    hud: bool = False  # open the operator HUD window at start (the H key toggles it)
    hud_display: int | None = None  # the display the HUD opens on (perform mode: not the projector's)
    headless: bool = False
    vsync: bool = True
    seconds: float | None = None
    stats: Path | None = None
    record_events: Path | None = None
    state: Path | None = None  # --state FILE: save the show's state every few seconds and at exit
    resume_state: Path | None = None  # --resume-state FILE: start from a saved state
    http: str | None = None  # --http HOST:PORT: /status and /set (engine.control.http)
    http_token: str | None = None
    hours: Path | None = None  # --hours FILE: opening hours (engine.files.schedule)
    initial: tuple[tuple[str, float], ...] = ()  # --set ADDRESS=VALUE: params set before the first frame
    send: tuple[str, ...] = ()  # --send SPEC: frames to other apps (engine.devices.senders), each checked
    # OSC in and out.
    osc_port: int = 9000  # 0 = off
    osc_host: str = "127.0.0.1"
    osc_allow: str | None = None  # "CIDR[,CIDR]"
    osc_out: tuple[str, ...] = ()  # "HOST:PORT" each
    oscquery_port: int = 9010  # 0 = off; not 9001, the usual port of a feedback receiver
    oscquery_host: str = "127.0.0.1"
    # MIDI and patches.
    midi_in: tuple[str, ...] = ()
    midi_api: str | None = None
    patch: tuple[Path, ...] = ()
    learn_save: Path | None = None  # None: the user's default learn file
    notes_prime: bool = False
    midi_feedback: str | None = None
    # Sound out and in, generated notes.
    audio_device: str | None = None
    sample_rate: int | None = None
    block_size: int = 256  # frames per audio block
    # 4, not 3: on the loaded 2-core machine 3 blocks (16 ms) let an underrun through about once a
    # minute, 4 (21 ms) none in 60 s (docs/AUDIO.md).
    audio_latency: int = 4  # blocks rendered ahead of the sound card
    synth_voices: int = 8
    no_audio: bool = False
    audio_in: str | None = None
    notes_out: str | None = None
    notes_channel: int = 1  # 1..16
    note_log: Path | None = None

    @property
    def tempo_source(self) -> TempoSource:
        return self.stage.tempo_source
