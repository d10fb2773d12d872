"""The operator HUD: a second window (another display in perform mode) with the show's state.

Never drawn on the output. It redraws at `rate` Hz (default 4), not every frame:
text rendering costs about a millisecond, which at 60 Hz would be 6% of every
frame; at 4 Hz the output keeps its frame rate (docs/BENCHMARKS.md, "Operator
HUD"). Keys pressed while it has focus reach the show as usual (SDL sends every
window's events to the one queue the output polls); closing it only hides it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pygame
import pygame._sdl2.video as sdl_video

from engine.stage.hud import WarningTail, frame_graph, hud_lines

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

HUD_SIZE = (640, 400)
_BG, _FG, _DIM, _LATE, _LINE = (12, 12, 16), (225, 225, 225), (120, 120, 130), (230, 80, 60), (90, 160, 90)
_GRAPH_H = 110  # px of the frame-time graph at the bottom
_GRAPH_MS = 50.0  # the graph's top, ms


class HudWindow:
    """Owner "hud" of the verb /show/hud (key H): shows or hides the window; `frame_hook`
    redraws it at most `rate` times a second."""

    def __init__(
        self,
        controls: Callable[[], dict[str, Any]],
        *,
        display: int | None = None,
        rate: float = 4.0,
        visible: bool = False,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._controls = controls
        self._display = display
        self._period = 1.0 / rate
        self._now = now
        self._next = 0.0
        self._window: Any = None
        self._renderer: Any = None
        self._font: pygame.font.Font | None = None
        self.warnings = WarningTail()
        logging.getLogger().addHandler(self.warnings)
        self.draws = 0
        if visible:
            self._open()

    @property
    def visible(self) -> bool:
        return self._window is not None

    # Verb of owner "hud" (engine.core.space.VERBS).
    def toggle(self, ev: object = None) -> None:
        if self._window is None:
            self._open()
        else:
            self._close_window()

    def owns(self, window_id: int | None) -> bool:
        """Whether an SDL window id is the HUD's (its close button hides it, it does not quit)."""
        return self._window is not None and window_id == self._window.id

    def _open(self) -> None:
        where = sdl_video.WINDOWPOS_CENTERED | (self._display or 0)
        try:
            self._window = pygame.Window("Latent Stage - operator", size=HUD_SIZE, position=(where, where))
            self._renderer = sdl_video.Renderer(self._window, vsync=False)  # never waits for a display
        except pygame.error as e:
            log.warning("operator HUD not shown: %s", e)
            self._window = self._renderer = None
            return
        if not pygame.font.get_init():
            pygame.font.init()
        self._font = pygame.font.Font(None, 20)
        self._next = 0.0

    def _close_window(self) -> None:
        if self._window is not None:
            self._renderer = None
            self._window.destroy()
            self._window = None

    def frame_hook(self, show: Show) -> None:
        """After each present: redraw if the HUD is shown and its period has passed."""
        if self._window is None:
            return
        t = self._now()
        if t < self._next:
            return
        self._next = t + self._period
        self.draw(show)

    def draw(self, show: Show) -> None:
        assert self._font is not None and self._renderer is not None  # set by _open
        surface = pygame.Surface(HUD_SIZE)
        surface.fill(_BG)
        y = 8
        for line in hud_lines(show, self._controls(), self.warnings.lines()):
            colour = _DIM if line.startswith("  ") else _FG
            surface.blit(self._font.render(line, True, colour), (10, y))
            y += 20
            if y > HUD_SIZE[1] - _GRAPH_H - 20:
                break
        _graph(surface, *frame_graph(show))
        texture = sdl_video.Texture.from_surface(self._renderer, surface)
        self._renderer.clear()
        texture.draw()
        self._renderer.present()
        self.draws += 1

    def close(self) -> None:
        logging.getLogger().removeHandler(self.warnings)
        self._close_window()


def _graph(surface: pygame.Surface, intervals_ms: list[float], target_ms: float) -> None:
    """Frame times as bars (one px each, newest right), late ones red, the target as a line."""
    w, h = surface.get_size()
    top = h - _GRAPH_H
    scale = (_GRAPH_H - 4) / _GRAPH_MS
    for i, ms in enumerate(intervals_ms[-(w - 20) :]):
        bar = min(ms, _GRAPH_MS) * scale
        colour = _LATE if target_ms > 0 and ms > 1.5 * target_ms else _DIM
        pygame.draw.line(surface, colour, (10 + i, h - 2), (10 + i, h - 2 - int(bar)))
    if target_ms > 0:
        y = h - 2 - int(target_ms * scale)
        pygame.draw.line(surface, _LINE, (10, y), (w - 10, y))
    pygame.draw.line(surface, _DIM, (10, top), (w - 10, top))
