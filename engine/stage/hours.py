"""Opening hours on stage: the picture fades in at opening time and out at closing time.

While closed and faded out the show rests: no deck moves, no model runs, the
setlist's clock waits, and the output gets black frames (cheap: no forward
pass, a conversion of nothing). Wall-clock time (the machine's local time) decides,
so this is a live-show feature; a render ignores it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from engine.files.schedule import Schedule

log = logging.getLogger(__name__)


class OpeningHours:
    """The show's open level: 1 open, 0 closed, in between during an edge's fade."""

    def __init__(self, schedule: Schedule, now: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self.schedule = schedule
        self._now = now
        self.open = schedule.is_open(now())
        self.level = 1.0 if self.open else 0.0  # no fade into the first frame
        self.rested_frames = 0  # frames with the model idle (status, tests)
        log.info("opening hours from %s: %s now", schedule.file, "open" if self.open else "closed")

    def step(self, dt_s: float) -> None:
        """This frame's level (dt_s: seconds since the last frame)."""
        is_open = self.schedule.is_open(self._now())
        if is_open != self.open:
            self.open = is_open
            log.info(
                "opening hours: %s (fading over %g s)", "open" if is_open else "closed", self.schedule.fade_seconds
            )
        target = 1.0 if is_open else 0.0
        fade = self.schedule.fade_seconds
        step = 1.0 if fade <= 0.0 else dt_s / fade
        self.level = min(target, self.level + step) if self.level < target else max(target, self.level - step)
        if self.resting:
            self.rested_frames += 1

    @property
    def resting(self) -> bool:
        """Closed and faded out: the frame needs no model."""
        return not self.open and self.level <= 0.0
