"""MIDI ports: the python-rtmidi backend and the one thread that owns every port.

No backend reports an unplugged device, and listing or opening ports is not
thread-safe, so one `PortWatcher` thread does all of it: every `poll_interval`
seconds (0.5) it lists port names, opens inputs that match a `--midi-in`
pattern, closes those whose name vanished and reopens them by name when they
come back (so a replug is live again within about a second), and does the same
for the `--midi-feedback` output. The same thread sends feedback (it owns the
output port, so a send never races a close) and runs small jobs such as saving
the MIDI-learn file, so no file or port I/O happens on the show's loop thread.

Receiving happens on rtmidi's own callback thread per input port; the callback
given by the MIDI control only decodes and enqueues.

The backend talks to python-rtmidi directly, not through mido's port classes:
mido's callback wrapper drops unparsable bytes silently (they must be counted
here) and lets MIDI clock through to Python even when nobody wants it, while
rtmidi's own `ignore_types` filter drops clock in C when clock sync is off.
mido's message parser is still used by the tests' senders.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.core.ratelog import first_and_every
from engine.errors import StartupError

log = logging.getLogger(__name__)

CLIENT_NAME = "latent-stage"  # our own ports start with this; never opened as inputs
POLL_INTERVAL = 0.5  # seconds between port scans
BACKEND_RETRY = 2.0  # seconds between attempts when the MIDI system itself is unavailable
API_NAMES = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE", "winmm": "WINDOWS_MM"}
InputCallback = Callable[[Sequence[int], float], None]  # (message bytes, receive perf_counter time)


class InPort(Protocol):
    name: str

    def close(self) -> None: ...


class OutPort(Protocol):
    name: str

    def send(self, message: Sequence[int]) -> None: ...

    def close(self) -> None: ...


class PortBackend(Protocol):
    def input_names(self) -> list[str]: ...

    def output_names(self) -> list[str]: ...

    def open_input(self, name: str, callback: InputCallback, clock: bool) -> InPort: ...

    def open_output(self, name: str) -> OutPort: ...

    def close(self) -> None: ...


def resolve_api(flag: str | None, env: dict[str, str] | None = None) -> str | None:
    """rtmidi API name (e.g. "UNIX_JACK") from --midi-api or MIDO_BACKEND; None = rtmidi's default."""
    if flag:
        return API_NAMES[flag]
    value = (os.environ if env is None else env).get("MIDO_BACKEND", "").strip()
    if not value:
        return None
    module, _, api = value.partition("/")
    if module != "mido.backends.rtmidi":
        raise StartupError(f"MIDO_BACKEND={value!r}: expected mido.backends.rtmidi[/API] (only rtmidi is supported)")
    if api and api not in API_NAMES.values():
        raise StartupError(f"MIDO_BACKEND={value!r}: expected an API among {', '.join(API_NAMES.values())}")
    return api or None


@dataclass(frozen=True)
class ApiChoice:
    """The MIDI system the show uses, and why (said once in the log)."""

    api: str | None  # rtmidi API name (e.g. "UNIX_JACK"); None = python-rtmidi's default (ALSA on Linux)
    why: str
    explicit: bool  # named by --midi-api or MIDO_BACKEND (a missing API stops startup) or chosen here

    def describe(self) -> str:
        name = "python-rtmidi's default" if self.api is None else self.api
        return f"MIDI: using the {name} API ({self.why})"


