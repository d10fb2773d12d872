"""Tempo control: the --tempo-source flag and, for Ableton Link, the Link poller.

`internal` (default) and `midi` need no thread here: tap tempo and MIDI clock
arrive as verbs on the show's queue (keys, OSC, the MIDI control) and the
show's `Tempo` handles them. `link` joins an Ableton Link session through the
optional `aalink` package (`pip install .[link]`, GPL-3) and enqueues the
session's tempo and beat as `/tempo/link_bpm` and `/tempo/link_beat` events,
so a recorded show replays them like any other input.

The beat sent is the session's beat when the frame will be on screen (the
show's expected input-to-present time ahead), as Link asks of its peers.

Joining never changes the session's tempo: this module never writes
`link.tempo`, and it enables Link only a moment after creating it (creating
and enabling at once was seen to impose the newcomer's tempo on a running
session, aalink issue #7).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from engine.config import ShowConfig
from engine.core.events import Event
from engine.errors import StartupError

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

LINK_POLL_S = 0.02  # seconds between Link samples (50 per second)
LINK_ENABLE_DELAY_S = 0.5  # seconds between creating and enabling Link (see the module docstring)


def start(config: ShowConfig, show: Show) -> LinkControl | None:
    source = config.tempo_source
    show.tempo.source = source
    if source != "link":
        return None
    return LinkControl(show, _import_aalink())


def _import_aalink() -> Any:
    try:
        return importlib.import_module("aalink")
    except ImportError:
        raise StartupError(
            "--tempo-source link needs the optional aalink package: pip install .[link] (or pip install aalink)"
        ) from None


class LinkControl:
    """Polls an Ableton Link session on one thread and enqueues its tempo and beat.

    aalink wants a running asyncio loop (its `loop` argument is deprecated), so the
    thread runs one: Link is created, enabled and read there, and nowhere else."""

    def __init__(self, show: Show, aalink: Any) -> None:
        self._show = show
        self._queue = show.queue
        self._aalink = aalink
        self._bpm = show.tempo.bpm  # only the tempo of a session we start alone; a joined one keeps its own
        self._link: Any = None
        self._stop = threading.Event()
        self.samples = 0
        self.peers = 0
        self._thread = threading.Thread(target=self._run, name="tempo-link", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._poll())
        except Exception:  # noqa: BLE001 - Link failing must not take the show down: the beat free-runs
            log.exception("Ableton Link stopped; the tempo keeps its last value")

    async def _poll(self) -> None:
        self._link = link = self._aalink.Link(self._bpm)
        await asyncio.sleep(LINK_ENABLE_DELAY_S)  # the loop keeps running for aalink meanwhile
        if self._stop.is_set():
            return
        link.enabled = True
        log.info("Ableton Link enabled")
        last_bpm = None
        try:
            while not self._stop.is_set():
                now = time.perf_counter()
                bpm, beat = float(link.tempo), float(link.beat)
                # Link's advice: the beat at the moment the output is seen. The sample is applied
                # at the next frame's input read (on average half a poll later) and shown
                # input_to_present_s after that; this ahead-time is in the event, so replays match.
                beat += (LINK_POLL_S / 2 + self._show.input_to_present_s) * bpm / 60.0
                if bpm != last_bpm:
                    self._queue.put(Event("verb", "/tempo/link_bpm", bpm, t=now, source="link"))
                    last_bpm = bpm
                self._queue.put(Event("verb", "/tempo/link_beat", beat, t=now, source="link"))
                self.samples += 1
                peers = int(link.num_peers)
                if peers != self.peers:
                    log.info("Ableton Link: %d peer(s)", peers)
                    self.peers = peers
                await asyncio.sleep(LINK_POLL_S)
        finally:
            link.enabled = False

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=1.0)

    def stats(self) -> dict[str, Any]:
        return {"link": {"samples": self.samples, "peers": self.peers}}
