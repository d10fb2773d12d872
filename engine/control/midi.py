"""The MIDI control module: --midi-in, --midi-api, --patch, --learn-save, --midi-feedback.

Wires the pieces: patch files (`patch`) -> a `Router` (`midi_routes`); one
`Decoder` per open input port (`midi_decode`) whose receive callback decodes,
lets MIDI learn (`learn`) take the gesture when armed, and enqueues the routed
events, never blocking; the `PortWatcher` thread (`midi_ports`) that owns the
ports; feedback (`midi_feedback`) from `show.listeners` to the output port.

It starts when any of --midi-in, --patch or --midi-feedback is given (a patch
with only OSC routes needs no MIDI port and no rtmidi).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import ShowConfig
from engine.control.learn import Learner, default_learn_file
from engine.control.midi_decode import Decoder
from engine.control.midi_feedback import FeedbackEncoder, FeedbackLimiter
from engine.control.midi_ports import ApiChoice, InputCallback, PortBackend, PortWatcher, RtMidiBackend, choose_api
from engine.control.midi_routes import Router
from engine.core.events import Event
from engine.errors import StartupError
from engine.files.patch import MidiSource, Route, load_patch, load_patches

if TYPE_CHECKING:
    from engine.stage.show import Show

log = logging.getLogger(__name__)

TRANSPORT = {"clock", "start", "stop", "continue", "song_position"}
PLAYED_VERB = "/notes/played"  # "pitch:velocity" of a key played live (velocity 0: released)


class _PortCounts:
    """Counters of one opened port, written by its receive thread only."""

    __slots__ = ("received", "dropped", "errors", "decoder")

    def __init__(self, decoder: Decoder) -> None:
        self.received = self.dropped = self.errors = 0
        self.decoder = decoder


class MidiControl:
    def __init__(
        self,
        config: ShowConfig,
        show: Show,
        backend_factory: Callable[[], PortBackend] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.show = show
        self.clock_sync = config.tempo_source == "midi"
        self.prime = bool(config.notes_prime)
        self.learn_file = Path(config.learn_save) if config.learn_save else default_learn_file()
        verbs = show.space.verb_addresses()
        # Audio, LFO and beat routes belong to engine.control.modulation, which loads the same files.
        base = [r for r in load_patches(config.patch, show.registry, verbs) if not r.is_modulation]
        learned = [r for r in _load_learned(self.learn_file, show, verbs) if not r.is_modulation]
        self.router = Router(show, [])
        if config.midi_feedback:
            self.router.on_pickup_led = self._pickup_led
        self.limiter = FeedbackLimiter(clock=clock)
        self.encoder = FeedbackEncoder([], show.registry)
        self._counts: list[_PortCounts] = []
        self._by_port: dict[str, _PortCounts] = {}  # the latest counts of each port name (the HUD)
        self._decoders: dict[str, Decoder] = {}
        self._unmatched: set[tuple[Path, str]] = set()  # (file, port filter) last warned about
        self.watcher: PortWatcher | None = None
        if config.midi_in or config.midi_feedback:
            factory = backend_factory or _rtmidi_factory(config)
            self.watcher = PortWatcher(
                factory,
                config.midi_in,
                config.midi_feedback,
                self._on_input,
                clock_sync=self.clock_sync,
                take_feedback=self.limiter.take_due,
                on_output_open=self._resync,
                wake=self.limiter.wake,
                clock=clock,
                on_inputs_changed=self._check_port_filters,
            )
        submit = self.watcher.submit if self.watcher else (lambda job: job())
        self.learner = Learner(
            show, base, learned, self.learn_file, self._install, submit, has_input=bool(config.midi_in), clock=clock
        )
        self._install(self.learner.routes())
        # Set by the port thread when the feedback output (re)opens; the loop thread resends.
        self._resync_wanted = threading.Event()
        if config.midi_feedback:
            show.listeners.append(self._feedback)
            show.frame_hooks.append(self._resync_on_loop)
        log.info(
            "patches: %d route(s) from %d file(s)%s",
            len(self.router.routes),
            len(config.patch),
            f", {len(learned)} learned from {self.learn_file}" if learned else "",
        )

    def start(self) -> None:
        if self.watcher is not None:
            self.watcher.start()

    # -- routes ---------------------------------------------------------------
    def _install(self, routes: list[Route]) -> None:
        """New routing (startup, learn): router, 14-bit sets of open ports, feedback."""
        self.router.install(routes)
        for name, decoder in list(self._decoders.items()):
            decoder.cc14 = self.router.cc14_pairs(name)
        self.encoder = FeedbackEncoder(routes, self.show.registry)

    def _check_port_filters(self, open_names: list[str]) -> None:
        """Port thread, once per change of the open inputs: a patch whose `port` filter matches
        none of them drops every message of its routes without a word, so say so. No input
        open at all is left to the watcher's own "waiting for a port" line."""
        filters: dict[tuple[Path, str], tuple[MidiSource, int]] = {}
        for route in self.router.routes:  # an immutable tuple: safe to read on this thread
            src = route.source
            if isinstance(src, MidiSource) and src.port is not None:
                key = (route.file, src.port)
                filters[key] = (src, filters[key][1] + 1 if key in filters else 1)
        unmatched = set()
        if open_names:
            for key, (src, count) in filters.items():
                if any(src.matches_port(name) for name in open_names):
                    continue
                unmatched.add(key)
                log.warning(
                    "MIDI: patch %s: port filter '%s' matches none of the open MIDI inputs (%s); "
                    "its %d route(s) ignore every message until a matching port opens "
                    "(change the patch's [midi] port or --midi-in)",
                    key[0],
                    key[1],
                    ", ".join(f"'{n}'" for n in open_names),
                    count,
                )
            for file, port in sorted(k for k in self._unmatched - unmatched if k in filters):
                log.info("MIDI: patch %s: port filter '%s' now matches an open input", file, port)
        self._unmatched = unmatched

    # -- receive threads ---------------------------------------------------------
    def _on_input(self, port_name: str) -> InputCallback:
        """A receive callback for a newly opened port (called on the port thread)."""
        decoder = Decoder(self.router.cc14_pairs(port_name), clock=self.clock_sync)
        counts = _PortCounts(decoder)
        self._counts.append(counts)
        self._by_port[port_name] = counts  # a reopened port counts afresh
        self._decoders[port_name] = decoder
        put, route, routed, learner = self.show.queue.put, self.router.midi_events, self.router.routed, self.learner
        prime = self.prime

        def receive(data: Sequence[int], t: float) -> None:
            counts.received += 1
            try:
                g = decoder.feed(data, t)
                if g is None:
                    return
                if g.kind in TRANSPORT:
                    value = g.value if g.kind == "song_position" else None
                    events = [Event("verb", "/tempo/" + g.kind, value, t, "midi")]
                elif learner.offer(g, port_name):
                    return
                else:
                    events = route(g, port_name)
                    if prime and g.kind == "note" and not routed(g, port_name):  # unrouted keys: the melody
                        events = [Event("verb", PLAYED_VERB, f"{g.number}:{g.value}", t, "midi")]
                for ev in events:
                    if not put(ev):
                        counts.dropped += 1
            except Exception:  # never let a receive thread die mid-show
                counts.errors += 1
                if counts.errors == 1:
                    log.exception("MIDI in %r: a message could not be handled (counted from now on)", port_name)

        return receive

    # -- feedback ---------------------------------------------------------------
    def _feedback(self, address: str, value: float, _source: str) -> None:
        for key, messages in self.encoder.encode(address, value):
            self.limiter.offer(key, messages)

    def _pickup_led(self, route: Route, lit: bool) -> None:
        led = route.pickup_led
        assert led is not None  # only routes with one call back
        msg = led.message(lit, route.out_channel)
        self.limiter.offer(("led", led.kind, msg[0] & 0x0F, led.number), [msg])

    def _resync(self) -> None:
        """The feedback port (re)opened (port thread): ask the loop to show everything again."""
        self._resync_wanted.set()

    def _resync_on_loop(self, _show: Show) -> None:
        """Frame hook: every feedback value and pick-up light again, read on the loop thread,
        so a value read here can never overtake a newer one the loop offers."""
        if not self._resync_wanted.is_set():
            return
        self._resync_wanted.clear()
        self.limiter.forget_sent()
        for key, messages in self.encoder.everything():
            self.limiter.offer(key, messages)
        for route, lit in self.router.pickup_leds():
            self._pickup_led(route, lit)

    # -- Control -----------------------------------------------------------------
    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
        if self._feedback in self.show.listeners:
            self.show.listeners.remove(self._feedback)
        if self._resync_on_loop in self.show.frame_hooks:
            self.show.frame_hooks.remove(self._resync_on_loop)

    def stats(self) -> dict[str, Any]:
        counts = list(self._counts)
        return {
            "midi": {
                "received": sum(c.received for c in counts),
                "dropped": sum(c.dropped for c in counts),
                "malformed": sum(c.decoder.malformed for c in counts),
                "filtered": sum(c.decoder.filtered for c in counts),
                "errors": sum(c.errors for c in counts),
                "ports": self.watcher.port_names() if self.watcher else [],
                "port_counts": {name: c.received for name, c in list(self._by_port.items())},
                # patches whose [midi] port filter matches no open input (the startup warning's)
                "ports_missing": [f"{file.name}: {port}" for file, port in sorted(self._unmatched)],
                "feedback_sent": self.watcher.sent if self.watcher else 0,
                "routes": len(self.router.routes),
                "learned": len(self.learner.learned),
            }
        }


