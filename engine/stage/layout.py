"""Pure geometry for placing a frame of one size on a canvas of another.

Used by the live window (GPU scaling destination rectangle) and by offline
rendering (``record.compose``) so both place frames identically.
"""

from __future__ import annotations

import re

__all__ = ["ASPECT_MODES", "fit_rect", "parse_size"]

# fit: letterbox/pillarbox, whole frame visible, black bars.
# fill: cover the canvas, keep the aspect, crop what overflows.
# stretch: cover the canvas exactly, distorting the aspect.
ASPECT_MODES = ("fit", "fill", "stretch")

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def fit_rect(src_w: int, src_h: int, dst_w: int, dst_h: int, mode: str) -> tuple[int, int, int, int]:
    """Destination rectangle ``(x, y, w, h)`` in canvas pixels for a src frame.

    "fit" keeps the whole frame visible and centres it (rect inside the
    canvas); "fill" covers the canvas and centres the overflow, so the rect may
    be larger than the canvas with negative x or y (the caller crops);
    "stretch" is the whole canvas. Sizes in pixels, all > 0.
    """
    for name, value in (("src_w", src_w), ("src_h", src_h), ("dst_w", dst_w), ("dst_h", dst_h)):
        if value <= 0:
            raise ValueError(f"{name}: expected a positive size in pixels, got {value}")
    if mode == "stretch":
        return 0, 0, dst_w, dst_h
    if mode == "fit":
        scale = min(dst_w / src_w, dst_h / src_h)
    elif mode == "fill":
        scale = max(dst_w / src_w, dst_h / src_h)
    else:
        raise ValueError(f"aspect: expected one of {', '.join(ASPECT_MODES)}, got {mode!r}")
    # round() keeps the constrained side exactly equal to the canvas side; at
    # least 1 px so a very thin frame still shows.
    w = max(1, round(src_w * scale))
    h = max(1, round(src_h * scale))
    if mode == "fit":
        w, h = min(w, dst_w), min(h, dst_h)
    else:
        w, h = max(w, dst_w), max(h, dst_h)
    # Floor division centres; for "fill" it gives the negative crop offset.
    return (dst_w - w) // 2, (dst_h - h) // 2, w, h


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"1280x720"`` into ``(1280, 720)``; ValueError if malformed or zero."""
    match = _SIZE_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected WxH, e.g. 1280x720, got {text!r}")
    w, h = int(match.group(1)), int(match.group(2))
    if w <= 0 or h <= 0:
        raise ValueError(f"expected WxH, e.g. 1280x720, both sides > 0, got {text!r}")
    return w, h
