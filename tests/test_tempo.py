"""Tempo: internal BPM, tap tempo, MIDI clock (smoothing, transport), Link samples, the
--tempo-source flag, and beat-timed latent paths (no real sleeps: timestamps are made up)."""

import asyncio
import math
import random

import numpy as np
import pytest
import torch

from engine.control import tempo_sync as tempo_control
from engine.core.clock import FixedClock
from engine.core.events import Event, EventQueue
from engine.core.space import build_registry
from engine.core.tempo import Tempo
from engine.errors import StartupError
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.show import Show
from tests.fakes import FakeOutput, show_config, verb_handlers


def verb(address, value=None, t=0.0):
    return Event("verb", address, value, t=t, source="midi")


def run_frames(tempo, frames, fps, events_at=None):
    """Advance a Tempo like the show does: events of frame k first, then dt."""
    clock = FixedClock(fps)
    handlers = verb_handlers(tempo, "tempo")
    for k in range(frames):
        _t, dt = clock.tick()
        for ev in (events_at or {}).get(k, []):
            handlers[ev.address](ev)
        tempo.advance(dt)


def test_internal_bpm_param_drives_the_beat_from_dt():
    reg = build_registry()
    tempo = Tempo(reg)
    assert tempo.bpm == 120.0 and reg.param("/tempo/bpm").lo == 20.0 and reg.param("/tempo/bpm").hi == 300.0
    run_frames(tempo, 61, 60)  # 1 s of show time
    assert tempo.beat == pytest.approx(2.0)
    reg.set("/tempo/bpm", 90.0)
    run_frames(tempo, 61, 60)
    assert tempo.beat == pytest.approx(3.5) and tempo.phase == pytest.approx(0.5)
    assert reg.set("/tempo/bpm", 1000.0) == 300.0  # clamped


def test_tap_tempo_averages_recent_taps_and_resets_after_a_gap():
    reg = build_registry()
    tempo = Tempo(reg)
    tap = verb_handlers(tempo, "tempo")["/tempo/tap"]
    for t in (10.0, 10.5, 11.0, 11.5):  # 120 BPM
        tap(Event("verb", "/tempo/tap", t=t, source="key"))
    assert reg.get("/tempo/bpm") == pytest.approx(120.0)
    for t in (11.9, 12.3, 12.7, 13.1, 13.5):  # now 150 BPM: the last 4 intervals only
        tap(Event("verb", "/tempo/tap", t=t, source="key"))
    assert reg.get("/tempo/bpm") == pytest.approx(150.0)
    tap(Event("verb", "/tempo/tap", t=30.0))  # long gap: a new sequence, one tap changes nothing
    assert reg.get("/tempo/bpm") == pytest.approx(150.0)
    tap(Event("verb", "/tempo/tap", t=31.0))
    assert reg.get("/tempo/bpm") == pytest.approx(60.0)
    assert tempo.phase == 0.0  # the beat snaps to the tap


@pytest.mark.parametrize("gaps", [[0.0], [1e-6], [1e-4], [3600.0], [1e-6, 3600.0], [0.02, 1e-6, 0.02]])
def test_absurd_clock_and_tap_rates_keep_the_bpm_finite_and_in_range(gaps):
    """Clock ticks and taps 0 s apart, 1 us apart, 10,000 per second, hours apart."""
    for source, verb in (("midi", "/tempo/clock"), ("internal", "/tempo/tap")):
        reg = build_registry()
        tempo = Tempo(reg, source)
        handle, t = verb_handlers(tempo, "tempo")[verb], 100.0
        for k in range(200):
            t += gaps[k % len(gaps)]
            handle(Event("verb", verb, t=t, source="midi"))
            tempo.advance(1 / 60)
            assert 20.0 <= tempo.bpm <= 300.0 and math.isfinite(tempo.beat), (source, k)


