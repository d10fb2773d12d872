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
