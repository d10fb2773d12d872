"""OSC feedback: echo of input-caused param changes, and status once a second.

`Feedback.on_change` is a show listener (called on the loop thread after an
input event was applied); `Feedback.frame_hook` runs after every present. Both
only encode a few bytes and hand them to a non-blocking `send`, so the loop
never waits on the network.

Rate limit: at most one message per address per `interval` seconds (default
1/30 s). A change inside the interval is kept as the address's pending value
and sent by a later frame hook once the interval has passed, so the last value
always arrives. Values that animate on their own (smoothing, latent paths) are
not echoed: the show only tells listeners about input events.

Targets: the fixed --osc-out list plus up to `max_subscribers` senders that
asked with /feedback/subscribe (the oldest is forgotten when a new one comes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.control.osc_dispatch import Sender, encode, encode_param

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1  # OSC 'i' is 32-bit; counters saturate rather than wrap
EPS = 1e-9  # seconds: float rounding must not hold a value back a whole extra frame


class Feedback:
    def __init__(
        self,
        send: Callable[[bytes, Sender], bool],
        targets: list[Sender],
        types: Mapping[str, str],
        *,
        counts: Callable[[], Mapping[str, int]] = dict,
        interval: float = 1.0 / 30.0,
        status_every: float = 1.0,
        max_subscribers: int = 8,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.send = send  # returns False when the datagram could not be sent
        self.fixed = tuple(targets)
        self.types = types  # param address -> "float" | "int" | "bool"
        self.counts = counts  # message counts for /status/... (name -> int)
        self.interval = interval  # seconds between two messages for one address
        self.status_every = status_every  # seconds
        self.max_subscribers = max_subscribers
        self.clock = clock
        self._subscribers: tuple[Sender, ...] = ()  # replaced whole, so readers need no lock
        self._sub_lock = threading.Lock()
        self._pending: dict[str, float] = {}  # loop thread only
        self._last_sent: dict[str, float] = {}
        self._next_status = clock() + status_every
        self._status_frames = -1
        self._status_t = clock()
        self.sent = 0
        self.send_errors = 0

    # -- targets (subscribe is called from the receive thread) -----------
    @property
    def targets(self) -> tuple[Sender, ...]:
        return self.fixed + self._subscribers

    def subscribe(self, host: str, port: int, on: bool = True) -> None:
        with self._sub_lock:
            subs = [s for s in self._subscribers if s != (host, port)]
            if on:
                subs.append((host, port))
                if len(subs) > self.max_subscribers:
                    log.info("feedback: %d subscribers at most; forgetting %s:%s", self.max_subscribers, *subs[0])
                    subs.pop(0)
                log.info("feedback: %s:%s subscribed", host, port)
            self._subscribers = tuple(subs)

    # -- param echo (loop thread) -----------------------------------------
    def on_change(self, address: str, value: float, source: str) -> None:
        """Show listener: send now unless this address was sent < interval ago."""
        if not self.targets:
            return
        now = self.clock()
        if now - self._last_sent.get(address, -1e9) >= self.interval - EPS:
            self._pending.pop(address, None)
            self._send_param(address, value, now)
        else:
            self._pending[address] = value

    def announce(self, address: str, value: Any) -> None:
        """Show announcer: one message to every target, not rate-limited (e.g. /text/line)."""
        if self.targets:
            self._send_all(encode(address, value))

    def flush(self, now: float) -> None:
        """Send pending values whose address is out of its interval."""
        if not self._pending:
            return
        due = [a for a in self._pending if now - self._last_sent.get(a, -1e9) >= self.interval - EPS]
        for address in due:
            self._send_param(address, self._pending.pop(address), now)

    def _send_param(self, address: str, value: float, now: float) -> None:
        self._last_sent[address] = now
        self._send_all(encode_param(address, value, self.types.get(address, "float")))

    def _send_all(self, data: bytes) -> None:
        for target in self.targets:
            if self.send(data, target):
                self.sent += 1
            else:
                self.send_errors += 1

    # -- once per frame (loop thread) --------------------------------------
    def frame_hook(self, show: Show) -> None:
        now = self.clock()
        self.flush(now)
        if self._status_frames < 0:  # first frame: the fps count starts here
            self._status_frames, self._status_t = show.frame_count, now
        if now >= self._next_status:
            self._next_status = now + self.status_every
            if self.targets:
                for data in self.status_messages(show, now):
                    self._send_all(data)
            self._status_frames, self._status_t = show.frame_count, now

    def status_messages(self, show: Any, now: float) -> list[bytes]:
        """/status/fps, /status/scene, /status/bpm and /status/beat (when a tempo
        source runs), and the message counts."""
        out: list[bytes] = []
        span = now - self._status_t
        if self._status_frames >= 0 and span > 0:
            out.append(encode("/status/fps", float((show.frame_count - self._status_frames) / span)))
        out.append(encode("/status/scene", str(show.scene_name)))
        for v, name in ((show.tempo.bpm, "bpm"), (show.tempo.beat, "beat")):
            out.append(encode(f"/status/{name}", float(v)))
        for name, n in self.counts().items():
            out.append(encode(f"/status/{name}", min(int(n), INT32_MAX)))
        return out
