"""Fake devices for unit tests (DESIGN.md: every device has a fake)."""

from __future__ import annotations

import numpy as np


class FakeOutput:
    """An `Output` that keeps copies of presented frames and replays scripted key presses."""

    def __init__(self, keys: dict[int, list[str]] | None = None, keep: bool = True) -> None:
        self._buf = np.zeros((0, 0, 3), np.uint8)
        self.keys = keys or {}  # frame index -> actions poll() reports on that frame
        self.keep = keep
        self.frames: list[np.ndarray] = []
        self.presents = 0
        self._polls = 0
        self.title = ""

    @property
    def frame_buffer(self) -> np.ndarray:
        return self._buf

    def resize_frames(self, size: tuple[int, int]) -> None:
        w, h = size
        self._buf = np.zeros((h, w, 3), np.uint8)

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
    def __init__(self, name: str, backend: "FakeMidiBackend") -> None:
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


class _Spec:
    def __init__(self, name: str) -> None:
        self.name = name


class _Scene:
    def __init__(self, name: str) -> None:
        self.spec = _Spec(name)


class FakeShow:
    """What control modules touch on a Show (registry, queue, verbs, listeners, hooks,
    osc_routes, output, scenes), without models or a renderer; `pump()` drains and
    applies the queue and runs the frame hooks as one frame of the loop would."""

    def __init__(self, registry=None, fps: float = 60.0) -> None:
        from engine.core.events import EventQueue
        from engine.core.params import build_registry

        self.registry = registry or build_registry()
        self.queue = EventQueue()
        self.verbs: dict = {}
        self.listeners: list = []
        self.frame_hooks: list = []
        self.osc_routes: dict = {}
        self.output = FakeOutput()
        self.scenes = [_Scene("one"), _Scene("two"), _Scene("three")]
        self.scene_index = 0
        self.scene_loads = 1
        self.t = 0.0
        self.dt = 1.0 / fps
        self.verb_log: list = []  # verbs nobody handled: (address, value)
        self.applied_hooks: list = []  # (event, frame, phase) before each drained event is applied
        self.frame_count = 0

    def apply(self, ev) -> None:
        reg = self.registry
        applied = None
        if ev.kind == "set":
            applied = reg.set(ev.address, ev.value)
        elif ev.kind == "toggle":
            applied = reg.toggle(ev.address)
        elif ev.kind == "scale":
            applied = reg.scale(ev.address, ev.value)
        elif ev.address in self.verbs:
            self.verbs[ev.address](ev)
        else:
            self.verb_log.append((ev.address, ev.value))
        if applied is not None:
            for listener in self.listeners:
                listener(ev.address, applied, ev.source)

    def pump(self, frames: int = 1) -> None:
        for _ in range(frames):
            self.t += self.dt
            for ev in self.queue.drain():
                for hook in self.applied_hooks:
                    hook(ev, self.frame_count, "model")
                self.apply(ev)
            self.frame_count += 1
            for hook in tuple(self.frame_hooks):
                hook(self)
