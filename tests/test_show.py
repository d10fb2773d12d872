from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.core.clock import FixedClock
from engine.core.events import Event, EventQueue
from engine.core.space import build_registry
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.show import Show
from tests.fakes import FakeOutput


def make_show(scene_paths, fps=30, keys=None, render_size=None):
    scenes = load_scenes([load_scene(p) for p in scene_paths], torch.device("cpu"))
    out = FakeOutput(keys)
    reg = build_registry()
    q = EventQueue()
    show = Show(scenes, reg, q, FrameRenderer(torch.device("cpu"), render_size), out, FixedClock(fps))
    return show, out, reg, q


def diffs(frames):
    return [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(frames, frames[1:])]


def test_frames_move_and_are_deterministic(scene_file):
    f = scene_file("[path]\nseconds_per_key = 0.5\n")
    show, out, *_ = make_show([f])
    show.run(frames=20)
    assert out.presents == 20 and out.frames[0].shape == (64, 64, 3)
    assert min(diffs(out.frames)) > 0.0
    show2, out2, *_ = make_show([f])
    show2.run(frames=20)
    assert all(np.array_equal(a, b) for a, b in zip(out.frames, out2.frames))


def test_same_picture_at_same_time_at_30_and_60_fps(scene_file):
    f = scene_file('[path]\nkind = "walk"\nseconds_per_key = 0.5\n')
    s30, o30, *_ = make_show([f], fps=30)
    s60, o60, *_ = make_show([f], fps=60)
    s30.run(frames=16)
    s60.run(frames=31)
    # frame k at 30 fps is at the same time as frame 2k at 60 fps
    for k in (5, 15):
        assert np.abs(o30.frames[k].astype(int) - o60.frames[2 * k].astype(int)).max() <= 1


def test_brightness_and_blackout_fade(scene_file):
    show, out, reg, q = make_show([scene_file("")], fps=10)
    show.run(frames=1)
    assert out.frames[-1].mean() > 0
    q.put(Event("set", "/master/brightness", 0.0))
    show.run(frames=2)
    assert out.frames[-1].max() == 0
    reg.set("/master/brightness", 1.0)
    reg.set("/master/blackout_fade", 0.5)  # 5 frames at 10 fps
    q.put(Event("toggle", "/master/blackout"))
    show.run(frames=4)
    mid = out.frames[-1].mean()
    show.run(frames=10)
    assert 0 < mid and out.frames[-1].max() == 0
    assert show.blackout_level == 1.0


def test_freeze_holds_picture_and_path(scene_file):
    show, out, reg, q = make_show([scene_file("[path]\nseconds_per_key = 0.2\n")], keys={3: ["freeze"]})
    show.run(frames=8)
    tau = show.deck.scene.tau
    assert np.array_equal(out.frames[3], out.frames[7])
    show.run(frames=2)
    assert show.deck.scene.tau == tau


def test_keys_switch_scenes_speed_and_quit(scene_file, tiny_gan):
    a = scene_file('name = "A"\n', name="a.toml")
    b = scene_file('name = "B"\n[params]\ntruncation = 0.5\n', name="b.toml")
    show, out, reg, q = make_show([a, b], keys={1: ["next"], 2: ["faster"], 3: ["slower", "slower"], 5: ["quit"]})
    show.run(frames=100)
    assert out.presents == 6  # quit on the 6th frame, still presented
    assert show.deck.scene.spec.name == "B" and "B" in out.title
    assert reg.get("/deck/a/truncation") == 0.5
    assert reg.param("/master/speed").target == pytest.approx(1.25 * 0.8 * 0.8)
    assert len(show.scenes) == 2 and show.scenes[0].generator is show.scenes[1].generator  # one load


def test_latent_offset_moves_picture(scene_file):
    show, out, reg, q = make_show([scene_file("")])
    reg.set("/master/freeze", 0)
    show.run(frames=1)
    q.put(Event("set", "/deck/a/latent/2", 3.0))
    reg.set("/master/speed", 0.0)
    show.run(frames=60)
    assert np.abs(out.frames[-1].astype(int) - out.frames[0].astype(int)).mean() > 1.0


