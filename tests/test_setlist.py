"""Setlists: files, the autopilot's timing and modes, its verbs, and an offline render."""

import numpy as np
import pytest
import torch
from PIL import Image

from engine.core.clock import FixedClock
from engine.core.events import Event, EventQueue
from engine.core.space import build_space
from engine.errors import StartupError
from engine.files.preset import DeckState, Preset
from engine.files.scene import load_scene, shipped_scenes
from engine.files.setlist import DEFAULT_SETLIST, SetlistError, load_setlist
from engine.stage.deck import load_scenes
from engine.stage.frame import FrameRenderer
from engine.stage.offline import render
from engine.stage.presets import PresetBank
from engine.stage.show import Show
from tests.conftest import make_tiny_gan
from tests.fakes import FakeOutput


@pytest.fixture
def three(tmp_path):
    """Scenes a, b, c of three tiny models, standing still (each deck shows one picture)."""
    paths = []
    for seed, name in enumerate("abc", start=1):
        make_tiny_gan(tmp_path / f"{name}.safetensors", seed=seed)
        p = tmp_path / f"{name}.toml"
        p.write_text(f'model = "{name}.safetensors"\nname = "{name}"\n[params.speed]\ndefault = 0.0\n')
        paths.append(p)
    return paths


def write_setlist(folder, body, items=("a", "b", "c")):
    path = folder / "set.setlist.toml"
    path.write_text(body + "".join(f'\n[[item]]\nscene = "{name}.toml"\n' for name in items))
    return path


