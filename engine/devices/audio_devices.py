"""Audio devices: which PortAudio device a flag means, and the `devices` listing.

`--audio-device` (and `--audio-in`) take:

- nothing / "auto": the JACK host API's default device when a JACK server
  runs (PortAudio only lists JACK then), else the system default device, else
  no device at all: the show runs silently and says so once;
- a host API name or part of it ("jack", "alsa", "pulse"): that API's default
  device (its first one with channels when it names no default);
- a device index ("3"), or part of a device name ("USB Audio"), case-insensitive.

A named device or API that is absent is a StartupError naming the flag and
listing what exists. sounddevice's own default is ALSA's default even while
JACK runs, hence the explicit preference for JACK.

The choice is a pure function of a `DeviceTable` (tests build one by hand);
`query()` reads the real one from sounddevice. PortAudio scans devices once,
when it is initialised (at `import sounddevice`); `portaudio_session()` rescans
and, on exit, terminates PortAudio before a private JACK server goes away
(PortAudio's JACK host API aborts the process if it terminates after its
server died). At process exit, PortAudio is left to the OS when its JACK
server is gone (`_exit_guard`) or a stream's host was lost (`close_stream`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.errors import StartupError

log = logging.getLogger(__name__)

Kind = Literal["output", "input"]
AUTO = ("", "auto", "default")
HOST_SILENCE_S = 1.0  # seconds without a callback: the host is gone (a 256-frame block is 5.3 ms at 48 kHz)
CLOSE_TIMEOUT_S = 2.0  # seconds a stream's stop and close may take at the end of a show before it counts as lost


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    hostapi: str
    inputs: int  # max input channels
    outputs: int  # max output channels
    default_rate: float  # Hz

    def channels(self, kind: Kind) -> int:
        return self.outputs if kind == "output" else self.inputs

    def label(self) -> str:
        return f"[{self.index}] {self.name} ({self.hostapi})"


@dataclass(frozen=True)
class DeviceTable:
    devices: list[AudioDevice]
    # host API name -> (default input index, default output index); -1 = none
    hostapis: dict[str, tuple[int, int]] = field(default_factory=dict)
    default_input: int = -1
    default_output: int = -1

    def by_index(self, index: int) -> AudioDevice | None:
        return next((d for d in self.devices if d.index == index), None)


def import_sounddevice() -> tuple[Any | None, str | None]:
    """(the sounddevice module, None), or (None, why it cannot be used)."""
    try:
        import sounddevice
    except OSError as e:  # the wheel has no PortAudio on Linux: it is the libportaudio2 package
        return None, f"PortAudio is not available ({e}); install libportaudio2 for sound"
    except ImportError as e:
        return None, f"sounddevice is not installed ({e})"
    if not _exit_guarded:  # the first time here: `import sounddevice` has just initialised PortAudio
        _initialized(sounddevice)
    return sounddevice, None


def query(sd: Any) -> DeviceTable:
    """The devices PortAudio knows about now (initialising it if a session terminated it)."""
    if not sd._initialized:
        sd._initialize()
        _initialized(sd)
    apis = sd.query_hostapis()
    devices = [
        AudioDevice(
            int(d["index"]),
            str(d["name"]),
            str(apis[d["hostapi"]]["name"]),
            int(d["max_input_channels"]),
            int(d["max_output_channels"]),
            float(d["default_samplerate"]),
        )
        for d in sd.query_devices()
    ]
    defaults = {str(a["name"]): (int(a["default_input_device"]), int(a["default_output_device"])) for a in apis}
    din, dout = (int(x) if x is not None else -1 for x in sd.default.device)
    return DeviceTable(devices, defaults, din, dout)


def choose(
    table: DeviceTable, spec: str | None, kind: Kind = "output", flag: str = "--audio-device"
) -> AudioDevice | None:
    """The device `spec` means (see the module docstring); None: no device and none was named."""
    if spec is None or spec.strip().lower() in AUTO:
        return _automatic(table, kind)
    spec = spec.strip()
    usable = [d for d in table.devices if d.channels(kind) > 0]
    if spec.isdecimal():
        device = table.by_index(int(spec))
        if device is None or device.channels(kind) == 0:
            raise StartupError(f"{flag} {spec}: no {kind} device has that index; {_have(usable, kind)}")
        return device
    api = next((name for name in table.hostapis if spec.lower() in name.lower()), None)
    if api is not None:
        device = _api_default(table, api, kind)
        if device is None:
            raise StartupError(
                f"{flag} {spec}: the {api} host API has no {kind} device "
                f"(is its server running?); {_have(usable, kind)}"
            )
        return device
    found = [d for d in usable if spec.lower() in d.name.lower()]
    if not found:
        raise StartupError(
            f"{flag} {spec!r}: no {kind} device or host API matches; {_have(usable, kind)}; "
            f"host APIs: {', '.join(table.hostapis) or 'none'}"
        )
    return found[0]


def output_hostapi(spec: str | None) -> str | None:
    """The host API `open_audio` will open `--audio-device spec` on, found the same way
    but opening nothing (the MIDI system follows it, engine.control.midi); None when
    there is no PortAudio or no such device (open_audio says why itself)."""
    sd, _why = import_sounddevice()
    if sd is None:
        return None
    try:
        device = choose(query(sd), spec, "output", "--audio-device")
    except (StartupError, OSError, sd.PortAudioError) as e:
        log.debug("audio: no output host API to follow: %s", e)
        return None
    return None if device is None else device.hostapi


def jack_default_server_running() -> bool | None:
    """Whether the JACK server clients join by default answers (see jack_server_running)."""
    return jack_server_running(os.environ.get("JACK_DEFAULT_SERVER") or "default")


def _automatic(table: DeviceTable, kind: Kind) -> AudioDevice | None:
    for api in table.hostapis:
        if "jack" in api.lower():
            device = _api_default(table, api, kind)
            if device is not None:
                return device
    default = table.default_output if kind == "output" else table.default_input
    device = table.by_index(default) if default >= 0 else None
    return device if device is not None and device.channels(kind) > 0 else None


def _api_default(table: DeviceTable, api: str, kind: Kind) -> AudioDevice | None:
    din, dout = table.hostapis.get(api, (-1, -1))
    device = table.by_index(dout if kind == "output" else din)
    if device is not None and device.channels(kind) > 0:
        return device
    return next((d for d in table.devices if d.hostapi == api and d.channels(kind) > 0), None)


def stream_rate(requested: int | None, device: AudioDevice, fallback: int = 48000) -> int:
    """Sample rate to open `device` at: the one asked for, else the JACK server's own rate
    (a JACK stream cannot run at another), else `fallback` (Hz)."""
    if requested:
        return int(requested)
    if "jack" in device.hostapi.lower() and device.default_rate > 0:
        return int(device.default_rate)
    return fallback


def _have(usable: list[AudioDevice], kind: Kind) -> str:
    return f"{kind} devices: " + (", ".join(d.label() for d in usable) or "none")


# -- the `devices` command ------------------------------------------------------------------------------
def list_devices() -> str:
    """Audio devices (host API, channels, default rate) and MIDI ports, as text for the terminal."""
    return "\n".join(_audio_lines() + [""] + _midi_lines())


def _audio_lines() -> list[str]:
    sd, why = import_sounddevice()
    if sd is None:
        return [f"audio: none ({why})"]
    table = query(sd)
    lines = ["audio devices (index, name, host API, in/out channels, default rate):"]
    auto_out, auto_in = _automatic(table, "output"), _automatic(table, "input")
    for d in table.devices:
        marks = [m for m, dev in (("default output", auto_out), ("default input", auto_in)) if dev == d]
        lines.append(
            f"  {d.label()}  in {d.inputs} / out {d.outputs}  {d.default_rate:.0f} Hz"
            + (f"  <- {', '.join(marks)}" if marks else "")
        )
    if not table.devices:
        lines.append("  none (no sound card, and no JACK server running)")
    lines.append("host APIs: " + (", ".join(table.hostapis) or "none"))
    return lines


def _midi_lines() -> list[str]:
    from engine.control.midi_ports import RtMidiBackend, resolve_api

    try:
        backend = RtMidiBackend(resolve_api(None))
    except (ImportError, OSError, StartupError) as e:
        return [f"MIDI: unavailable ({e})"]
    try:
        ins, outs = backend.input_names(), backend.output_names()
    except OSError as e:
        return [f"MIDI: unavailable ({e})"]
    finally:
        backend.close()
    return (
        ["MIDI inputs:"]
        + [f"  {n}" for n in ins or ["none"]]
        + ["MIDI outputs:"]
        + [f"  {n}" for n in outs or ["none"]]
    )


# -- PortAudio's device scan ----------------------------------------------------------------------------
def rescan(sd: Any) -> None:
    """Make PortAudio scan devices again (e.g. after a JACK server started). Closes every open stream."""
    # sounddevice has no public rescan; these two are the documented way round it.
    if sd._initialized:
        sd._terminate()
    sd._initialize()
    _initialized(sd)


def host_lost(last_call: float | None, now: float) -> bool:
    """Whether a started stream whose latest callback was at `last_call` (perf_counter s)
    has lost its host: none for HOST_SILENCE_S, where a working one calls every few ms."""
    return last_call is not None and now - last_call > HOST_SILENCE_S


class HostWatch:
    """Says once when a stream stops calling back (a JACK server that died, a USB interface
    unplugged) and once when it calls again; `lost` and `losses` go to the stats."""

    def __init__(self, what: str) -> None:
        self.what = what  # names the stream in the log, e.g. "audio: [0] system (JACK ...)"
        self.lost = False
        self.losses = 0

    def check(self, last_call: float | None, now: float) -> bool:
        """Whether `lost` changed with this call."""
        lost = host_lost(last_call, now)
        if lost == self.lost:
            return False
        self.lost = lost
        if lost:
            self.losses += 1
            log.error(
                "%s stopped calling back (sound server gone or device unplugged); the show goes on without it",
                self.what,
            )
        else:
            log.warning("%s calls back again", self.what)
        return True

    def stats(self) -> dict[str, Any]:
        return {"host_lost": self.lost, "host_losses": self.losses}


def close_stream(stream: Any, last_call: float | None, what: str, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
    """Stop and close a sounddevice stream, unless its host is gone (see `host_lost`);
    whether it closed.

    With the JACK server killed mid-show, PortAudio's stop waited for good and a
    close after it aborted the whole process (an assertion in its JACK host API),
    so the show could not quit. Such a stream is left alone and PortAudio is not
    terminated at exit (that would close the stream the same way); the OS frees
    both when the process ends (see `_skip_portaudio_exit`).

    A host can also die after the stream's last callback but less than
    HOST_SILENCE_S before the close (a server stopped a second before the show's
    end): that looks alive here, and the stop then blocked the main thread for
    good, deaf to SIGTERM. So stop and close run on a helper thread (cffi releases
    the GIL in PortAudio's calls) and are given `timeout_s`; a stream that has not
    closed by then is treated as lost.
    """
    if host_lost(last_call, time.perf_counter()):
        log.warning("%s: the stream's host is gone; leaving the stream to the OS", what)
        _skip_portaudio_exit()
        return False
    failed: list[Exception] = []

    def stop_and_close() -> None:
        try:
            stream.stop()
            stream.close()
        except Exception as e:  # noqa: BLE001 - a device that vanished between its last callback and now
            failed.append(e)

    # daemon: a stop blocked in PortAudio for good must not hold up the interpreter's exit
    closer = threading.Thread(target=stop_and_close, name=f"{what} close", daemon=True)
    closer.start()
    closer.join(timeout_s)
    if closer.is_alive():
        log.error(
            "%s: the stream did not stop within %.1f s (its host went away as the show ended?); leaving it to the OS",
            what,
            timeout_s,
        )
        _skip_portaudio_exit()
        return False
    if failed:
        log.warning("%s: closing the stream: %s", what, failed[0])
        return False
    return True


def _skip_portaudio_exit() -> None:
    """No Pa_Terminate at exit, and PortAudio never unloaded.

    Without Pa_Terminate, PortAudio's JACK host API keeps its client open, with
    libjack's threads running, to the end of the process: a client on any JACK
    server that still runs (a desktop's, while the lost stream was another
    device's). Interpreter shutdown then frees sounddevice's cffi library, which
    dlclose()s libportaudio and with it libjack, and those threads crashed the
    process (SIGSEGV, exit status 139) in code no longer mapped. Marked
    RTLD_NODELETE, both stay mapped until the process is gone.
    """
    sd = sys.modules.get("sounddevice")
    handler = getattr(sd, "_exit_handler", None)  # sounddevice's atexit: stop, close, Pa_Terminate
    if handler is not None:
        atexit.unregister(handler)
        _never_unload(getattr(sd, "_libname", None))


# -- PortAudio at exit -----------------------------------------------------------------------------------
# PortAudio's JACK host API opens a JACK client when PortAudio is initialised (while a server
# runs), on the server JACK_DEFAULT_SERVER names then, and keeps it until Pa_Terminate, which
# sounddevice calls at exit. If that server died meanwhile, Pa_Terminate fails an assertion and
# aborts the process (exit status 134), stream or no stream: a show on ALSA while a desktop's
# JACK went away could not quit cleanly. So at exit the server is asked for first.
_jack_server: str | None = None  # the server PortAudio's JACK host API joined when last initialised
_exit_guarded = False


def _initialized(sd: Any) -> None:
    """PortAudio was just initialised: note which JACK server it joined, if any."""
    global _jack_server, _exit_guarded
    try:
        apis = [str(a["name"]) for a in sd.query_hostapis()]
    except Exception:  # noqa: BLE001 - a stand-in module (tests) or a PortAudio that cannot list
        return
    _jack_server = (os.environ.get("JACK_DEFAULT_SERVER") or "default") if any("JACK" in a for a in apis) else None
    if not _exit_guarded:
        atexit.register(_exit_guard)  # after sounddevice's own handler, so it runs before it
        _exit_guarded = True


def _exit_guard() -> None:
    sd = sys.modules.get("sounddevice")
    if _jack_server is None or not getattr(sd, "_initialized", 0):
        return
    if jack_server_running(_jack_server) is False:
        log.warning("audio: the JACK server %r is gone; leaving PortAudio to the OS at exit", _jack_server)
        _skip_portaudio_exit()


def jack_server_running(name: str) -> bool | None:
    """Whether a JACK server called `name` answers a client now; None when libjack is not here.
    It asks by name: a server restarted under the same name counts as running.

    Opens (and closes) a client without starting a server; libjack's own complaints about
    a server that is not there are kept off the terminal.
    """
    try:
        jack = ctypes.CDLL("libjack.so.0")
    except OSError:
        return None
    handlers = []
    for variable in ("jack_error_callback", "jack_info_callback"):
        try:  # JACK2 exports them; PipeWire's libjack does not (and prints nothing there)
            handlers.append(ctypes.c_void_p.in_dll(jack, variable))
        except ValueError:
            pass
    saved = [h.value for h in handlers]
    for h in handlers:  # libjack's message handlers are process globals: quiet for this call only
        h.value = ctypes.cast(_QUIET, ctypes.c_void_p).value
    try:
        jack.jack_client_open.restype = ctypes.c_void_p  # (name, options, *status, ...): variadic, no argtypes
        status = ctypes.c_int(0)
        client = jack.jack_client_open(
            b"latent-stage-probe",
            ctypes.c_int(_JACK_NO_START_SERVER | _JACK_SERVER_NAME),
            ctypes.byref(status),
            name.encode(),
        )
        if client:
            jack.jack_client_close(ctypes.c_void_p(client))
    finally:
        for h, value in zip(handlers, saved):
            h.value = value
    return bool(client)


_JACK_NO_START_SERVER, _JACK_SERVER_NAME = 0x01, 0x04  # jack_options_t
_QUIET = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(lambda _msg: None)  # lives as long as the module


def _never_unload(library: str | None) -> None:
    """Mark an already loaded shared library (name or path) RTLD_NODELETE, where the OS has it."""
    nodelete, noload = getattr(os, "RTLD_NODELETE", None), getattr(os, "RTLD_NOLOAD", None)
    if not library or nodelete is None or noload is None:
        return
    try:
        ctypes.CDLL(library, mode=nodelete | noload)
    except OSError as e:  # not loaded under that name: nothing will unload it either
        log.debug("cannot pin %s: %s", library, e)


@contextlib.contextmanager
def portaudio_session() -> Iterator[Any]:
    """Rescan on entry; terminate PortAudio on exit. Enter it inside a private JACK server's context."""
    sd, why = import_sounddevice()
    if sd is None:
        raise RuntimeError(why)
    rescan(sd)
    try:
        yield sd
    finally:
        while sd._initialized:
            sd._terminate()
