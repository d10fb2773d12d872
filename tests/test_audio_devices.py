"""Device choice from a faked device list, and open_audio's fallbacks and errors."""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import SimpleNamespace

import pytest

import engine.devices.audio_devices as devices
import engine.devices.audio_out as audio_out
from engine.devices.audio_devices import AudioDevice, DeviceTable, choose, stream_rate
from engine.devices.audio_out import open_audio
from engine.dsp.synth import Synth
from engine.errors import StartupError
from tests.fakes import show_config

ALSA, JACK = "ALSA", "JACK Audio Connection Kit"
DEVICES = [
    AudioDevice(0, "HDA Intel PCH: ALC892 Analog (hw:0,0)", ALSA, 2, 2, 44100.0),
    AudioDevice(1, "USB Audio CODEC: - (hw:1,0)", ALSA, 0, 2, 48000.0),
    AudioDevice(2, "Mic Array (hw:2,0)", ALSA, 4, 0, 16000.0),
    AudioDevice(3, "default", ALSA, 32, 32, 44100.0),
    AudioDevice(4, "system", JACK, 2, 2, 48000.0),
]
WITH_JACK = DeviceTable(DEVICES, {ALSA: (3, 3), JACK: (4, 4)}, default_input=3, default_output=3)
NO_JACK = DeviceTable(DEVICES[:4], {ALSA: (3, 3)}, default_input=3, default_output=3)
NOTHING = DeviceTable([], {ALSA: (-1, -1)})


def test_jack_is_preferred_when_a_server_runs():
    assert choose(WITH_JACK, None).index == 4
    assert choose(WITH_JACK, "auto", "input").index == 4
    assert choose(NO_JACK, None).index == 3  # the system default
    assert choose(NOTHING, None) is None


def test_host_api_name_substring_and_index():
    assert choose(WITH_JACK, "jack").index == 4
    assert choose(WITH_JACK, "alsa").index == 3
    assert choose(WITH_JACK, "usb").index == 1
    assert choose(WITH_JACK, "MIC", "input").index == 2
    assert choose(WITH_JACK, "0").index == 0


@pytest.mark.parametrize(
    "table,spec,kind,words",
    [
        (NO_JACK, "jack", "output", ["--audio-device", "jack", "USB Audio CODEC"]),
        (WITH_JACK, "focusrite", "output", ["--audio-device", "'focusrite'", "system (JACK", "host APIs: ALSA"]),
        (WITH_JACK, "usb", "input", ["--audio-in", "no input device", "Mic Array"]),
        (WITH_JACK, "9", "output", ["--audio-device 9", "no output device has that index"]),
        (WITH_JACK, "2", "output", ["no output device has that index"]),  # input-only
        (
            WITH_JACK,
            "\u00b2",
            "output",
            ["--audio-device", "no output device or host API matches"],
        ),  # isdigit() but not int()
    ],
)
def test_absent_named_device_is_a_startup_error_naming_flag_and_choices(table, spec, kind, words):
    flag = "--audio-in" if kind == "input" else "--audio-device"
    with pytest.raises(StartupError) as err:
        choose(table, spec, kind, flag)
    for word in words:
        assert word in str(err.value)


def test_stream_rate_follows_jack_unless_asked():
    assert stream_rate(None, DEVICES[4]) == 48000 and stream_rate(None, DEVICES[0]) == 48000
    assert stream_rate(None, AudioDevice(9, "system", JACK, 2, 2, 44100.0)) == 44100
    assert stream_rate(96000, DEVICES[4]) == 96000


def parse(*argv: str):
    return show_config(*argv)


def test_flags_and_defaults():
    args = parse()
    assert (args.audio_device, args.sample_rate, args.block_size, args.audio_latency) == (None, None, 256, 4)
    assert not args.no_audio and args.audio_in is None
    with pytest.raises(SystemExit):
        parse("--block-size", "3")


def test_no_portaudio_runs_silently_and_says_why_once(monkeypatch, caplog):
    monkeypatch.setattr(audio_out, "import_sounddevice", lambda: (None, "PortAudio is not available (x)"))
    with caplog.at_level(logging.INFO):
        assert open_audio(parse()) is None
    assert [r.getMessage() for r in caplog.records] == ["audio: off, PortAudio is not available (x)"]
    with pytest.raises(StartupError, match="--audio-device usb: PortAudio is not available"):
        open_audio(parse("--audio-device", "usb"))
    assert open_audio(parse("--no-audio")) is None


class FakeSounddevice:
    """Just enough of the sounddevice module for open_audio."""

    class PortAudioError(Exception):
        pass

    def __init__(self, table: DeviceTable, fail: bool = False):
        self.table, self.fail = table, fail
        self.opened: list[dict] = []

    def OutputStream(self, **kw):
        if self.fail:
            raise self.PortAudioError("Invalid sample rate [PaErrorCode -9997]")
        self.opened.append(kw)
        return SimpleNamespace(latency=0.005, start=lambda: None, stop=lambda: None, close=lambda: None, active=True)


