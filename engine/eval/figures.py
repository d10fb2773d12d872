"""Plain PNG figures for the evaluation report, drawn with Pillow only (no plotting library).

Charts: grouped bars (histograms of two sets side by side) and a polyline, each
with a title, axis labels, y ticks and a legend. Picture figures: a grid of
samples, a strip of walk frames, and sample / nearest-training-picture pairs
labelled with their distance. Every figure is written atomically as PNG.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from engine.files.atomic import atomic_write_bytes
from engine.train.images import to_uint8_grid

WIDTH, HEIGHT = 720, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 64  # plot margins in px
COLOURS = ((52, 101, 164), (204, 82, 40), (78, 154, 6), (117, 80, 123))
GRID = (225, 225, 225)
INK = (20, 20, 20)
_FONT_PX = 13


def _font(px: int = _FONT_PX) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=px)  # Pillow's bundled font (needs FreeType)
    except (TypeError, OSError, ImportError):  # old Pillow or no FreeType: the bitmap font
        return ImageFont.load_default()


def save_png(image: Image.Image, path: str | os.PathLike[str]) -> None:
    """Write `image` as PNG, atomically."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _nice_step(top: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `top`."""
    raw = max(top, 1e-12) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _axes(title: str, xlabel: str, ylabel: str, y_low: float, y_high: float) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A white canvas with title, axis labels, horizontal grid lines and y tick labels."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    font = _font()
    draw.text((LEFT, 10), title, fill=INK, font=_font(15))
    draw.text(((LEFT + WIDTH - RIGHT) // 2, HEIGHT - 18), xlabel, fill=INK, font=font, anchor="mm")
    label = Image.new("RGBA", (HEIGHT - TOP - BOTTOM, 18), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((label.width // 2, 9), ylabel, fill=INK, font=font, anchor="mm")
    rotated = label.rotate(90, expand=True)
    img.paste(rotated, (4, TOP), rotated)
    step = _nice_step(y_high - y_low)
    tick = math.floor(y_low / step) * step
    while tick <= y_high + 1e-9 * step:
        y = _y(tick, y_low, y_high)
        draw.line((LEFT, y, WIDTH - RIGHT, y), fill=GRID)
        draw.text((LEFT - 6, y), _fmt(tick), fill=INK, font=font, anchor="rm")
        tick += step
    draw.line((LEFT, TOP, LEFT, HEIGHT - BOTTOM), fill=INK)
    draw.line((LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT, HEIGHT - BOTTOM), fill=INK)
    return img, draw


def _y(value: float, low: float, high: float) -> float:
    span = high - low if high > low else 1.0
    return HEIGHT - BOTTOM - (value - low) / span * (HEIGHT - TOP - BOTTOM)


def _legend(draw: ImageDraw.ImageDraw, names: Sequence[str]) -> None:
    x = float(WIDTH - RIGHT - 10)
    for i, name in reversed(list(enumerate(names))):
        width = draw.textlength(name, font=_font())
        x -= width + 22
        draw.rectangle((x, 14, x + 12, 26), fill=COLOURS[i % len(COLOURS)])
        draw.text((x + 16, 20), name, fill=INK, font=_font(), anchor="lm")


def bar_chart(
    labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str, xlabel: str, ylabel: str
) -> Image.Image:
    """Grouped bars: one group per label, one bar per series (e.g. data vs generated shares)."""
    names = list(series)
    top = max((max(v, default=0.0) for v in series.values()), default=0.0) or 1.0
    img, draw = _axes(title, xlabel, ylabel, 0.0, top * 1.05)
    font = _font(11)
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    bar = slot * 0.8 / max(len(names), 1)
    every = max(1, math.ceil(len(labels) * 34 / (WIDTH - LEFT - RIGHT)))  # label spacing: ~34 px each
    for i, label in enumerate(labels):
        x0 = LEFT + i * slot + slot * 0.1
        for j, name in enumerate(names):
            value = float(series[name][i])
            if value > 0:
                y = _y(value, 0.0, top * 1.05)
                draw.rectangle((x0 + j * bar, y, x0 + (j + 1) * bar - 1, HEIGHT - BOTTOM), fill=COLOURS[j])
        if i % every == 0:
            draw.text((LEFT + (i + 0.5) * slot, HEIGHT - BOTTOM + 10), label, fill=INK, font=font, anchor="mm")
    _legend(draw, names)
    return img


def line_chart(
    values: Sequence[float], title: str, xlabel: str, ylabel: str, marks: Mapping[str, float] | None = None
) -> Image.Image:
    """A polyline of values over their index; `marks` draws labelled horizontal lines (e.g. the median)."""
    extra = list((marks or {}).values())
    top = max([*values, *extra, 1e-12])
    img, draw = _axes(title, xlabel, ylabel, 0.0, top * 1.05)
    font = _font()
    n = len(values)
    xs = [LEFT + (i / max(n - 1, 1)) * (WIDTH - LEFT - RIGHT) for i in range(n)]
    points = [(x, _y(v, 0.0, top * 1.05)) for x, v in zip(xs, values)]
    if len(points) > 1:
        draw.line(points, fill=COLOURS[0], width=2)
    step = _nice_step(max(n - 1, 1), 8)
    i = 0.0
    while i <= n - 1:
        x = LEFT + (i / max(n - 1, 1)) * (WIDTH - LEFT - RIGHT)
        draw.text((x, HEIGHT - BOTTOM + 10), _fmt(i), fill=INK, font=font, anchor="mm")
        i += max(step, 1.0)
    for k, (name, value) in enumerate((marks or {}).items()):
        y = _y(value, 0.0, top * 1.05)
        draw.line((LEFT, y, WIDTH - RIGHT, y), fill=COLOURS[(k + 1) % len(COLOURS)], width=1)
        draw.text((WIDTH - RIGHT - 4, y - 8), f"{name} {_fmt(value)}", fill=INK, font=font, anchor="rm")
    return img


def histogram(
    samples: Mapping[str, torch.Tensor], bins: int, title: str, xlabel: str, ylabel: str = "share"
) -> Image.Image:
    """Histograms of several 1-D value sets over shared bins, as grouped bars of each set's shares."""
    values = torch.cat([v.double().flatten() for v in samples.values()])
    low, high = float(values.min()), float(values.max())
    high = high if high > low else low + 1.0
    edges = torch.linspace(low, high, bins + 1, dtype=torch.float64)
    shares = {}
    for name, v in samples.items():
        counts = torch.histc(v.double(), bins=bins, min=low, max=high)
        shares[name] = (counts / max(float(counts.sum()), 1.0)).tolist()
    labels = [_fmt(float(edges[i] + edges[i + 1]) / 2) for i in range(bins)]
    return bar_chart(labels, shares, title, xlabel, ylabel)


def picture(images: torch.Tensor, nrow: int) -> Image.Image:
    """(N, 3, S, S) in [-1, 1] -> a grid picture, row-major, nrow per row."""
    return Image.fromarray(to_uint8_grid(images, nrow))


def pairs_figure(left: torch.Tensor, right: torch.Tensor, captions: Sequence[str], per_row: int = 4) -> Image.Image:
    """Pairs side by side (left[i] next to right[i], a caption under each pair); left, right (N, 3, S, S)."""
    n, _, s, _ = left.shape
    pad, caption_h = 8, 18
    cols = min(per_row, n)
    rows = math.ceil(n / cols)
    cell_w, cell_h = 2 * s + pad, s + caption_h + pad
    img = Image.new("RGB", (cols * cell_w + pad, rows * cell_h + pad), "white")
    draw = ImageDraw.Draw(img)
    font = _font(11)
    for i in range(n):
        x, y = pad + (i % cols) * cell_w, pad + (i // cols) * cell_h
        img.paste(picture(torch.stack([left[i], right[i]]), 2), (x, y))
        draw.text((x + s, y + s + caption_h // 2), captions[i], fill=INK, font=font, anchor="mm")
    return img
