"""The melody end to end through a real JACK server (dummy driver): a headless show plays the
shipped combined scene (scenes/verse.toml); jack_rec hears the notes at their logged times and pitches, no underrun
after warm-up, and jack_midi_dump gets every note-on with its note-off."""

from __future__ import annotations

import pytest

from engine.audio.devices import import_sounddevice
from engine.bench_sound import SOUND_SCENE, bench_sound, format_sound, midi_pairs
from engine.jackserver import missing_tools

pytestmark = pytest.mark.integration


def test_melody_through_jack_is_on_time_in_tune_and_paired():
    missing = missing_tools(("jack_rec", "jack_lsp", "jack_midi_dump", "stdbuf"))
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install jackd2)")
    if import_sounddevice()[0] is None:
        pytest.skip(import_sounddevice()[1])
    r = bench_sound(SOUND_SCENE, seconds=8.0)  # the shipped combined scene and models
    text = format_sound(r)
    assert r["audio"]["underruns_after_2s"] == 0, text
    assert r["timing"]["notes"] >= 5 and r["timing"]["share"] >= 0.9, text
    assert r["midi"]["note_ons"] == r["timing"]["notes"] and r["midi"]["paired"], text


def test_midi_pairs_reads_jack_midi_dump_lines():
    dump = ("   0: 90 3c 64 note on  (channel  0): pitch  60, velocity 100\n"
            "  12: 80 3c 00 note off (channel  0): pitch  60, velocity   0\n"
            "  40: 90 3e 50 note on  (channel  0): pitch  62, velocity  80\n")
    r = midi_pairs(dump)
    assert r["note_ons"] == 2 and r["note_offs"] == 1 and r["hanging"] == 1 and not r["paired"]
