"""The live window: uint8 RGB frames scaled to the window ON THE GPU.

Frames are written by the caller into a preallocated ``(h, w, 3)`` uint8 numpy
array (``VideoOutput.frame_buffer``). A pygame Surface made once with
``pygame.image.frombuffer`` shares that memory, so ``present()`` only uploads
it to an SDL streaming texture and lets the SDL2 renderer (OpenGL, Direct3D or
Metal) scale it to the destination rectangle: no per-frame allocation and no
CPU scaling (``pygame.transform.smoothscale`` from 256x256 to 1920x1080 costs
a whole 60 fps frame on a 2-core machine).

``headless=True`` runs the very same code on SDL's dummy video driver, which
is what tests and servers without a screen use.

Display indices are 0-based, as SDL numbers them: ``--display 0`` is the
primary display, ``--display 1`` the next one (e.g. the projector).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import numpy as np

# pygame prints a banner to stdout on import; that would corrupt the CLI's
# machine-readable output (bench numbers, status JSON). Only if not yet imported.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402
from pygame._sdl2 import video as sdl_video  # noqa: E402

from engine.errors import DisplayError  # noqa: E402  (defined with the other startup errors)
from engine.stage.layout import ASPECT_MODES, fit_rect  # noqa: E402

__all__ = ["DisplayError", "VideoOutput", "available_displays", "has_display"]

log = logging.getLogger(__name__)

# SDL drivers that draw nowhere: a window on them is never seen.
_HEADLESS_DRIVERS = ("dummy", "offscreen")
_DEFAULT_WINDOW = (1280, 720)

# Key -> action. "+" and "-" accept the unshifted "=" key (US layouts put
# "+" on shift+"=") and the keypad, so a performer does not need shift.
_KEY_ACTIONS: dict[int, str] = {
    pygame.K_ESCAPE: "quit",
    pygame.K_SPACE: "next",
    pygame.K_b: "blackout",
    pygame.K_f: "freeze",
    pygame.K_PLUS: "faster",
    pygame.K_EQUALS: "faster",
    pygame.K_KP_PLUS: "faster",
    pygame.K_MINUS: "slower",
    pygame.K_KP_MINUS: "slower",
    pygame.K_l: "learn",
    pygame.K_t: "tap",
    pygame.K_x: "fade",
    pygame.K_c: "cut",
    pygame.K_TAB: "cue",
    pygame.K_h: "hud",
    pygame.K_RIGHTBRACKET: "setlist_next",
    pygame.K_LEFTBRACKET: "setlist_prev",
}

ACTIONS = ("quit", "next", "blackout", "freeze", "faster", "slower")
# F1..F8 recall presets "f1".."f8"; with shift held they save them (engine.stage.show.key_event).
_F_KEYS = {getattr(pygame, f"K_F{i}"): i for i in range(1, 9)}


def _headless_env() -> bool:
    """True when the environment already asks SDL for a driver that shows nothing."""
    return os.environ.get("SDL_VIDEODRIVER", "").lower() in _HEADLESS_DRIVERS


def has_display() -> bool:
    """Whether a window could be seen here (a guess made without touching SDL).

    On Linux and other X11/Wayland systems: DISPLAY or WAYLAND_DISPLAY is set,
    or SDL_VIDEODRIVER names a real driver (e.g. kmsdrm on a console). On
    macOS and Windows there is always a display.
    """
    if sys.platform in ("darwin", "win32"):
        return True
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return True
    driver = os.environ.get("SDL_VIDEODRIVER", "").lower()
    return bool(driver) and driver not in _HEADLESS_DRIVERS


def available_displays() -> int:
    """Number of real displays SDL can open windows on (0 if none).

    Initialises the SDL video subsystem briefly if nobody has yet.
    """
    if pygame.display.get_init() and pygame.display.get_driver() not in _HEADLESS_DRIVERS:
        return pygame.display.get_num_displays()
    if not has_display() or _headless_env():
        return 0
    try:
        pygame.display.init()
    except pygame.error as exc:
        log.warning("display present but SDL cannot open it: %s", exc)
        return 0
    try:
        return pygame.display.get_num_displays()
    finally:
        pygame.display.quit()


def _describe_displays(count: int) -> str:
    if count == 0:
        return "this machine has no display"
    if count == 1:
        return "this machine has 1 display (index 0)"
    return f"this machine has {count} displays (indices 0-{count - 1})"


def _init_video(headless: bool) -> bool:
    """Make sure SDL video runs on the right driver; True if we initialised it.

    Headless forces the dummy driver through SDL_VIDEODRIVER *before* init
    (SDL reads it only then) and restores the variable afterwards, so later
    code in the process still sees the user's real environment.
    """
    if pygame.display.get_init():
        on_dummy = pygame.display.get_driver() in _HEADLESS_DRIVERS
        if on_dummy == headless:
            return False
        pygame.display.quit()  # wrong driver for this output: start again
    if not headless:
        _init_real_display()
        return True
    previous = os.environ.get("SDL_VIDEODRIVER")
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    try:
        pygame.display.init()
    finally:
        if previous is None:
            del os.environ["SDL_VIDEODRIVER"]
        else:
            os.environ["SDL_VIDEODRIVER"] = previous
    return True


DISPLAY_ATTEMPTS = 2
DISPLAY_RETRY_S = 0.5


def _init_real_display() -> None:
    """Initialise SDL on a real display or raise DisplayError.

    When DISPLAY points at no X server, SDL silently falls back to its
    offscreen driver: the show would run with nothing visible. Refuse that.
    """
    where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "?"
    for attempt in range(DISPLAY_ATTEMPTS):
        try:
            pygame.display.init()
        except pygame.error as exc:
            raise DisplayError(f"cannot open display {where}: {exc}") from exc
        driver = pygame.display.get_driver()
        if driver not in _HEADLESS_DRIVERS:
            return
        pygame.display.quit()
        if attempt + 1 < DISPLAY_ATTEMPTS:
            # Seen twice in CI-like runs: SDL fell back while the same X server answered
            # other clients (xwd). One more try, half a second later, for a transient refusal.
            log.warning("display %s did not open (SDL chose '%s'); trying again", where, driver)
            time.sleep(DISPLAY_RETRY_S)
    raise DisplayError(
        f"cannot open display {where} (SDL fell back to its '{driver}' driver); "
        "is the X server running? Use --headless for no window"
    )


def _check_display(display: int | None, headless: bool) -> int:
    """Validate a 0-based display index before SDL is touched; return it (or 0)."""
    if not headless and not has_display():
        where = f"--display {display}: " if display is not None else ""
        raise DisplayError(
            f"{where}{_describe_displays(0)} (DISPLAY and WAYLAND_DISPLAY are unset); run headless or start an X server"
        )
    return 0 if display is None else display


def _window_size(
    window_size: tuple[int, int] | None, fullscreen: bool, headless: bool, display: int
) -> tuple[int, int]:
    """Initial window size in screen pixels."""
    if headless:
        return window_size or _DEFAULT_WINDOW  # the dummy "desktop" means nothing
    desktop = pygame.display.get_desktop_sizes()[display]
    if fullscreen:
        return desktop
    if window_size is not None:
        return window_size
    if _DEFAULT_WINDOW[0] <= desktop[0] and _DEFAULT_WINDOW[1] <= desktop[1]:
        return _DEFAULT_WINDOW
    _, _, w, h = fit_rect(*_DEFAULT_WINDOW, *desktop, "fit")  # small screen: shrink
    return w, h


def _open_window(title: str, size: tuple[int, int], index: int, fullscreen: bool) -> pygame.Window:
    """A window centred on display ``index``; fullscreen at that display's desktop size."""
    # SDL_WINDOWPOS_CENTERED_DISPLAY(i) puts the window on display i; a
    # fullscreen-desktop window then takes over the display it is on, without
    # a video mode change (no flicker, no resolution switch on the projector).
    where = sdl_video.WINDOWPOS_CENTERED | index
    return pygame.Window(title, size=size, position=(where, where), fullscreen_desktop=fullscreen)


