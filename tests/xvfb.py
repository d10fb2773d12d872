"""Xvfb helpers for the integration tests: a private X server and screenshots.

Use the ``xvfb`` fixture by importing it into a test module
(``from tests.xvfb import screenshot, xvfb``); it yields the display string
(":N") of an Xvfb started for that test and stops it afterwards. Its screens
default to one 320x240x24 screen; a test picks others with
``@pytest.mark.parametrize("xvfb", [["640x480x24", "320x240x24"]], indirect=True)``.
``screenshot(display)`` returns the root window as an (H, W, 3) uint8 RGB array.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pytest

DEFAULT_SCREENS = ("320x240x24",)


def require_tools() -> None:
    """Skip the calling test unless Xvfb and xwd are installed."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb)")
    if shutil.which("xwd") is None:
        pytest.skip("xwd not installed (apt-get install x11-apps)")


@contextmanager
def start_xvfb(screens: Sequence[str] = DEFAULT_SCREENS, timeout: float = 30.0) -> Iterator[str]:
    """Run Xvfb on a display number it picks itself (-displayfd); yield ':N'.

    The display number is written to the pipe once the server accepts
    clients, so no polling is needed. Xvfb is terminated on exit.
    """
    read_fd, write_fd = os.pipe()
    args = ["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp"]
    for i, geometry in enumerate(screens):
        args += ["-screen", str(i), geometry]
    proc = subprocess.Popen(args, pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            number = pipe.readline().strip().decode()  # EOF (b"") if Xvfb dies first
        if not number:
            pytest.skip(f"Xvfb did not start (exit status {proc.poll()})")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


@pytest.fixture
def xvfb(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh Xvfb for this test; yields its display string ':N'."""
    require_tools()
    with start_xvfb(getattr(request, "param", DEFAULT_SCREENS)) as display:
        yield display


def screenshot(display: str) -> np.ndarray:
    """Screenshot of the root window as (h, w, 3) uint8 RGB, from `xwd -root`.

    Handles both dumps xwd writes of a 24-bit Xvfb screen: TrueColor with
    32 bits per pixel, and, while a window with another visual (an SDL GL
    window) covers only part of the root, a "multi-visual" DirectColor dump
    with 3 bytes per pixel whose channels go through the colour map.
    """
    raw = subprocess.run(
        ["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True, timeout=20
    ).stdout
    # XWD header: 25 big-endian uint32 fields, then the window name, then
    # ncolors 12-byte colour entries, then the pixels, bytes_per_line per row.
    fields = struct.unpack(">25I", raw[:100])
    header_size, width, height = fields[0], fields[4], fields[5]
    byte_order, bpp, bytes_per_line, visual_class = fields[7], fields[11], fields[12], fields[13]
    masks, ncolors = fields[14:17], fields[19]
    nbytes = bpp // 8
    if bpp not in (24, 32) or bytes_per_line < nbytes * width or masks != (0xFF0000, 0x00FF00, 0x0000FF):
        raise ValueError(f"unexpected xwd format (need 24/32-bit 0xRRGGBB pixels): {fields}")
    rows = np.frombuffer(raw, dtype=np.uint8, count=bytes_per_line * height, offset=header_size + 12 * ncolors).reshape(
        height, bytes_per_line
    )
    pixels = rows[:, : nbytes * width].reshape(height, width, nbytes)
    if byte_order == 0:  # LSBFirst: least significant byte first -> reverse to 0x(XX)RRGGBB order
        pixels = pixels[..., ::-1]
    rgb = np.ascontiguousarray(pixels[..., -3:])
    if visual_class == 5 and ncolors == 256:  # DirectColor: channel value -> colour map entry
        cmap = np.frombuffer(raw, dtype=">u4,>u2,>u2,>u2,u1,u1", count=ncolors, offset=header_size)
        lut = (np.stack([cmap["f1"], cmap["f2"], cmap["f3"]], axis=-1) >> 8).astype(np.uint8)  # (256, 3)
        rgb = lut[rgb, np.arange(3)]
    return rgb
