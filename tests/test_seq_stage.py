"""Melody and text on stage: scene tables, the beat grid, panic, params, renders with sound."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from engine.core.clock import FixedClock
from engine.core.events import Event, EventQueue
from engine.core.space import build_registry
from engine.files.scene import SceneError, load_scene
from engine.seq.layer import NoteRouter, SeqLayer
from engine.seq.scales import SCALES
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.offline import render
from tests.fakes import FakeOutput, show_config


class Sink:
    """Records the notes the layer schedules, and panics."""

    def __init__(self) -> None:
        self.notes: list[tuple[float, int, int, float]] = []
        self.panics = 0

    def schedule(self, t: float, pitch: int, velocity: int, duration_s: float) -> int:
        self.notes.append((t, pitch, velocity, duration_s))
        return self.sample_at(t)

    def sample_at(self, t: float) -> int:
        return round(t * 48000)

    sample_rate = 48000

    def panic(self) -> None:
        self.panics += 1


def _show(paths, fps: int = 60):
    from engine.stage.show import Show

    scenes = load_scenes([load_scene(p) for p in paths], torch.device("cpu"))
    show = Show(
        scenes, build_registry(), EventQueue(), FrameRenderer(torch.device("cpu")), FakeOutput(), FixedClock(fps)
    )
    sink = Sink()
    layer = SeqLayer(show, NoteRouter(audio=sink))
    layer.attach()
    return show, sink, layer


def test_notes_are_scheduled_ahead_on_the_grid_in_key_and_register(seq_scene):
    show, sink, _ = _show([seq_scene()])
    reg = show.registry
    reg.set("/deck/a/notes/scale", list(SCALES).index("major") + 1)
    reg.set("/deck/a/notes/key", 2)  # D major
    reg.set("/deck/a/notes/low", 60)
    reg.set("/deck/a/notes/high", 72)
    reg.set("/deck/a/notes/density", 1.0)
    show.run(frames=600)  # 10 s at 120 BPM
    assert len(sink.notes) >= 5
    d_major = {(2 + c) % 12 for c in SCALES["major"]}
    for t, pitch, velocity, dur in sink.notes:
        assert pitch % 12 in d_major and 60 <= pitch <= 72 and 1 <= velocity <= 127 and dur > 0
        beats = t * 2.0  # 120 BPM: 2 beats a second
        assert abs(beats * 4 - round(beats * 4)) < 1e-6, t  # on the 16th-note grid
    times = [n[0] for n in sink.notes]
    assert all(a < b for a, b in zip(times, times[1:])), "a melody: no two notes start together"


def test_scene_change_blackout_and_mute_release_notes(seq_scene):
    a, b = seq_scene(name="a.toml"), seq_scene(name="b.toml")
    show, sink, layer = _show([a, b])
    show.run(frames=60)
    show.queue.put(Event("verb", "/show/next"))
    show.run(frames=2)
    assert sink.panics == 1
    show.queue.put(Event("set", "/master/blackout", 1.0))
    show.run(frames=60)
    assert sink.panics == 2
    n = len(sink.notes)
    show.run(frames=120)
    assert len(sink.notes) == n  # silent in a blackout
    show.queue.put(Event("set", "/master/blackout", 0.0))
    show.run(frames=10)
    assert sink.panics == 2
    show.queue.put(Event("set", "/deck/a/notes/on", 0.0))
    show.run(frames=10)
    assert sink.panics == 3
    assert layer.stats()["seq"]["note_panics"] == 2  # blackout, notes off (a scene change is the show's)


def test_text_lines_reach_the_overlay_and_announcers(seq_scene):
    show, _, layer = _show([seq_scene()])
    said = []
    show.announcers.append(lambda address, value: said.append((address, value)))
    show.run(frames=600)
    assert said and all(a == "/text/line" and isinstance(v, str) for a, v in said)
    assert layer.stats()["seq"]["lines"] == len(said)


def test_text_prime_verb_feeds_the_stream(seq_scene):
    show, _, layer = _show([seq_scene()])
    show.queue.put(Event("verb", "/text/prime", "hello world"))
    show.run(frames=200)  # 30 chars/s: the primer is echoed first
    text = layer.players[0][1].stream
    assert text.emitted >= 11


@pytest.mark.parametrize(
    "body,key",
    [
        ('[notes]\nmodel = "notes.safetensors"\nscale = "klingon"\n', "notes.scale"),
        ('[notes]\nmodel = "notes.safetensors"\nkey = "H"\n', "notes.key"),
        ('[notes]\nmodel = "notes.safetensors"\ntemperature = 9.0\n', "notes.temperature"),
        ('[notes]\nmodel = "notes.safetensors"\nlow = 80\nhigh = 60\n', "notes.low"),
        ('[notes]\nmodel = "missing.safetensors"\n', "notes.model"),
        ('[notes]\nmodel = "notes.safetensors"\nprimer = "nope.mid"\n', "notes.primer"),
        ('[notes]\nmodel = "notes.safetensors"\ntempo = 3\n', "notes.tempo"),
        ('[text]\nmodel = "text.safetensors"\ncolour = [1, 2]\n', "text.colour"),
        ('[text]\nmodel = "text.safetensors"\nfont = "nofont.ttf"\n', "text.font"),
        ('[text]\nmodel = "text.safetensors"\nfont = "bad.toml"\n', "text.font"),  # a file, not a font
        ('[text]\nmodel = "text.safetensors"\nrate = "fast"\n', "text.rate"),
        ('[synth]\nwaveform = "kazoo"\n', "synth.waveform"),
        ("[synth]\ncutoff = 1.0\n", "synth.cutoff"),
        ("[notes]\n", "notes.model"),
    ],
)
def test_bad_seq_tables_name_the_key(scene_file, seq_scene, body, key):
    seq_scene()  # writes the tiny models next to the scene
    with pytest.raises(SceneError) as e:
        load_scene(scene_file(body, name="bad.toml"))
    assert f"'{key}'" in str(e.value) and "bad.toml" in str(e.value)


def _frames(folder) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


def test_text_changes_only_the_text_area_and_renders_repeat(tmp_path, seq_scene):
    on, off = seq_scene(), seq_scene("on = false\n", name="off.toml")
    out_on, out_off, again = tmp_path / "on", tmp_path / "off", tmp_path / "again"
    for scene, out in ((on, out_on), (off, out_off), (on, again)):
        render([load_scene(scene)], seconds=3, fps=30, out=f"{out}/", size=(320, 240))
    a, b, c = _frames(out_on), _frames(out_off), _frames(again)
    assert len(a) == len(b) == 90 and all(np.array_equal(x, y) for x, y in zip(a, c))
    assert (out_on / "audio.wav").read_bytes() == (again / "audio.wav").read_bytes()
    changed = np.zeros((240, 320), bool)
    for x, y in zip(a, b):
        changed |= (x != y).any(axis=2)
    assert changed.any(), "the text never showed"
    rows, cols = np.nonzero(changed)
    # The text block: from x = 0.05 of the width, from about y = 0.65 of the height (it scrolls up
    # by at most `lines` line heights of 0.05 of the height each).
    assert cols.min() >= round(0.05 * 320) and rows.min() >= round((0.65 - 0.25) * 240)


@pytest.mark.integration
def test_render_mp4_has_video_and_sound_of_the_same_length(tmp_path, seq_scene):
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed (apt-get install ffmpeg)")
    out = tmp_path / "x.mp4"
    res = render([load_scene(seq_scene())], seconds=4, fps=30, out=str(out), size=(128, 128))
    assert res.audio
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    streams = {s["codec_type"]: float(s["duration"]) for s in json.loads(probe.stdout)["streams"]}
    assert set(streams) == {"video", "audio"}
    assert streams["video"] == pytest.approx(4.0, abs=0.04) and streams["audio"] == pytest.approx(4.0, abs=0.05)


def test_reset_verbs_restart_melody_and_text(seq_scene):
    show, sink, layer = _show([seq_scene()])
    show.run(frames=120)
    notes, text = layer.players[0]
    show.queue.put(Event("verb", "/deck/a/notes/reset"))
    show.queue.put(Event("verb", "/deck/a/text/reset"))
    show.run(frames=1)
    assert sink.panics == 1 and text.stream.emitted == 0


def test_osc_routes_text_prime_and_reset_verbs():
    from engine.control.osc_dispatch import Dispatcher, encode
    from engine.core.events import EventQueue as Q

    q = Q()
    d = Dispatcher(build_registry(), q, routes={}, reply=lambda data, sender: None)
    d.handle(encode("/text/prime", "ROMEO:"), ("127.0.0.1", 1))
    d.handle(encode("/deck/a/notes/reset", 1), ("127.0.0.1", 1))
    d.handle(encode("/text/prime", 3.0), ("127.0.0.1", 1))  # not a string: malformed, counted
    evs = q.drain(1e9)
    assert [(e.address, e.value) for e in evs] == [("/text/prime", "ROMEO:"), ("/deck/a/notes/reset", None)]
    assert d.counters.malformed == 1


def test_a_phrase_played_live_primes_the_melody_after_a_beat_of_silence(seq_scene):
    show, _, layer = _show([seq_scene()])
    show.run(frames=30)
    for pitch in (62, 64, 66):
        show.queue.put(Event("verb", "/notes/played", f"{pitch}:100"))
        show.run(frames=15)
        show.queue.put(Event("verb", "/notes/played", f"{pitch}:0"))
        show.run(frames=5)
    assert layer.primed == 0  # still inside the phrase
    show.queue.put(Event("verb", "/notes/played", "junk"))  # counted, ignored
    show.run(frames=40)  # a beat (0.5 s at 120 BPM) of silence ends the phrase
    assert layer.primed == 1 and layer.listener.rejected == 1


def test_window_patch_blends_like_the_render_and_is_reused_while_still():
    from engine.seq.overlay import TextOverlay

    reg = build_registry()
    now = [10.0]
    overlay = TextOverlay(reg.get, lambda: now[0])
    overlay.add_line("hello stage", 0.0)
    size = (320, 240)
    rgba, x, y = overlay.patch(size)
    drawn = np.zeros((240, 320, 3), np.uint8)
    box = overlay.draw(drawn)
    h, w = rgba.shape[:2]
    assert box == (x, y, x + w, y + h)
    # SDL's blend of the patch onto black (colour * alpha) is what draw() put into the frame.
    expect = (rgba[..., :3].astype(np.int32) * rgba[..., 3:4] + 127) // 255
    assert np.abs(expect - drawn[y : y + h, x : x + w]).max() <= 2
    assert overlay.patch(size)[0] is rgba  # nothing moved: the same patch, no new texture
    overlay.add_line("a second line", 10.0)
    now[0] = 10.1  # fading in and scrolling: a new patch
    assert overlay.patch(size)[0] is not rgba


def test_window_text_forgets_old_lines_in_a_long_show():
    """Only the window path (patch, never draw) runs in a live show: lines that have
    scrolled out and faded must still be forgotten, or each frame's layout grows all night."""
    from engine.seq.overlay import TextOverlay

    reg = build_registry()
    now = [0.0]
    overlay = TextOverlay(reg.get, lambda: now[0])
    for k in range(2000):  # a line every 2 s: over an hour
        now[0] = 2.0 * k
        overlay.add_line(f"line {k}", now[0])
        overlay.patch((640, 360))
    layer = overlay._styled(360)
    assert len(layer._lines) <= 10  # one block of lines (4 by default) plus those still fading


