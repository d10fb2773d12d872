"""TextLayer: draws only inside the box it reports, is a function of (lines, t), fades and scrolls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import StartupError
from engine.stage.textlayer import TextLayer, TextStyle

SIZE = (320, 180)  # (W, H)


def _frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)


def _layer(**style: object) -> TextLayer:
    layer = TextLayer(TextStyle(**{"size": 20, "lines": 3, "fade": 0.5, "scroll": 0.2, "y": 0.3, **style}))  # type: ignore[arg-type]
    for i, line in enumerate(["first line", "second one here", "third", "and a fourth"]):
        layer.add_line(line, float(i))
    return layer


def _outside(box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.ones((SIZE[1], SIZE[0]), dtype=bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = False
    return mask


@pytest.mark.parametrize("t", [0.1, 1.05, 3.1, 3.6, 10.0])
def test_only_pixels_inside_the_reported_box_change(t: float) -> None:
    before = _frame()
    frame = before.copy()
    box = _layer().draw(frame, t)
    assert box is not None
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= SIZE[0] and 0 <= y0 < y1 <= SIZE[1]
    assert np.array_equal(frame[_outside(box)], before[_outside(box)])
    assert (frame != before).any()


def test_text_near_the_edges_is_clipped() -> None:
    before = _frame(1)
    frame = before.copy()
    layer = TextLayer(TextStyle(size=40, x=0.9, y=0.95, lines=1, fade=0.0))
    layer.add_line("a long line that runs off the frame", 0.0)
    box = layer.draw(frame, 1.0)
    assert box is not None and box[2] == SIZE[0] and box[3] == SIZE[1]
    assert np.array_equal(frame[_outside(box)], before[_outside(box)])


def test_deterministic_for_lines_and_t() -> None:
    a, b = _frame(), _frame()
    box_a = _layer().draw(a, 3.13)
    layer = _layer()
    layer.draw(_frame(), 1.0)  # an earlier frame (and the glyph cache) changes nothing
    box_b = layer.draw(b, 3.13)
    assert box_a == box_b and np.array_equal(a, b)
    assert not np.array_equal(_layer().render(SIZE, 3.13), _layer().render(SIZE, 3.3))


def test_fade_in_and_out() -> None:
    layer = TextLayer(TextStyle(size=20, lines=2, y=0.5, fade=1.0, scroll=0.0, colour=(255, 255, 255)))
    layer.add_line("hello", 0.0)
    assert layer.draw(np.zeros((100, 200, 3), np.uint8), 0.0) is None  # not faded in yet
    levels = [int(layer.render((200, 100), t).max()) for t in (0.25, 0.5, 1.0, 2.0)]
    assert levels[0] < levels[1] < levels[2] == levels[3] == 255
    layer.add_line("two", 3.0)
    layer.add_line("three", 4.0)  # pushes "hello" out of the 2-line block: it fades out over 1 s
    above_block = slice(0, 50)  # the block starts at y = 0.5 * 100; "hello" is now above it
    peak = [int(layer.render((200, 100), t)[above_block].max()) for t in (4.0, 4.5, 5.0)]
    assert peak[0] == 255 and 100 < peak[1] < 160 and peak[2] == 0


def test_alpha_zero_draws_nothing_and_alpha_scales() -> None:
    layer = _layer(alpha=0.0)
    before = _frame()
    frame = before.copy()
    assert layer.draw(frame, 5.0) is None and np.array_equal(frame, before)
    half = _layer(alpha=0.5, colour=(200, 200, 200)).render(SIZE, 5.0)
    assert 95 <= half.max() <= 105


def test_scroll_moves_older_lines_up() -> None:
    layer = TextLayer(TextStyle(size=20, lines=3, fade=0.0, scroll=1.0))
    layer.add_line("IIII", 0.0)

    def top_row(t: float) -> int:
        rows = np.nonzero(layer.render(SIZE, t).any(axis=(1, 2)))[0]
        return int(rows[0])

    start = top_row(0.5)
    layer.add_line("mmmm", 1.0)
    assert top_row(1.0) == start  # the move begins when the new line arrives
    mid, end = top_row(1.5), top_row(2.0)
    assert end == start - layer.line_height and end < mid < start
    no_scroll = TextLayer(TextStyle(size=20, lines=3, fade=0.0, scroll=0.0))
    no_scroll.add_line("IIII", 0.0)
    no_scroll.add_line("mmmm", 1.0)
    assert int(np.nonzero(no_scroll.render(SIZE, 1.0).any(axis=(1, 2)))[0][0]) == end


def test_add_text_wraps_and_old_lines_are_forgotten() -> None:
    layer = TextLayer(TextStyle(size=16, lines=2, line_length=10, fade=0.1))
    layer.add_text("one two three four five\nsix", 0.0)
    assert [text for text, _ in layer._lines] == ["one two", "three four", "five", "six"]
    layer.draw(np.zeros((100, 200, 3), np.uint8), 0.5)
    assert len(layer._lines) == 2  # faded out for good: dropped


def test_bad_style_and_font() -> None:
    with pytest.raises(ValueError, match="colour"):
        TextLayer(TextStyle(colour=(300, 0, 0)))
    with pytest.raises(ValueError, match="x must be"):
        TextLayer(TextStyle(x=1.5))
    with pytest.raises(StartupError, match="missing.ttf"):
        TextLayer(TextStyle(font="missing.ttf"))
    with pytest.raises(ValueError, match="uint8"):
        _layer().draw(np.zeros((10, 10, 4), np.uint8), 1.0)


def test_font_file_is_used(tmp_path: Path) -> None:
    import pygame

    default = Path(pygame.__file__).parent / "freesansbold.ttf"
    layer = TextLayer(TextStyle(font=str(default), size=24, y=0.1))
    layer.add_line("font", 0.0)
    assert layer.render(SIZE, 5.0).max() > 0
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font")
    with pytest.raises(StartupError, match="junk.ttf"):
        TextLayer(TextStyle(font=str(junk)))


def test_stream_to_layer_is_repeatable() -> None:
    from engine.seq.text import TextStream, TextStreamParams
    from tests.test_text_model import tiny_model

    def show(seconds: float = 4.0, fps: int = 30) -> np.ndarray:
        stream = TextStream(tiny_model(), TextStreamParams(rate=40.0, line_length=12, seed=4))
        layer = TextLayer(TextStyle(size=16, lines=3, y=0.2))
        frame = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        for i in range(round(seconds * fps)):
            t = (i + 1) / fps
            stream.advance(1.0 / fps)
            for line in stream.take_lines():
                layer.add_line(line, t)
            frame = _frame(i)
            layer.draw(frame, t)
        return frame

    last = show()
    assert np.array_equal(last, show()) and not np.array_equal(last, _frame(119))
