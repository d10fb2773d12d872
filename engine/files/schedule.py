"""Opening hours (`show --hours FILE`): when a gallery show plays and when it rests in black.

    fade_seconds = 5.0            # the fade at each edge
    [[open]]
    days = ["tue", "wed", "thu", "fri", "sat", "sun"]   # default: every day
    from = "10:00"                # HH:MM or HH:MM:SS, the machine's local time
    to = "18:00"                  # at or before `from`: until then the next day
    [[open]]
    date = "2026-12-24"           # special hours on one date (instead of days)
    from = "10:00"
    to = "14:00"
    [[closed]]
    date = "2026-12-25"           # closed all that day, whatever the hours say

A schedule that can never open (no weekly hours and every dated opening in the
past, every day closed...) is an error at startup, as is any bad key.

Pure module: no pygame, torch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.checks import Checker, read_toml
from engine.errors import StartupError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_LOOKAHEAD_DAYS = 400  # "can it ever open" looks this far (a year and its dated exceptions)


class ScheduleError(StartupError, ValueError):
    """A schedule file that cannot be used; names the file, the entry and the key."""


@dataclass(frozen=True)
class Opening:
    start: dt.time
    end: dt.time  # at or before start: the next day
    days: frozenset[int] = frozenset(range(7))  # weekdays it applies to (when date is None)
    date: dt.date | None = None

    def _starts_on(self, day: dt.date) -> bool:
        return day == self.date if self.date is not None else day.weekday() in self.days

    def covers(self, moment: dt.datetime) -> bool:
        t, day = moment.time(), moment.date()
        if self.start < self.end:
            return self._starts_on(day) and self.start <= t < self.end
        # Past midnight: from start on its day, or until end on the day after.
        return (self._starts_on(day) and t >= self.start) or (
            self._starts_on(day - dt.timedelta(days=1)) and t < self.end
        )


@dataclass(frozen=True)
class Schedule:
    file: Path
    openings: tuple[Opening, ...]
    closed: frozenset[dt.date]
    fade_seconds: float = 5.0

    def is_open(self, moment: dt.datetime) -> bool:
        """Whether the show plays at `moment` (local time, naive)."""
        if moment.date() in self.closed:
            return False
        return any(o.covers(moment) for o in self.openings)

    def opens_after(self, moment: dt.datetime) -> bool:
        """Whether it is open at any minute boundary within the look-ahead (or now)."""
        if self.is_open(moment):
            return True
        for day in range(_LOOKAHEAD_DAYS):
            date = moment.date() + dt.timedelta(days=day)
            for o in self.openings:
                start = dt.datetime.combine(date, o.start)
                if start >= moment and self.is_open(start):
                    return True
        return False


def load_schedule(path: str | Path, now: dt.datetime | None = None) -> Schedule:
    """Read and check a schedule; ScheduleError naming the file and the key (and one that can
    never open from `now` on)."""
    file = Path(path)
    data = read_toml(file, ScheduleError, "the opening hours")
    ck = Checker(file, ScheduleError)
    ck.unknown(data, ("fade_seconds", "open", "closed"))
    fade = ck.number("fade_seconds", data.get("fade_seconds", 5.0), 0.0, 600.0)
    openings = tuple(_opening(ck.at(f"open #{i + 1}: "), row) for i, row in enumerate(_rows(ck, data, "open")))
    closed = frozenset(_closed(ck.at(f"closed #{i + 1}: "), row) for i, row in enumerate(_rows(ck, data, "closed")))
    schedule = Schedule(file, openings, closed, fade)
    if not schedule.opens_after(now or dt.datetime.now()):
        raise ScheduleError(f"{file}: these hours never open from now on (check the [[open]] and [[closed]] entries)")
    return schedule


def _rows(ck: Checker, data: dict, key: str) -> list[Any]:
    rows = data.get(key, [])
    if not isinstance(rows, list):
        raise ck.fail(key, f"[[{key}]] tables", rows)
    return rows


def _opening(ck: Checker, row: Any) -> Opening:
    row = ck.table("open", row, "a table with from, to and days or date")
    ck.unknown(row, ("days", "date", "from", "to"))
    start, end = _time(ck, row, "from"), _time(ck, row, "to")
    if "date" in row and "days" in row:
        raise ck.fail("date", "days or date, not both")
    if "date" in row:
        return Opening(start, end, date=_date(ck, row["date"], "date"))
    names = row.get("days", list(DAYS))
    if not isinstance(names, list) or not names or any(d not in DAYS for d in names):
        raise ck.fail("days", "a list of " + ", ".join(DAYS), names)
    return Opening(start, end, frozenset(DAYS.index(d) for d in names))


def _closed(ck: Checker, row: Any) -> dt.date:
    row = ck.table("closed", row, "a table with date")
    ck.unknown(row, ("date",))
    return _date(ck, row.get("date"), "date")


def _time(ck: Checker, row: dict, key: str) -> dt.time:
    value = row.get(key)
    if isinstance(value, dt.time):  # TOML's own local time: from = 10:00:00
        return value
    try:
        return dt.time.fromisoformat(value) if isinstance(value, str) else _bad()
    except ValueError:
        raise ck.fail(key, 'a time "HH:MM" or "HH:MM:SS"', value) from None


def _date(ck: Checker, value: Any, key: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):  # TOML's local date
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else _bad()
    except ValueError:
        raise ck.fail(key, 'a date "YYYY-MM-DD"', value) from None


def _bad() -> Any:
    raise ValueError("not a string")
