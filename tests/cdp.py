"""A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe):
open a page, run a script in it, take a screenshot. No web driver and no extra package:
the protocol is JSON messages ended by a NUL byte, on the browser's fds 3 (in) and 4 (out)."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, profile: Path, width: int = 1000, height: int = 1200) -> None:
        assert CHROMIUM is not None
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds() -> None:  # in the child, before exec: the pipes become fds 3 and 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        args = [CHROMIUM, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu"]
        args += ["--no-first-run", "--disable-extensions", f"--user-data-dir={profile}"]
        args += [f"--window-size={width},{height}"]
        args += ["about:blank"]
        self.proc = subprocess.Popen(
            args, pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._id = 0
        self._buf = b""
        self.session = ""
        self.size = (width, height)
        self.prompt_answer: str | None = None  # what a prompt() in the page is answered (None: dismissed)
        self.prompts = 0

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self._id += 1  # the dialog answers of _next() use ids from 1,000,000 up
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _next(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise BrowserError("no answer from the browser in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError("the browser closed its pipe")
            self._buf += chunk
        message, _, self._buf = self._buf.partition(b"\0")
        parsed = json.loads(message)
        if parsed.get("method") == "Page.javascriptDialogOpening":  # a prompt() blocks the page: answer it
            self.prompts += 1
            answer = {"accept": self.prompt_answer is not None, "promptText": self.prompt_answer or ""}
            reply = {"id": 1_000_000 + self.prompts, "method": "Page.handleJavaScriptDialog", "params": answer}
            reply["sessionId"] = self.session
            os.write(self._to_browser, json.dumps(reply).encode() + b"\0")
        return parsed

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        w, h = self.size
        metrics = {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics)
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression!r}: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except BrowserError:  # e.g. the page is still loading (no document.body yet)
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise BrowserError(f"waited {timeout} s for {expression!r}")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5.0)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
