"""Timestamped input events and the bounded queue the show loop drains.

Input threads (keys today; OSC, MIDI and audio analysis later) only translate
what they receive into `Event`s and `put` them here; they never block and never
touch torch or pygame. The loop calls `drain()` once per frame.

When the queue is full, a new `set` for an address that is already waiting
replaces the waiting value (coalescing: the newest value wins, nothing is
lost that matters); anything else is dropped and counted.

An event may carry a `due` time (an OSC bundle's future timetag, converted to
the loop's perf_counter clock): it waits in a separate time-ordered heap,
bounded by the same capacity, and `drain(now)` releases it once due. Nothing
ever sleeps for it.

Pure module: no pygame, torch, sockets.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass
from typing import Literal

EventKind = Literal["set", "toggle", "scale", "verb"]


@dataclass(slots=True)
class Event:
    """One input. `address` is a param address for set/toggle/scale, or a verb
    such as /show/next, /show/quit for kind "verb". `t` is the source's clock
    reading in seconds (perf_counter for live inputs) and `source` names the
    input for logs and stats ("key", "osc", "midi", ...). `due` is when to
    apply it on the same clock as `t` (None: at the next frame)."""

    kind: EventKind
    address: str
    value: float | str | None = None
    t: float = 0.0
    source: str = ""
    due: float | None = None


class EventQueue:
    """Thread-safe bounded queue with per-address coalescing when full."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError("queue capacity must be >= 1")
        self.capacity = capacity
        self._items: list[Event] = []
        self._pending_set: dict[str, int] = {}  # address -> index of its waiting `set`
        self._future: list[tuple[float, int, Event]] = []  # heap by due time
        self._order = itertools.count()  # tie-break: same due time keeps arrival order
        self._lock = threading.Lock()
        self.received = 0
        self.dropped = 0
        self.coalesced = 0
        self.max_depth = 0

    def put(self, event: Event) -> bool:
        """Enqueue without blocking; False if the event was dropped."""
        with self._lock:
            self.received += 1
            if event.due is not None:
                if len(self._future) >= self.capacity:
                    self.dropped += 1
                    return False
                heapq.heappush(self._future, (event.due, next(self._order), event))
                return True
            if len(self._items) >= self.capacity:
                idx = self._pending_set.get(event.address) if event.kind == "set" else None
                if idx is None:
                    self.dropped += 1
                    return False
                self._items[idx] = event
                self.coalesced += 1
                return True
            if event.kind == "set":
                self._pending_set[event.address] = len(self._items)
            self._items.append(event)
            self.max_depth = max(self.max_depth, len(self._items))
            return True

    def drain(self, now: float | None = None) -> list[Event]:
        """Everything waiting, oldest first, then timed events due by `now`
        (all of them when `now` is None) in due order."""
        with self._lock:
            items, self._items = self._items, []
            self._pending_set.clear()
            future = self._future
            while future and (now is None or future[0][0] <= now):
                items.append(heapq.heappop(future)[2])
        return items

    @property
    def scheduled(self) -> int:
        """Timed events still waiting for their due time."""
        return len(self._future)

    def __len__(self) -> int:
        return len(self._items)
