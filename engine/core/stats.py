"""Frame statistics: present-to-present intervals, percentiles, late frames.

A frame time is the interval between two presents, counted after the first
`warmup_s` seconds (model warm-up, window creation); a late frame is one whose
interval exceeds 1.5 target periods. Later subsystems add their own sections
to the summary via `extra`.

Pure module.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

RECENT = 240  # intervals kept for recent() (4 s at 60 fps)
# Frame times go into a histogram, not a list: a show that runs for weeks keeps its
# percentiles in constant memory (a list grew ~115 kB a minute at 60 fps).
BIN_MS = 0.01  # histogram resolution
TOP_MS = 250.0  # longer intervals share the last bin (the exact maximum is kept apart)


class FrameStats:
    def __init__(self, target_fps: float, warmup_s: float = 1.0) -> None:
        self.target_period = 1.0 / target_fps
        self.warmup_s = warmup_s
        self.frames = 0  # all presented frames, warm-up included
        self._first: float | None = None
        self._last: float | None = None
        self._hist = np.zeros(int(TOP_MS / BIN_MS) + 1, np.int64)  # intervals after warm-up, by BIN_MS
        self._count = 0
        self._sum_s = 0.0
        self._max_ms = 0.0
        self._late = 0  # intervals over 1.5 target periods
        self._recent: deque[float] = deque(maxlen=RECENT)  # seconds, the last intervals (HUD graph)
        self.extra: dict[str, Any] = {}

    def presented(self, t: float) -> None:
        """Record a present at perf_counter time t (seconds)."""
        self.frames += 1
        if self._first is None:
            self._first = t
        elif self._last is not None:
            self._recent.append(t - self._last)
            if t - self._first > self.warmup_s:
                self._count_interval(t - self._last)
        self._last = t

    def _count_interval(self, seconds: float) -> None:
        ms = seconds * 1000.0
        self._hist[min(int(ms / BIN_MS), self._hist.size - 1)] += 1
        self._count += 1
        self._sum_s += seconds
        self._max_ms = max(self._max_ms, ms)
        if seconds > 1.5 * self.target_period:
            self._late += 1

    def _percentiles(self, qs: tuple[float, ...]) -> list[float]:
        """Interval percentiles in ms from the histogram (bin centres; within BIN_MS / 2)."""
        cum = np.cumsum(self._hist)
        out = []
        for q in qs:
            i = int(np.searchsorted(cum, q / 100.0 * self._count, side="left"))
            out.append(min((i + 0.5) * BIN_MS, self._max_ms))
        return out

    def recent(self, count: int = RECENT) -> list[float]:
        """The last `count` present-to-present intervals in seconds (warm-up included)."""
        return list(self._recent)[-count:]

    def summary(self) -> dict[str, Any]:
        seconds = (self._last - self._first) if self._first is not None and self._last is not None else 0.0
        if self._count:
            p50, p95, p99 = self._percentiles((50.0, 95.0, 99.0))
            frame_ms = {"p50": p50, "p95": p95, "p99": p99, "max": self._max_ms}
            fps = self._count / self._sum_s if self._sum_s > 0 else 0.0
        else:
            frame_ms = {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
            fps = (self.frames - 1) / seconds if seconds > 0 else 0.0
        late = self._late
        out: dict[str, Any] = {
            "frames": self.frames,
            "seconds": round(seconds, 4),
            "fps": round(fps, 3),
            "frame_ms": {k: round(v, 3) for k, v in frame_ms.items()},
            "late_frames": late,
        }
        out.update(self.extra)
        return out


def format_summary(s: dict[str, Any]) -> str:
    """One human line for the terminal."""
    f = s["frame_ms"]
    return (
        f"{s['frames']} frames in {s['seconds']:.1f} s: {s['fps']:.1f} fps; frame ms "
        f"p50 {f['p50']:.2f} p95 {f['p95']:.2f} p99 {f['p99']:.2f} max {f['max']:.2f}; "
        f"late frames {s['late_frames']}"
    )
