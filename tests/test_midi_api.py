"""Which MIDI system the show uses: --midi-api, else MIDO_BACKEND, else the audio's host API
(JACK when audio picks JACK), else whether a JACK server runs. Nothing real is probed."""

from __future__ import annotations

import logging

import pytest

from engine.control import midi
from engine.control.midi_ports import ApiChoice, choose_api
from engine.errors import StartupError
from tests.fakes import show_config

JACK_API = "JACK Audio Connection Kit"  # PortAudio's name for its JACK host API


@pytest.mark.parametrize(
    "flag,env,audio,jack,api,explicit",
    [
        (None, {}, JACK_API, None, "UNIX_JACK", False),  # audio picked JACK: MIDI follows
        (None, {}, "ALSA", True, None, False),  # audio on ALSA (named), even with JACK up: follows
        (None, {}, "PulseAudio", None, None, False),
        (None, {}, None, True, "UNIX_JACK", False),  # no audio device, a JACK server runs
        (None, {}, None, False, None, False),
        (None, {}, None, None, None, False),  # libjack absent
        ("alsa", {}, JACK_API, True, "LINUX_ALSA", True),  # an explicit flag wins
        ("jack", {}, "ALSA", False, "UNIX_JACK", True),
        (None, {"MIDO_BACKEND": "mido.backends.rtmidi/LINUX_ALSA"}, JACK_API, True, "LINUX_ALSA", True),
        (None, {"MIDO_BACKEND": "mido.backends.rtmidi"}, JACK_API, True, None, True),  # rtmidi's default, asked for
        (None, {"MIDO_BACKEND": "  "}, JACK_API, None, "UNIX_JACK", False),  # blank: not set
        ("alsa", {"MIDO_BACKEND": "mido.backends.rtmidi/UNIX_JACK"}, None, None, "LINUX_ALSA", True),
    ],
)
def test_choose_api(flag, env, audio, jack, api, explicit):
    choice = choose_api(flag, env, audio, jack)
    assert (choice.api, choice.explicit) == (api, explicit)
    assert choice.why and ("--midi-api" in choice.why or "MIDO_BACKEND" in choice.why)


@pytest.mark.parametrize("value", ["mido.backends.portmidi", "mido.backends.rtmidi/NOPE"])
def test_a_malformed_mido_backend_still_stops_startup(value):
    with pytest.raises(StartupError, match="MIDO_BACKEND"):
        choose_api(None, {"MIDO_BACKEND": value}, JACK_API, True)


def test_describe_names_the_api_and_why():
    text = choose_api(None, {}, JACK_API, None).describe()
    assert "UNIX_JACK" in text and JACK_API in text
    assert "default" in ApiChoice(None, "x", False).describe()


class Probes:
    """Stand-ins for asking PortAudio and libjack, counting the calls."""

    def __init__(self, monkeypatch, audio: str | None, jack: bool | None) -> None:
        from engine.devices import audio_devices

        self.calls: list[str] = []
        monkeypatch.setattr(audio_devices, "output_hostapi", self.output_hostapi)
        monkeypatch.setattr(audio_devices, "jack_default_server_running", self.jack_running)
        monkeypatch.setattr(midi, "_last_said", None)
        monkeypatch.delenv("MIDO_BACKEND", raising=False)
        self.audio, self.jack = audio, jack

    def output_hostapi(self, spec):
        self.calls.append(f"audio {spec}")
        return self.audio

    def jack_running(self):
        self.calls.append("jack")
        return self.jack


def test_midi_follows_the_audio_choice_and_says_so_once(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="engine.control.midi")
    probes = Probes(monkeypatch, JACK_API, None)
    config = show_config(midi_in=["x"])
    assert midi.choose_midi_api(config).api == "UNIX_JACK"
    assert midi.choose_midi_api(config).api == "UNIX_JACK"  # notes out asks again: no second line
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MIDI: using")]
    assert lines == [f"MIDI: using the UNIX_JACK API (the audio output uses {JACK_API}; --midi-api overrides)"]
    assert probes.calls == ["audio None", "audio None"]  # an audio device found: libjack not asked


def test_no_audio_falls_back_to_whether_jack_runs(monkeypatch):
    probes = Probes(monkeypatch, JACK_API, True)
    assert midi.choose_midi_api(show_config(midi_in=["x"], no_audio=True)).api == "UNIX_JACK"
    assert probes.calls == ["jack"]  # --no-audio: PortAudio is not touched


def test_an_explicit_choice_probes_nothing(monkeypatch):
    probes = Probes(monkeypatch, JACK_API, True)
    assert midi.choose_midi_api(show_config(midi_in=["x"], midi_api="alsa")).api == "LINUX_ALSA"
    monkeypatch.setenv("MIDO_BACKEND", "mido.backends.rtmidi/LINUX_ALSA")
    assert midi.choose_midi_api(show_config(midi_in=["x"])).api == "LINUX_ALSA"
    assert probes.calls == []


class FakeRtMidi:
    """RtMidiBackend as python-rtmidi built without JACK would behave."""

    made: list[str | None] = []

    def __init__(self, api=None) -> None:
        if api == "UNIX_JACK":
            raise StartupError("--midi-api: UNIX_JACK is not compiled into python-rtmidi here")
        FakeRtMidi.made.append(api)


def test_an_automatic_jack_choice_falls_back_when_rtmidi_lacks_jack(monkeypatch, caplog):
    Probes(monkeypatch, JACK_API, None)
    monkeypatch.setattr(midi, "RtMidiBackend", FakeRtMidi)
    FakeRtMidi.made = []
    factory = midi._rtmidi_factory(show_config(midi_in=["x"]))
    assert isinstance(factory(), FakeRtMidi) and FakeRtMidi.made == [None]
    assert "UNIX_JACK is not compiled" in caplog.text
    with pytest.raises(StartupError, match="not compiled"):  # asked for by name: stops startup
        midi._rtmidi_factory(show_config(midi_in=["x"], midi_api="jack"))