def _make_renderer(window: pygame.Window, want_vsync: bool) -> tuple[sdl_video.Renderer, bool]:
    """A renderer with vsync if asked and possible, else without; (renderer, vsync)."""
    if want_vsync:
        try:
            return sdl_video.Renderer(window, vsync=True), True
        except pygame.error as exc:
            log.warning("vsync unavailable (%s): presenting unsynced, the loop paces itself", exc)
    return sdl_video.Renderer(window, vsync=False), False


class VideoOutput:
    """A window that shows uint8 RGB frames, scaled by the SDL2 renderer.

    Write a frame into ``frame_buffer`` in place (``buf[...] = x`` or
    ``np.copyto``; never rebind it), then call ``present()``. Call ``poll()``
    once per frame for key actions. ``vsync_active`` says whether
    ``present()`` waits for the display; when False the caller paces itself.
    """

    def __init__(
        self,
        frame_size: tuple[int, int],
        *,
        window_size: tuple[int, int] | None = None,
        fullscreen: bool = False,
        display: int | None = None,
        vsync: bool = True,
        aspect: str = "fit",
        headless: bool = False,
        title: str = "Latent Stage",
        smooth: bool = True,
    ) -> None:
        """Open the window.

        ``frame_size``: (w, h) of the frames the caller will write.
        ``window_size``: (w, h) of a windowed window; default 1280x720 (or
        smaller to fit the screen); ignored when fullscreen, which takes the
        desktop size of ``display``. ``display``: 0-based index, default 0.
        ``aspect``: "fit", "fill" or "stretch" (see layout.fit_rect).
        ``headless``: SDL dummy driver, no vsync; also implied when
        SDL_VIDEODRIVER is already dummy/offscreen. ``smooth``: bilinear
        (True) or nearest-neighbour (False, for pixel art) GPU scaling.
        Raises DisplayError for a missing display, ValueError for bad sizes.
        """
        if aspect not in ASPECT_MODES:
            raise ValueError(f"aspect: expected one of {', '.join(ASPECT_MODES)}, got {aspect!r}")
        if headless is False and _headless_env():
            log.info("SDL_VIDEODRIVER=%s: running the window headless", os.environ["SDL_VIDEODRIVER"])
            headless = True
        index = _check_display(display, headless)
        self._owns_display = _init_video(headless)
        count = pygame.display.get_num_displays()
        if not 0 <= index < count:
            self._release_display()
            raise DisplayError(f"--display {display}: {_describe_displays(count)}")
        self.headless = headless
        self._index = index
        self.aspect = aspect
        # Bilinear is free on a GPU renderer; the dummy driver's software
        # renderer would spend ~0.8 ms per 720p frame on it for nobody to see.
        linear = smooth and not headless
        self._scale_quality = sdl_video.SCALEQUALITY_LINEAR if linear else sdl_video.SCALEQUALITY_NEAREST
        size = _window_size(window_size, fullscreen, headless, index)
        try:
            self._window = _open_window(title, size, index, fullscreen and not headless)
            self._renderer, self.vsync_active = _make_renderer(self._window, vsync and not headless)
        except pygame.error as exc:
            self._release_display()
            raise DisplayError(f"cannot open a {size[0]}x{size[1]} window on display {index}: {exc}") from exc
        self._renderer.draw_color = (0, 0, 0, 255)  # clear colour = bars
        if fullscreen and not headless:
            pygame.mouse.set_visible(False)  # no cursor on the projector
            pygame.display.set_allow_screensaver(False)  # no screensaver or display sleep mid-set
        # Drawn over the picture at window resolution: an object with patch((w, h)) ->
        # (RGBA (h', w', 4) uint8, x, y) | None (engine.seq.overlay.TextOverlay), or None.
        self.overlay: Any = None
        self._overlay_src: np.ndarray | None = None  # the patch the cached texture was made from
        self._overlay_tex: Any = None
        self._dst_for: tuple[tuple[int, int], tuple[int, int]] | None = None
        self._dst = (0, 0, 1, 1)
        self.resize_frames(frame_size)
        log.info(
            "video: window %dx%d on display %d (%s), vsync %s, frames %dx%d, aspect %s",
            *self.window_size,
            index,
            pygame.display.get_driver(),
            "on" if self.vsync_active else "off",
            *self.frame_size,
            aspect,
        )

    # ---------------------------------------------------------------- frames

    @property
    def refresh_rate(self) -> float:
        """The display's refresh rate in Hz (0 if unknown, e.g. headless)."""
        if self.headless:
            return 0.0
        rates = pygame.display.get_desktop_refresh_rates()
        return float(rates[self._index]) if self._index < len(rates) else 0.0

    @property
    def frame_buffer(self) -> np.ndarray:
        """The (h, w, 3) uint8 array that ``present()`` shows; write it in place."""
        return self._buffer

    @property
    def frame_size(self) -> tuple[int, int]:
        """(w, h) of the frames, in frame pixels."""
        return self._buffer.shape[1], self._buffer.shape[0]

    @property
    def window_size(self) -> tuple[int, int]:
        """(w, h) of the window's drawable area, in screen pixels."""
        return tuple(self._window.size)

    @property
    def dst_rect(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) where the frame lands in the window (fit_rect)."""
        return self._update_dst()

    def resize_frames(self, new_size: tuple[int, int]) -> None:
        """Reallocate buffer and texture for frames of ``new_size`` = (w, h).

        For scene changes only, not per frame: it allocates. The previous
        ``frame_buffer`` is no longer shown after this call.
        """
        w, h = int(new_size[0]), int(new_size[1])
        if w <= 0 or h <= 0:
            raise ValueError(f"frame_size: expected positive (w, h) in pixels, got {new_size!r}")
        self._buffer = np.zeros((h, w, 3), dtype=np.uint8)
        # frombuffer shares memory with the array: writes to the array are
        # what the next texture upload sees, with no copy in between.
        self._surface = pygame.image.frombuffer(self._buffer, (w, h), "RGB")
        self._texture = sdl_video.Texture(self._renderer, (w, h), streaming=True, scale_quality=self._scale_quality)
        self._dst_for = None

    def _update_dst(self) -> tuple[int, int, int, int]:
        """Recompute the destination rect only when window or frame size changed."""
        key = (self.window_size, self.frame_size)
        if key != self._dst_for:
            self._dst = fit_rect(*self.frame_size, *self.window_size, self.aspect)
            self._dst_for = key
        return self._dst

    def present(self) -> None:
        """Upload ``frame_buffer`` and show it (bars black), the overlay on top; waits for vsync if on."""
        self._texture.update(self._surface)
        self._renderer.clear()
        self._texture.draw(dstrect=self._update_dst())
        if self.overlay is not None:
            self._draw_overlay()
        self._renderer.present()

    def _draw_overlay(self) -> None:
        """The overlay's RGBA patch (text), at window resolution, alpha-blended."""
        got = self.overlay.patch(self.window_size)
        if got is None:
            return
        rgba, x, y = got
        h, w = rgba.shape[:2]
        if rgba is not self._overlay_src:  # a new patch; a still one is already in the texture
            tex = self._overlay_tex
            if tex is None or (tex.width, tex.height) != (w, h):  # a fade or scroll keeps the size: one texture
                tex = self._overlay_tex = sdl_video.Texture(self._renderer, (w, h), streaming=True)
                tex.blend_mode = pygame.BLENDMODE_BLEND
            tex.update(pygame.image.frombuffer(rgba, (w, h), "RGBA"))
            self._overlay_src = rgba
        self._overlay_tex.draw(dstrect=(x, y, w, h))

    # ---------------------------------------------------------------- events

    def poll(self) -> list[str]:
        """Drain pygame events and return key actions in order.

        Actions: "quit" (Esc or window close, at most once per call), "next"
        (space), "blackout" (b), "freeze" (f), "faster" (+, = or keypad +),
        "slower" (- or keypad -), "fade" (x), "cut" (c), "cue" (tab),
        "recall:fN" (F1..F8), "save:fN" (shift + F1..F8), "hud" (h, or closing the HUD window).
        Other events are consumed and ignored.
        """
        actions: list[str] = []
        for event in pygame.event.get():
            if event.type == pygame.WINDOWCLOSE and getattr(event, "window", self._window) is not self._window:
                action = "hud"  # another window of the show (the operator HUD): hide it
            elif event.type in (pygame.QUIT, pygame.WINDOWCLOSE):
                action = "quit"
            elif event.type == pygame.KEYDOWN:
                action = _KEY_ACTIONS.get(event.key)
                if event.key in _F_KEYS:
                    verb = "save" if event.mod & pygame.KMOD_SHIFT else "recall"
                    action = f"{verb}:f{_F_KEYS[event.key]}"
            else:
                continue
            if action is not None and not (action == "quit" and "quit" in actions):
                actions.append(action)
        return actions

    # ---------------------------------------------------------------- window

    def set_title(self, title: str) -> None:
        """Set the window title (the show puts the scene name there)."""
        self._window.title = title

    def _release_display(self) -> None:
        if self._owns_display and pygame.display.get_init():
            pygame.display.quit()
        self._owns_display = False

    def close(self) -> None:
        """Destroy the window; safe to call twice."""
        window = getattr(self, "_window", None)
        if window is None:
            return
        self._texture = None
        self._renderer = None
        window.destroy()
        self._window = None
        self._release_display()

    def __enter__(self) -> VideoOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
