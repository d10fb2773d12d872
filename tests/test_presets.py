"""Presets: files, save and recall on a two-deck show, morphs, presets from another show."""

import logging

import numpy as np
import pytest
import torch

from engine.core.clock import FixedClock
from engine.core.events import Event, EventQueue
from engine.core.space import build_space
from engine.files.preset import DeckState, Preset, PresetError, load_preset, load_presets, save_preset, to_toml
from engine.files.scene import load_scene
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.presets import PresetBank
from engine.stage.show import Show, key_event
from tests.conftest import two_scene_files
from tests.fakes import FakeOutput


@pytest.fixture
def scene_paths(tmp_path):
    return two_scene_files(tmp_path)


def make_show(paths, folder, presets=None, write=False):
    scenes = load_scenes([load_scene(p) for p in paths], torch.device("cpu"))
    space = build_space()
    q = EventQueue()
    out = FakeOutput()
    bank = PresetBank(folder, presets or {}, write=write)
    show = Show(
        scenes, space.registry, q, FrameRenderer(torch.device("cpu")), out, FixedClock(10), space=space, presets=bank
    )
    return show, out, space.registry, q


def test_a_preset_file_round_trips(tmp_path):
    preset = Preset("warm-2", {"/master/brightness": 0.5, "/deck/a/latent/1": -1.25}, {"a": DeckState("Deep", 3.5)})
    path = save_preset(tmp_path, preset)
    assert path == tmp_path / "warm-2.toml"
    assert load_preset(path) == preset
    assert load_presets(tmp_path) == {"warm-2": preset}
    assert load_presets(tmp_path / "missing") == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name = [", "not valid TOML"),
        ('name = "x"\ncolour = 1\n', "key 'colour'"),
        ('name = "x"\n[params]\n"/master/brightness" = "loud"\n', "key 'params./master/brightness': expected a finite"),
        ('name = "x"\n[decks.a]\nscene = 3\n', "key 'decks.a.scene': expected a string"),
        ('name = "x"\n[decks.a]\nscene = "s"\nposition = -1\n', "key 'decks.a.position'"),
        ('name = "../etc"\n', "key 'name'"),
    ],
)
def test_a_bad_preset_file_names_the_file_and_key(tmp_path, text, words):
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as err:
        load_presets(tmp_path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_a_name_other_than_the_file_is_an_error(tmp_path):
    (tmp_path / "x.toml").write_text('name = "y"\n')
    with pytest.raises(PresetError, match="key 'name': expected the file's name 'x'"):
        load_presets(tmp_path)


def test_save_then_recall_brings_the_look_back(tmp_path, scene_paths):
    show, out, reg, q = make_show(scene_paths, tmp_path, write=True)
    q.put(Event("set", "/deck/a/truncation", 0.6))
    q.put(Event("set", "/mixer/crossfade", 0.3))
    q.put(Event("verb", "/deck/b/scene", "a"))
    show.run(frames=20)
    look = out.frames[-1].copy()
    tau = show.decks[0].playing.tau
    q.put(Event("verb", "/preset/save", "warm"))
    show.run(frames=1)
    show.presets.writer.join(timeout=10)
    saved = load_preset(tmp_path / "warm.toml")
    assert saved.decks["a"] == DeckState("a", pytest.approx(tau))  # saved before this frame's step
    assert saved.params["/deck/a/truncation"] == 0.6 and "/preset/morph" not in saved.params
    q.put(Event("set", "/deck/a/truncation", 1.2))
    q.put(Event("set", "/mixer/crossfade", 0.9))
    q.put(Event("verb", "/deck/b/scene", "b"))
    show.run(frames=20)
    q.put(Event("verb", "/preset/recall", "warm"))
    show.run(frames=1)
    assert reg.param("/deck/a/truncation").target == 0.6 and reg.param("/mixer/crossfade").target == 0.3
    assert [d.scene_name for d in show.decks] == ["a", "a"]
    assert show.decks[0].playing.tau == pytest.approx(saved.decks["a"].position + 0.1 / 4.0)
    show.run(frames=20)  # smoothing settles; the picture is the saved look, 20 frames on
    assert show.presets.recalled == 1 and out.frames[-1].shape == look.shape


def test_a_morph_glides_params_and_slerps_latents(tmp_path, scene_paths):
    show, out, reg, q = make_show(scene_paths, tmp_path)
    reg.set("/deck/a/speed", 0.0, immediate=True)
    q.put(Event("verb", "/preset/save", "start"))
    show.run(frames=2)
    start = out.frames[-1].copy()
    q.put(Event("set", "/deck/a/latent/1", 3.0))
    q.put(Event("set", "/master/speed", 2.0))
    show.run(frames=30)
    moved = out.frames[-1].copy()
    q.put(Event("set", "/preset/morph", 1.0))
    q.put(Event("verb", "/preset/recall", 1))  # by number: the first name
    show.run(frames=5)
    assert 1.0 < reg.get("/master/speed") < 2.0  # halfway through a 1 s morph at 10 fps
    show.run(frames=10)
    assert reg.get("/master/speed") == 1.0 and reg.get("/deck/a/latent/1") == pytest.approx(0.0, abs=1e-3)
    frames = out.frames[-16:]
    to_start = [float(np.abs(f.astype(int) - start.astype(int)).mean()) for f in frames]
    assert to_start[-1] < 0.5 < float(np.abs(moved.astype(int) - start.astype(int)).mean())
    assert all(b <= a + 0.5 for a, b in zip(to_start, to_start[1:]))  # on its way back, no jump


def test_a_hand_on_a_gliding_param_takes_it_over(tmp_path, scene_paths):
    preset = Preset("p", {"/master/speed": 3.0}, {})
    show, out, reg, q = make_show(scene_paths, tmp_path, {"p": preset})
    reg.set("/preset/morph", 2.0)
    q.put(Event("verb", "/preset/recall", "p"))
    show.run(frames=3)
    q.put(Event("set", "/master/speed", 0.5))
    show.run(frames=30)
    assert reg.param("/master/speed").target == 0.5


def test_a_preset_of_another_show_recalls_what_applies(tmp_path, scene_paths, caplog):
    other = Preset(
        "other",
        {"/master/brightness": 0.4, "/deck/c/speed": 2.0, "/old/param": 1.0},
        {"a": DeckState("gone scene", 1.0), "b": DeckState("a", 2.0), "c": DeckState("a", 0.0)},
    )
    show, out, reg, q = make_show(scene_paths, tmp_path, {"other": other})
    q.put(Event("verb", "/preset/recall", "other"))
    with caplog.at_level(logging.WARNING):
        show.run(frames=1)
    assert reg.get("/master/brightness") == 0.4
    assert [d.scene_name for d in show.decks] == ["a", "a"] and show.decks[1].playing.tau >= 2.0
    said = caplog.text
    assert "skipped" in said and "gone scene" in said and "deck c" in said and "/old/param" in said


def test_bad_names_are_refused_and_counted(tmp_path, scene_paths):
    show, out, reg, q = make_show(scene_paths, tmp_path, write=True)
    for ev in (
        Event("verb", "/preset/save", "../../etc/passwd"),
        Event("verb", "/preset/save", 3.0),
        Event("verb", "/preset/save", ""),
        Event("verb", "/preset/recall", "nothing"),
        Event("verb", "/preset/recall", 4.0),
    ):
        q.put(ev)
    show.run(frames=2)
    assert show.presets.misses == 5 and reg.rejected == 5
    assert list(tmp_path.glob("*.toml")) == scene_paths  # nothing written


def test_f_keys_recall_and_save():
    assert key_event("recall:f3", 1.0) == Event("verb", "/preset/recall", "f3", 1.0, "key")
    assert key_event("save:f1", 1.0) == Event("verb", "/preset/save", "f1", 1.0, "key")
    assert key_event("fade", 0.0).address == "/mixer/fade"
    assert key_event("nonsense", 0.0) is None


def test_to_toml_quotes_what_needs_quoting():
    text = to_toml(Preset("q", {"/a/b": 1.0}, {"a": DeckState('say "hi"\\', 0.0)}))
    assert '"/a/b" = 1.0' in text and 'scene = "say \\"hi\\"\\\\"' in text


def test_shipped_presets_load_and_name_shipped_scenes():
    from engine.files.preset import PRESETS_DIR
    from engine.files.scene import shipped_scenes

    presets = load_presets(PRESETS_DIR)
    names = {load_scene(p).name for p in shipped_scenes()}
    assert presets and all(state.scene in names for p in presets.values() for state in p.decks.values())


def test_presets_are_bounded(tmp_path, scene_paths, monkeypatch):
    import engine.stage.presets as presets_module

    monkeypatch.setattr(presets_module, "MAX_PRESETS", 2)
    show, out, reg, q = make_show(scene_paths, tmp_path)
    for name in ("a", "b", "c", "a"):
        q.put(Event("verb", "/preset/save", name))
    show.run(frames=1)
    assert show.presets.names() == ["a", "b"] and show.presets.saved == 3 and show.presets.misses == 1
