"""Layout maths, the headless window, and a real X window under Xvfb."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pygame
import pytest

from engine.devices.window import DisplayError, VideoOutput, has_display
from engine.stage.layout import fit_rect, parse_size
from tests.xvfb import screenshot, xvfb  # noqa: F401  (xvfb is a fixture)

REPO = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("src", "dst", "mode", "rect"),
    [
        ((128, 128), (1280, 720), "fit", (280, 0, 720, 720)),
        ((1920, 1080), (1280, 720), "fit", (0, 0, 1280, 720)),
        ((640, 480), (1280, 720), "fit", (160, 0, 960, 720)),
        ((1280, 720), (1024, 1024), "fit", (0, 224, 1024, 576)),
        ((128, 128), (1280, 720), "fill", (0, -280, 1280, 1280)),
        ((1280, 720), (1024, 1024), "fill", (-398, 0, 1820, 1024)),
        ((128, 128), (1280, 720), "stretch", (0, 0, 1280, 720)),
        ((64, 48), (64, 48), "fit", (0, 0, 64, 48)),
    ],
)
def test_fit_rect(src: tuple, dst: tuple, mode: str, rect: tuple) -> None:
    assert fit_rect(*src, *dst, mode) == rect


def test_fit_rect_invariants() -> None:
    rng = np.random.default_rng(0)
    for sw, sh, dw, dh in rng.integers(1, 4000, (200, 4)):
        x, y, w, h = fit_rect(int(sw), int(sh), int(dw), int(dh), "fit")
        assert 0 <= x and 0 <= y and x + w <= dw and y + h <= dh
        assert w == dw or h == dh  # touches two sides
        x, y, w, h = fit_rect(int(sw), int(sh), int(dw), int(dh), "fill")
        assert x <= 0 and y <= 0 and x + w >= dw and y + h >= dh
        assert w == dw or h == dh


def test_fit_rect_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="aspect"):
        fit_rect(10, 10, 10, 10, "zoom")
    with pytest.raises(ValueError, match="src_w"):
        fit_rect(0, 10, 10, 10, "fit")


def test_parse_size() -> None:
    assert parse_size("1280x720") == (1280, 720)
    assert parse_size(" 64X48 ") == (64, 48)
    for bad in ("1280", "1280x", "x720", "12.5x4", "-3x4", "0x10", "axb", ""):
        with pytest.raises(ValueError, match="expected WxH, e.g. 1280x720"):
            parse_size(bad)


# ---------------------------------------------------------------- headless


@pytest.fixture
def headless() -> VideoOutput:
    out = VideoOutput((128, 96), window_size=(640, 360), headless=True, title="test")
    yield out
    out.close()


def test_headless_present_and_buffer(headless: VideoOutput) -> None:
    buf = headless.frame_buffer
    assert buf.shape == (96, 128, 3) and buf.dtype == np.uint8 and buf.flags.c_contiguous
    assert headless.window_size == (640, 360)
    assert headless.dst_rect == (80, 0, 480, 360)
    assert headless.vsync_active is False
    for i in range(5):
        buf[...] = (i * 40, 255 - i * 40, 7)
        headless.present()
    assert headless.frame_buffer is buf  # no reallocation per frame
    headless.set_title("scene: aurora")


def test_headless_shows_what_the_buffer_holds(headless: VideoOutput) -> None:
    headless.frame_buffer[...] = (200, 30, 60)
    headless.present()
    shot = headless._renderer.to_surface()  # what the renderer drew
    assert tuple(shot.get_at((320, 180)))[:3] == (200, 30, 60)
    assert tuple(shot.get_at((10, 180)))[:3] == (0, 0, 0)  # letterbox bar


class FadingPatch:
    """An overlay whose text block fades: a new RGBA patch of the same size every frame."""

    def __init__(self) -> None:
        self.alpha = 255

    def patch(self, size):
        rgba = np.zeros((20, 40, 4), np.uint8)
        rgba[..., :3] = (255, 255, 255)
        rgba[..., 3] = self.alpha
        return rgba, 100, 50


def test_headless_overlay_fades_through_one_texture(headless: VideoOutput) -> None:
    """Each frame of a fade shows that frame's alpha over the picture, and the patch
    texture is made once and updated, not created per frame."""
    headless.frame_buffer[...] = (0, 0, 100)
    headless.overlay = fading = FadingPatch()
    textures = set()
    for alpha in (255, 128, 0):
        fading.alpha = alpha
        headless.present()
        textures.add(id(headless._overlay_tex))
        got = tuple(headless._renderer.to_surface().get_at((110, 60)))[:3]
        a = alpha / 255
        want = (round(255 * a), round(255 * a), round(255 * a + 100 * (1 - a)))
        assert all(abs(g - w) <= 2 for g, w in zip(got, want)), (alpha, got, want)
    assert len(textures) == 1


def test_headless_resize_frames(headless: VideoOutput) -> None:
    headless.resize_frames((256, 256))
    assert headless.frame_buffer.shape == (256, 256, 3)
    assert headless.frame_size == (256, 256)
    assert headless.dst_rect == (140, 0, 360, 360)
    headless.present()
    with pytest.raises(ValueError, match="frame_size"):
        headless.resize_frames((0, 10))


def _key(key: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


def test_poll_maps_keys_to_actions(headless: VideoOutput) -> None:
    headless.poll()  # drop window-shown events
    keys = [
        pygame.K_SPACE,
        pygame.K_b,
        pygame.K_f,
        pygame.K_PLUS,
        pygame.K_EQUALS,
        pygame.K_KP_PLUS,
        pygame.K_MINUS,
        pygame.K_KP_MINUS,
        pygame.K_a,
        pygame.K_ESCAPE,
    ]
    for key in keys:
        _key(key)
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert headless.poll() == ["next", "blackout", "freeze", "faster", "faster", "faster", "slower", "slower", "quit"]
    assert headless.poll() == []


def test_display_out_of_range_is_a_display_error() -> None:
    with pytest.raises(DisplayError, match=r"--display 7: this machine has 1 display \(index 0\)"):
        VideoOutput((64, 64), display=7, headless=True)
    with pytest.raises(DisplayError, match="--display -1"):
        VideoOutput((64, 64), display=-1, headless=True)


def test_no_display_on_linux_is_a_display_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    assert has_display() is False
    with pytest.raises(DisplayError, match="--display 0: this machine has no display"):
        VideoOutput((64, 64), display=0)
    monkeypatch.setenv("SDL_VIDEODRIVER", "kmsdrm")
    assert has_display() is True
    monkeypatch.setenv("SDL_VIDEODRIVER", "offscreen")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert has_display() is True


def test_bad_aspect_is_rejected() -> None:
    with pytest.raises(ValueError, match="aspect"):
        VideoOutput((64, 64), headless=True, aspect="zoom")


# ---------------------------------------------------------------- Xvfb


_CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from engine.devices.window import DisplayError, VideoOutput, available_displays
    print("displays", available_displays(), flush=True)
    try:
        VideoOutput((8, 8), display=available_displays())
    except DisplayError as exc:
        print("error", exc, flush=True)
    out = VideoOutput((160, 80), fullscreen=True, display=0, title="xvfb test")
    print("window", *out.window_size, *out.dst_rect, int(out.vsync_active), flush=True)
    out.frame_buffer[...] = (200, 30, 60)
    for _ in range(3):
        out.present()
        out.poll()
    print("ready", flush=True)
    sys.stdin.readline()  # keep the window up while the parent takes a screenshot
    out.close()
    """
)


@pytest.mark.integration
@pytest.mark.parametrize("xvfb", [["320x240x24"]], indirect=True, ids=["320x240"])
def test_real_window_under_xvfb(xvfb: str) -> None:
    display = xvfb
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = display
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(repo=str(REPO))],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        lines = {}
        for line in child.stdout:
            word, _, rest = line.strip().partition(" ")
            lines[word] = rest
            if word == "ready":
                break
        assert "ready" in lines, child.stderr.read()
        assert lines["displays"] == "1"
        assert lines["error"] == "--display 1: this machine has 1 display (index 0)"
        # Fullscreen on a 320x240 screen: a 2:1 frame letterboxed to 320x160 at y=40.
        assert lines["window"].split()[:6] == ["320", "240", "0", "40", "320", "160"]
        shot = screenshot(display)
        assert shot.shape == (240, 320, 3)
        assert tuple(shot[120, 160]) == (200, 30, 60)
        assert tuple(shot[80, 10]) == (200, 30, 60)
        assert tuple(shot[10, 160]) == (0, 0, 0)  # bar above
        assert tuple(shot[230, 160]) == (0, 0, 0)  # bar below
    finally:
        child.communicate("\n", timeout=20)