def make_show(paths, setlist, fps=10, presets=None):
    scenes = load_scenes([load_scene(p) for p in paths], torch.device("cpu"))
    space, q, out = build_space(), EventQueue(), FakeOutput()
    bank = PresetBank(paths[0].parent / "presets", presets or {}, write=False)
    show = Show(
        scenes, space.registry, q, FrameRenderer(torch.device("cpu")), out, FixedClock(fps), space=space, presets=bank
    )
    show.use_setlist(load_setlist(setlist))
    return show, out, space.registry, q


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('mode = "shuffle"\n[[item]]\nscene = "a.toml"\n', "key 'mode'"),
        ('[[item]]\nscene = "gone.toml"\n', "item #1: key 'scene': expected an existing scene file"),
        ('[[item]]\nscene = "a.toml"\npreset = "p"\n', "item #1: key 'scene': expected exactly one"),
        ('dwell_seconds = 2\nfade_seconds = 3\n[[item]]\nscene = "a.toml"\n', "key 'fade_seconds'"),
        ('dwell_seconds = 2\ndwell_bars = 1\n[[item]]\nscene = "a.toml"\n', "key 'dwell_bars'"),
        ('name = "x"\n', "key 'item'"),
        ('[[item]]\nscene = "a.toml"\ncolour = 2\n', "item #1: key 'colour'"),
        ('dwell_seconds = 0\n[[item]]\nscene = "a.toml"\n', "key 'dwell_seconds'"),
    ],
)
def test_a_bad_setlist_names_file_item_and_key(tmp_path, three, body, words):
    path = tmp_path / "bad.setlist.toml"
    path.write_text(body)
    with pytest.raises(SetlistError) as err:
        load_setlist(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_three_scenes_2_s_dwell_1_s_fades_rendered_offline(tmp_path, three):
    """The issue's check: changes at the set times; frames before, during and after each fade."""
    setlist = write_setlist(tmp_path, "dwell_seconds = 2.0\nfade_seconds = 1.0\n")
    spec = load_setlist(setlist)
    render([load_scene(p) for p in three], seconds=12, fps=10, out=f"{tmp_path / 'r'}/", setlist=spec)
    frames = [np.asarray(Image.open(p)).astype(int) for p in sorted((tmp_path / "r").glob("*.png"))]
    assert len(frames) == 120
    pictures = {name: frames[k] for name, k in (("a", 5), ("b", 35), ("c", 55))}

    def dist(f, name):
        return float(np.abs(f - pictures[name]).mean())

    assert min(dist(pictures["a"], "b"), dist(pictures["b"], "c"), dist(pictures["a"], "c")) > 5.0
    # Item k's fade in starts at 2k s and lasts 1 s: a -> b at 2 s, b -> c at 4 s, c -> a at 6 s ...
    for start, (old, new) in zip((20, 40, 60, 80, 100), [("a", "b"), ("b", "c"), ("c", "a"), ("a", "b"), ("b", "c")]):
        assert dist(frames[start - 1], old) == 0.0  # before: the old scene alone
        during = [dist(frames[k], old) for k in range(start, start + 11)]
        assert 0.0 < during[5] and dist(frames[start + 5], new) > 0.0  # halfway: a blend of both
        assert all(y >= x - 0.01 for x, y in zip(during, during[1:]))  # away from the old, never back
        assert dist(frames[start + 10], new) == 0.0 and dist(frames[start + 19], new) == 0.0  # after: the new alone


def order(show, changes):
    seen = [show.autopilot.index]
    while show.autopilot.changes < changes:
        show.run(frames=1)
        if show.autopilot.index != seen[-1] or show.autopilot.changes >= len(seen):
            seen.append(show.autopilot.index)
    return seen


def test_bag_plays_each_item_once_per_cycle(tmp_path, three):
    setlist = write_setlist(tmp_path, 'mode = "bag"\nseed = 3\ndwell_seconds = 0.2\nfade_seconds = 0\n')
    show, *_ = make_show(three, setlist)
    played = order(show, 9)[1:]  # after the first item: three whole cycles
    assert len(played) == 9
    assert all(sorted(played[i : i + 3]) == [0, 1, 2] for i in (0, 3, 6))
    assert all(a != b for a, b in zip(played, played[1:]))


def test_random_never_repeats_an_item_at_once(tmp_path, three):
    setlist = write_setlist(tmp_path, 'mode = "random"\ndwell_seconds = 0.2\nfade_seconds = 0.1\n')
    show, *_ = make_show(three, setlist)
    played = order(show, 20)
    assert all(a != b for a, b in zip(played, played[1:])) and set(played) == {0, 1, 2}


def test_next_prev_goto_and_auto_off(tmp_path, three):
    setlist = write_setlist(tmp_path, "dwell_seconds = 2.0\nfade_seconds = 0\n")
    show, out, reg, q = make_show(three, setlist)
    show.run(frames=2)
    q.put(Event("verb", "/setlist/next", 1.0))
    show.run(frames=1)
    assert show.autopilot.index == 1 and show.decks[show.front].scene_name == "b"
    q.put(Event("verb", "/setlist/goto", "c.toml"))
    show.run(frames=1)
    assert show.autopilot.index == 2 and show.decks[show.front].scene_name == "c"
    q.put(Event("verb", "/setlist/prev", 1.0))
    show.run(frames=1)
    assert show.autopilot.index == 1
    q.put(Event("set", "/setlist/auto", 0.0))
    show.run(frames=50)  # 5 s: past the dwell, but the clock is held
    assert show.autopilot.index == 1
    rejected = reg.rejected
    q.put(Event("verb", "/setlist/goto", "nowhere"))
    q.put(Event("verb", "/setlist/goto", 7.0))
    show.run(frames=1)
    assert reg.rejected == rejected + 2 and show.autopilot.index == 1


def test_dwell_in_bars_follows_the_tempo(tmp_path, three):
    setlist = write_setlist(tmp_path, "dwell_bars = 1\nfade_seconds = 0\n")  # 4 beats
    show, out, reg, q = make_show(three, setlist)
    reg.set("/tempo/bpm", 240.0)  # a beat every 0.25 s: a bar is 1 s = 10 frames
    show.run(frames=10)
    assert show.autopilot.index == 0
    show.run(frames=2)
    assert show.autopilot.index == 1


def test_a_preset_item_is_recalled_with_its_fade_as_morph(tmp_path, three):
    preset = Preset("warm", {"/master/brightness": 0.5}, {"a": DeckState("c", 0.0)})
    path = tmp_path / "p.setlist.toml"
    path.write_text('dwell_seconds = 1\nfade_seconds = 0.5\n[[item]]\nscene = "a.toml"\n[[item]]\npreset = "warm"\n')
    show, out, reg, q = make_show(three, path, presets={"warm": preset})
    show.run(frames=13)  # the preset starts at 1 s and glides for 0.5 s
    assert 0.5 < reg.get("/master/brightness") < 1.0 and show.decks[0].scene_name == "c"
    show.run(frames=5)
    assert reg.get("/master/brightness") == 0.5


def test_a_setlist_naming_a_missing_preset_stops_startup(tmp_path, three):
    path = tmp_path / "p.setlist.toml"
    path.write_text('[[item]]\nscene = "a.toml"\n[[item]]\npreset = "nope"\n')
    with pytest.raises(StartupError, match="item #2: key 'preset'.*'nope'"):
        make_show(three, path)


def test_the_shipped_setlist_names_shipped_scenes():
    spec = load_setlist(DEFAULT_SETLIST)
    assert spec.scene_files and set(spec.scene_files) <= {p.resolve() for p in shipped_scenes()}
    assert all(not p.name.endswith(".setlist.toml") for p in shipped_scenes())