def test_bad_events_are_counted_not_fatal(scene_file):
    show, out, reg, q = make_show([scene_file("")])
    for ev in [
        Event("set", "/master/brightness", float("nan")),
        Event("set", "/nope", 1.0),
        Event("set", "/master/brightness", "loud"),
        Event("verb", "/show/explode"),
        Event("scale", "/master/speed", None),
        Event("verb", "/show/scene", "\u00b2"),
    ]:
        q.put(ev)  # "\u00b2" (superscript two) passes str.isdigit() but not int()
    show.run(frames=2)
    assert reg.rejected == 6 and out.presents == 2


def test_a_scene_that_does_not_exist_is_logged_with_the_scenes_there_are(scene_file, caplog):
    scenes = [scene_file('name = "Dawn"\n', name="dawn.toml"), scene_file('name = "Dusk"\n', name="dusk.toml")]
    show, _, reg, q = make_show(scenes)
    for _ in range(3):
        q.put(Event("verb", "/show/scene", "dawm"))  # a typo, sent again and again
    q.put(Event("verb", "/show/scene", 3))
    show.run(frames=1)
    assert reg.rejected == 4 and show.scene_misses == 4 and show.scene_index == 0
    warnings = [r.message for r in caplog.records if "no scene" in r.message]
    assert warnings == ["no scene 'dawm' (1 such requests so far); scenes: 1 'Dawn', 2 'Dusk'"]  # once


class Boom(torch.nn.Module):
    def forward(self, z):
        raise RuntimeError("model fell over")


def test_frame_error_keeps_last_frame_and_counts(scene_file, caplog):
    show, out, reg, q = make_show([scene_file("")])
    show.run(frames=2)
    good = out.frames[-1].copy()
    show.scenes[0].generator = Boom()
    show.run(frames=5)
    assert show.frame_errors == 5
    assert np.array_equal(out.frames[-1], good)
    assert sum("frame failed" in r.message for r in caplog.records) == 1  # logged once


def test_render_size_resamples(scene_file):
    show, out, *_ = make_show([scene_file("")], render_size=96)
    show.run(frames=1)
    assert out.frames[0].shape == (96, 96, 3)


def test_listeners_hear_input_changes_and_hooks_run_per_frame(scene_file):
    show, out, reg, q = make_show([scene_file("")])
    heard, hooked = [], []
    show.listeners.append(lambda address, value, source: heard.append((address, value, source)))
    show.frame_hooks.append(lambda s: hooked.append(s.frame_count))
    q.put(Event("set", "/master/brightness", 7.0, source="osc"))  # clamped: the listener hears 1.0
    q.put(Event("toggle", "/master/freeze", source="key"))
    q.put(Event("set", "/nope", 1.0, source="osc"))  # rejected: nothing to echo
    show.run(frames=3)
    assert heard == [("/master/brightness", 1.0, "osc"), ("/master/freeze", 1.0, "key")]
    assert hooked == [1, 2, 3]


def test_a_frame_hook_that_removes_itself_does_not_skip_the_next_one(scene_file):
    show, *_ = make_show([scene_file("")])
    ran = []

    def once(s: Show) -> None:
        ran.append("once")
        s.frame_hooks.remove(once)

    show.frame_hooks += [once, lambda s: ran.append(s.frame_count)]
    show.run(frames=2)
    assert ran == ["once", 1, 2]


def test_show_verbs_select_scenes_and_flip_masters(scene_file):
    a = scene_file('name = "Alpha"\n', name="alpha.toml")
    b = scene_file('name = "Beta"\n', name="beta.toml")
    show, out, reg, q = make_show([a, b])
    learned = []
    show.provide("learn", SimpleNamespace(start=learned.append, cancel=print, unlearn=print, commit=print))
    for ev in [
        Event("verb", "/show/scene", 2.0),
        Event("verb", "/show/blackout"),
        Event("verb", "/show/freeze"),
        Event("verb", "/learn/start", "/master/speed"),
    ]:
        q.put(ev)
    show.run(frames=1)
    assert show.scene_index == 1 and reg.get("/master/blackout") == 1.0 and reg.get("/master/freeze") == 1.0
    assert [e.value for e in learned] == ["/master/speed"]
    for value, index in [("alpha", 0), ("Beta", 1), ("1", 0), (3.0, 0), ("gamma", 0), (1.5, 0), (None, 0)]:
        q.put(Event("verb", "/show/scene", value))
        show.run(frames=1)
        assert show.scene_index == index, value
    assert reg.rejected == 4  # 3.0 (no third scene), "gamma", 1.5, None


