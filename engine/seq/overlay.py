"""The text layer on stage: typography drawn over the picture at output resolution.

`TextOverlay` keeps a `TextLayer` whose style follows the `/deck/<d>/text/*`
params, and gives each output what it needs:

- `draw(frame)` blends the text into a composed output frame in place (the
  offline render, and anything else that holds the final pixels);
- `patch(size)` returns only the text's rectangle as straight-alpha RGBA plus
  its position, which the live window uploads as a small blended texture on
  top of the scaled picture, so text stays sharp at window resolution and
  costs only its own rectangle. SDL's blend (src * a + dst * (1 - a)) is the
  same formula `draw` uses, so window and render agree.

Text fades with the blackout (its opacity is multiplied by 1 - blackout level)
and is drawn after the brightness gain, so with brightness 0 the text stands
alone on black.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pygame  # noqa: E402 - after textlayer, which keeps pygame's banner off stdout

from engine.core.space import DECKS
from engine.stage.textlayer import TextLayer, TextStyle

if TYPE_CHECKING:
    from pathlib import Path

START_PX = 24  # font size of the layer before the first frame tells the output height
MAX_FONTS = 64  # loaded sizes kept (a font is ~0.05-0.1 ms to load; the knob spans 4-512 px)


class TextOverlay:
    """Text lines (with arrival times) -> pixels, styled by the registry each frame."""

    def __init__(
        self,
        get: Callable[[str], float],
        now: Callable[[], float],
        dim: Callable[[], float] = lambda: 0.0,
        font: Path | None = None,
        deck: str = DECKS[0],
    ) -> None:
        self.get, self.now, self.dim = get, now, dim
        self.base = f"/deck/{deck}/text"  # the deck whose text params style the layer
        self.font = str(font) if font else None
        # Built now, so a font file that is not a font stops startup (not the show at its first line).
        self._layer = TextLayer(TextStyle(font=self.font, size=START_PX))
        self._fonts: dict[int, pygame.font.Font] = {START_PX: self._layer.font}  # pixel size -> font
        self._patch_key: tuple | None = None  # what the last patch showed
        self._patch: tuple[np.ndarray, int, int] | None = None

    # -- lines ----------------------------------------------------------------------------
    def add_line(self, text: str, t: float) -> None:
        self._layer.add_line(text, t)

    def clear(self) -> None:
        self._layer.clear()

    # -- style ----------------------------------------------------------------------------
    def _styled(self, frame_h: int) -> TextLayer:
        """The layer for this frame height; a turn of the size knob swaps in a font of the new
        pixel size (each size loaded once: a sweep reloads nothing it has seen)."""
        g = self.get
        size_px = max(4, min(512, round(g(f"{self.base}/size") * frame_h)))
        if size_px != self._layer.style.size:
            font = self._fonts.get(size_px)
            if font is None:
                if len(self._fonts) >= MAX_FONTS:
                    self._fonts.clear()
                font = self._fonts[size_px] = pygame.font.Font(self.font, size_px)
            self._layer = self._layer.resized(size_px, font)
        st = self._layer.style
        red, green, blue = (round(255 * g(f"{self.base}/{c}")) for c in ("red", "green", "blue"))
        st.colour = (red, green, blue)
        st.x, st.y = g(f"{self.base}/x"), g(f"{self.base}/y")
        st.lines, st.line_length = int(g(f"{self.base}/lines")), int(g(f"{self.base}/line_length"))
        st.fade, st.scroll = g(f"{self.base}/fade"), g(f"{self.base}/scroll")
        st.alpha = g(f"{self.base}/alpha") * (1.0 - self.dim())
        return self._layer

    def visible(self) -> bool:
        return self._layer.has_lines() and self.get(f"{self.base}/on") >= 0.5 and self.get(f"{self.base}/alpha") > 0.0

    # -- drawing --------------------------------------------------------------------------
    def draw(self, frame: np.ndarray) -> tuple[int, int, int, int] | None:
        """Blend the text into `frame` (H, W, 3) uint8; returns the box it touched."""
        if not self.visible():
            return None
        return self._styled(frame.shape[0]).draw(frame, self.now())

    def patch(self, size: tuple[int, int]) -> tuple[np.ndarray, int, int] | None:
        """(RGBA (h, w, 4) uint8 of the text's rectangle, x, y) for a (W, H) output, or None.

        Straight alpha: the colour is uniform and the glyph coverage times each line's
        opacity is the alpha, so SDL's blend gives what `draw` computes.
        """
        if not self.visible():
            return None
        w, h = size
        layer = self._styled(h)
        left = round(layer.style.x * w)
        layout = [(text, top, int(round(opacity * 256))) for text, top, opacity in layer._layout(h, self.now())]
        if not layout:
            return None
        key = (tuple(layout), layer.style.colour, left, size, layer.style.size)
        if key == self._patch_key:  # a still text block: the same patch (and texture) as last frame
            return self._patch
        placed = [(layer._coverage(text), top, op) for text, top, op in layout]  # (coverage 0..256, top, opacity)
        x0 = max(left, 0)
        y0 = max(min(top for _, top, _ in placed), 0)
        x1 = min(max(left + c.shape[1] for c, _, _ in placed), w)
        y1 = min(max(top + c.shape[0] for c, top, _ in placed), h)
        if x1 <= x0 or y1 <= y0:
            return None
        rgba = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
        rgba[..., :3] = np.asarray(layer.style.colour, np.uint8)
        alpha = rgba[..., 3]
        for cov, top, op in placed:
            ty0, ty1 = max(top, y0), min(top + cov.shape[0], y1)
            tx1 = min(left + cov.shape[1], x1)
            if ty1 <= ty0 or tx1 <= x0:
                continue
            a = (cov[ty0 - top : ty1 - top, x0 - left : tx1 - left].astype(np.uint32) * op + 128) >> 8  # 0..256
            region = alpha[ty0 - y0 : ty1 - y0, : tx1 - x0]
            np.maximum(region, np.minimum(a, 255).astype(np.uint8), out=region)
        self._patch_key, self._patch = key, (rgba, x0, y0)
        return self._patch