def test_bpm_param_refuses_nan_and_clamps_zero_and_negative():
    reg = build_registry()
    tempo = Tempo(reg)
    assert reg.set("/tempo/bpm", float("nan")) is None and tempo.bpm == 120.0
    assert reg.set("/tempo/bpm", 0.0) == 20.0 and reg.set("/tempo/bpm", -60.0) == 20.0
    tempo.advance(1.0)
    assert tempo.beat == pytest.approx(20.0 / 60.0)


def test_tap_through_the_show_queue(scene_file):
    show, out, reg, q = make_show([scene_file("")])
    for i in range(3):
        q.put(Event("verb", "/tempo/tap", t=100.0 + i * 0.4, source="osc"))
    show.run(frames=1)
    assert show.tempo.bpm == pytest.approx(150.0)


def clock_events(bpm, beats, t0=0.0, jitter=0.0, seed=0):
    rng = random.Random(seed)
    period = 60.0 / bpm / 24
    return [verb("/tempo/clock", t=t0 + i * period + rng.uniform(-jitter, jitter)) for i in range(int(beats * 24))]


@pytest.mark.parametrize("bpm", [120.0, 174.0])
def test_midi_clock_bpm_within_one_bpm_after_two_beats_with_jitter(bpm):
    reg = build_registry()
    tempo = Tempo(reg, "midi")
    tick = verb_handlers(tempo, "tempo")["/tempo/clock"]
    for ev in clock_events(bpm, 2.1, jitter=0.001):  # +-1 ms receive jitter per tick
        tick(ev)
    assert tempo.bpm == pytest.approx(bpm, abs=1.0)
    assert reg.get("/tempo/bpm") == pytest.approx(tempo.bpm)  # status and `?` see the followed tempo


def test_midi_clock_follows_a_tempo_change_and_ignores_ticks_when_internal():
    reg = build_registry()
    tempo = Tempo(reg, "midi")
    tick = verb_handlers(tempo, "tempo")["/tempo/clock"]
    for ev in clock_events(100.0, 4):
        tick(ev)
    for ev in clock_events(140.0, 3, t0=2.4 + 0.5 / 140 * 60 / 24):
        tick(ev)
    assert tempo.bpm == pytest.approx(140.0, abs=0.5)
    internal = Tempo(build_registry())
    for ev in clock_events(90.0, 2):
        verb_handlers(internal, "tempo")["/tempo/clock"](ev)
    assert internal.bpm == 120.0 and internal.ignored == 48


def test_midi_beat_follows_ticks_not_frame_times():
    """Ticks at 150 BPM, frames at 60 fps: the beat tracks the tick count."""
    reg = build_registry()
    tempo = Tempo(reg, "midi")
    ticks = clock_events(150.0, 8)
    fps = 60
    by_frame = {}
    for ev in ticks:
        by_frame.setdefault(int(ev.t * fps) + 1, []).append(ev)  # applied at the next frame boundary
    run_frames(tempo, int(3.2 * fps), fps, by_frame)
    assert tempo.beat == pytest.approx(8.0, abs=1 / 24 + 1e-9)  # all 8 beats of ticks, no more


def test_midi_start_stop_continue_and_song_position():
    reg = build_registry()
    tempo = Tempo(reg, "midi")
    fps = 60
    ticks = clock_events(120.0, 2, t0=0.0)
    events = {0: [verb("/tempo/start")]}
    for ev in ticks:
        events.setdefault(int(ev.t * fps), []).append(ev)
    run_frames(tempo, 60, fps, events)  # 1 s = 2 beats of ticks after Start
    assert tempo.beat == pytest.approx(2.0, abs=1 / 24 + 1e-9)
    handlers = verb_handlers(tempo, "tempo")
    handlers["/tempo/stop"](verb("/tempo/stop"))
    held = tempo.beat
    run_frames(tempo, 30, fps)
    assert tempo.beat == held and not tempo.running
    handlers["/tempo/song_position"](verb("/tempo/song_position", 32.0))  # 32 sixteenths = beat 8
    assert tempo.beat == 8.0 and not tempo.running  # moved, still stopped
    handlers["/tempo/continue"](verb("/tempo/continue"))
    assert tempo.running
    more = {k: [verb("/tempo/clock", t=10 + k / 60)] for k in range(0, 12)}  # 12 ticks = half a beat
    run_frames(tempo, 12, fps, more)
    assert tempo.beat == pytest.approx(8.0 + 11 / 24, abs=1 / 24 + 1e-9)  # first tick after continue is beat 8
    handlers["/tempo/start"](verb("/tempo/start"))
    assert tempo.beat == 0.0
    handlers["/tempo/song_position"](verb("/tempo/song_position", float("nan")))
    assert reg.rejected == 1 and tempo.beat == 0.0