def test_the_router_logs_the_sample_the_synth_was_given_even_if_the_clock_moves():
    class Drifting(Sink):
        """An audio clock re-anchored between any two reads (as the producer thread may)."""

        def __init__(self) -> None:
            super().__init__()
            self.reads = 0

        def sample_at(self, t: float) -> int:
            self.reads += 1
            return round(t * 48000) + 100 * self.reads

    sink = Drifting()
    t_log = NoteRouter(audio=sink).note(1.0, 60, 100, 0.5)
    s0 = 100 * 2  # the router's one read of show time 0, after the note's
    assert t_log == (48000 + 100 - s0) / 48000 and sink.reads == 2


def test_a_size_knob_sweep_loads_each_font_size_once_and_keeps_the_lines(monkeypatch):
    from engine.seq import overlay as overlay_mod

    reg = build_registry()
    overlay = overlay_mod.TextOverlay(reg.get, lambda: 5.0)
    overlay.add_line("still here", 1.0)
    loads = []
    real = overlay_mod.pygame.font.Font
    monkeypatch.setattr(overlay_mod.pygame.font, "Font", lambda *a: loads.append(a[1]) or real(*a))
    sizes = [0.05, 0.06, 0.07, 0.06, 0.05, 0.06, 0.07]  # a knob turned back and forth
    for size in sizes:
        reg.set("/deck/a/text/size", size)
        assert overlay.patch((640, 360)) is not None  # the line is drawn at every size
    assert sorted(loads) == sorted({round(s * 360) for s in sizes})


