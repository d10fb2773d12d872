"""Clocks: the loop asks a clock for (t, dt) and never reads wall time itself.

`LiveClock` reads `time.perf_counter`; `FixedClock` steps by exactly 1/fps, for
offline renders and tests, so a show is a pure function of its inputs. `Pacer`
waits for the next frame deadline when vsync does not pace the loop.

Pure module: no pygame, torch.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def tick(self) -> tuple[float, float]:
        """Advance one frame; return (t seconds since start, dt seconds since last tick)."""
        ...


class FixedClock:
    """Frame n is at t = n / fps exactly (no accumulated float drift)."""

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.frame = -1

    def tick(self) -> tuple[float, float]:
        self.frame += 1
        return self.frame / self.fps, (1.0 / self.fps if self.frame > 0 else 0.0)


class LiveClock:
    """perf_counter time since the first tick; dt is clamped so that a stall
    (a dragged window, a debugger) does not make the picture jump."""

    def __init__(self, now: Callable[[], float] = time.perf_counter, max_dt: float = 0.1) -> None:
        self._now = now
        self.max_dt = max_dt
        self._start: float | None = None
        self._last = 0.0

    @property
    def origin(self) -> float | None:
        """The perf_counter time of show time 0 (None before the first tick)."""
        return self._start

    def tick(self) -> tuple[float, float]:
        now = self._now()
        if self._start is None:
            self._start = now
            self._last = now
            return 0.0, 0.0
        dt = min(max(now - self._last, 0.0), self.max_dt)
        self._last = now
        return now - self._start, dt


class Pacer:
    """Sleeps until the next frame deadline (period = 1/fps seconds).

    Deadlines are on a fixed grid from the first call, so small oversleeps do
    not accumulate; after a long stall the grid restarts rather than rushing
    frames to catch up. `hold(lead)` waits until `lead` seconds before the
    deadline without passing it, so the loop can start its work just in time
    (late application: inputs are read as late as the work allows).
    """

    def __init__(
        self,
        fps: float,
        now: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        spin_s: float = 0.0005,
    ) -> None:
        self.period = 1.0 / fps
        self._now = now
        self._sleep = sleep
        self._spin_s = spin_s  # last bit is a yield-spin: sleep() overshoots ~0.1 ms
        self._next: float | None = None

    def hold(self, lead: float = 0.0) -> None:
        """Sleep until `lead` seconds before the next deadline (not past it)."""
        now = self._now()
        if self._next is None or now - self._next > self.period:
            self._next = now  # (re)start the grid: this frame goes at once
            return
        until = self._next - max(0.0, min(lead, self.period))
        remaining = until - now
        if remaining > self._spin_s:
            self._sleep(remaining - self._spin_s)
        while self._now() < until:
            self._sleep(0)

    def wait(self, lead: float = 0.0) -> None:
        """hold(lead), then move the deadline on by one period."""
        self.hold(lead)
        self._next += self.period  # type: ignore[operator]  # set by hold()


class WorkEstimate:
    """How long a piece of per-frame work takes, for scheduling it just in time.

    A high quantile (seconds) of the last `window` durations plus a fixed
    margin: a frame started `lead` seconds before its deadline rarely misses
    it, while one rare stall (a preempted present) does not push every later
    frame's start earlier, which would read inputs earlier than needed.
    """

    def __init__(
        self, quantile: float = 0.95, window: int = 120, margin: float = 0.0005, initial: float = 0.004
    ) -> None:
        self.quantile = quantile
        self.margin = margin  # seconds of slack for scheduler jitter
        self._recent: deque[float] = deque([initial], maxlen=window)  # seconds
        self._lead = initial + margin
        self._frames = 0

    def observe(self, seconds: float) -> None:
        self._recent.append(seconds)
        self._frames += 1
        if self._frames % 8 == 0 or len(self._recent) < 16:  # re-sorting 120 numbers: every 8th frame is enough
            ordered = sorted(self._recent)
            self._lead = ordered[min(len(ordered) - 1, int(self.quantile * len(ordered)))] + self.margin

    @property
    def lead(self) -> float:
        return self._lead
