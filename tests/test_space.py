"""The one address space: decks as values, the one verb table read by every consumer."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.control.osc_dispatch import Dispatcher, encode
from engine.control.oscquery import document
from engine.core.events import Event
from engine.core.showcore import ShowCore
from engine.core.space import VERBS, Verb, build_space, params_json, params_table
from engine.files.patch import load_patch
from tests.fakes import ControlShow

SENDER = ("127.0.0.1", 50000)


def osc_show(space) -> tuple[ShowCore, Dispatcher]:
    core = ShowCore(space.registry)
    return core, Dispatcher(core.registry, core.queue, core.osc_routes, reply=lambda data, to: None, space=core.space)


def _with_home() -> tuple[Verb, ...]:
    # Adding a verb is this one table entry: OSC, patches, listings and the show's core read it.
    return VERBS + (Verb("/show/home", "trigger", "go to the first scene", "show.select_scene", value=1),)


def test_a_show_with_two_decks_sets_both_over_osc():
    space = build_space(decks=("a", "b"))
    assert space.decks == ("a", "b") and "/deck/b/latent/8" in space.registry
    assert space.verb("/deck/b/notes/reset") is not None and space.verb("/deck/c/notes/reset") is None
    core, osc = osc_show(space)
    assert core.space.decks == ("a", "b")  # the core finds the decks in the registry it is given
    osc.handle(encode("/deck/a/latent/1", 1.5), SENDER)
    osc.handle(encode("/deck/b/latent/1", -2.0), SENDER)
    osc.handle(encode("/deck/b/truncation", 0.5), SENDER)
    core.tick(1 / 60)
    reg = core.registry
    assert reg.param("/deck/a/latent/1").target == 1.5 and reg.param("/deck/b/latent/1").target == -2.0
    assert reg.param("/deck/b/truncation").target == 0.5 and reg.param("/deck/a/truncation").target == 1.0
    assert osc.counters.unknown == 0 and osc.counters.malformed == 0


def test_an_added_verb_is_one_table_entry(tmp_path: Path):
    verbs = _with_home()
    space = build_space(verbs=verbs)
    # OSC reads it (a trigger: fires on 1, ignores 0) ...
    core = ControlShow(space.registry, verbs=verbs)
    osc = Dispatcher(core.registry, core.queue, core.osc_routes, reply=lambda data, to: None, space=core.space)
    osc.handle(encode("/show/home", 1), SENDER)
    osc.handle(encode("/show/home", 0), SENDER)
    core.pump()
    assert core.verb_log == [("/show/home", 1)]  # applied by the show's select_scene with its fixed value
    # ... a patch may route to it ...
    patch = tmp_path / "home.toml"
    patch.write_text('[[route]]\nsource = { type = "osc", address = "/home" }\nverb = "/show/home"\n')
    assert load_patch(patch, space.registry, space.verb_addresses()).routes[0].verb == "/show/home"
    # ... and the listings and the OSCQuery document name it.
    assert "/show/home" in params_table(space)
    assert any(row["address"] == "/show/home" for row in params_json(space))
    assert "home" not in document(build_space())["CONTENTS"]["show"]["CONTENTS"]  # it reads the shipped table


def test_a_patch_may_route_to_every_verb_the_osc_space_advertises(tmp_path: Path):
    space = build_space()
    lines = []
    for i, (address, verb) in enumerate(space.osc_verbs()):
        if verb.owner == "osc":
            continue  # answered by the OSC dispatcher to the sender: no route can fire them
        lines.append(f'[[route]]\nsource = {{ type = "osc", address = "/r{i}" }}\nverb = "{address}"\n')
    patch = tmp_path / "all.toml"
    patch.write_text("".join(lines))
    routes = load_patch(patch, space.registry).routes
    assert "/deck/a/notes/reset" in {r.verb for r in routes} and len(routes) == len(lines)


def test_keys_name_verbs_of_the_table():
    from engine.stage.show import KEY_EVENTS

    space = build_space()
    for action, ev in KEY_EVENTS.items():
        assert space.verb(ev.address) if ev.kind == "verb" else ev.address in space.registry, action


def test_a_verb_whose_owner_is_not_running_is_rejected_and_counted():
    core = ShowCore(build_space().registry)
    core.apply(Event("verb", "/learn/start", "/master/speed"))  # no MIDI control provides "learn"
    core.apply(Event("verb", "/no/such/verb"))
    assert core.registry.rejected == 2


def test_an_owner_must_have_every_method_its_verbs_name():
    core = ShowCore(build_space().registry)
    with pytest.raises(TypeError, match="lacks learn.cancel"):
        core.provide("learn", type("Half", (), {"start": lambda self, ev: None})())


def test_the_same_address_twice_is_refused():
    with pytest.raises(ValueError, match="defined twice"):
        build_space(verbs=VERBS + (Verb("/master/brightness", "trigger", "clash", "core.quit"),))


def test_a_built_show_carries_two_decks_and_osc_sets_both(scene_file):
    import torch

    from engine.config import StageConfig
    from engine.core.clock import FixedClock
    from engine.files.scene import load_scene
    from engine.stage.build import build_show
    from engine.stage.deck import load_scenes
    from tests.fakes import FakeOutput

    scenes = load_scenes([load_scene(scene_file(""))], torch.device("cpu"))
    show = build_show(StageConfig(decks=("a", "b")), FixedClock(30), FakeOutput(), scenes)
    osc = Dispatcher(show.registry, show.queue, show.osc_routes, reply=lambda data, to: None, space=show.space)
    osc.handle(encode("/deck/a/speed", 2.0), SENDER)
    osc.handle(encode("/deck/b/speed", 0.5), SENDER)
    osc.handle(encode("/deck/b/text/reset"), SENDER)  # a deck verb of deck b: accepted by OSC
    show.run(frames=1)
    reg = show.registry
    assert reg.param("/deck/a/speed").target == 2.0 and reg.param("/deck/b/speed").target == 0.5
    assert show.deck.name == "a"  # the picture plays deck a; deck b's params wait for the mixer
    assert osc.counters.unknown == 0 and osc.counters.malformed == 0
    assert reg.rejected == 1  # the text reset: no melody or text layer runs in this show
