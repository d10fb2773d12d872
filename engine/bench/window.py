"""The window every frame benchmark presents to: the live show's SDL renderer on SDL's
dummy driver (headless, unpaced by vsync), 1280x720 like the show's default window."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.devices.window import VideoOutput

BENCH_WINDOW = (1280, 720)


def headless_window(model_size: int, title: str) -> VideoOutput:
    """A headless window for frames of `model_size` px (the show resizes them per scene)."""
    from engine.devices.window import VideoOutput  # here: pygame loads only when a bench runs

    return VideoOutput(
        (model_size, model_size),
        window_size=BENCH_WINDOW,
        fullscreen=False,
        display=None,
        vsync=False,
        aspect="fit",
        headless=True,
        title=title,
    )
