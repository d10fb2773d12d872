"""Routing gestures to events: modes, takeover on the loop thread, smoothing, OSC routes."""

from pathlib import Path

import pytest

from engine.control.midi_decode import Gesture
from engine.control.midi_routes import Router
from engine.files.patch import MidiSource, OscSource, Route
from tests.fakes import ControlShow


def route(kind="cc", number=0, address="/master/brightness", mode="absolute", port=None, **kw):
    return Route(Path("t.toml"), 1, "", MidiSource(kind, number, 0, port), mode, address=address, **kw)


def play(show, router, *gestures, port="dev"):
    for g in gestures:
        for ev in router.midi_events(g, port):
            show.queue.put(ev)
    show.pump()


def cc(n, v, ch=0):
    return Gesture("cc", ch, n, v)


def test_jump_sets_directly_and_respects_port_filter():
    show = ControlShow()
    router = Router(show, [route(port="nano")])
    assert router.midi_events(cc(0, 127), "other") == []
    [ev] = router.midi_events(cc(0, 0), "nanoKONTROL2 MIDI 1")
    assert (ev.kind, ev.address, ev.value, ev.source) == ("set", "/master/brightness", 0.0, "midi")


def test_default_range_follows_the_scene_range():
    show = ControlShow()
    router = Router(show, [route(address="/deck/a/speed")])
    show.registry.configure("/deck/a/speed", default=1.0, lo=0.5, hi=2.0)
    [ev] = router.midi_events(cc(0, 127), "dev")
    assert ev.value == 2.0


def test_pickup_ignores_a_fader_until_it_crosses_the_value():
    show = ControlShow()
    reg = show.registry
    router = Router(show, [route(takeover="pickup")])  # brightness starts at 1.0
    play(show, router, cc(0, 10), cc(0, 40), cc(0, 90))
    assert reg.get("/master/brightness") == 1.0
    play(show, router, cc(0, 127))  # within 2% of 1.0: picked up
    play(show, router, cc(0, 64))
    assert reg.get("/master/brightness") == pytest.approx(64 / 127)
    reg.set("/master/brightness", 0.2)  # someone else (OSC, keys) moves it
    play(show, router, cc(0, 70))
    assert reg.get("/master/brightness") == 0.2  # must pick up again
    play(show, router, cc(0, 20))  # crossed 0.2 between 70 and 20
    assert reg.get("/master/brightness") == pytest.approx(20 / 127)


def test_scale_takeover_converges_at_the_end():
    show = ControlShow()
    reg = show.registry
    reg.set("/master/brightness", 0.5)
    router = Router(show, [route(takeover="scale")])
    play(show, router, cc(0, 0))  # first message: only where the fader is
    assert reg.get("/master/brightness") == 0.5
    play(show, router, cc(0, 64))
    mid = reg.get("/master/brightness")
    assert 0.5 < mid < 64 / 127 + 0.5
    play(show, router, cc(0, 127))
    assert reg.get("/master/brightness") == pytest.approx(1.0)


@pytest.mark.parametrize("moves,expected", [([1.0, 1.5], 1.0), ([0.0, -0.5], 0.0), ([2.0, 3.0], 1.0)])
def test_scale_takeover_with_osc_values_past_the_input_range(moves, expected):
    """An OSC sender past `input` once divided by zero in scale takeover (from 1.0 up, or
    from 0.0 down): the loop's drain raised. Past an end the control is at that end."""
    show = ControlShow()
    show.registry.set("/master/brightness", 0.5)
    Router(show, [Route(Path("t"), 1, "", OscSource("/b"), "absolute", address="/master/brightness", takeover="scale")])
    for x in [0.5] + moves:
        for ev in show.osc_routes["/b"]([x], 0.0):
            show.queue.put(ev)
        show.pump()
    assert show.registry.get("/master/brightness") == pytest.approx(expected)


def test_relative_encoders_step_from_the_current_value():
    show = ControlShow()
    reg = show.registry
    router = Router(
        show,
        [
            route(address="/master/speed", mode="relative", step=0.1),
            route(number=1, address="/deck/a/speed", mode="relative", encoding="offset", step=0.5),
        ],
    )
    play(show, router, cc(0, 1), cc(0, 1), cc(0, 3))  # +5 ticks in one frame
    assert reg.param("/master/speed").target == pytest.approx(1.5)
    play(show, router, cc(0, 127))
    assert reg.param("/master/speed").target == pytest.approx(1.4)
    play(show, router, cc(1, 63), cc(1, 63), cc(1, 63))
    assert reg.param("/deck/a/speed").target == pytest.approx(0.0)  # clamped at the range