def choose_api(
    flag: str | None, env: dict[str, str] | None, audio_hostapi: str | None, jack_running: bool | None
) -> ApiChoice:
    """Which MIDI system to use: --midi-api, else MIDO_BACKEND, else the audio's.

    Audio prefers JACK whenever a JACK server runs (engine.devices.audio_devices); MIDI
    left on rtmidi's default (ALSA) then sends notes nowhere where there is no ALSA
    sequencer, and lands on another graph than the sound where there is. So without an
    explicit choice MIDI follows `audio_hostapi`, the host API the audio output picks
    (None: no audio device), and with no audio device it follows whether a JACK server
    runs (`jack_running`; None: libjack is not installed). Pure: the caller probes.
    """
    if flag:
        return ApiChoice(API_NAMES[flag], f"--midi-api {flag}", True)
    value = (os.environ if env is None else env).get("MIDO_BACKEND", "").strip()
    if value:
        return ApiChoice(resolve_api(None, {"MIDO_BACKEND": value}), f"MIDO_BACKEND={value}", True)
    if audio_hostapi is not None:
        if "jack" in audio_hostapi.lower():
            return ApiChoice(API_NAMES["jack"], f"the audio output uses {audio_hostapi}; --midi-api overrides", False)
        return ApiChoice(None, f"the audio output uses {audio_hostapi}, not JACK; --midi-api overrides", False)
    if jack_running:
        return ApiChoice(
            API_NAMES["jack"], "no audio output, but a JACK server is running; --midi-api overrides", False
        )
    return ApiChoice(None, "no audio output and no JACK server running; --midi-api overrides", False)


class _RtIn:
    def __init__(self, rt, name: str) -> None:
        self._rt, self.name = rt, name

    def close(self) -> None:
        self._rt.cancel_callback()
        self._rt.close_port()
        self._rt.delete()


class _RtOut:
    def __init__(self, rt, name: str) -> None:
        self._rt, self.name = rt, name

    def send(self, message: Sequence[int]) -> None:
        self._rt.send_message(list(message))

    def close(self) -> None:
        self._rt.close_port()
        self._rt.delete()


class RtMidiBackend:
    """Ports through python-rtmidi; raises OSError when the MIDI system is unavailable."""

    def __init__(self, api: str | None = None, client: str = CLIENT_NAME) -> None:
        import rtmidi  # the edge: imported only when MIDI ports are wanted

        self._rtmidi = rtmidi
        self._api = rtmidi.API_UNSPECIFIED if api is None else getattr(rtmidi, "API_" + api)
        if api is not None and self._api not in rtmidi.get_compiled_api():
            have = ", ".join(rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api())
            raise StartupError(f"--midi-api: {api} is not compiled into python-rtmidi here (available: {have})")
        self.client = client
        self._lister_in = self._lister_out = None

    def _new(self, cls):
        try:
            return cls(self._api, self.client)
        except self._rtmidi.RtMidiError as e:
            raise OSError(str(e)) from None

    def input_names(self) -> list[str]:
        if self._lister_in is None:
            self._lister_in = self._new(self._rtmidi.MidiIn)
        return self._list(self._lister_in)

    def output_names(self) -> list[str]:
        if self._lister_out is None:
            self._lister_out = self._new(self._rtmidi.MidiOut)
        return self._list(self._lister_out)

    def _list(self, rt) -> list[str]:
        try:
            return list(rt.get_ports())
        except self._rtmidi.RtMidiError as e:
            self.close()  # a dead server: make fresh listers next time
            raise OSError(str(e)) from None

    def _open(self, rt, name: str) -> None:
        try:
            rt.open_port(rt.get_ports().index(name), "in" if isinstance(rt, self._rtmidi.MidiIn) else "out")
        except (ValueError, self._rtmidi.RtMidiError) as e:
            rt.delete()
            raise OSError(f"cannot open {name!r}: {e}") from None

    def open_input(self, name: str, callback: InputCallback, clock: bool) -> InPort:
        rt = self._new(self._rtmidi.MidiIn)
        # Drop sysex and active sensing in C always, clock too unless clock sync is on.
        rt.ignore_types(sysex=True, timing=not clock, active_sense=True)
        self._open(rt, name)
        perf = time.perf_counter
        rt.set_callback(lambda event, _data: callback(event[0], perf()))
        return _RtIn(rt, name)

    def open_output(self, name: str) -> OutPort:
        rt = self._new(self._rtmidi.MidiOut)
        self._open(rt, name)
        return _RtOut(rt, name)

    def close(self) -> None:
        for rt in (self._lister_in, self._lister_out):
            if rt is not None:
                rt.delete()
        self._lister_in = self._lister_out = None


