"""OSC control: UDP in (params, verbs, queries, bundles), feedback out, OSCQuery.

The edge between sockets and the pure parts: `osc_dispatch` turns datagrams
into events, `osc_out` builds feedback, `oscquery` serves the address space.
This module parses the flags, binds the sockets, runs the receive thread and
wires everything to the show (see engine/control/__init__.py for the contract).

The receive thread blocks in select() on the UDP socket and a wake-up socket
pair, so `close()` ends it at once; it never sleeps and never waits for a
bundle's timetag (timed events wait in the show's queue instead).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import select
import socket
import threading
from typing import TYPE_CHECKING, Any

from engine.config import ShowConfig
from engine.control.osc_dispatch import Dispatcher, Network, Sender
from engine.control.osc_out import Feedback
from engine.control.oscquery import OscQueryServer, host_info
from engine.core.ratelog import first_and_every
from engine.errors import StartupError

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

RECV_BUFFER = 4 * 1024 * 1024  # bytes of kernel buffer: absorbs bursts while the thread is descheduled
BATCH = 512  # datagrams read per wake-up before looking at the wake-up socket again


def parse_allow(text: str | None) -> list[Network] | None:
    """--osc-allow: comma-separated networks (a bare address is a /32 or /128)."""
    if text is None:
        return None
    nets: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise StartupError(f"--osc-allow: expected CIDR networks like 192.168.1.0/24, got {part!r}") from None
    return nets


def parse_target(text: str, family: socket.AddressFamily) -> Sender:
    """--osc-out HOST:PORT (IPv6 as [ADDR]:PORT), resolved once at startup."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdecimal() or not 1 <= int(port_text) <= 65535:
        raise StartupError(f"--osc-out: expected HOST:PORT with a port 1..65535, got {text!r}")
    try:
        infos = socket.getaddrinfo(host, int(port_text), family, socket.SOCK_DGRAM)
    except socket.gaierror as e:
        raise StartupError(f"--osc-out: cannot resolve {host!r} ({e.strerror})") from None
    addr = infos[0][4]
    return (str(addr[0]), int(addr[1]))


def start(config: ShowConfig, show: Show) -> OscControl | None:
    """Bind the OSC socket (and OSCQuery), attach to the show; None when all OSC flags are off."""
    port, query_port = config.osc_port, config.oscquery_port  # 0..65535, checked by the flags
    outs = list(config.osc_out)
    if port == 0 and not outs:
        return None
    host = config.osc_host
    allow = parse_allow(config.osc_allow)
    control = OscControl(show, host, port, allow=allow, outs=outs)
    if port and query_port:
        try:
            control.query = OscQueryServer(show.space, config.oscquery_host, query_port, host_info(host, control.port))
        except OSError as e:
            control.close()
            raise StartupError(f"--oscquery-port {query_port}: cannot listen ({_why(e)})") from None
    log.info(
        "OSC: %s; feedback to %s; OSCQuery %s",
        f"listening on {host}:{control.port}" if port else "input off",
        ", ".join(f"{h}:{p}" for h, p in control.feedback.fixed) or "subscribers only",
        f"on http://{config.oscquery_host}:{control.query.port}/" if control.query else "off",
    )
    return control


