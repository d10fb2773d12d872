"""Sound through a real JACK server (dummy driver, 48 kHz, 256-frame periods): the real
sounddevice stream plays notes scheduled at show times; `jack_rec` records them; they
start on time (one constant offset) and in tune, with no underrun after warm-up. And
--audio-in on the same server hears them. A process whose JACK server died under PortAudio
still exits cleanly. Skipped when jackd / jack_rec are missing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.bench.jackserver import dummy_server
from engine.devices.audio_devices import jack_server_running, list_devices, portaudio_session
from engine.devices.audio_in import open_audio_in
from engine.devices.audio_out import open_audio
from engine.devices.wav import read_wav
from engine.dsp.synth import Synth, SynthSettings, midi_to_hz
from tests.fakes import show_config
from tests.jack import skip_without_jack_audio

pytestmark = pytest.mark.integration
RATE, BLOCK = 48000, 256
WARMUP_S = 2.0
NOTES = [(2.2, 57), (2.5, 64), (2.75, 69), (3.1, 72), (3.3, 60), (3.65, 76), (3.9, 67), (4.2, 81)]  # (s, pitch)


@pytest.fixture
def jack(tmp_path):
    skip_without_jack_audio("jack_rec", "jack_lsp", "jack_connect")
    try:
        with dummy_server(rate=RATE, period=BLOCK, log_file=tmp_path / "jackd.log"), portaudio_session() as sd:
            yield sd
    except RuntimeError as e:  # the tools are there, so a server that will not start is a failure
        pytest.fail(str(e))


def parse(*argv: str):
    return show_config(*argv)


def pure_synth() -> Synth:
    settings = SynthSettings(
        waveform=0, attack=0.001, sustain=1.0, release=0.005, cutoff=20000.0, resonance=0.0, gain=-6.0
    )
    return Synth(RATE, settings=settings)


def our_port(suffix: str) -> str:
    ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=5).stdout.split()
    return next(p for p in ports if p.startswith("PortAudio") and p.endswith(suffix))


def show_loop(out, start: float, seconds: float, warm: dict) -> None:
    """Like the show: a ~100 Hz loop that schedules each note 100 ms before it is due."""
    pending = list(NOTES)
    pause = threading.Event()
    while (now := time.perf_counter()) - start < seconds:
        while pending and start + pending[0][0] < now + 0.1:
            at, pitch = pending.pop(0)
            out.schedule(start + at, pitch, 100, 0.12)
        if not warm and now - start >= WARMUP_S:
            warm.update(out.stats())
        pause.wait(0.01)


def found_onsets(x: np.ndarray) -> list[int]:
    """Samples where |x| exceeds 0.02 with no such sample in the 50 ms before."""
    loud = np.abs(x) > 0.02
    recent = np.convolve(loud, np.ones(2400), "full")[: len(x)]  # loud samples in the 50 ms up to i
    return [int(i) for i in np.flatnonzero(loud) if i > 2400 and recent[i - 1] == 0]


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-20)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / (8 * len(x))


def test_notes_scheduled_at_show_times_play_on_time_and_in_tune(jack, tmp_path):
    out = open_audio(parse("--audio-device", "jack"), pure_synth())
    assert out is not None and "JACK" in out.stats()["device"]
    wav, rec_log = tmp_path / "rec.wav", tmp_path / "jack_rec.log"
    # -B: a ring for the whole 5 s, so a disk that stalls (a busy shared machine) cannot make
    # jack_rec drop samples (it says "overruns" then) and with them a note.
    with rec_log.open("w") as log:
        rec = subprocess.Popen(
            ["jack_rec", "-f", str(wav), "-d", "5", "-b", "16", "-B", str(2**18), our_port("out_0")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    warm: dict = {}
    try:
        start = time.perf_counter()
        show_loop(out, start, 4.6, warm)
        rec.wait(timeout=10)
        end = out.stats()
    finally:
        out.close()
        if rec.poll() is None:
            rec.kill()
    assert end["underruns"] - warm["underruns"] == 0, (warm, end)
    assert end["callback_errors"] == 0 and end["late"] == 0 and end["notes"] == len(NOTES)
    assert "overrun" not in rec_log.read_text(), rec_log.read_text()
    rate, rec_x = read_wav(wav)
    x = rec_x[:, 0]
    onsets = found_onsets(x)
    assert rate == RATE and len(onsets) == len(NOTES), (
        f"onsets at {[round(i / RATE, 3) for i in onsets]} s of "
        f"{len(x) / RATE:.2f} s recorded; notes at "
        f"{[at for at, _ in NOTES]} s + latency"
    )
    wanted = np.array([at for at, _ in NOTES])
    got = np.array(onsets) / RATE
    offset = np.median(got - wanted)  # when jack_rec started, plus the output latency
    assert np.all(np.abs(got - wanted - offset) < 0.030), got - wanted - offset
    for (_, pitch), i in zip(NOTES, onsets):
        hz = peak_hz(x[i + 240 : i + 240 + 4800])  # 100 ms after the first 5 ms
        assert abs(1200 * np.log2(hz / midi_to_hz(pitch))) < 50, (pitch, hz)


def test_audio_in_hears_the_synth_and_devices_lists_jack(jack):
    text = list_devices()
    assert "JACK Audio Connection Kit" in text and "MIDI" in text
    out = open_audio(parse("--audio-device", "jack"), pure_synth())
    cap = open_audio_in(parse("--audio-in", "jack"))
    try:
        subprocess.run(["jack_connect", our_port("out_0"), our_port("in_0")], check=True, timeout=5)
        start = time.perf_counter() + 0.3
        for k in range(4):
            out.schedule(start + 0.4 * k, 69, 120, 0.15)
        pause = threading.Event()
        features = []
        cap.start_analysis()  # as the show runs it: its own thread; the loop reads latest()
        while time.perf_counter() < start + 1.8:
            features.append(cap.latest())
            pause.wait(1 / 60)
    finally:
        cap.close()
        out.close()
    # A host xrun drops a period mid-note, and the restart is (rightly) an onset too.
    assert 4 <= max(f.onsets for f in features) <= 4 + out.stats()["xruns"] and cap.errors == 0
    assert max(f.mid for f in features) > 0.7 and max(f.high for f in features) < 0.3


CHILD = """
import sys
sys.path.insert(0, {repo!r})
from engine.devices.audio_devices import import_sounddevice
sd, why = import_sounddevice()  # initialises PortAudio: its JACK host API joins the server
print([a["name"] for a in sd.query_hostapis()], flush=True)
sys.stdin.readline()
"""


def test_a_process_whose_jack_server_died_still_exits_cleanly(tmp_path):
    """PortAudio's JACK host API keeps a client on the server from its initialisation to
    Pa_Terminate at exit, which aborted the process (status 134) once the server was gone."""
    skip_without_jack_audio("jack_lsp")
    repo = Path(__file__).resolve().parents[1]
    with dummy_server(log_file=tmp_path / "jackd.log") as name:
        assert jack_server_running(name) and jack_server_running(name + "-none") is False
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(repo=str(repo))],
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert "JACK Audio Connection Kit" in child.stdout.readline()
            subprocess.run(["pkill", "-KILL", "-f", f"jackd -n {name} "], check=True, timeout=10)
            _, err = child.communicate("\n", timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 0, err
    assert f"the JACK server {name!r} is gone" in err
