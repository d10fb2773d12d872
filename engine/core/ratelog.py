"""When to log a problem that may repeat thousands of times: the first time, then every Nth.

A flood (another program sending a mistyped OSC address 60 times a second, a hook
that fails every frame) must not fill the log or cost the frame its time, but the
first occurrence must be seen, and later lines with the running count show it is
still happening. The counters themselves stay where they are (stats and tests
read them); this only decides.

Pure module.
"""

from __future__ import annotations


def first_and_every(count: int, every: int, added: int = 1) -> bool:
    """Should the event that just brought a counter to `count` be logged?

    Yes for the first one and whenever the counter reaches or passes a multiple of
    `every`; `added` is how much the counter just grew by (a batch dropped at once),
    so a jump over a multiple still logs.
    """
    before = count - added
    return count >= 1 and (before < 1 or before // every != count // every)