def test_link_samples_set_bpm_and_lock_the_beat():
    reg = build_registry()
    tempo = Tempo(reg, "link")
    h = verb_handlers(tempo, "tempo")
    h["/tempo/link_bpm"](Event("verb", "/tempo/link_bpm", 128.0, source="link"))
    h["/tempo/link_beat"](Event("verb", "/tempo/link_beat", 64.0, source="link"))
    run_frames(tempo, 2, 60)
    assert tempo.bpm == 128.0 and 64.0 <= tempo.beat <= 64.25
    h["/tempo/tap"](Event("verb", "/tempo/tap", t=1.0))
    h["/tempo/tap"](Event("verb", "/tempo/tap", t=1.2))
    assert tempo.bpm == 128.0  # taps do not fight the session's tempo


def test_link_phase_lock_converges_without_running_backwards():
    """A session 0.3 beat ahead of the show, then 0.2 behind: the beat slews onto the
    session's phase within a quarter second and never steps back; a big jump snaps."""
    reg = build_registry()
    tempo = Tempo(reg, "link")
    h = verb_handlers(tempo, "tempo")
    h["/tempo/link_bpm"](Event("verb", "/tempo/link_bpm", 100.0, source="link"))
    fps, rate = 60, 100.0 / 60.0  # frames per second, beats per second
    beats = []
    for offset in (0.3, -0.2):
        tempo.beat = 10.0  # where the show's own beat happens to be
        start = len(beats)
        for k in range(30):  # half a second, one sample per frame
            t = (k + 1) / fps
            h["/tempo/link_beat"](Event("verb", "/tempo/link_beat", 10.0 + offset + t * rate, source="link"))
            tempo.advance(1 / fps)
            beats.append((t, tempo.beat - (10.0 + offset + t * rate)))
        assert all(abs(err) < 0.01 for t, err in beats[start:] if t >= 0.25), beats[start:]
    steps = np.diff([10.0 + t * rate + err for t, err in beats[30:]])
    assert (steps > 0).all()  # slowed down to fall back 0.2 beat, never reversed
    h["/tempo/link_beat"](Event("verb", "/tempo/link_beat", 3.0, source="link"))  # the session restarted
    tempo.advance(1 / fps)
    assert tempo.beat == 3.0


def test_tempo_source_flag_and_missing_aalink(monkeypatch, scene_file):
    assert show_config().tempo_source == "internal"
    with pytest.raises(SystemExit):
        show_config("--tempo-source", "ableton")
    show, *_ = make_show([scene_file("")])
    assert tempo_control.start(show_config("--tempo-source", "midi"), show) is None
    assert show.tempo.source == "midi"

    def no_aalink(name):
        raise ImportError(name)

    link = show_config("--tempo-source", "link")  # before the patch: the parser imports modules
    monkeypatch.setattr(tempo_control.importlib, "import_module", no_aalink)
    with pytest.raises(StartupError, match=r"--tempo-source link .*pip install \.\[link\]"):
        tempo_control.start(link, show)


class FakeLink:
    """Stands in for aalink.Link: a session already at 133 BPM."""

    def __init__(self, bpm):
        asyncio.get_running_loop()  # like aalink: Link needs a running loop
        self.created_with = bpm
        self.tempo, self.beat, self.num_peers, self.enabled = 133.0, 12.5, 1, False


