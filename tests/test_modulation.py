"""Modulation: LFO, beat and audio sources routed to params; pulse and motion on the deck.

No sound card: audio features are scripted AudioFeatures sequences; time is a FixedClock.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.control import MODULES
from engine.control.modulation import ModInputs, ModulationControl, Modulator, beat_position, lfo_position, start
from engine.core.clock import FixedClock
from engine.core.events import Event, EventQueue
from engine.core.space import build_registry
from engine.core.tempo import Tempo
from engine.dsp.analysis import FEATURES, AudioFeatures
from engine.files.patch import AUDIO_FEATURES, BeatSource, LfoSource, load_patch
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.show import Show
from tests.conftest import REPO
from tests.fakes import FakeOutput, show_config

FPS = 60


def routes_of(tmp_path: Path, body: str, registry=None):
    f = tmp_path / "mod.toml"
    f.write_text(body)
    return load_patch(f, registry or build_registry()).routes


def route(source: str, address: str, extra: str = "") -> str:
    return f'[[route]]\nsource = {source}\naddress = "{address}"\n{extra}\n'


def make_show(scene_file, body: str = "[path]\nseconds_per_key = 1.0\n", keep: bool = False):
    scenes = load_scenes([load_scene(scene_file(body))], torch.device("cpu"))
    reg = build_registry()
    return Show(scenes, reg, EventQueue(), FrameRenderer(torch.device("cpu")), FakeOutput(keep=keep), FixedClock(FPS))


class Script:
    """AudioFeatures per call (one call per frame); silence after the end."""

    def __init__(self, frames):
        self.frames, self.i = list(frames), 0

    def __call__(self) -> AudioFeatures:
        f = self.frames[self.i] if self.i < len(self.frames) else AudioFeatures()
        self.i += 1
        return f


# -- sources ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,expected",
    [
        ("sine", [0.0, 0.5, 1.0, 0.5]),
        ("triangle", [0.0, 0.5, 1.0, 0.5]),
        ("saw", [0.0, 0.25, 0.5, 0.75]),
        ("square", [1.0, 1.0, 0.0, 0.0]),
    ],
)
def test_lfo_shapes_over_one_cycle(shape, expected):
    src = LfoSource(shape, rate=2.0)  # a cycle every 0.5 s
    got = [lfo_position(src, t, beat=0.0) for t in (0.0, 0.125, 0.25, 0.375)]
    assert got == pytest.approx(expected, abs=1e-9)
    assert lfo_position(src, 0.5 + 0.125, 0.0) == pytest.approx(got[1])  # periodic


def test_an_lfo_period_too_short_for_floats_does_not_stop_modulation(tmp_path):
    """beats = 5e-324 passes validation (above 0); beat / beats is inf, and the random LFO's
    floor(inf) once raised every frame, so no modulated param moved any more."""
    f = tmp_path / "p.toml"
    f.write_text(
        '[[route]]\nsource = { type = "lfo", shape = "random", beats = 5e-324 }\n'
        'address = "/deck/a/latent/1"\n'
        '[[route]]\nsource = { type = "lfo", shape = "saw", rate = 1.0 }\naddress = "/deck/a/latent/2"\n'
    )
    reg = build_registry()
    m = Modulator(reg, load_patch(f, reg).routes)
    m.step(ModInputs(t=0.25, dt=1 / 60, beat=1.0, bpm=120.0))
    assert reg.param("/deck/a/latent/2").value == pytest.approx(-3.0 + 0.25 * 6.0)
    assert reg.param("/deck/a/latent/1").value == pytest.approx(-3.0)  # position 0 while undefined
    assert lfo_position(LfoSource("sine", beats=5e-324), 0.0, 1.0) == 0.0


def test_random_lfo_holds_per_cycle_and_is_seeded():
    src = LfoSource("random", rate=1.0, seed=7)
    cycle = [lfo_position(src, t, 0.0) for t in np.linspace(3.0, 3.99, 12)]
    assert len(set(cycle)) == 1  # sample & hold: one value per cycle
    values = [lfo_position(src, float(k), 0.0) for k in range(200)]
    assert all(0.0 <= v < 1.0 for v in values) and len(set(values)) == 200
    assert 0.4 < float(np.mean(values)) < 0.6
    assert values == [lfo_position(LfoSource("random", rate=1.0, seed=7), float(k), 0.0) for k in range(200)]
    assert values != [lfo_position(LfoSource("random", rate=1.0, seed=8), float(k), 0.0) for k in range(200)]


def test_lfo_in_beats_is_phase_locked_to_the_tempo_beat():
    src = LfoSource("saw", beats=4.0)
    # Position depends on the beat only, whatever the show time (the tempo may change).
    assert lfo_position(src, t=0.0, beat=1.0) == lfo_position(src, t=99.0, beat=1.0) == pytest.approx(0.25)
    assert lfo_position(src, 0.0, 5.0) == pytest.approx(0.25)  # one bar later, same phase
    shifted = LfoSource("saw", beats=4.0, phase=0.5)
    assert lfo_position(shifted, 0.0, 1.0) == pytest.approx(0.75)


def test_beat_source_follows_the_tempo():
    reg = build_registry()
    tempo = Tempo(reg)
    pulse, ramp = BeatSource(1.0, "pulse", 0.05), BeatSource(4.0, "ramp")
    peaks, ramps = [], []
    frames = 4 * FPS - 10  # four seconds, less a sixth
    for bpm in (120.0, 60.0):
        reg.set("/tempo/bpm", bpm)
        start_beat = tempo.beat
        hits, prev = 0, beat_position(pulse, tempo.beat, tempo.bpm)
        for _ in range(frames):
            tempo.advance(1.0 / FPS)
            now = beat_position(pulse, tempo.beat, tempo.bpm)
            hits += now > prev  # a new beat: the pulse jumps up
            prev = now
            ramps.append((tempo.beat, beat_position(ramp, tempo.beat, tempo.bpm)))
        peaks.append(hits)
        assert tempo.beat - start_beat == pytest.approx(frames / FPS * bpm / 60.0)
    assert peaks == [7, 4]  # beats 1-7 at 120 BPM (every 0.5 s), then 8-11 at 60 (every second)
    assert all(r == pytest.approx((b / 4.0) % 1.0) for b, r in ramps)
    # The pulse decays in seconds: half way to the next beat at 60 BPM it is exp(-0.5 / 0.05).
    assert beat_position(pulse, 10.5, 60.0) == pytest.approx(np.exp(-10.0))
    assert beat_position(BeatSource(1.0, "pulse", 0.1, phase=0.5), 10.5, 60.0) == pytest.approx(1.0)


def test_audio_feature_names_match_the_analysis():
    assert AUDIO_FEATURES == FEATURES == ("rms", "low", "mid", "high", "onset")


# -- the Modulator (pure) ---------------------------------------------------------------


def test_absolute_route_maps_across_the_range_with_curve_and_invert(tmp_path):
    reg = build_registry()
    rs = routes_of(
        tmp_path,
        route(
            '{ type = "audio", feature = "rms", input = [0.5, 1.0] }',
            "/master/speed",
            "range = [1.0, 3.0]\ninvert = true",
        ),
        reg,
    )
    mod = Modulator(reg, rs)
    for rms, want in ((0.0, 3.0), (0.75, 2.0), (1.0, 1.0)):
        mod.step(ModInputs(0.0, 1 / FPS, 0.0, 120.0, AudioFeatures(rms=rms)))
        assert reg.get("/master/speed") == pytest.approx(want)
    assert reg.param("/master/speed").target == 1.0  # the performer's value is left alone


def test_add_mode_swings_around_the_base_and_sums(tmp_path):
    reg = build_registry()
    body = route(
        '{ type = "lfo", shape = "square", rate = 1.0 }', "/deck/a/latent/1", 'mode = "add"\namount = 0.5'
    ) + route('{ type = "audio", feature = "low" }', "/deck/a/latent/1", 'mode = "add"\namount = 1.0')
    mod = Modulator(reg, routes_of(tmp_path, body, reg))
    reg.set("/deck/a/latent/1", 1.0, immediate=True)  # a fader put the base at 1
    mod.step(ModInputs(0.25, 1.0, 0.0, 120.0, AudioFeatures(low=0.5)))  # square high: +0.5, low: +0.5
    assert reg.get("/deck/a/latent/1") == pytest.approx(2.0)
    mod.step(ModInputs(0.75, 0.0, 0.0, 120.0, AudioFeatures(low=0.0)))  # square low: -0.5
    assert reg.get("/deck/a/latent/1") == pytest.approx(0.5)
    reg.set("/deck/a/latent/1", 2.8, immediate=True)
    mod.step(ModInputs(0.25, 1.0, 0.0, 120.0, AudioFeatures(low=1.0)))  # dt 1 s: the base has glided there
    assert reg.get("/deck/a/latent/1") == 3.0  # clamped to the param's range


def test_route_smoothing_glides_the_source(tmp_path):
    reg = build_registry()
    mod = Modulator(
        reg,
        routes_of(
            tmp_path,
            route('{ type = "audio", feature = "mid" }', "/master/speed", "range = [0.0, 4.0]\nsmoothing = 0.5"),
            reg,
        ),
    )
    mod.step(ModInputs(0.0, 0.0, 0.0, 120.0, AudioFeatures(mid=0.0)))
    for _ in range(int(0.5 * FPS)):
        mod.step(ModInputs(0.0, 1 / FPS, 0.0, 120.0, AudioFeatures(mid=1.0)))
    assert reg.get("/master/speed") == pytest.approx(4.0 * (1 - np.exp(-1.0)), rel=1e-3)  # 63% after 0.5 s


def test_modulation_is_deterministic(tmp_path):
    body = (
        route('{ type = "lfo", shape = "random", beats = 2 }', "/deck/a/latent/3", 'mode = "add"\namount = 2.0')
        + route('{ type = "beat", division = 0.5 }', "/deck/a/latent/4")
        + route('{ type = "audio", feature = "onset" }', "/deck/a/pulse", "smoothing = 0.05")
    )
    rng = np.random.default_rng(0)
    feats = [AudioFeatures(onset=float(x)) for x in rng.random(100)]

    def run():
        reg = build_registry()
        mod = Modulator(reg, routes_of(tmp_path, body, reg))
        out = []
        for i, f in enumerate(feats):
            mod.step(ModInputs(i / FPS, 1 / FPS, i * 2.0 / FPS, 120.0, f))
            out.append([reg.get(a) for a in ("/deck/a/latent/3", "/deck/a/latent/4", "/deck/a/pulse")])
        return out

    assert run() == run()


# -- in a show: listeners, pulse, motion ---------------------------------------------------


def test_modulated_params_are_not_reported_to_listeners(scene_file, tmp_path):
    show = make_show(scene_file)
    heard = []
    show.listeners.append(lambda a, v, s: heard.append(a))
    body = (
        route('{ type = "lfo", shape = "sine", rate = 2.0 }', "/deck/a/latent/1", 'mode = "add"\namount = 1.0')
        + route('{ type = "beat" }', "/master/brightness", "range = [0.5, 1.0]")
        + route('{ type = "audio", feature = "rms" }', "/deck/a/truncation")
    )
    ModulationControl(
        show,
        routes_of(tmp_path, body, show.registry),
        features=Script([AudioFeatures(rms=0.1 * (i % 10)) for i in range(30)]),
    )
    seen = []
    for _ in range(30):
        show.frame()
        seen.append(show.registry.get("/deck/a/latent/1"))
    assert heard == [] and len(set(seen)) > 10  # it moved, and nobody was told
    assert show.queue.max_depth == 0  # nothing was enqueued either
    show.queue.put(Event("set", "/deck/a/latent/1", 1.0, source="osc"))  # a fader sets the base
    for _ in range(30):  # the base glides there with the param's own smoothing (0.05 s)
        show.frame()
    assert heard == ["/deck/a/latent/1"]  # only the input is echoed
    p = show.registry.param("/deck/a/latent/1")
    lfo = lfo_position(LfoSource("sine", rate=2.0), show.t, 0.0)
    assert p.target == 1.0 and p.value == pytest.approx(1.0 + (2 * lfo - 1), abs=1e-3)


def test_an_input_applied_after_the_modulator_never_shows_the_bare_value(scene_file, tmp_path):
    """A post-stage param (brightness) set during the forward pass, after the modulator
    wrote its value: the frame keeps the modulated value; the next one swings around the
    new base. Closing the modulation hands the value back to the target."""
    show = make_show(scene_file)
    body = route('{ type = "lfo", shape = "square", rate = 1.0 }', "/master/brightness", 'mode = "add"\namount = 0.2')
    control = ModulationControl(show, routes_of(tmp_path, body, show.registry))
    show.registry.set("/master/brightness", 0.7)
    show.frame()
    show.frame_model()  # the modulator writes this frame's value (square high: +0.2)
    modulated = show.registry.get("/master/brightness")
    assert modulated == pytest.approx(0.7 + 0.2)
    show.queue.put(Event("set", "/master/brightness", 0.4, source="osc"))  # arrives during the forward pass
    show.frame_post()
    assert show.registry.get("/master/brightness") == pytest.approx(modulated)  # not the bare 0.4
    show.frame()
    assert show.registry.get("/master/brightness") == pytest.approx(0.4 + 0.2)
    control.close()
    show.frame()
    assert show.registry.get("/master/brightness") == pytest.approx(0.4)


def test_onset_routed_to_pulse_kicks_then_springs_back(scene_file, tmp_path):
    show = make_show(scene_file)
    reg = show.registry
    reg.set("/master/speed", 0.0, immediate=True)  # the path stands still: z changes only by the pulse
    decay = reg.get("/deck/a/pulse_decay")
    assert decay == pytest.approx(0.3)
    onset = [AudioFeatures()] * 10 + [AudioFeatures(onset=np.exp(-k / (0.12 * FPS)), onsets=1) for k in range(60)]
    ctl = ModulationControl(
        show,
        routes_of(tmp_path, route('{ type = "audio", feature = "onset" }', "/deck/a/pulse", "range = [0.0, 2.0]"), reg),
        features=Script(onset),
    )
    show.frame()
    z_rest = show.deck.latent().copy()
    levels = []
    for _ in range(10 + int(decay * FPS) + 2):
        show.frame()
        levels.append(show.deck.pulse)
    assert max(levels[:9]) == 0.0
    assert levels[9] == pytest.approx(2.0)  # the kick: straight to the peak
    assert all(a >= b for a, b in zip(levels[9:], levels[10:]))  # then only back
    assert levels[9 + int(decay * FPS) // 2] == pytest.approx(0.5)  # a quarter of the peak half way through
    assert levels[-1] == 0.0  # at rest within the decay time
    assert ctl.errors == 0
    # The kick moves z along one unit direction, orthogonal to the eight latent offsets.
    show.deck._pulse_peak, show.deck._pulse_age = 1.5, 0.0
    delta = show.deck.latent() - z_rest
    assert float(np.linalg.norm(delta)) == pytest.approx(1.5, rel=1e-4)
    assert np.abs(show.scenes[0].directions @ delta).max() < 1e-4


def test_a_held_pulse_still_springs_back():
    reg = build_registry()
    from engine.stage.deck import Deck

    deck = Deck("a", reg)  # the pulse's spring needs no scene
    reg.set("/deck/a/pulse", 1.0)
    deck._spring(0.0)
    assert deck.pulse == 1.0
    for _ in range(FPS):
        deck._spring(1 / FPS)  # the value stays at 1 (a held button): no new kick
    assert deck.pulse == 0.0
    reg.set("/deck/a/pulse", 1.5)
    deck._spring(1 / FPS)
    assert deck.pulse == 1.5  # a rise kicks again


def test_motion_accumulates_and_never_goes_back(scene_file, tmp_path):
    def run(with_audio: bool) -> list[float]:
        show = make_show(scene_file)
        loud = [AudioFeatures(low=1.0 if (i // 15) % 2 else 0.0) for i in range(120)]
        if with_audio:
            rs = routes_of(
                tmp_path,
                route('{ type = "audio", feature = "low" }', "/deck/a/motion", "range = [0.0, 3.0]"),
                show.registry,
            )
            ModulationControl(show, rs, features=Script(loud))
        taus = []
        for _ in range(120):
            show.frame()
            taus.append(show.scenes[0].tau)
        return taus

    plain, driven = run(False), run(True)
    assert plain[-1] == pytest.approx(119 / FPS)  # 1 key per second at speed 1
    assert all(b >= a for a, b in zip(driven, driven[1:]))  # never backwards
    # Loud half of the time at +3x: the path went (1 + 3/2) times as far.
    assert driven[-1] == pytest.approx(plain[-1] * 2.5, rel=0.05)
    steps = np.diff(driven)
    assert steps.max() == pytest.approx(4 / FPS) and steps.min() == pytest.approx(1 / FPS)


def test_a_scene_switch_resets_the_base_at_once(scene_file, tmp_path):
    scenes = load_scenes(
        [load_scene(scene_file("", name="a.toml")), load_scene(scene_file("[params]\nspeed = 2.0\n", name="b.toml"))],
        torch.device("cpu"),
    )
    show = Show(
        scenes,
        build_registry(),
        EventQueue(),
        FrameRenderer(torch.device("cpu")),
        FakeOutput(keep=False),
        FixedClock(FPS),
    )
    rs = routes_of(
        tmp_path,
        route('{ type = "lfo", shape = "square", rate = 0.1 }', "/deck/a/speed", 'mode = "add"\namount = 0.5'),
        show.registry,
    )
    ModulationControl(show, rs)
    show.frame()
    assert show.registry.get("/deck/a/speed") == pytest.approx(1.5)
    show.queue.put(Event("verb", "/show/next"))
    show.frame()
    assert show.registry.get("/deck/a/speed") == pytest.approx(2.5)  # the new scene's base, no glide


def test_selecting_the_same_scene_again_resets_the_base_too(scene_file, tmp_path):
    show = make_show(scene_file)
    rs = routes_of(
        tmp_path,
        route('{ type = "lfo", shape = "square", rate = 0.1 }', "/deck/a/speed", 'mode = "add"\namount = 0.5'),
        show.registry,
    )
    ModulationControl(show, rs)
    show.queue.put(Event("set", "/deck/a/speed", 3.0, source="osc"))
    for _ in range(60):
        show.frame()
    assert show.registry.get("/deck/a/speed") == pytest.approx(3.5, abs=1e-3)
    show.queue.put(Event("verb", "/show/scene", 1))  # the playing scene again: its params reset
    show.frame()
    assert show.registry.get("/deck/a/speed") == pytest.approx(1.5)  # from the default, no glide down


def test_recorded_audio_features_replay_to_the_same_frames(scene_file, tmp_path):
    from engine.core.eventlog import EventLog, EventRecorder, EventReplay, load_event_log

    body = (
        route('{ type = "audio", feature = "onset" }', "/deck/a/pulse", "range = [0.0, 3.0]")
        + route('{ type = "audio", feature = "low" }', "/deck/a/motion")
        + route('{ type = "lfo", shape = "random", beats = 1 }', "/deck/a/latent/2", 'mode = "add"\namount = 2.0')
    )
    rng = np.random.default_rng(1)
    script = [AudioFeatures(low=float(rng.random()), onset=float(i % 20 == 0), onsets=i // 20) for i in range(40)]
    script[5:15] = [script[4]] * 10  # unchanged features are not logged again, and still replay

    def run(replay_log=None):
        show = make_show(scene_file, keep=True)
        ctl = ModulationControl(
            show, routes_of(tmp_path, body, show.registry), features=None if replay_log else Script(script)
        )
        recorder = None
        if replay_log is None:
            recorder = EventRecorder(
                tmp_path / "events.jsonl", fps=FPS, scenes=[tmp_path / "scene.toml"], tempo_source="internal"
            )
            recorder.attach(show)
        else:
            show.replay = EventReplay(replay_log)
        show.run(frames=40)
        if recorder is not None:
            recorder.close(end_frame=show.frame_count)
        return show.output.frames, ctl

    live, live_ctl = run()
    log_ = load_event_log(tmp_path / "events.jsonl")
    assert log_.count == 40 - 10  # one line per frame whose features changed
    again, ctl = run(log_)
    assert ctl.rejected == 0 and ctl.features == script[-1]
    assert len(again) == 40 and all(np.array_equal(a, b) for a, b in zip(live, again))
    silent, _ = run(EventLog(tmp_path, FPS, [tmp_path / "scene.toml"], "internal"))  # a log without audio
    assert not all(np.array_equal(a, b) for a, b in zip(live, silent))  # the audio did matter


def test_feature_text_round_trips_and_bad_text_is_refused():
    from engine.control.modulation import decode_features, encode_features

    f = AudioFeatures(0.1, 1 / 3, 0.5, 2**-30, 0.999, 12)
    assert decode_features(encode_features(f)) == f
    for bad in (None, 3.0, "", "1 2 3", "a b c d e 1", "0 0 0 0 nan 1", "0 0 0 0 0 1 9"):
        assert decode_features(bad) is None


# -- the control module ----------------------------------------------------------------


def test_registered_and_started_only_when_needed(scene_file, tmp_path):
    assert MODULES[-1] == "engine.control.modulation"
    show = make_show(scene_file)
    midi_only = tmp_path / "midi.toml"
    midi_only.write_text(route('{ type = "midi", cc = 1 }', "/master/speed"))
    assert start(show_config(patch=[midi_only], audio_in=None), show) is None
    ctl = start(show_config(patch=[midi_only, REPO / "patches" / "audio_reactive.toml"], audio_in=None), show)
    assert ctl is not None and ctl.hook in show.model_hooks
    for _ in range(3):
        show.frame()
    stats = ctl.stats()["modulation"]
    assert stats["routes"] == 6 and stats["errors"] == 0 and stats["features"]["onset"] == 0.0
    ctl.close()
    assert ctl.hook not in show.model_hooks


def test_midi_control_leaves_modulation_routes_alone(tmp_path):
    from engine.control.midi import MidiControl
    from tests.fakes import ControlShow

    show = ControlShow()
    args = show_config(
        patch=[REPO / "patches" / "audio_reactive.toml"],
        midi_in=[],
        midi_feedback=None,
        midi_api=None,
        learn_save=tmp_path / "learned.toml",
    )
    control = MidiControl(args, show)
    assert control.router.routes == ()
    assert not [r for r in control.router.routes if r.needs_loop]  # no /patch/route/<id> verb answers
    control.close()


def test_shipped_audio_reactive_patch_runs_in_a_show(scene_file):
    show = make_show(scene_file)
    rs = load_patch(REPO / "patches" / "audio_reactive.toml", show.registry).routes
    assert {r.source.type for r in rs} == {"audio", "lfo", "beat"}
    assert {"/deck/a/pulse", "/deck/a/motion", "/master/brightness"} <= {r.address for r in rs}
    kicks = [AudioFeatures(rms=0.7, low=0.9, high=0.4, onset=1.0 if i % 30 == 0 else 0.0) for i in range(60)]
    ctl = ModulationControl(show, rs, features=Script(kicks))
    for _ in range(60):
        show.frame()
    assert ctl.errors == 0 and show.frame_errors == 0
    assert show.scenes[0].tau > 60 / FPS  # the bass drove the walk on


def test_cli_show_with_the_audio_reactive_patch(capsys, tmp_path, scene_file):
    import json

    from run_show import main

    stats = tmp_path / "s.json"
    code = main(
        [
            "show",
            "--headless",
            "--scene",
            str(scene_file("")),
            "--seconds",
            "0.5",
            "--fps",
            "30",
            "--no-audio",
            "--osc-port",
            "0",
            "--oscquery-port",
            "0",
            "--stats",
            str(stats),
            "--patch",
            str(REPO / "patches" / "audio_reactive.toml"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    s = json.loads(stats.read_text())
    assert s["modulation"]["routes"] == 6 and s["modulation"]["errors"] == 0 and s["frame_errors"] == 0
    assert s["midi"]["routes"] == 0  # the MIDI control left the modulation routes alone


def test_render_with_a_patch_is_modulated_and_repeatable(tmp_path, scene_file):
    from PIL import Image

    from engine.files.scene import load_scene
    from engine.stage.offline import render
    from tests.conftest import REPO

    spec = load_scene(scene_file('name = "m"\n'))
    patch = REPO / "patches" / "audio_reactive.toml"
    outs = []
    for name, patches in (("a", [patch]), ("b", [patch]), ("plain", [])):
        render([spec], seconds=1, fps=30, out=f"{tmp_path / name}/", patches=patches)
        outs.append([np.asarray(Image.open(p)) for p in sorted((tmp_path / name).glob("*.png"))])
    a, b, plain = outs
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, plain)), "the LFOs changed nothing"
