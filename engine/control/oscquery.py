"""OSC discovery: the address space as OSCQuery-style JSON over HTTP.

`GET /` is the whole tree; `GET /master/brightness` one node;
`GET /master/brightness?VALUE` one attribute of it; `GET /?HOST_INFO` the
server's OSC port and transport. Built from the show's address space
(the one the OSC dispatcher reads) on every request (it is small), so VALUE is the live
target. Served by http.server on a daemon thread, localhost by default, one
thread per connection (a client that connects and sends nothing held the
single-threaded server, so every other client, for its 5 s read timeout), at
most `max_connections` at once and each cut off after `deadline` seconds (a
client trickling a byte every few seconds would otherwise keep its thread).

Node fields: FULL_PATH, CONTENTS (containers), TYPE, VALUE, RANGE
[{"MIN", "MAX"}], CLIPMODE, ACCESS (1 read, 2 write, 3 both), DESCRIPTION, and
UNIT-free: units go into the description, because OSCQuery's UNIT strings
are a fixed vocabulary ours do not follow.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from engine.core.ratelog import first_and_every
from engine.core.space import OSC_TYPE, AddressSpace

log = logging.getLogger(__name__)

ACCESS_READ, ACCESS_WRITE = 1, 2
MAX_CONNECTIONS = 16  # open at once; more are closed on arrival
DEADLINE = 5.0  # seconds a connection may stay open, whatever it sends
EXTENSIONS = {
    "ACCESS": True,
    "VALUE": True,
    "RANGE": True,
    "DESCRIPTION": True,
    "CLIPMODE": True,
    "TAGS": False,
    "UNIT": False,
    "CRITICAL": False,
    "LISTEN": False,
    "PATH_CHANGED": False,
}


def document(space: AddressSpace) -> dict[str, Any]:
    """The whole address space as one OSCQuery node tree."""
    root: dict[str, Any] = {"FULL_PATH": "/", "ACCESS": 0, "DESCRIPTION": "Latent Stage", "CONTENTS": {}}
    for p in space.registry:
        desc = p.description + (f" ({p.unit})" if p.unit else "")
        value: Any = p.target >= 0.5 if p.type == "bool" else (int(p.target) if p.type == "int" else p.target)
        _node(root, p.address).update(
            {
                "TYPE": OSC_TYPE[p.type],
                "VALUE": [value],
                "RANGE": [{"MIN": p.lo, "MAX": p.hi}],
                "CLIPMODE": ["both"],
                "ACCESS": ACCESS_READ | ACCESS_WRITE,
                "DESCRIPTION": desc,
            }
        )
    for address, v in space.osc_verbs():
        node = _node(root, address)
        node.update({"ACCESS": ACCESS_WRITE, "DESCRIPTION": v.description})
        if v.args:
            node["TYPE"] = v.args
    return root


def _node(root: dict[str, Any], address: str) -> dict[str, Any]:
    """The node at `address`, creating containers on the way."""
    node, path = root, ""
    for part in address.strip("/").split("/"):
        path += "/" + part
        contents = node.setdefault("CONTENTS", {})
        node = contents.setdefault(part, {"FULL_PATH": path, "ACCESS": 0})
    return node


def host_info(osc_host: str, osc_port: int) -> dict[str, Any]:
    return {
        "NAME": "Latent Stage",
        "OSC_IP": osc_host,
        "OSC_PORT": osc_port,
        "OSC_TRANSPORT": "UDP",
        "EXTENSIONS": EXTENSIONS,
    }


def lookup(doc: dict[str, Any], path: str) -> dict[str, Any] | None:
    node = doc
    for part in [p for p in path.split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


def answer(space: AddressSpace, info: dict[str, Any], target: str) -> tuple[int, dict[str, Any] | None]:
    """(HTTP status, JSON body) for a request target such as '/master?VALUE'."""
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. "http://[": not a URL
        return 400, None
    attr = unquote(parts.query).split("&", 1)[0].upper()
    if attr == "HOST_INFO":
        return 200, info
    node = lookup(document(space), unquote(parts.path))
    if node is None:
        return 404, None
    if not attr:
        return 200, node
    if attr not in node:
        return 204, None  # OSCQuery: the node exists but has no such attribute
    return 200, {attr: node[attr]}


class _Server(ThreadingHTTPServer):
    """Bounded: at most `max_connections` open, each for at most `deadline` seconds."""

    daemon_threads = True
    block_on_close = False  # close() must not wait for a stalled client

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int, deadline: float
    ) -> None:
        self.max_connections, self.deadline = max_connections, deadline
        self._open: dict[socket.socket, float] = {}  # connection -> when it is cut off
        self._lock = threading.Lock()
        self.refused = 0
        self.errors = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = len(self._open) >= self.max_connections
            if not full:
                self._open[request] = time.monotonic() + self.deadline
        if full:
            self.refused += 1
            if first_and_every(self.refused, 1000):
                log.warning(
                    "oscquery: %d connections open; refusing more (%d refused so far)",
                    self.max_connections,
                    self.refused,
                )
            super().shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:  # the end of every handled connection
        with self._lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        """Runs every poll interval on the server thread: cut off connections past their deadline."""
        now = time.monotonic()
        with self._lock:
            late = [s for s, t in self._open.items() if t <= now]
        _hang_up(late)

    def hang_up_all(self) -> None:
        with self._lock:
            everyone = list(self._open)
        _hang_up(everyone)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for every failed request: log the first
        # and every 1000th instead (a client hanging up mid-answer is the usual cause).
        self.errors += 1
        if first_and_every(self.errors, 1000):
            log.warning("oscquery: a request from %s failed (%d so far)", client_address[0], self.errors, exc_info=True)


def _hang_up(connections: list[socket.socket]) -> None:
    """Wake the handler threads blocked on these connections: their reads see the end."""
    for s in connections:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by its handler


class OscQueryServer:
    """http.server on a daemon thread; `close()` stops it and frees the port."""

    def __init__(
        self,
        space: AddressSpace,
        host: str,
        port: int,
        info: dict[str, Any],
        *,
        max_connections: int = MAX_CONNECTIONS,
        deadline: float = DEADLINE,
    ) -> None:
        handler = _handler(space, info)
        # raises OSError (port in use) at startup
        self.httpd = _Server((host, port), handler, max_connections, deadline)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="oscquery-http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(timeout=2.0)
        self.httpd.hang_up_all()
        self.httpd.server_close()


def _handler(space: AddressSpace, info: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "LatentStage-OSCQuery"
        timeout = 5.0  # seconds: a client that stalls mid-request cannot hold the server forever

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            status, body = answer(space, info, self.path)
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
            log.debug("oscquery: " + format, *args)

    return Handler
