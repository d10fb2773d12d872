"""The melody end to end through a real JACK server (dummy driver): a headless show plays a
scene with [notes]; jack_rec hears the notes at their logged times and pitches, no underrun
after warm-up, and jack_midi_dump gets every note-on with its note-off."""

from __future__ import annotations

import pytest

from engine.audio.devices import import_sounddevice
from engine.bench_sound import bench_sound, format_sound, midi_pairs
from engine.jackserver import missing_tools

pytestmark = pytest.mark.integration
PLUCK = "[synth]\nwaveform = \"triangle\"\nattack = 0.003\ndecay = 0.2\nsustain = 0.3\nrelease = 0.15\n"


def test_melody_through_jack_is_on_time_in_tune_and_paired(seq_scene):
    missing = missing_tools(("jack_rec", "jack_lsp", "jack_midi_dump", "stdbuf"))
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install jackd2)")
    if import_sounddevice()[0] is None:
        pytest.skip(import_sounddevice()[1])
    scene = seq_scene(PLUCK, notes="density = 1.0\n")
    r = bench_sound(scene, seconds=8.0)
    text = format_sound(r)
    assert r["audio"]["underruns_after_2s"] == 0, text
    assert r["timing"]["notes"] >= 5 and r["timing"]["share"] >= 0.8, text
    assert r["midi"]["note_ons"] == r["timing"]["notes"] and r["midi"]["paired"], text


def test_midi_pairs_reads_jack_midi_dump_lines():
    dump = ("   0: 90 3c 64 note on  (channel  0): pitch  60, velocity 100\n"
            "  12: 80 3c 00 note off (channel  0): pitch  60, velocity   0\n"
            "  40: 90 3e 50 note on  (channel  0): pitch  62, velocity  80\n")
    r = midi_pairs(dump)
    assert r["note_ons"] == 2 and r["note_offs"] == 1 and r["hanging"] == 1 and not r["paired"]