def test_link_control_enqueues_session_tempo_and_never_sets_it(monkeypatch, scene_file):
    import types

    fake = types.SimpleNamespace(Link=FakeLink)
    monkeypatch.setattr(tempo_control, "LINK_ENABLE_DELAY_S", 0.0)
    show, *_ = make_show([scene_file("")])
    control = tempo_control.LinkControl(show, fake)
    try:
        for _ in range(1000):
            if control.samples:
                break
            control._stop.wait(0.01)  # waiting for the poller thread, not pacing anything
    finally:
        control.close()
    events = show.queue.drain()
    assert events[0].address == "/tempo/link_bpm" and events[0].value == 133.0
    # the beat when the frame will be seen: half a poll plus the show's input-to-present time ahead
    ahead = tempo_control.LINK_POLL_S / 2 + show.input_to_present_s
    assert any(
        e.address == "/tempo/link_beat" and e.value == pytest.approx(12.5 + ahead * 133.0 / 60.0) for e in events
    )
    assert control._link.tempo == 133.0 and control._link.created_with == 120.0


# -- beat-timed latent paths ----------------------------------------------------


def make_show(scene_paths, fps=30, tempo_source="internal"):
    scenes = load_scenes([load_scene(p) for p in scene_paths], torch.device("cpu"))
    out = FakeOutput()
    reg = build_registry()
    q = EventQueue()
    show = Show(
        scenes, reg, q, FrameRenderer(torch.device("cpu")), out, FixedClock(fps), tempo=Tempo(reg, tempo_source)
    )
    return show, out, reg, q


@pytest.mark.parametrize("bpm", [120.0, 90.0])
def test_beat_path_is_frame_rate_independent_and_lands_on_beats(scene_file, bpm):
    f = scene_file('[path]\nkind = "keyframes"\nbeats_per_key = 2\nkeys = 4\n')
    taus = {}
    for fps in (30, 60):
        show, out, reg, q = make_show([f], fps=fps)
        reg.set("/tempo/bpm", bpm)
        seen: list[float] = []
        show.frame_hooks.append(lambda s, seen=seen: seen.append(s.deck.scene.tau))
        show.run(frames=4 * fps + 1)  # 4 s
        taus[fps] = seen
        frames = out.frames
        if fps == 30:
            frames30 = frames
    # same time, same path position: frame k at 30 fps == frame 2k at 60 fps
    for k in (0, 15, 45, 120):
        assert taus[30][k] == pytest.approx(taus[60][2 * k], abs=1e-9)
    beats_per_second = bpm / 60.0
    assert taus[30][120] == pytest.approx(4 * beats_per_second / 2)  # 2 beats per key
    # with a fixed tempo each keyframe boundary falls on a beat: tau is whole when the beat is even
    for k, tau in enumerate(taus[60]):
        beat = k / 60 * beats_per_second
        if abs(beat / 2 - round(beat / 2)) < 1e-9:
            assert abs(tau - round(tau)) < 1e-9
    assert frames30[0].shape == (64, 64, 3)


def test_beat_path_twice_as_fast_at_double_tempo(scene_file):
    f = scene_file('[path]\nkind = "noise"\nbars_per_loop = 2\nperiod = 8.0\n')  # 8 beats per 8 keys
    ends = []
    for bpm in (60.0, 120.0):
        show, out, reg, q = make_show([f], fps=30)
        reg.set("/tempo/bpm", bpm)
        show.run(frames=31)
        ends.append(show.deck.scene.tau)
    assert ends == [pytest.approx(1.0), pytest.approx(2.0)]


def test_beat_path_follows_tapped_tempo_and_realigns_after_freeze(scene_file):
    f = scene_file("[path]\nbeats_per_key = 1\n")
    show, out, reg, q = make_show([f], fps=30)
    show.run(frames=10)
    q.put(Event("toggle", "/master/freeze"))
    show.run(frames=7)
    q.put(Event("toggle", "/master/freeze"))
    show.run(frames=1)
    tau, beat = show.deck.scene.tau, show.tempo.beat
    assert (tau - beat) % 1.0 == pytest.approx(0.0, abs=1e-9) or (tau - beat) % 1.0 == pytest.approx(1.0)
    assert np.isfinite(tau)
