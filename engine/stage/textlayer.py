"""Typography: generated lines drawn over an RGB frame (or alone on black).

A TextLayer holds the lines it was given, each with its arrival time, and
draws them as a function of show time t only: a new line appears at the
bottom of the block and fades in; older lines scroll up one line height (over
`scroll` seconds); a line pushed out of the top fades out while it moves one
more line up. So the same lines and t always give the same pixels, and an
offline render matches the live show.

Cheap per frame: each line's glyph coverage (pygame.font, antialiased) is
rendered once and cached; a frame only blends the lines' rectangles, in
integer arithmetic on uint8 pixels, and touches nothing else. draw() returns
the bounding box of every pixel it may have changed.

pygame.font needs pygame.font.init() but no display (tests run with
SDL_VIDEODRIVER=dummy). The default font is pygame's bundled freesansbold.ttf.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import ImageFont

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on stdout (see video.py)
import pygame  # noqa: E402

from engine.errors import StartupError  # noqa: E402
from engine.seq.text import wrap_line  # noqa: E402

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive
_CACHE_LINES = 256  # rendered lines kept (LRU)


@dataclass
class TextStyle:
    """How the text looks. size and font are read when the layer is built; the rest every frame.

    font: a .ttf/.otf file, or None for pygame's default font (freesansbold.ttf).
    size: font size in pixels.
    colour: RGB, 0-255 each.
    x, y: top-left corner of the text block as fractions of the frame's width and height.
    line_length: add_text() wraps at a word boundary near this many characters.
    lines: lines visible in the block; the newest is at the bottom.
    fade: seconds a line takes to fade in, and to fade out once pushed out of the block.
    scroll: seconds the lines take to move up one line when a new one arrives (0: jump).
    alpha: overall opacity, 0-1.
    """

    font: str | None = None
    size: int = 32
    colour: tuple[int, int, int] = (255, 255, 255)
    x: float = 0.05
    y: float = 0.6
    line_length: int = 40
    lines: int = 4
    fade: float = 0.5
    scroll: float = 0.3
    alpha: float = 1.0

    def validate(self) -> None:
        """ValueError naming the first bad field (setup time; the show clamps instead)."""
        if not 4 <= int(self.size) <= 512:
            raise ValueError(f"text size must be from 4 to 512 px, got {self.size}")
        if len(self.colour) != 3 or not all(0 <= int(c) <= 255 for c in self.colour):
            raise ValueError(f"text colour must be three numbers from 0 to 255, got {self.colour}")
        if not 1 <= int(self.lines) <= 100 or not 1 <= int(self.line_length) <= 1000:
            raise ValueError(f"text lines must be 1-100 and line_length 1-1000, got {self.lines}, {self.line_length}")
        for name in ("x", "y", "alpha"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"text {name} must be from 0 to 1, got {getattr(self, name)}")
        for name in ("fade", "scroll"):
            if not 0.0 <= float(getattr(self, name)) <= 60.0:
                raise ValueError(f"text {name} must be from 0 to 60 seconds, got {getattr(self, name)}")


def load_font(path: str | None, size: int) -> pygame.font.Font:
    """pygame font (default font for None); StartupError naming the file if it cannot be used."""
    if not pygame.font.get_init():
        pygame.font.init()
    if path is not None:
        _check_font_file(path, size)
    try:
        return pygame.font.Font(path, int(size))
    except (OSError, pygame.error) as exc:
        raise StartupError(f"font file '{path}' cannot be read as a font: {exc}") from exc


def _check_font_file(path: str, size: int) -> None:
    """StartupError unless FreeType (through Pillow) reads `path` as a font."""
    problem = font_problem(path, size)
    if problem is not None:
        raise StartupError(f"font file '{path}' {problem}")


def font_problem(path: str | Path, size: int = 24) -> str | None:
    """Why `path` cannot be used as a font (None when FreeType, through Pillow, reads it).

    Needed because pygame-ce 2.5 accepts a file that is not a font and then
    crashes the process (segfault) on its first use (measured with a text file).
    """
    if not Path(path).is_file():
        return "not found; give a .ttf/.otf file or leave the font unset"
    try:
        ImageFont.truetype(str(path), int(size))
    except (OSError, ValueError) as exc:
        return f"cannot be read as a font ({exc}); give a .ttf/.otf file"
    return None


def _ease(u: float) -> float:
    """0..1 -> 0..1, smooth at both ends (smoothstep)."""
    u = min(1.0, max(0.0, u))
    return u * u * (3.0 - 2.0 * u)


class TextLayer:
    """Lines with arrival times -> typography blended into (H, W, 3) uint8 frames."""

    def __init__(self, style: TextStyle | None = None, font: pygame.font.Font | None = None) -> None:
        """`font`: the style's font already loaded at style.size (skips the file check)."""
        self.style = style or TextStyle()
        self.style.validate()
        self.font = font if font is not None else load_font(self.style.font, self.style.size)
        self.line_height = self.font.get_linesize()  # pixels from one line's top to the next
        self._lines: list[tuple[str, float]] = []  # (text, arrival time), oldest first
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()  # text -> (h, w) uint16 coverage 0..256
        self._factors: OrderedDict[tuple[str, tuple[int, ...]], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def add_line(self, text: str, t: float) -> None:
        """A finished line arriving at show time t (times never go back: an earlier t is raised)."""
        if self._lines and t < self._lines[-1][1]:
            t = self._lines[-1][1]
        self._lines.append((text.rstrip("\n"), float(t)))

    def add_text(self, text: str, t: float) -> None:
        """Any text arriving at t: split at newlines, long lines wrapped near style.line_length."""
        length = max(1, int(self.style.line_length))
        for part in text.split("\n"):
            while len(part) > length:
                done, part = wrap_line(part, length)
                self.add_line(done, t)
            self.add_line(part, t)

    def clear(self) -> None:
        self._lines.clear()

    def has_lines(self) -> bool:
        return bool(self._lines)

    def resized(self, size: int, font: pygame.font.Font) -> TextLayer:
        """A layer like this one at another font size (`font` loaded at `size`), taking its lines."""
        layer = TextLayer(replace(self.style, size=size), font)
        layer._lines = self._lines
        self._lines = []
        return layer

    def draw(self, frame: np.ndarray, t: float) -> Box | None:
        """Blend the text visible at t into `frame` (H, W, 3) uint8 in place.

        Returns the bounding box (x0, y0, x1, y1) of the pixels it may have
        changed (every other pixel is untouched), or None if it drew nothing.
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        box: Box | None = None
        for text, top, opacity in self._layout(frame.shape[0], t):
            drawn = self._blend(frame, text, round(self.style.x * frame.shape[1]), top, opacity)
            if drawn is not None:
                box = (
                    drawn
                    if box is None
                    else (min(box[0], drawn[0]), min(box[1], drawn[1]), max(box[2], drawn[2]), max(box[3], drawn[3]))
                )
        return box

    def render(self, size: tuple[int, int], t: float) -> np.ndarray:
        """The text alone on black: a new (H, W, 3) uint8 array for size = (W, H)."""
        frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        self.draw(frame, t)
        return frame

    def _layout(self, frame_h: int, t: float) -> list[tuple[str, int, float]]:
        """(text, top pixel row, opacity 0..1) of every line visible at t. Lines gone for good
        are forgotten first, so the work stays that of one block, however long the show."""
        self._prune(t)
        st = self.style
        shown = [(text, t0) for text, t0 in self._lines if t0 <= t]
        slots = max(1, int(st.lines))
        bottom_top = round(st.y * frame_h) + (slots - 1) * self.line_height  # top row of the newest slot
        out = []
        for j, (text, t0) in enumerate(shown):
            later = [t1 for _, t1 in shown[j + 1 :]]
            # How many lines this one has moved up: one per later line, eased over `scroll` s.
            moved = sum(1.0 if st.scroll <= 0 else _ease((t - t1) / st.scroll) for t1 in later)
            opacity = _ramp(t - t0, st.fade)
            if len(later) >= slots:  # pushed out of the block by line j + slots
                opacity = min(opacity, 1.0 - _ramp(t - later[slots - 1], st.fade))
            opacity *= min(1.0, max(0.0, float(st.alpha)))
            if opacity > 0.0 and text.strip():
                out.append((text, bottom_top - round(moved * self.line_height), opacity))
        return out

    def _prune(self, t: float) -> None:
        """Forget lines that have faded out for good (pushed out more than `fade` s ago)."""
        slots = max(1, int(self.style.lines))
        fade = max(0.0, float(self.style.fade))
        drop = 0
        while drop + slots < len(self._lines) and t >= self._lines[drop + slots][1] + fade + 1e-9:
            drop += 1
        if drop:
            del self._lines[:drop]

    def _coverage(self, text: str) -> np.ndarray:
        """Glyph coverage of `text`, (h, w) uint16 scaled 0..256, rendered once and cached."""
        cov = self._cache.get(text)
        if cov is not None:
            self._cache.move_to_end(text)
            return cov
        surf = self.font.render(text, True, (255, 255, 255))
        alpha = pygame.surfarray.array_alpha(surf).T  # (w, h) -> (h, w) uint8
        cov = (alpha.astype(np.uint16) * 256 + 127) // 255  # 0..256 so that full coverage is exact
        self._cache[text] = cov
        if len(self._cache) > _CACHE_LINES:
            self._cache.popitem(last=False)
        return cov

    def _blend(self, frame: np.ndarray, text: str, left: int, top: int, opacity: float) -> Box | None:
        """Blend one line at (left, top) with `opacity`; returns the clipped box or None."""
        cov = self._coverage(text)
        h, w = cov.shape
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + w, frame.shape[1]), min(top + h, frame.shape[0])
        if x1 <= x0 or y1 <= y0:
            return None
        rows, cols = slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)
        colour = tuple(int(c) for c in self.style.colour)
        op = int(round(opacity * 256))
        if op >= 256:  # fully faded in, the usual case: both factors come from the cache
            keep, paint = self._full_factors(text, cov, colour)
            keep, paint = keep[rows, cols], paint[rows, cols]
        else:
            a = (cov[rows, cols] * op + 128) >> 8  # (h', w') 0..256
            keep = (256 - a)[..., None]  # (h', w', 1)
            paint = a[..., None] * np.asarray(colour, dtype=np.uint16) + 128  # (h', w', 3)
        region = frame[y0:y1, x0:x1]  # view, (h', w', 3)
        # out = (src * (256 - a) + colour * a + 128) >> 8: where a == 0 this is src exactly;
        # at most 255 * 256 + 128, so uint16 never overflows.
        mixed = region.astype(np.uint16)
        mixed *= keep
        mixed += paint
        mixed >>= 8
        region[...] = mixed
        return x0, y0, x1, y1

    def _full_factors(self, text: str, cov: np.ndarray, colour: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(256 - a (h, w, 1), colour * a + 128 (h, w, 3)) at full opacity, cached per text and colour."""
        key = (text, colour)
        hit = self._factors.get(key)
        if hit is None:
            hit = ((256 - cov)[..., None], cov[..., None] * np.asarray(colour, dtype=np.uint16) + 128)
            self._factors[key] = hit
            if len(self._factors) > _CACHE_LINES:
                self._factors.popitem(last=False)
        else:
            self._factors.move_to_end(key)
        return hit


def _ramp(elapsed: float, seconds: float) -> float:
    """0 -> 1 over `seconds` (1 at once if seconds is 0), clamped; for fades."""
    if seconds <= 0.0:
        return 1.0 if elapsed >= 0.0 else 0.0
    return min(1.0, max(0.0, elapsed / seconds))