def _load_learned(file: Path, show: Show, verbs: Sequence[str]) -> list[Route]:
    """The --learn-save file's routes; none while it does not exist yet. A path that cannot
    hold the file stops startup now rather than failing every save during the show."""
    try:
        if not file.exists():
            return []
    except OSError as e:  # e.g. a folder on the way that may not be searched (EACCES)
        raise StartupError(f"{file}: cannot read the learn file (--learn-save): {e.strerror}") from None
    if not file.is_file():
        raise StartupError(f"{file}: --learn-save: expected a file for learned bindings, found a directory or device")
    return load_patch(file, show.registry, verbs).routes


_last_said: str | None = None  # the API choice last logged: MIDI in and notes out say it once


def choose_midi_api(config: ShowConfig) -> ApiChoice:
    """The MIDI system for this show (see `choose_api`): --midi-api or MIDO_BACKEND when
    given (no probing), else the audio output's host API, else whether JACK runs."""
    global _last_said
    env = dict(os.environ)
    if config.midi_api or env.get("MIDO_BACKEND", "").strip():
        choice = choose_api(config.midi_api, env, None, None)
    else:
        # Lazy: only a show that opens MIDI ports without naming an API asks PortAudio.
        from engine.devices.audio_devices import jack_default_server_running, output_hostapi

        audio = None if config.no_audio else output_hostapi(config.audio_device)
        choice = choose_api(None, env, audio, jack_default_server_running() if audio is None else None)
    if choice.describe() != _last_said:
        _last_said = choice.describe()
        log.info("%s", _last_said)
    return choice


def _rtmidi_factory(config: ShowConfig) -> Callable[[], PortBackend]:
    """Check the MIDI API now (a flag error stops startup); ports are listed later, on the port thread."""
    choice = choose_midi_api(config)
    try:
        try:
            backend = RtMidiBackend(choice.api)
        except StartupError:
            if choice.explicit:
                raise
            # Chosen here, not asked for: python-rtmidi without JACK still has its default.
            log.warning("MIDI: %s is not compiled into python-rtmidi here; using its default API", choice.api)
            backend = RtMidiBackend(None)
    except ImportError as e:
        raise StartupError(f"--midi-in/--midi-feedback need python-rtmidi ({e}); pip install python-rtmidi") from None
    return lambda: backend  # after a failure its listers are dropped and made anew on the next poll


def start(config: ShowConfig, show: Show) -> MidiControl | None:
    if not (config.midi_in or config.patch or config.midi_feedback):
        return None
    control = MidiControl(config, show)
    control.start()
    return control