def test_a_scene_font_that_is_not_a_font_stops_startup_not_the_show(tmp_path):
    from engine.errors import StartupError
    from engine.seq.overlay import TextOverlay

    junk = tmp_path / "junk.ttf"
    junk.write_text("not a font")
    with pytest.raises(StartupError, match="junk.ttf"):
        TextOverlay(build_registry().get, lambda: 0.0, font=junk)


def test_a_note_register_with_nothing_to_play_is_refused_counted_and_the_melody_goes_on(seq_scene):
    show, sink, layer = _show([seq_scene()])
    show.queue.put(Event("set", "/deck/a/notes/low", 80.0))
    show.queue.put(Event("set", "/deck/a/notes/high", 60.0))  # low above high: no pitch left
    show.run(frames=240)
    assert layer.stats()["seq"]["note_param_errors"] == 1  # one refusal per change, not per frame
    n = len(sink.notes)
    show.run(frames=480)
    assert len(sink.notes) > n  # the melody goes on with the previous register


def test_sound_flags_without_a_notes_scene_are_said_not_silently_ignored(scene_file, caplog):
    from engine.seq.layer import start_live_seq

    show, _, _ = _show([scene_file("")])  # a GAN-only scene: nothing to play
    args = show_config(audio_device="42", notes_out="synth")
    assert start_live_seq(args, show, lambda: None) is None
    assert "--audio-device/--notes-out: no scene has a [notes] table" in caplog.text
    caplog.clear()
    assert start_live_seq(show_config(), show, lambda: None) is None
    assert caplog.text == ""