def fake(monkeypatch, table: DeviceTable, fail: bool = False) -> FakeSounddevice:
    sd = FakeSounddevice(table, fail)
    monkeypatch.setattr(audio_out, "import_sounddevice", lambda: (sd, None))
    monkeypatch.setattr(audio_out, "query", lambda _sd: table)
    return sd


def test_open_audio_opens_the_chosen_device(monkeypatch):
    sd = fake(monkeypatch, WITH_JACK)
    out = open_audio(parse("--block-size", "128", "--audio-latency", "2"))
    try:
        assert out is not None and sd.opened[0]["device"] == 4 and sd.opened[0]["samplerate"] == 48000
        assert sd.opened[0]["blocksize"] == 128 and out.ring.slots == 2 and out.synth.voices == 8
        assert out.stats()["device"] == "[4] system (JACK Audio Connection Kit)"
    finally:
        out.close()


def test_open_audio_without_any_device_is_silent(monkeypatch, caplog):
    fake(monkeypatch, NOTHING)
    with caplog.at_level(logging.WARNING):
        assert open_audio(parse()) is None
    assert len(caplog.records) == 1 and "no output device" in caplog.records[0].getMessage()


def test_a_stream_that_will_not_open_is_a_startup_error(monkeypatch):
    fake(monkeypatch, WITH_JACK, fail=True)
    with pytest.raises(StartupError, match="--sample-rate 44100 Hz.*Invalid sample rate.*--no-audio"):
        open_audio(parse("--sample-rate", "44100"))


def test_list_devices_without_portaudio_or_midi(monkeypatch):
    monkeypatch.setattr(devices, "import_sounddevice", lambda: (None, "PortAudio is not available (x)"))
    import engine.control.midi_ports as midi_ports

    def no_midi(*a, **k):
        raise OSError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(midi_ports, "RtMidiBackend", no_midi)
    text = devices.list_devices()
    assert "audio: none (PortAudio is not available (x))" in text and "MIDI: unavailable" in text


def test_list_devices_lists_audio_and_midi(monkeypatch):
    monkeypatch.setattr(devices, "import_sounddevice", lambda: (object(), None))
    monkeypatch.setattr(devices, "query", lambda _sd: WITH_JACK)
    import engine.control.midi_ports as midi_ports

    class Backend:
        def __init__(self, api):
            pass

        input_names = lambda self: ["nanoKONTROL2 SLIDER/KNOB"]  # noqa: E731
        output_names = lambda self: []  # noqa: E731
        close = lambda self: None  # noqa: E731

    monkeypatch.setattr(midi_ports, "RtMidiBackend", Backend)
    text = devices.list_devices()
    assert "[4] system (JACK Audio Connection Kit)  in 2 / out 2  48000 Hz  <- default output, default input" in text
    assert "nanoKONTROL2 SLIDER/KNOB" in text and "MIDI outputs:\n  none" in text


# -- PortAudio at exit: its JACK server may be gone by then ---------------------------------------------
class InitialisedSounddevice:
    """The parts of sounddevice the exit guard reads."""

    def __init__(self, *apis: str) -> None:
        self._initialized = 1
        self._apis = apis

    def query_hostapis(self):
        return [{"name": a} for a in self._apis]


@pytest.fixture
def guard(monkeypatch):
    """The exit guard's state, restored after the test; `skipped` records skipped PortAudio exits."""
    monkeypatch.setattr(devices, "_exit_guarded", True)  # the real atexit registration is not the test's
    monkeypatch.setattr(devices, "_jack_server", None)
    skipped: list[bool] = []
    monkeypatch.setattr(devices, "_skip_portaudio_exit", lambda: skipped.append(True))
    return skipped


@pytest.mark.parametrize("running,skips", [(True, []), (False, [True]), (None, [])])
def test_portaudio_is_left_to_the_os_at_exit_only_when_its_jack_server_is_gone(monkeypatch, guard, running, skips):
    sd = InitialisedSounddevice("ALSA", "JACK Audio Connection Kit")
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "desk")
    asked = []
    monkeypatch.setattr(devices, "jack_server_running", lambda name: asked.append(name) or running)
    devices._initialized(sd)  # PortAudio joined "desk" when it was initialised ...
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "other")  # ... whatever the variable says later
    devices._exit_guard()
    assert asked == ["desk"] and guard == skips


