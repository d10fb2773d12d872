"""Fake devices for unit tests (DESIGN.md: every device has a fake)."""

from __future__ import annotations

import numpy as np

from engine.core.showcore import ShowCore
from engine.core.space import VERBS, build_registry
from engine.stage.show import FrameBuffer


class FakeOutput(FrameBuffer):
    """An `Output` that keeps copies of presented frames and replays scripted key presses."""

    def __init__(self, keys: dict[int, list[str]] | None = None, keep: bool = True) -> None:
        super().__init__()
        self.keys = keys or {}  # frame index -> actions poll() reports on that frame
        self.keep = keep
        self.frames: list[np.ndarray] = []
        self.presents = 0
        self._polls = 0
        self.title = ""

    def present(self) -> None:
        self.presents += 1
        if self.keep:
            self.frames.append(self._buf.copy())

    def poll(self) -> list[str]:
        actions = self.keys.get(self._polls, [])
        self._polls += 1
        return actions

    def set_title(self, title: str) -> None:
        self.title = title


# -- MIDI: an in-memory port backend and a light show for routing tests ---------------


class FakeMidiInPort:
    def __init__(self, name: str, callback, clock: bool) -> None:
        self.name, self.callback, self.clock, self.closed = name, callback, clock, False

    def close(self) -> None:
        self.closed = True


class FakeMidiOutPort:
    def __init__(self, name: str, backend: FakeMidiBackend) -> None:
        self.name, self.closed, self._backend = name, False, backend
        self.sent: list[tuple[int, ...]] = []

    def send(self, message) -> None:
        if self.closed or self.name not in self._backend.destinations:
            raise OSError(f"{self.name} is gone")
        self.sent.append(tuple(message))

    def close(self) -> None:
        self.closed = True


class FakeMidiBackend:
    """A `PortBackend` whose ports appear and vanish when a test says so."""

    client = "latent-stage"

    def __init__(self, sources=(), destinations=()) -> None:
        self.sources: list[str] = list(sources)  # ports we could receive from
        self.destinations: list[str] = list(destinations)  # ports we could send to
        self.available = True
        self.inputs: dict[str, FakeMidiInPort] = {}  # the latest opened port per name
        self.outputs: dict[str, FakeMidiOutPort] = {}
        self.opens: list[str] = []
        self.closed = False

    def input_names(self) -> list[str]:
        if not self.available:
            raise OSError("MIDI system unavailable")
        return list(self.sources)

    def output_names(self) -> list[str]:
        if not self.available:
            raise OSError("MIDI system unavailable")
        return list(self.destinations)

    def open_input(self, name: str, callback, clock: bool) -> FakeMidiInPort:
        if name not in self.sources:
            raise OSError(f"cannot open {name!r}")
        port = self.inputs[name] = FakeMidiInPort(name, callback, clock)
        self.opens.append(name)
        return port

    def open_output(self, name: str) -> FakeMidiOutPort:
        if name not in self.destinations:
            raise OSError(f"cannot open {name!r}")
        port = self.outputs[name] = FakeMidiOutPort(name, self)
        self.opens.append(name)
        return port

    def send(self, name: str, *message: int, t: float = 0.0) -> bool:
        """Deliver bytes from source `name` as its receive thread would; False if not connected."""
        port = self.inputs.get(name)
        if port is None or port.closed or name not in self.sources:
            return False
        port.callback(list(message), t)
        return True

    def close(self) -> None:
        self.closed = True


class ControlShow(ShowCore):
    """The real event core (nothing re-implemented) standing in for a Show in tests of control
    modules: the picture's verbs (owner "show") are recorded in `verb_log`, the title in
    `title`, and `pump(n)` runs n frames of control at `fps`."""

    def __init__(self, registry=None, fps: float = 60.0, verbs=None) -> None:
        super().__init__(registry if registry is not None else build_registry(), verbs=verbs or VERBS)
        self.fps = fps
        self.verb_log: list = []  # (address, value) of each scene verb applied
        self.title = ""
        self.scene_name = "one"
        self.provide("show", self)

    def select_scene(self, ev) -> None:
        self.verb_log.append((ev.address, ev.value))

    next_scene = prev_scene = deck_scene = deck_next = deck_prev = cue_next = cue_prev = select_scene

    def set_title(self, text: str) -> None:
        self.title = text

    def pump(self, frames: int = 1) -> None:
        for _ in range(frames):
            self.tick(1.0 / self.fps)


def verb_handlers(obj: object, owner: str) -> dict:
    """Verb address -> the method of `obj` that applies it, for the verbs of `owner` in the
    verb table (tests call handlers directly, without a show)."""

    return {v.address: getattr(obj, v.method) for v in VERBS if v.owner == owner}


def show_config(*argv: str, **settings):
    """A ShowConfig as the CLI makes it from `show` flags (argv), with `settings` replaced after
    (lists become tuples; tempo_source goes to the stage)."""
    from dataclasses import replace

    from engine.flags import build_parser
    from engine.flags import show_config as from_args

    config = from_args(build_parser().parse_args(["show", *argv]), device="cpu")
    if "tempo_source" in settings:
        config = replace(config, stage=replace(config.stage, tempo_source=settings.pop("tempo_source")))
    return replace(config, **{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})


def built_show(scenes, output=None, fps: float = 30.0, **stage):
    """A Show of loaded `scenes` from the one builder, on a fixed clock, presenting to a fake
    output that keeps no frames (or `output`); `stage` are StageConfig settings."""
    from engine.config import StageConfig
    from engine.core.clock import FixedClock
    from engine.stage.build import build_show

    output = output if output is not None else FakeOutput(keep=False)
    return build_show(StageConfig(**stage), FixedClock(fps), output, scenes)
