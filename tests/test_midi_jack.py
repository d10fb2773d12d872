"""MIDI through a real JACK server (dummy driver): CCs from a JACK port move params, the
sending port is closed and reopened and the show reconnects within 2 s, and feedback
reaches `jack_midi_dump`. Skipped when jackd is not installed."""

from __future__ import annotations

import logging
import signal
import subprocess
import time

import pytest
import torch

from engine.bench.jackserver import dummy_server, missing_tools
from engine.control import midi
from engine.control.midi import start
from engine.core.events import Event
from engine.devices.audio_devices import portaudio_session
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.show import Show
from tests.conftest import REPO
from tests.fakes import built_show
from tests.test_midi_control import namespace

pytestmark = pytest.mark.integration
NANO = REPO / "patches" / "nanokontrol2.toml"


@pytest.fixture
def jack(tmp_path):
    missing = missing_tools(("jack_midi_dump", "stdbuf"))
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install jackd2; stdbuf is in coreutils)")
    try:  # one server per test: parallel runs never clash
        with dummy_server(period=256, log_file=tmp_path / "jackd.log") as name:
            yield name
    except RuntimeError as e:  # the tools are there, so a server that will not start is a failure
        pytest.fail(str(e))


@pytest.fixture
def show(scene_file):
    scenes = load_scenes([load_scene(scene_file(""))], torch.device("cpu"))
    return built_show(scenes)


def sender(name: str = "nanoKONTROL2 test"):
    import mido

    return mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output(name, virtual=True)


