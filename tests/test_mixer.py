"""Two decks and the mixer: curves, blend modes, visibility, fades, beat-quantised cuts."""

import math

import numpy as np
import pytest
import torch

from engine.core.clock import FixedClock
from engine.core.events import Event, EventQueue
from engine.core.space import build_registry, build_space
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.mixer import Mix, compose, mix_of
from engine.stage.show import Show
from tests.conftest import two_scene_files
from tests.fakes import FakeOutput


class Counting(torch.nn.Module):
    """A generator that counts its forward passes."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(z)


@pytest.fixture
def two_scenes(tmp_path):
    """Two scenes of two different tiny models, standing still (speed 0) unless told."""
    return two_scene_files(tmp_path, speed=0.0)


def make_show(paths, fps=30):
    scenes = load_scenes([load_scene(p) for p in paths], torch.device("cpu"))
    for sc in scenes:
        sc.generator = Counting(sc.generator)
    out = FakeOutput()
    space = build_space()
    q = EventQueue()
    show = Show(scenes, space.registry, q, FrameRenderer(torch.device("cpu")), out, FixedClock(fps), space=space)
    return show, out, space.registry, q, scenes


def test_curves_and_visibility():
    assert mix_of(0.0, 0, 0) == Mix((1.0, 0.0)) and mix_of(0.0, 0, 0).visible == (True, False)
    assert mix_of(1.0, 0, 0).visible == (False, True)
    assert mix_of(0.25, 0, 0).weights == (0.75, 0.25)
    wa, wb = mix_of(0.5, 1, 0).weights  # equal power: cos and sin of 45 degrees
    assert wa == pytest.approx(math.sqrt(0.5)) and wb == pytest.approx(math.sqrt(0.5))
    assert mix_of(1.0, 1, 0).visible == (False, True) and mix_of(0.0, 1, 0).visible == (True, False)
    assert mix_of(0.49, 2, 0).weights == (1.0, 0.0) and mix_of(0.5, 2, 0).weights == (0.0, 1.0)
    # A blend mode shows the blend in the middle only; the ends stay one deck alone.
    assert mix_of(0.5, 0, 3).share == 1.0 and mix_of(0.0, 0, 3).share == 0.0
    assert mix_of(0.0, 0, 3).visible == (True, False)
    # Out-of-range numbers are clamped, not an error.
    assert mix_of(7.0, 99, -5) == mix_of(1.0, 2, 0)


@pytest.mark.parametrize(
    ("mode", "expected"), [("mix", 0.5), ("add", 1.0), ("multiply", 0.1875), ("screen", 0.8125), ("difference", 0.5)]
)
def test_blend_modes_in_light(mode, expected):
    a = torch.full((1, 3, 2, 2), -0.5)  # light 0.25
    b = torch.full((1, 3, 2, 2), 0.5)  # light 0.75
    share = 0.0 if mode == "mix" else 1.0
    out = compose(a, b, Mix((0.5, 0.5), share, mode), torch.empty(1, 3, 2, 2))
    assert torch.allclose((out + 1.0) / 2.0, torch.full_like(out, expected))


def test_a_deck_at_crossfade_0_costs_nothing(two_scenes):
    show, out, reg, q, scenes = make_show(two_scenes)
    show.run(frames=10)
    assert scenes[0].generator.calls == 10 and scenes[1].generator.calls == 0
    assert show.decks[1].scene_name == "b"  # deck b cues the second scene
    reg.set("/mixer/crossfade", 1.0, immediate=True)
    show.run(frames=5)
    assert scenes[0].generator.calls == 10 and scenes[1].generator.calls == 5
    reg.set("/mixer/crossfade", 0.5, immediate=True)
    show.run(frames=5)
    assert scenes[0].generator.calls == 15 and scenes[1].generator.calls == 10


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_a_fade_over_2_s_is_monotone_between_the_decks(two_scenes):
    show, out, reg, q, _ = make_show(two_scenes, fps=30)
    show.run(frames=2)
    picture_a = out.frames[-1]
    reg.set("/mixer/crossfade", 1.0, immediate=True)
    show.run(frames=2)
    picture_b = out.frames[-1]
    reg.set("/mixer/crossfade", 0.0, immediate=True)
    show.run(frames=2)
    assert _distance(picture_a, picture_b) > 10  # two different models
    q.put(Event("verb", "/mixer/fade", 1.0))
    show.run(frames=70)  # 2 s at 30 fps, and then some
    fade = out.frames[-70:]
    to_a = [_distance(f, picture_a) for f in fade]
    to_b = [_distance(f, picture_b) for f in fade]
    assert all(x <= y + 0.01 for x, y in zip(to_a, to_a[1:]))  # away from a, never back
    assert all(x + 0.01 >= y for x, y in zip(to_b, to_b[1:]))  # towards b, never back
    assert to_a[0] < 1.0 and to_b[-1] == 0.0
    # It took 2 s: the fader reached 1 at the 60th frame after the one that started it.
    assert reg.get("/mixer/crossfade") == 1.0
    assert 55 <= next(i for i, d in enumerate(to_b) if d == 0.0) <= 62
    assert show.mixer is not None and not show.mixer.running


def test_a_beat_quantised_cut_lands_on_the_beat(two_scenes):
    show, out, reg, q, _ = make_show(two_scenes, fps=60)
    reg.set("/mixer/quantize", 1.0)  # next beat; 120 BPM: a beat every 0.5 s = 30 frames
    show.run(frames=7)
    q.put(Event("verb", "/mixer/cut", 1.0))
    beats = []
    for _ in range(40):
        show.run(frames=1)
        beats.append((show.tempo.beat, reg.get("/mixer/crossfade")))
    cut = next(i for i, (_, x) in enumerate(beats) if x == 1.0)
    assert beats[cut][0] >= 1.0 and beats[cut - 1][0] < 1.0  # the first frame on or after beat 1
    assert beats[cut][0] - 1.0 < 1.0 / 30.0  # within one frame (a 60th of a second = 1/30 beat)


def test_a_hand_on_the_fader_cancels_a_fade(two_scenes):
    show, out, reg, q, _ = make_show(two_scenes)
    q.put(Event("verb", "/mixer/fade", 1.0))
    show.run(frames=10)
    assert 0.0 < reg.get("/mixer/crossfade") < 1.0
    q.put(Event("set", "/mixer/crossfade", 0.2))
    show.run(frames=30)
    assert show.mixer is not None and not show.mixer.running
    assert reg.param("/mixer/crossfade").target == 0.2


def test_freeze_and_blackout_act_on_the_next_frame_with_two_decks(two_scenes):
    show, out, reg, q, _ = make_show(two_scenes)
    for p in ("/deck/a/speed", "/deck/b/speed"):
        reg.set(p, 1.0, immediate=True)
    reg.set("/mixer/crossfade", 0.5, immediate=True)
    show.run(frames=3)
    q.put(Event("verb", "/show/freeze", 1.0))
    show.run(frames=3)
    assert np.array_equal(out.frames[-1], out.frames[-2]) and np.array_equal(out.frames[-2], out.frames[-3])
    reg.set("/master/blackout_fade", 0.0)
    q.put(Event("verb", "/show/blackout", 1.0))
    show.run(frames=1)
    assert out.frames[-1].max() == 0


def test_scene_verbs_pick_a_deck(two_scenes):
    show, out, reg, q, _ = make_show(two_scenes)
    q.put(Event("verb", "/deck/b/scene", "a"))
    show.run(frames=1)
    assert [d.scene_name for d in show.decks] == ["a", "a"]
    q.put(Event("verb", "/show/next", 1.0))  # the front deck is a (crossfade 0)
    show.run(frames=1)
    assert [d.scene_name for d in show.decks] == ["b", "a"]
    reg.set("/mixer/crossfade", 1.0, immediate=True)
    q.put(Event("verb", "/show/next", 1.0))  # now it is b
    q.put(Event("verb", "/deck/a/prev", 1.0))
    show.run(frames=1)
    assert [d.scene_name for d in show.decks] == ["a", "b"]
    assert "a: a | b: b" in out.title
    rejected = reg.rejected
    q.put(Event("verb", "/deck/b/scene", "no such scene"))
    q.put(Event("verb", "/deck/b/scene", 9.0))
    q.put(Event("set", "/mixer/curve", 99.0))
    show.run(frames=1)
    assert reg.rejected == rejected + 2 and reg.get("/mixer/curve") == 2.0


def test_each_deck_keeps_its_own_path_time(two_scenes):
    show, out, reg, q, _ = make_show(two_scenes)
    q.put(Event("verb", "/deck/b/scene", "a"))  # both decks play scene a
    q.put(Event("set", "/deck/a/speed", 1.0))
    show.run(frames=30)
    assert show.decks[0].playing is not show.decks[1].playing
    assert show.decks[0].playing.tau > 0.0 and show.decks[1].playing.tau == 0.0


def test_one_deck_shows_have_no_mixer(tmp_path, two_scenes):
    space = build_space(("a",))
    assert "/mixer/crossfade" not in space.registry and space.verb("/mixer/fade") is None
    assert "/mixer/crossfade" in build_registry()


def test_half_rate_runs_each_visible_deck_every_other_frame(two_scenes):
    show, out, reg, q, scenes = make_show(two_scenes)
    show.two_decks = "half"
    reg.set("/mixer/crossfade", 0.5, immediate=True)
    show.run(frames=20)
    # Frame 0 runs both (deck b had no picture yet); then they take turns.
    assert (scenes[0].generator.calls, scenes[1].generator.calls) == (10, 11)
    assert show.deck_forwards == [10, 11]
    reg.set("/mixer/crossfade", 0.0, immediate=True)  # one deck visible: full rate again
    show.run(frames=10)
    assert scenes[0].generator.calls == 20


class SlowPacer:
    """A pacer whose frame period (1 ms) no two forward passes fit in; it never sleeps."""

    period = 0.001

    def hold(self, lead=0.0):
        pass

    def wait(self, lead=0.0):
        pass


def test_auto_halves_the_rate_only_when_two_decks_miss_the_frame(two_scenes):
    show, out, reg, q, scenes = make_show(two_scenes)
    show.run(frames=5)
    assert show.two_decks == "auto" and not show._half_rate()  # offline-style show: no period, full rate
    show.pacer = SlowPacer()
    reg.set("/mixer/crossfade", 0.5, immediate=True)
    show.run(frames=20)
    assert show._half and scenes[1].generator.calls < 15
    show.strict = True  # a render never switches by itself
    assert not show._half_rate()