def matches(pattern: str, name: str) -> bool:
    return pattern.lower() == "all" or pattern.lower() in name.lower()


class PortWatcher:
    """Owns every MIDI port; see the module docstring. Tests drive `poll()` and
    `send_due()` directly with a fake backend; the live show runs `start()`."""

    def __init__(
        self,
        backend_factory: Callable[[], PortBackend],
        inputs: Sequence[str],
        output: str | None,
        on_input: Callable[[str], InputCallback],
        *,
        clock_sync: bool = False,
        take_feedback: Callable[[], tuple[list[Sequence[int]], float | None]] | None = None,
        on_output_open: Callable[[], None] | None = None,
        wake: threading.Event | None = None,
        poll_interval: float = POLL_INTERVAL,
        clock: Callable[[], float] = time.perf_counter,
        output_label: str = "MIDI feedback",
        on_inputs_changed: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._factory = backend_factory
        self.output_label = output_label  # how log lines name the output ("MIDI feedback", "notes out")
        self.backend: PortBackend | None = None
        self.patterns = list(inputs)
        self.output_pattern = output
        self._on_input = on_input
        self.clock_sync = clock_sync
        self._take_feedback = take_feedback
        self._on_output_open = on_output_open
        self.wake = wake or threading.Event()
        self.poll_interval = poll_interval
        self.clock = clock
        self.inputs: dict[str, InPort] = {}
        self.output: OutPort | None = None
        self.sent = 0
        self.send_errors = 0
        self._seen: set[str] = set()  # port names opened before (for "is back" log lines)
        self._waiting_logged: set[str] = set()
        # Told (port thread) the open input names whenever that set changes, not per message.
        self._on_inputs_changed = on_inputs_changed
        self._reported_inputs: frozenset[str] | None = None
        self._backend_error: str | None = None
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one scan -------------------------------------------------------------
    def poll(self) -> bool:
        """List ports, open what matches, close what vanished; False when the MIDI system is unavailable."""
        try:
            if self.backend is None:
                self.backend = self._factory()
            in_names = self.backend.input_names() if self.patterns else []
            out_names = self.backend.output_names() if self.output_pattern else []
        except OSError as e:
            self._backend_down(str(e))
            self._report_inputs()
            return False
        if self._backend_error is not None:
            log.info("MIDI: the MIDI system is reachable again")
            self._backend_error = None
        self._scan_inputs(in_names)
        self._scan_output(out_names)
        self._report_inputs()
        return True

    def _report_inputs(self) -> None:
        """Tell `on_inputs_changed` the open inputs, once per change of their set (the first
        scan counts as a change, so the show hears about its ports at startup)."""
        now = frozenset(self.inputs)
        if self._on_inputs_changed is None or now == self._reported_inputs:
            return
        self._reported_inputs = now
        self._on_inputs_changed(sorted(now))

    def _backend_down(self, why: str) -> None:
        if self._backend_error is None:
            log.warning("MIDI: ports unavailable (%s); retrying every %.0f s", why, BACKEND_RETRY)
        self._backend_error = why
        for name in list(self.inputs):
            self._close_input(name, "the MIDI system went away")
        if self.output is not None:
            self._close_output("the MIDI system went away")
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def _own(self, name: str) -> bool:
        client = getattr(self.backend, "client", CLIENT_NAME)
        return name.startswith(client)

    def _scan_inputs(self, names: list[str]) -> None:
        present = set(names)
        for name in list(self.inputs):
            if name not in present:
                self._close_input(name, "is gone; waiting for it to come back")
        names = [n for n in names if not self._own(n)]
        for pattern in self.patterns:
            found = [n for n in names if matches(pattern, n)]
            if not found and pattern not in self._waiting_logged:
                log.info("MIDI in: waiting for a port matching '%s' (present: %s)", pattern, ", ".join(names) or "none")
                self._waiting_logged.add(pattern)
            for name in found:
                self._waiting_logged.discard(pattern)
                if name not in self.inputs:
                    self._open_input(name)

    def _open_input(self, name: str) -> None:
        assert self.backend is not None
        try:
            self.inputs[name] = self.backend.open_input(name, self._on_input(name), self.clock_sync)
        except OSError as e:
            log.warning("MIDI in: %s (will retry)", e)
            return
        log.info("MIDI in: %s '%s'", "reconnected" if name in self._seen else "opened", name)
        self._seen.add(name)

    def _close_input(self, name: str, why: str) -> None:
        port = self.inputs.pop(name)
        try:
            port.close()
        except OSError as e:
            log.debug("MIDI in: closing %r: %s", name, e)
        log.log(logging.INFO if why == "closed" else logging.WARNING, "MIDI in: '%s' %s", name, why)

    def _scan_output(self, names: list[str]) -> None:
        if not self.output_pattern:
            return
        if self.output is not None and self.output.name not in names:
            self._close_output("is gone; waiting for it to come back")
        if self.output is not None:
            return
        names = [n for n in names if not self._own(n)]
        found = [n for n in names if matches(self.output_pattern, n)]
        if not found:
            if "\0out" not in self._waiting_logged:
                log.info(
                    "%s: waiting for an output matching '%s' (present: %s)",
                    self.output_label,
                    self.output_pattern,
                    ", ".join(names) or "none",
                )
                self._waiting_logged.add("\0out")
            return
        assert self.backend is not None
        try:
            self.output = self.backend.open_output(found[0])
        except OSError as e:
            log.warning("%s: %s (will retry)", self.output_label, e)
            return
        self._waiting_logged.discard("\0out")
        log.info("%s: %s '%s'", self.output_label, "reconnected" if found[0] in self._seen else "opened", found[0])
        self._seen.add(found[0])
        if self._on_output_open is not None:
            self._on_output_open()

    def _close_output(self, why: str) -> None:
        port, self.output = self.output, None
        assert port is not None
        try:
            port.close()
        except OSError as e:
            log.debug("%s: closing %r: %s", self.output_label, port.name, e)
        log.log(logging.INFO if why == "closed" else logging.WARNING, "%s: '%s' %s", self.output_label, port.name, why)

    # -- feedback and jobs ------------------------------------------------------
    def send_due(self) -> float | None:
        """Send the feedback that is due; returns when the next is due (clock seconds) or None."""
        if self.output is None or self._take_feedback is None:
            return None
        messages, next_due = self._take_feedback()
        for msg in messages:
            try:
                self.output.send(msg)
                self.sent += 1
            except OSError as e:
                self.send_errors += 1
                self._close_output(f"failed to send ({e})")
                break
        return next_due

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` on the port thread (or now, if no thread runs)."""
        if self._thread is None:
            job()
            return
        self._jobs.put(job)
        self.wake.set()

    def _run_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            try:
                job()
            except OSError as e:
                log.error("MIDI: background job failed: %s", e)

    # -- the thread ---------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="midi-ports", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_poll = self.clock()
        failures = 0
        while not self._stop.is_set():
            timeout = self.poll_interval
            try:
                now = self.clock()
                if now >= next_poll:
                    ok = self.poll()
                    next_poll = now + (self.poll_interval if ok else BACKEND_RETRY)
                self._run_jobs()
                next_due = self.send_due()
                timeout = next_poll - self.clock()
                if next_due is not None:
                    timeout = min(timeout, next_due - self.clock())
            except Exception:  # this thread must outlive any surprise from a driver
                failures += 1
                if first_and_every(failures, 100):
                    log.exception("MIDI port thread: unexpected error (%d so far); carrying on", failures)
            self.wake.wait(max(timeout, 0.0))
            self.wake.clear()
        self._run_jobs()
        self._close_all()

    def _close_all(self) -> None:
        for name in list(self.inputs):
            self._close_input(name, "closed")
        if self.output is not None:
            self._close_output("closed")
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def close(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        else:
            self._close_all()

    def port_names(self) -> list[str]:
        names = list(self.inputs)
        if self.output is not None:
            names.append(self.output.name + " (feedback)")
        return names