def until(show: Show, cond, timeout: float) -> float | None:
    """Run the show's frames until cond() holds; seconds it took, or None on timeout."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        show.run(frames=1)
        if cond():
            return time.perf_counter() - t0
        time.sleep(0.01)
    return None


def sweep_until(show: Show, port, control: int, values, cond, timeout: float) -> float | None:
    """Send CC sweeps (again every 0.2 s: JACK may drop what is sent in the first
    periods after a connection is made) until cond() holds; seconds it took or None."""
    import mido

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        for v in values:
            port.send(mido.Message("control_change", control=control, value=v))
        if until(show, cond, 0.2) is not None:
            return time.perf_counter() - t0
    return None


def test_cc_moves_param_and_port_reconnects(jack, show, tmp_path):
    ctl = start(namespace(tmp_path, midi_api="jack", midi_in=["nanoKONTROL2"], patch=[NANO]), show)
    try:
        out = sender()
        opened = lambda: any("nanoKONTROL2" in p for p in ctl.stats()["midi"]["ports"])
        assert until(show, opened, 3.0) is not None, "the show never opened the JACK port"
        speed = show.registry.param("/deck/a/speed")  # fader 3, pick-up, range 0..4
        assert sweep_until(show, out, 2, [*range(0, 128, 4), 127], lambda: speed.target == 4.0, 2.0) is not None
        assert ctl.stats()["midi"]["received"] >= 33
        out.close()
        assert until(show, lambda: not opened(), 3.0) is not None, "the closed port was not noticed"
        out = sender()
        t0 = time.perf_counter()
        took = until(show, opened, 3.0)
        assert took is not None and took < 2.0, f"reconnect took {took}"
        # ...and a fader moves the picture again within 2 s of the port coming back
        assert sweep_until(show, out, 2, [100, 60, 0], lambda: speed.target == 0.0, 3.0) is not None
        assert time.perf_counter() - t0 < 2.0
        out.close()
        st = ctl.stats()["midi"]
        assert st["dropped"] == 0 and st["malformed"] == 0
    finally:
        ctl.close()


def test_feedback_reaches_jack_midi_dump(jack, show, tmp_path):
    dump_log = tmp_path / "dump.txt"
    with open(dump_log, "w") as fh:
        dump = subprocess.Popen(["stdbuf", "-oL", "jack_midi_dump"], stdout=fh, stderr=subprocess.STDOUT)
    ctl = None
    try:
        ctl = start(namespace(tmp_path, midi_api="jack", midi_feedback="midi-monitor", patch=[NANO]), show)
        feedback_open = lambda: any("(feedback)" in p for p in ctl.stats()["midi"]["ports"])
        assert until(show, feedback_open, 5.0) is not None, "midi-monitor:input never appeared"
        show.apply(Event("toggle", "/master/blackout", source="osc"))  # S1's LED: CC 32 on channel 1
        seen = lambda: "b0 20 7f" in dump_log.read_text().lower()
        assert until(show, seen, 3.0) is not None, dump_log.read_text()
        assert ctl.stats()["midi"]["feedback_sent"] >= 1
    finally:
        if ctl is not None:
            ctl.close()
        _stop(dump)


def test_pickup_light_reaches_jack_midi_dump(jack, show, tmp_path):
    """Fader 3 (deck speed 1.0 of 0..4) moved at the top, away from the value: its R3 light
    (CC 66) turns on at the real JACK MIDI monitor; brought through the value, off again."""
    dump_log = tmp_path / "dump.txt"
    with open(dump_log, "w") as fh:
        dump = subprocess.Popen(["stdbuf", "-oL", "jack_midi_dump"], stdout=fh, stderr=subprocess.STDOUT)
    ctl = None
    try:
        ctl = start(
            namespace(tmp_path, midi_api="jack", midi_in=["nanoKONTROL2"], midi_feedback="midi-monitor", patch=[NANO]),
            show,
        )
        out = sender()
        ports = lambda: ctl.stats()["midi"]["ports"]
        opened = lambda: any("(feedback)" in p for p in ports()) and any("nanoKONTROL2" in p for p in ports())
        assert until(show, opened, 5.0) is not None, ports()
        lit = lambda: "b0 42 7f" in dump_log.read_text().lower()
        assert sweep_until(show, out, 2, [127, 120], lit, 3.0) is not None, dump_log.read_text()
        speed = show.registry.param("/deck/a/speed")
        assert speed.target == 1.0  # waiting: the fader has not moved it

        def dark() -> bool:  # dark again after it was lit
            text = dump_log.read_text().lower()
            return "b0 42 00" in text[text.index("b0 42 7f") :]

        assert sweep_until(show, out, 2, [60, 20], dark, 3.0) is not None, dump_log.read_text()
        assert speed.target == 4.0 * 20 / 127
        out.close()
    finally:
        if ctl is not None:
            ctl.close()
        _stop(dump)


def _stop(dump: subprocess.Popen) -> None:
    dump.send_signal(signal.SIGINT)
    try:
        dump.wait(timeout=3)
    except subprocess.TimeoutExpired:
        dump.kill()
        dump.wait()


def test_without_midi_api_midi_follows_the_audio_onto_jack(jack, show, tmp_path, caplog, monkeypatch):
    """No --midi-api: audio picks the JACK server, so MIDI does too (there is no ALSA
    sequencer here, so ALSA would hear nothing) and says why; a fader then moves a param."""
    monkeypatch.delenv("MIDO_BACKEND", raising=False)
    monkeypatch.setattr(midi, "_last_said", None)
    caplog.set_level(logging.INFO, logger="engine.control.midi")
    with portaudio_session():  # PortAudio scans again, now that the server runs
        ctl = start(namespace(tmp_path, midi_in=["nanoKONTROL2"], patch=[NANO]), show)
        try:
            assert "MIDI: using the UNIX_JACK API (the audio output uses JACK" in caplog.text, caplog.text
            out = sender()
            opened = lambda: any("nanoKONTROL2" in p for p in ctl.stats()["midi"]["ports"])
            assert until(show, opened, 3.0) is not None, "the show never opened the JACK port"
            speed = show.registry.param("/deck/a/speed")
            assert sweep_until(show, out, 2, [*range(0, 128, 4), 127], lambda: speed.target == 4.0, 2.0) is not None
            out.close()
        finally:
            ctl.close()