def test_nrpn_step_on_a_relative_route():
    show = ControlShow()
    router = Router(show, [route(kind="nrpn", number=300, address="/master/speed", mode="relative", step=0.25)])
    play(show, router, Gesture("nrpn_step", 0, 300, 1), Gesture("nrpn_step", 0, 300, 1))
    assert show.registry.param("/master/speed").target == pytest.approx(1.5)


def test_buttons_trigger_toggle_gate_velocity():
    show = ControlShow()
    reg = show.registry
    router = Router(
        show,
        [
            route(number=32, address="/master/blackout", mode="toggle"),
            route(number=41, address=None, mode="trigger", verb="/show/next"),
            route(kind="note", number=1, address="/deck/a/latent/1", mode="gate", range=(0.0, 2.0)),
            route(kind="note", number=2, address="/deck/a/latent/2", mode="velocity"),
            route(kind="note", number=3, address="/deck/a/latent/3", mode="trigger", value=-1.5),
        ],
    )
    play(show, router, cc(32, 127), cc(32, 0))
    assert reg.param("/master/blackout").target == 1.0
    play(show, router, cc(41, 127), cc(41, 0))
    assert show.verb_log == [("/show/next", None)]
    play(show, router, Gesture("note", 0, 1, 100))
    assert reg.param("/deck/a/latent/1").target == 2.0
    play(show, router, Gesture("note", 0, 1, 0))
    assert reg.param("/deck/a/latent/1").target == 0.0
    play(show, router, Gesture("note", 0, 2, 127), Gesture("note", 0, 2, 0))
    assert reg.param("/deck/a/latent/2").target == 3.0
    play(show, router, Gesture("note", 0, 3, 1))
    assert reg.param("/deck/a/latent/3").target == -1.5


def test_program_change_selects_a_scene_unless_routed():
    show = ControlShow()
    router = Router(show, [])
    [ev] = router.midi_events(Gesture("program", 0, 2, 2), "dev")
    assert (ev.address, ev.value) == ("/show/scene", 3)


def test_smoothing_glides_over_frames():
    show = ControlShow(fps=10)
    reg = show.registry
    reg.set("/master/brightness", 0.0)
    router = Router(show, [route(smoothing=0.2)])
    play(show, router, cc(0, 127))
    values = []
    for _ in range(30):
        show.pump()
        values.append(reg.param("/master/brightness").target)
    assert 0.0 < values[0] < values[1] < values[2] < 1.0
    assert values[-1] == 1.0


def test_osc_routes_register_friendly_addresses():
    show = ControlShow()
    osc = lambda addr, **kw: Route(
        Path("t"), 1, "", OscSource(addr, kw.pop("input", (0.0, 1.0))), kw.pop("mode", "absolute"), **kw
    )
    Router(
        show,
        [
            osc("/brightness", address="/master/brightness"),
            osc("/blackout", address="/master/blackout", mode="toggle"),
            osc("/next", mode="trigger", verb="/show/next"),
            osc("/bpm", address="/tempo/bpm", input=(20.0, 300.0), range=(20.0, 300.0)),
        ],
    )
    [ev] = show.osc_routes["/brightness"]([0.25], 1.0)
    assert (ev.kind, ev.address, ev.value, ev.source) == ("set", "/master/brightness", 0.25, "osc")
    assert [e.kind for e in show.osc_routes["/blackout"]([1.0], 0)] == ["toggle"]
    assert show.osc_routes["/blackout"]([0.0], 0) == []  # the 0 after the 1 is ignored
    assert show.osc_routes["/next"]([], 0)[0].address == "/show/next"  # a bang
    assert show.osc_routes["/bpm"]([174], 0)[0].value == pytest.approx(174)
    assert show.osc_routes["/brightness"](["x"], 0) == [] and show.osc_routes["/brightness"]([float("nan")], 0) == []


def test_loop_decided_sets_reach_the_event_recorder():
    show = ControlShow(fps=10)
    recorded = []
    show.applied_hooks.append(lambda ev, frame, phase: recorded.append((ev.kind, ev.address, frame, phase)))
    router = Router(show, [route(takeover="pickup"), route(number=1, address="/master/speed", smoothing=0.1)])
    play(show, router, cc(0, 127), cc(1, 127))
    show.pump(3)
    sets = [r for r in recorded if r[0] == "set"]
    assert ("set", "/master/brightness", 0, "model") in sets  # the pick-up decision, same frame as its verb
    assert [r[1] for r in sets[1:]] == ["/master/speed"] * len(sets[1:]) and len(sets) >= 3  # the glide steps
    assert [r[2] for r in sets[1:]] == sorted(r[2] for r in sets[1:])