def _why(e: OSError) -> str:
    if e.errno == errno.EADDRINUSE:
        return "already in use by another program; pick another port, or 0 to turn it off"
    return e.strerror or str(e)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise StartupError(f"--osc-port {port}: {host}:{port} is {_why(e)}") from None
        raise StartupError(f"--osc-host {host!r} / --osc-port {port}: cannot listen ({_why(e)})") from None
    except (OverflowError, socket.gaierror) as e:
        sock.close()
        raise StartupError(f"--osc-host {host!r}: cannot listen ({e})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    except OSError:
        pass  # the kernel's default buffer still works, it just absorbs shorter bursts
    sock.setblocking(False)  # sends from the loop thread must never wait
    return sock


class OscControl:
    """The running OSC control: socket, receive thread, feedback, OSCQuery."""

    def __init__(self, show: Show, host: str, port: int, *, allow: list[Network] | None, outs: list[str]) -> None:
        self.show = show
        self.sock = _bind(host if port else ("::" if ":" in host else "0.0.0.0"), port)
        self.port = self.sock.getsockname()[1] if port else 0
        try:
            targets = [parse_target(t, self.sock.family) for t in outs]
        except StartupError:
            self.sock.close()
            raise
        self.query: OscQueryServer | None = None
        self.dispatcher = Dispatcher(
            show.registry,
            show.queue,
            show.osc_routes,
            self._send_counted,
            subscribe=self._subscribe,
            allow=allow,
            space=show.space,
        )
        self.feedback = Feedback(self._send, targets, self.dispatcher.types, counts=self._status_counts)
        show.listeners.append(self.feedback.on_change)
        show.frame_hooks.append(self.feedback.frame_hook)
        show.announcers.append(self.feedback.announce)
        self.crashes = 0
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        if port:
            self._thread = threading.Thread(target=self._receive, name="osc-in", daemon=True)
            self._thread.start()

    # -- sending (both threads; the socket is non-blocking) ----------------
    def _send(self, data: bytes, target: Sender) -> bool:
        try:
            self.sock.sendto(data, target)
            return True
        except OSError:  # buffer full, unreachable, closed: feedback is best effort
            return False

    def _send_counted(self, data: bytes, target: Sender) -> None:
        if not self._send(data, target):
            self.feedback.send_errors += 1

    def _subscribe(self, host: str, port: int, on: bool) -> None:
        self.feedback.subscribe(host, port, on)

    def _status_counts(self) -> dict[str, int]:
        c = self.dispatcher.counters
        return {
            "osc/received": c.received,
            "osc/dropped": c.dropped,
            "osc/malformed": c.malformed,
            "queue_max": self.show.queue.max_depth,
        }

    # -- the receive thread -------------------------------------------------
    def _receive(self) -> None:
        sock, wake = self.sock, self._wake_r
        while True:
            try:
                ready, _, _ = select.select([sock, wake], [], [])
            except (OSError, ValueError):  # closed under us: we are shutting down
                return
            if wake in ready or self._closed:
                return
            for _ in range(BATCH):
                try:
                    data, sender = sock.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError:  # e.g. an ICMP error reported on the socket: not fatal
                    break
                self._handle(data, sender)

    def _handle(self, data: bytes, sender: Any) -> None:
        try:
            self.dispatcher.handle(data, (str(sender[0]), int(sender[1])))
        except Exception:  # last line of defence: nothing a sender sends may stop OSC input
            self.crashes += 1
            if first_and_every(self.crashes, 1000):
                log.exception("OSC dispatch failed (%d so far); the datagram is dropped", self.crashes)
            self.dispatcher.counters.malformed += 1

    # -- Control ----------------------------------------------------------------
    def close(self) -> None:
        """Stop the receive thread and the OSCQuery server, free the ports (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # the thread also checks _closed
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.query is not None:
            self.query.close()
        for hooks, fn in (
            (self.show.listeners, self.feedback.on_change),
            (self.show.frame_hooks, self.feedback.frame_hook),
            (self.show.announcers, self.feedback.announce),
        ):
            if fn in hooks:
                hooks.remove(fn)
        for s in (self.sock, self._wake_r, self._wake_w):
            s.close()

    def stats(self) -> dict[str, Any]:
        """received: datagrams; malformed: undecodable datagrams and messages with
        arguments that do not fit; dropped: well-formed but unused (sender not
        allowed, unknown address, timetag too far ahead, queue full, over a rate
        limit). The other keys break those down and count what was sent."""
        c = self.dispatcher.counters
        return {
            "osc": {
                "received": c.received,
                "dropped": c.dropped,
                "malformed": c.malformed,
                "unknown": c.unknown,
                "not_allowed": c.not_allowed,
                "limited": c.limited,
                "replies": c.replies,
                "feedback_sent": self.feedback.sent,
                "send_errors": self.feedback.send_errors,
                "subscribers": len(self.feedback.targets) - len(self.feedback.fixed),
                "clients": dict(sorted(c.senders.items(), key=lambda kv: -kv[1])[:8]),
            }
        }
