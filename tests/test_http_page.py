"""The control page of `show --http` in a real headless Chromium against a real show process:
it builds itself, shows status and a thumbnail, a slider moved by a script changes the param
(in /status and in the output frame), and off loopback it asks for the token once."""

from __future__ import annotations

import io
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.bench.ports import free_tcp_port, free_udp_port
from tests.cdp import CHROMIUM, Browser
from tests.conftest import REPO, start_show

pytestmark = [pytest.mark.integration, pytest.mark.skipif(CHROMIUM is None, reason="needs chromium")]

SLIDER = "/master/brightness"


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 - our own test server
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _show(tmp_path: Path, scene: Path, http: str, *extra: str):
    command = [sys.executable, str(REPO / "run_show.py"), *"show --headless --fps 30 --seconds 120".split()]
    command += ["--scene", str(scene), "--osc-port", str(free_udp_port()), "--oscquery-port", "0", "--no-audio"]
    command += ["--http", http, "--presets", str(tmp_path / "presets"), *extra]
    return start_show(command)


def _frame_level(base: str, token: str | None = None) -> float:
    code, body = _get(f"{base}/frame.jpg", token)
    assert code == 200
    return float(np.asarray(Image.open(io.BytesIO(body))).mean())


def _wait(what, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s")


def test_a_slider_moved_in_the_browser_changes_the_param_and_the_frame(tmp_path, scene_file):
    scene = scene_file("[params]\nspeed = 0.0\n")  # a still picture: only the slider changes the frame
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    proc, lines = _show(tmp_path, scene, f"127.0.0.1:{port}")
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(base + "/")
        browser.wait_for("document.body.dataset.ready === '1'")
        browser.wait_for("document.getElementById('thumb').naturalWidth > 0")
        browser.wait_for("document.getElementById('status').textContent.includes('frame_ms')")
        sliders = browser.evaluate("document.querySelectorAll('input[type=range]').length")
        status = json.loads(_get(f"{base}/status")[1])
        assert sliders == len(status["params"]) > 50  # one per param of the registry
        assert browser.evaluate("[...document.querySelectorAll('button')].some(b => b.textContent === '/setlist/next')")
        browser.screenshot(tmp_path / "page.png")
        shot = np.asarray(Image.open(tmp_path / "page.png"))
        assert shot.shape[:2] == (1200, 1000) and shot.std() > 10  # drawn, not a blank page
        before = _wait(lambda: _frame_level(base))
        browser.evaluate(
            f"(() => {{ const s = document.querySelector('input[data-address=\"{SLIDER}\"]');"
            " s.value = 0.2; s.dispatchEvent(new Event('input')); return s.value; })()"
        )
        _wait(lambda: abs(json.loads(_get(f"{base}/status")[1])["params"][SLIDER] - 0.2) < 1e-6)
        _wait(lambda: _frame_level(base) < 0.3 * before + 2.0)  # the output is a fifth as bright
        assert browser.prompts == 0  # loopback: no token asked
    finally:
        browser.close()
        proc.kill()
        proc.wait()
    assert "Traceback" not in "".join(lines)


def _lan_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None if it has only loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_off_loopback_the_token_is_needed_and_the_page_asks_for_it_once(tmp_path, scene_file):
    lan = _lan_address()
    if lan is None:
        pytest.skip("no network address besides loopback")
    port = free_tcp_port("0.0.0.0")
    base = f"http://{lan}:{port}"
    proc, lines = _show(tmp_path, scene_file(""), f"0.0.0.0:{port}", "--http-token", "s3cret")
    browser = Browser(tmp_path / "profile")
    try:
        _wait(lambda: _get(f"{base}/")[0] == 200)  # the page itself holds no data
        for path in ("/status", "/controls", "/frame.jpg"):
            code, body = _get(base + path)
            assert code == 401 and b"token" in body
        assert _get(f"{base}/status", "wrong")[0] == 401
        assert _get(f"{base}/status", "s3cret")[0] == 200
        browser.prompt_answer = "s3cret"
        browser.open(base + "/")
        browser.wait_for("document.body.dataset.ready === '1'")
        browser.wait_for("document.getElementById('thumb').naturalWidth > 0")
        assert browser.prompts == 1  # asked once, then kept
    finally:
        browser.close()
        proc.kill()
        proc.wait()
    assert "Traceback" not in "".join(lines)
