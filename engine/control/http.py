"""`show --http HOST:PORT`: the show's status as JSON, a control page, and params set over HTTP.

    GET  /                  the control page (engine.control.page): status, a thumbnail of the
                            output, the setlist's buttons, a slider per param, a button per verb
    GET  /status            the latest status (uptime, fps and frame-time percentiles, late
                            frames, decks and scenes, setlist item, opening hours, bpm, audio
                            underruns, MIDI ports, OSC counts, restarts under `supervise`, the
                            last warnings, every param's value); refreshed twice a second
    GET  /controls          every param with its range and every verb (what the page draws)
    GET  /frame.jpg         the output, at most 320 px wide, at most half a second old
    POST /set               {"address": "/master/brightness", "value": 0.5} -> queued as an input
    POST /verb              {"address": "/setlist/next"} (or with "value")

Inputs only translate and enqueue: the server's threads never touch the show;
the frame loop publishes a status dict (and, while a page is open, the controls
and a thumbnail), and events go through the show's queue like OSC's (so an event
log records them). Localhost by default. On any other address every request but
the page needs the token (`--http-token`, else one is made and logged at startup)
as `Authorization: Bearer TOKEN` or `?token=TOKEN`; a request without it gets 401.
A body over 64 kB gets 413, malformed JSON or an unknown address 400, a POST that
is not application/json or comes from another site's page 403; nothing a client
sends reaches the frame loop unchecked.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

from engine.control.page import PAGE, THUMB_WIDTH, controls_doc
from engine.core.checks import finite_number
from engine.core.events import Event
from engine.errors import StartupError

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes
PUBLISH_S = 0.5
PAGE_IDLE_S = 10.0  # the thumbnail is copied only this long after a page asked for one
RESTARTS_ENV = "LATENT_STAGE_RESTARTS"  # set by `supervise` in the show's environment: restarts so far
_LOCAL = ("127.0.0.1", "localhost", "::1")


def parse_http(text: str) -> tuple[str, int]:
    """ "HOST:PORT" -> (host, port); StartupError naming the flag."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise StartupError(f"--http {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


class StatusPublisher:
    """A frame hook that builds the status dict every PUBLISH_S seconds (on the frame loop), and
    while a page asks for them the controls doc and a thumbnail of the output."""

    def __init__(self, status: Any, now: Any = time.monotonic) -> None:
        self._status = status  # () -> dict, called on the frame loop
        self._now = now
        self._next = 0.0
        self._lock = threading.Lock()
        self._latest: dict[str, Any] = {}
        self._controls: dict[str, Any] = {}
        self._thumb: np.ndarray | None = None  # (h, w, 3) uint8, decimated copy of the output
        self._wanted_until = -1.0  # monotonic s: a page asked for a thumbnail this recently
        self._controls_asked = False  # a page asked for the controls: the next publish builds them

    def __call__(self, show: Show) -> None:
        t = self._now()
        if t < self._next:
            return
        self._next = t + PUBLISH_S
        latest = self._status()
        controls = controls_doc(show) if self._controls_asked else None
        self._controls_asked = False
        thumb = None
        frame = show.output.frame_buffer
        if t < self._wanted_until and frame.size:
            step = -(-frame.shape[1] // THUMB_WIDTH)  # ceil: whole-pixel decimation, no resampling here
            thumb = np.ascontiguousarray(frame[::step, ::step])
        with self._lock:
            self._latest = latest
            if controls is not None:
                self._controls = controls
            if thumb is not None:
                self._thumb = thumb

    def latest(self) -> dict[str, Any]:
        with self._lock:
            return self._latest

    def controls(self) -> dict[str, Any]:
        """The last controls doc ({} until the frame loop has built one after the first ask);
        the next publish builds a fresh one (a scene change moves the ranges)."""
        self._controls_asked = True  # one bool store: no lock needed
        with self._lock:
            return self._controls

    def thumbnail(self) -> bytes | None:
        """The last thumbnail as JPEG bytes (encoded here, on the asking thread), or None yet."""
        self._wanted_until = self._now() + PAGE_IDLE_S  # one float store: no lock needed
        with self._lock:
            thumb = self._thumb
        if thumb is None:
            return None
        buf = io.BytesIO()
        Image.fromarray(thumb).save(buf, format="JPEG", quality=80)
        return buf.getvalue()


class HttpControl:
    """The HTTP server thread of a show; `close()` stops it."""

    def __init__(
        self,
        show: Show,
        host: str,
        port: int,
        publisher: StatusPublisher,
        token: str | None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.show = show
        self._on_close = on_close
        self.publisher = publisher
        self.local_only = host in _LOCAL
        self.token = token or (None if self.local_only else secrets.token_urlsafe(16))
        self.requests = 0
        self.refused = 0
        handler = type("Handler", (_Handler,), {"control": self})
        try:
            self.server = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise StartupError(f"--http {host}:{port}: cannot listen ({e.strerror or e})") from None
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)
        self._thread.start()
        where = f"http://{host}:{self.server.server_address[1]}/ (the control page; /status as JSON)"
        if self.token is not None and not self.local_only:
            log.info("HTTP: %s (open to the network; token %s)", where, self.token)
        else:
            log.info("HTTP: %s", where)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5.0)
        if self._on_close is not None:
            self._on_close()

    def allowed(self, client: str, header: str | None, query: str) -> bool:
        """Loopback clients need no token; any other client needs the token."""
        if client in _LOCAL or client.startswith("127."):
            return True
        if self.token is None:
            return False
        given = (header or "").removeprefix("Bearer ").strip() or (parse_qs(query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def submit(self, kind: str, body: dict[str, Any]) -> str | None:
        """Queue the event a POST asks for; None, or why it was refused."""
        address = body.get("address")
        if not isinstance(address, str):
            return "expected {'address': '/...'}"
        value = body.get("value")
        if kind == "set":
            if address not in self.show.registry:
                return f"no param {address!r} (run_show.py params lists them)"
            if not finite_number(value):
                return "expected a finite number as 'value'"
        elif address not in self.show.space.verb_addresses():
            return f"no verb {address!r} (run_show.py params lists them)"
        elif value is not None and not (isinstance(value, str) or finite_number(value)):
            return "a verb's 'value' is a number or a string"
        self.show.queue.put(Event("verb" if kind == "verb" else "set", address, value, time.perf_counter(), "http"))
        return None


class _Handler(BaseHTTPRequestHandler):
    control: HttpControl
    server_version = "LatentStage"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("HTTP %s: " + format, self.client_address[0], *args)

    def _reply(self, code: int, obj: Any) -> None:
        self._send(code, "application/json", json.dumps(obj).encode())

    def _send(self, code: int, kind: str, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _gate(self) -> str | None:
        c = self.control
        c.requests += 1
        parts = urlsplit(self.path)
        if not c.allowed(self.client_address[0], self.headers.get("Authorization"), parts.query):
            c.refused += 1
            self._reply(401, {"error": "a token is needed (Authorization: Bearer TOKEN or ?token=TOKEN)"})
            return None
        return parts.path

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if urlsplit(self.path).path == "/":  # the page holds no data: it asks for the token itself
            self._send(200, "text/html; charset=utf-8", PAGE.encode())
            return
        path = self._gate()
        if path is None:
            return
        publisher = self.control.publisher
        if path == "/status":
            self._reply(200, publisher.latest())
        elif path == "/controls":
            self._reply(200, publisher.controls())
        elif path == "/frame.jpg":
            jpeg = publisher.thumbnail()
            if jpeg is None:
                self._reply(503, {"error": "no frame yet; ask again in a second"})
            else:
                self._send(200, "image/jpeg", jpeg)
        else:
            self._reply(404, {"error": "GET /, /status, /controls or /frame.jpg; POST /set or /verb"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        path = self._gate()
        if path is None:
            return
        if path not in ("/set", "/verb"):
            self._reply(404, {"error": "POST /set or /verb"})
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            self.control.refused += 1
            self._reply(413, {"error": f"a body of at most {MAX_BODY} bytes, with Content-Length"})
            self.close_connection = True
            return
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        origin = self.headers.get("Origin")
        if kind != "application/json" or (origin and urlsplit(origin).netloc != self.headers.get("Host")):
            # A web page elsewhere can make the browser POST a form or plain text to this show
            # (and from loopback no token is asked); it cannot send application/json to another
            # origin without a CORS preflight this server never grants.
            self.control.refused += 1
            self._reply(403, {"error": "POST needs Content-Type: application/json, from this server's own page"})
            self.close_connection = True
            return
        try:
            body = json.loads(self.rfile.read(int(length)) or b"null")
        except (ValueError, UnicodeDecodeError):
            body = None
        why = "expected a JSON object" if not isinstance(body, dict) else self.control.submit(path[1:], body)
        if why is not None:
            self.control.refused += 1
            self._reply(400, {"error": why})
            return
        self._reply(202, {"queued": body.get("address")})


def restarts_so_far() -> int:
    """How often `supervise` has restarted this show (0 when not supervised or unreadable)."""
    text = os.environ.get(RESTARTS_ENV, "0")
    return int(text) if text.isdigit() else 0


_SILENT = {"audio": {"active": False, "underruns": 0}}  # a show with no sound layer


def show_status(show: Show, started: float, controls: Any, extra: Any = None, warnings: Any = list) -> dict[str, Any]:
    """The status dict (built on the frame loop). `controls` and `extra` () -> dict are merged in
    (the control edges' counters; the sound layer's audio underruns, None: no sound layer);
    `warnings` () -> the log's last warning lines."""
    stats = show.stats.summary() if show.stats is not None else {}
    pilot, hours = show.autopilot, show.hours
    return {
        "uptime_s": round(time.monotonic() - started, 1),
        "frames": show.frame_count,
        "fps": stats.get("fps"),
        "frame_ms": stats.get("frame_ms"),
        "late_frames": stats.get("late_frames"),
        "decks": {d.name: d.scene_name for d in show.decks},
        "crossfade": show.registry.get("/mixer/crossfade") if "/mixer/crossfade" in show.registry else None,
        "setlist": None if pilot is None else {"name": pilot.spec.name, "item": pilot.index + 1},
        "hours": None if hours is None else {"open": hours.open, "level": round(hours.level, 3)},
        "bpm": round(show.tempo.bpm, 3),
        "frame_errors": show.frame_errors,
        "hook_errors": show.hook_errors,
        "rejected": show.registry.rejected,
        "restarts": restarts_so_far(),
        "warnings": warnings(),
        **controls(),
        **(extra() if extra is not None else _SILENT),
        "params": {p.address: p.target for p in show.registry},
    }