def test_the_exit_guard_asks_nothing_without_jack_or_once_portaudio_is_terminated(monkeypatch, guard):
    monkeypatch.setattr(devices, "jack_server_running", lambda name: pytest.fail("asked a JACK server"))
    sd = InitialisedSounddevice("ALSA")  # no JACK server ran when PortAudio was initialised
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    devices._initialized(sd)
    devices._exit_guard()
    sd = InitialisedSounddevice("ALSA", "JACK Audio Connection Kit")
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    monkeypatch.delenv("JACK_DEFAULT_SERVER", raising=False)
    devices._initialized(sd)
    assert devices._jack_server == "default"
    sd._initialized = 0  # a portaudio_session terminated it: nothing left to close at exit
    devices._exit_guard()
    assert guard == []


class OrderSounddevice(FakeSounddevice):
    """Notes, in `events`, when the stream is opened and started, and what its ring held then."""

    def __init__(self, table: DeviceTable, events: list):
        super().__init__(table)
        self.events = events

    def OutputStream(self, **kw):
        ring = kw["callback"].__self__.ring  # the AudioOut's ring, through its Playback
        self.events.append(("open", ring.ready()))
        stream = super().OutputStream(**kw)
        stream.start = lambda: self.events.append(("start", ring.ready()))
        return stream


@pytest.mark.parametrize("latency", ["1", "4"])
def test_open_audio_warms_the_synth_and_fills_the_ring_before_opening_the_stream(monkeypatch, latency):
    events: list = []

    class SpySynth(Synth):
        def warm_up(self, frames: int = 256) -> None:
            super().warm_up(frames)
            events.append(("warm", frames))

        def render(self, out) -> None:
            super().render(out)
            events.append(("render", out.shape[0]))

    sd = OrderSounddevice(WITH_JACK, events)
    monkeypatch.setattr(audio_out, "import_sounddevice", lambda: (sd, None))
    monkeypatch.setattr(audio_out, "query", lambda _sd: WITH_JACK)
    out = open_audio(parse("--block-size", "128", "--audio-latency", latency), SpySynth(48000))
    try:
        n = int(latency)
        assert events == [("warm", 128)] + [("render", 128)] * n + [("open", n), ("start", n)]
    finally:
        out.close()


@pytest.mark.parametrize(
    "table,spec,expected",
    [
        (WITH_JACK, None, JACK),  # a JACK server runs: audio (and so MIDI) goes there
        (WITH_JACK, "auto", JACK),
        (WITH_JACK, "alsa", ALSA),
        (WITH_JACK, "0", ALSA),
        (NO_JACK, None, ALSA),
        (NOTHING, None, None),  # no device at all
        (WITH_JACK, "no such card", None),  # open_audio reports a bad name itself
        (WITH_JACK, "2", None),  # an input-only device
    ],
)
def test_output_hostapi_is_what_open_audio_would_open(monkeypatch, table, spec, expected):
    sd = FakeSounddevice(table)
    monkeypatch.setattr(devices, "import_sounddevice", lambda: (sd, None))
    monkeypatch.setattr(devices, "query", lambda _sd: table)
    assert devices.output_hostapi(spec) == expected
    assert sd.opened == []  # nothing opened


def test_output_hostapi_without_portaudio(monkeypatch):
    monkeypatch.setattr(devices, "import_sounddevice", lambda: (None, "PortAudio is not available (x)"))
    assert devices.output_hostapi(None) is None


class StuckStream:
    """A stream whose host died after its last callback: PortAudio's stop blocks until `release`."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closed = False

    def stop(self) -> None:
        self.release.wait()

    def close(self) -> None:
        self.closed = True


def test_a_stream_that_will_not_stop_at_the_end_is_left_to_the_os_within_the_timeout(guard, caplog):
    # jackd stopped half a second before the show's end: the last callback is recent, so the host
    # looks alive, and the stop blocked the main thread for good (deaf to SIGTERM)
    stream = StuckStream()
    started = time.monotonic()
    with caplog.at_level("ERROR", logger="engine.devices.audio_devices"):
        closed = devices.close_stream(stream, time.perf_counter() - 0.5, "audio", timeout_s=0.3)
    waited = time.monotonic() - started
    try:
        assert not closed and 0.3 <= waited < 5.0 and guard == [True]  # no Pa_Terminate at exit
        assert "did not stop within 0.3 s" in caplog.text and not stream.closed
    finally:
        stream.release.set()  # let the helper thread end


def test_a_stream_that_stops_in_time_is_closed_and_a_failing_stop_is_logged(guard, caplog):
    stream = StuckStream()
    stream.release.set()
    assert devices.close_stream(stream, time.perf_counter(), "audio", timeout_s=5.0) and stream.closed
    broken = SimpleNamespace(stop=lambda: 1 / 0, close=lambda: None)
    with caplog.at_level("WARNING", logger="engine.devices.audio_devices"):
        assert not devices.close_stream(broken, time.perf_counter(), "audio in", timeout_s=5.0)
    assert "audio in: closing the stream: division by zero" in caplog.text and guard == []
