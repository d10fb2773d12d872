"""The service-manager notification protocol (sd_notify) from the frame loop.

systemd (`Type=notify`, `WatchdogSec=`) and `run_show.py supervise` both pass a
datagram socket's path in $NOTIFY_SOCKET; the show sends "READY=1" after its
first presented frame, "WATCHDOG=1" from the frame loop about every second (or
half of $WATCHDOG_USEC), and "STOPPING=1" when it ends. A loop that hangs
stops the heartbeat, so the manager restarts a show that is alive but frozen.
Without $NOTIFY_SOCKET this does nothing. A send never blocks and never raises.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PERIOD_S = 1.0


class Notifier:
    """A frame hook sending READY=1 once, then WATCHDOG=1 every `period` seconds."""

    def __init__(self, env: Mapping[str, str] | None = None, now: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if env is None else env
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        usec = env.get("WATCHDOG_USEC", "")
        self.period = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else DEFAULT_PERIOD_S
        self._now = now
        self._sock: socket.socket | None = None
        self._next = 0.0
        self.ready = False
        self.sent = 0
        self.errors = 0
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    @property
    def active(self) -> bool:
        return self._sock is not None

    def __call__(self, show: Any = None) -> None:
        if self._sock is None:
            return
        t = self._now()
        if not self.ready:
            self.ready = True
            self.send("READY=1\nSTATUS=presenting frames")
            self._next = t + self.period
        elif t >= self._next:
            self._next = t + self.period
            self.send("WATCHDOG=1")

    def send(self, message: str) -> None:
        if self._sock is None or self.address is None:
            return
        try:
            self._sock.sendto(message.encode(), self.address)
            self.sent += 1
        except OSError as e:  # the manager went away, a full buffer: the show goes on
            self.errors += 1
            if self.errors == 1 or self.errors % 1000 == 0:
                log.warning("service notification to %s failed (%s; %d so far)", self.address, e, self.errors)

    def close(self) -> None:
        self.send("STOPPING=1")
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _address(value: str) -> str | None:
    """$NOTIFY_SOCKET as a sendto() address: a path, or "@name" for Linux's abstract namespace."""
    if not value:
        return None
    return "\0" + value[1:] if value.startswith("@") else value