class EnqueueDuringForward(torch.nn.Module):
    """Wraps a generator; on its n-th call puts events on the queue, as if an input thread
    delivered them while the forward pass ran."""

    def __init__(self, inner, queue, at_call, events):
        super().__init__()
        self.inner, self.queue, self.at_call, self.events, self.calls = inner, queue, at_call, events, 0

    def forward(self, z):
        if self.calls == self.at_call:
            for ev in self.events:
                self.queue.put(ev)
        self.calls += 1
        return self.inner(z)


def test_late_application_post_params_this_frame_model_inputs_next(scene_file):
    f = scene_file("[path]\nseconds_per_key = 0.5\n")
    show, out, reg, q = make_show([f])
    ref, ref_out, ref_reg, _ = make_show([f])
    for r in (reg, ref_reg):
        r.param("/deck/a/latent/1").smoothing = 0.0  # a jump, so frames can be compared exactly
    sc = show.scenes[0]
    sc.generator = EnqueueDuringForward(
        sc.generator, q, 3, [Event("set", "/master/brightness", 0.5), Event("set", "/deck/a/latent/1", 3.0)]
    )
    applied = []
    show.applied_hooks.append(lambda ev, frame, phase: applied.append((ev.address, frame, phase)))
    show.run(frames=6)
    assert applied == [("/master/brightness", 3, "post"), ("/deck/a/latent/1", 4, "model")]
    # reference: brightness set before frame 3's present, the offset before frame 4's forward pass
    ref.run(frames=3)
    ref_reg.set("/master/brightness", 0.5)
    ref.run(frames=1)
    ref_reg.set("/deck/a/latent/1", 3.0)
    ref.run(frames=2)
    assert out.frames[2].mean() > 2 * out.frames[3].mean()  # the brightness shows in the interrupted frame
    assert all(np.array_equal(a, b) for a, b in zip(out.frames, ref_out.frames))


def test_verbs_arriving_during_forward_wait_for_the_next_frame(scene_file):
    a = scene_file('name = "A"\n', name="a.toml")
    b = scene_file('name = "B"\n', name="b.toml")
    show, out, reg, q = make_show([a, b])
    sc = show.scenes[0]
    sc.generator = EnqueueDuringForward(
        sc.generator, q, 1, [Event("verb", "/show/next"), Event("verb", "/show/blackout")]
    )
    show.run(frames=2)
    assert show.scene_index == 0 and reg.get("/master/blackout") == 1.0  # blackout now, the scene switch ...
    assert out.frames[1].max() > 0 or reg.get("/master/blackout_fade") > 0  # (fading, not cut)
    show.run(frames=1)
    assert show.scene_index == 1  # ... before the next forward pass, never a half-switched frame


def test_modules_may_declare_post_stage_verbs(scene_file):
    show, out, reg, q = make_show([scene_file("")])
    show.provide("routes", SimpleNamespace(fire=lambda ev: reg.set("/master/brightness", ev.value)))
    show.set_verb_phase("/patch/route/1", "post")
    sc = show.scenes[0]
    sc.generator = EnqueueDuringForward(sc.generator, q, 1, [Event("verb", "/patch/route/1", 0.0)])
    show.run(frames=2)
    assert out.frames[0].max() > 0 and out.frames[1].max() == 0


def test_a_hook_that_raises_is_counted_and_the_show_goes_on(scene_file, caplog):
    show, out, *_ = make_show([scene_file("")])
    ran = []

    def broken(s: Show) -> None:
        raise KeyError("a bug in one module")

    show.model_hooks.append(broken)
    show.frame_hooks += [broken, lambda s: ran.append(s.frame_count)]
    show.run(frames=3)
    assert out.presents == 3 and ran == [1, 2, 3]  # the picture moves and later hooks still run
    assert show.hook_errors == 6 and show.frame_errors == 0
    assert sum("broken failed" in r.message for r in caplog.records) == 1  # logged once


def test_a_present_that_raises_is_a_frame_error_not_the_end_of_the_show(scene_file):
    show, out, *_ = make_show([scene_file("")])
    real, calls = out.present, []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("texture upload failed")
        real()

    out.present = flaky
    show.run(frames=4)
    assert len(calls) == 4 and show.frame_errors == 1 and show.frame_count == 4
