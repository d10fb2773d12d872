"""The MIDI control in a real show (fake ports): every shipped controller layout moves
the right params, pick-up, program change, clock only with clock sync, feedback, stats."""

import logging
import math
import random

import pytest
import torch

from engine.control.midi import MidiControl, start
from engine.core.events import Event, EventQueue
from engine.core.tempo import Tempo
from engine.files.patch import MidiSource, load_patch, to_value
from engine.files.scene import load_scene
from engine.files.setlist import load_setlist
from engine.stage.deck import load_scenes
from tests.conftest import REPO
from tests.fakes import ControlShow, FakeMidiBackend, built_show, show_config

PORTS = {
    "nanokontrol2.toml": "nanoKONTROL2 MIDI 1",
    "launch_control_xl.toml": "Launch Control XL MIDI 1",
    "apc_mini_mk2.toml": "APC mini mk2 Control",
    "midifighter_twister.toml": "Midi Fighter Twister MIDI 1",
}


@pytest.fixture
def real_show(scene_file):
    a = scene_file('name = "A"\n', name="a.toml")
    b = scene_file('name = "B"\n', name="b.toml")
    c = scene_file('name = "C"\n', name="c.toml")
    scenes = load_scenes([load_scene(p) for p in (a, b, c)], torch.device("cpu"))
    return built_show(scenes)


def with_setlist(show, folder):
    """The show with a setlist of its scenes that never moves on by itself (a setlist route's
    press has one to step)."""
    setlist = folder / "set.setlist.toml"
    items = "".join(f'[[item]]\nscene = "{s.spec.file.name}"\n' for s in show.scenes)
    setlist.write_text(f"dwell_seconds = 3600.0\nfade_seconds = 0\n{items}")
    show.use_setlist(load_setlist(setlist))
    return show


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def namespace(tmp_path, **kw):
    return show_config(learn_save=tmp_path / "learned.toml", **kw)


def press(kind, ch, number, on):
    if kind == "note":
        return (0x90 | ch, number, 127 if on else 0)
    return (0xB0 | ch, number, 127 if on else 0)


def _deck_index(show, verb):
    """The deck a scene verb acts on: /deck/<d>/..., the back deck for cues, else the front."""
    if verb.startswith("/deck/"):
        return next(i for i, d in enumerate(show.decks) if d.name == verb.split("/")[2])
    return show.back if verb.startswith("/show/cue/") else show.front


def check_verb_route(show, be, port, r):
    reg, s = show.registry, r.source
    deck = _deck_index(show, r.verb)
    before = (show.deck_scene_index(deck), reg.rejected, show.mixer.transitions)
    item = show.autopilot.index if show.autopilot is not None else None
    be.send(port, *press(s.kind, s.channel, s.number, True))
    be.send(port, *press(s.kind, s.channel, s.number, False))
    show.run(frames=2)
    now = show.deck_scene_index(deck)
    if r.verb.endswith("/scene") and r.value > len(show.scenes):
        assert (now, reg.rejected) == (before[0], before[1] + 1), r.label  # no such scene
        return
    if r.verb.startswith("/setlist/"):
        assert show.autopilot is not None and show.autopilot.index != item, r.label
    elif r.verb.endswith("/scene"):
        assert now == r.value - 1, r.label
    elif r.verb.endswith(("/next", "/prev")):
        assert now != before[0], r.label
    elif r.verb in ("/mixer/fade", "/mixer/cut"):
        assert show.mixer.transitions == before[2] + 1, r.label
        show.run(frames=300)  # let a fade finish before the next route
    elif r.verb == "/preset/recall":
        if r.value > len(show.presets.names()):  # no such preset: refused and counted
            assert reg.rejected == before[1] + 1, r.label
            return
    assert reg.rejected == before[1], r.label
    show.apply(Event("verb", "/learn/cancel"))


def check_route(show, be, port, r):
    """Play one route's control and check its param (or verb) reacted."""
    reg, s = show.registry, r.source
    if r.verb is not None:
        check_verb_route(show, be, port, r)
        return
    p = reg.param(r.address)
    if r.mode == "toggle":
        before = p.target
        be.send(port, *press(s.kind, s.channel, s.number, True))
        be.send(port, *press(s.kind, s.channel, s.number, False))
        show.run(frames=2)
        assert p.target == 1.0 - before, r.label
        return
    if r.mode == "gate":
        be.send(port, *press(s.kind, s.channel, s.number, True))
        show.run(frames=2)
        assert p.target == pytest.approx(to_value(r, 1.0, p.lo, p.hi)), r.label
        be.send(port, *press(s.kind, s.channel, s.number, False))
        show.run(frames=2)
        assert p.target == pytest.approx(to_value(r, 0.0, p.lo, p.hi)), r.label
        return
    if r.mode == "trigger":
        reg.set(r.address, p.hi)
        be.send(port, *press(s.kind, s.channel, s.number, True))
        show.run(frames=2)
        assert p.target == r.value, r.label
        return
    assert r.mode == "absolute" and s.kind == "cc", r.label
    for v in list(range(0, 128, 8)) + [127, 100]:  # a full sweep picks up, then rests at 100
        be.send(port, 0xB0 | s.channel, s.number, v)
    show.run(frames=2)
    assert p.target == pytest.approx(to_value(r, 100 / 127, p.lo, p.hi), abs=1e-6), r.label


@pytest.mark.parametrize("patch", sorted(PORTS))
def test_each_controller_layout_moves_the_right_params(real_show, tmp_path, patch):
    real_show = with_setlist(real_show, next(iter(real_show.scenes)).spec.file.parent)
    file = REPO / "patches" / patch
    port = PORTS[patch]
    be = FakeMidiBackend([port])
    ctl = MidiControl(namespace(tmp_path, midi_in=["all"], patch=[file]), real_show, backend_factory=lambda: be)
    ctl.watcher.poll()
    routes = [r for r in load_patch(file, real_show.registry).routes if isinstance(r.source, MidiSource)]
    assert routes
    for r in routes:
        check_route(real_show, be, port, r)
    stats = ctl.stats()["midi"]
    assert stats["received"] > len(routes) and stats["port_counts"] == {port: stats["received"]}  # the HUD's
    assert real_show.frame_errors == 0
    ctl.close()


def test_a_port_that_does_not_match_the_patch_moves_nothing(real_show, tmp_path):
    be = FakeMidiBackend(["Some Other Synth"])
    ctl = MidiControl(
        namespace(tmp_path, midi_in=["all"], patch=[REPO / "patches" / "nanokontrol2.toml"]),
        real_show,
        backend_factory=lambda: be,
    )
    ctl.watcher.poll()
    be.send("Some Other Synth", 0xB0, 0, 0)
    real_show.run(frames=2)
    assert real_show.registry.get("/master/brightness") == 1.0


def test_pickup_fader_in_the_show(real_show, tmp_path):
    port = PORTS["nanokontrol2.toml"]
    be = FakeMidiBackend([port])
    ctl = MidiControl(
        namespace(tmp_path, midi_in=["nano"], patch=[REPO / "patches" / "nanokontrol2.toml"]),
        real_show,
        backend_factory=lambda: be,
    )
    ctl.watcher.poll()
    reg = real_show.registry
    reg.set("/deck/a/truncation", 1.0)  # fader 4, range 0..2: the value sits at the middle
    for v in (0, 20, 40):
        be.send(port, 0xB0, 3, v)
    real_show.run(frames=2)
    assert reg.param("/deck/a/truncation").target == 1.0
    be.send(port, 0xB0, 3, 80)  # crosses 63.5
    real_show.run(frames=2)
    assert reg.param("/deck/a/truncation").target == pytest.approx(2 * 80 / 127)


def test_pickup_leds_light_while_a_fader_waits(real_show, tmp_path):
    """nanoKONTROL2: R4 lights while fader 4 is away from its value, goes dark when the
    fader picks up, and lights again the frame OSC moves the value under it."""
    port, out_port = PORTS["nanokontrol2.toml"], "nanoKONTROL2 MIDI 1 out"
    be = FakeMidiBackend([port], [out_port])
    clock = Clock()
    ctl = MidiControl(
        namespace(tmp_path, midi_in=["nano"], midi_feedback="nano", patch=[REPO / "patches" / "nanokontrol2.toml"]),
        real_show,
        backend_factory=lambda: be,
        clock=clock,
    )
    ctl.watcher.poll()
    out = be.outputs[out_port]
    reg = real_show.registry
    reg.set("/deck/a/truncation", 1.0)  # fader 4, range 0..2: the value sits at the middle

    def step(*values):
        for v in values:
            be.send(port, 0xB0, 3, v)
        real_show.run(frames=2)
        clock.now += 1.0
        ctl.watcher.send_due()
        leds = [m for m in out.sent if m[:2] == (0xB0, 67)]
        out.sent.clear()
        return leds

    assert step() == [(0xB0, 67, 0)]  # never moved: its position is unknown, dark (stale light cleared)
    assert step(0, 20) == [(0xB0, 67, 127)]  # below the value: waiting
    assert step(40) == []  # still waiting: nothing new to send
    assert step(80) == [(0xB0, 67, 0)]  # crossed the value: picked up, in control
    real_show.queue.put(Event("set", "/deck/a/truncation", 0.3, source="osc"))
    assert step() == [(0xB0, 67, 127)]  # moved under the fader: lit without touching it
    assert reg.param("/deck/a/truncation").target == pytest.approx(0.3)
    assert step(10) == [(0xB0, 67, 0)]  # 80 -> 10 crosses 0.3 (19 of 127): picked up again
    clock.now += 1.0
    ctl._resync()  # what the port thread calls when the output (re)opens: every light again
    real_show.run(frames=1)  # ...offered by the loop's next frame
    ctl.watcher.send_due()
    assert (0xB0, 67, 0) in out.sent


def test_program_change_selects_scenes(real_show, tmp_path):
    be = FakeMidiBackend(["keys"])
    ctl = MidiControl(namespace(tmp_path, midi_in=["keys"]), real_show, backend_factory=lambda: be)
    ctl.watcher.poll()
    be.send("keys", 0xC0, 2)
    real_show.run(frames=2)
    assert real_show.scene_index == 2


@pytest.mark.parametrize("source,expected", [("internal", 0), ("midi", 3)])
def test_clock_reaches_tempo_only_with_clock_sync(tmp_path, source, expected):
    show = ControlShow()
    be = FakeMidiBackend(["clock"])
    ctl = MidiControl(namespace(tmp_path, midi_in=["clock"], tempo_source=source), show, backend_factory=lambda: be)
    ctl.watcher.poll()
    assert be.inputs["clock"].clock is (source == "midi")
    for msg in ([0xFA], [0xF8], [0xF2, 4, 0]):
        be.send("clock", *msg, t=1.25)
    events = show.queue.drain()
    assert len(events) == expected
    if expected:
        assert [e.address for e in events] == ["/tempo/start", "/tempo/clock", "/tempo/song_position"]
        assert events[1].t == 1.25 and events[2].value == 4


def test_malformed_and_dropped_are_counted(tmp_path):
    show = ControlShow()
    show.queue = EventQueue(capacity=1)
    be = FakeMidiBackend(["x"])
    f = tmp_path / "p.toml"
    f.write_text('[[route]]\nsource = { type = "midi", note = 1 }\nverb = "/show/next"\n')
    ctl = MidiControl(namespace(tmp_path, midi_in=["x"], patch=[f]), show, backend_factory=lambda: be)
    ctl.watcher.poll()
    be.send("x", 0x90, 1, 200)
    be.send("x", 0x90, 1, 100)
    be.send("x", 0x90, 1, 100)  # the queue holds one: dropped
    st = ctl.stats()["midi"]
    assert (st["received"], st["malformed"], st["dropped"]) == (3, 1, 1)
    assert st["ports"] == ["x"]


def test_feedback_echoes_changes_to_the_output(tmp_path):
    show = ControlShow()
    be = FakeMidiBackend([], ["Twister out"])
    clock = Clock()
    ctl = MidiControl(
        namespace(tmp_path, midi_feedback="twister", patch=[REPO / "patches" / "midifighter_twister.toml"]),
        show,
        backend_factory=lambda: be,
        clock=clock,
    )
    ctl.watcher.poll()  # opens the output and asks the loop for every feedback control's value
    show.pump()  # the loop's frame offers them
    ctl.watcher.send_due()
    out = be.outputs["Twister out"]
    assert (0xB0, 0, 127) in out.sent  # brightness 1.0 on encoder 1's ring
    out.sent.clear()
    show.apply(Event("set", "/master/brightness", 0.5, source="osc"))
    show.apply(Event("set", "/master/brightness", 0.25, source="osc"))
    ctl.watcher.send_due()
    assert out.sent == []  # within 20 ms of the last send to this control
    clock.now = 1.0
    ctl.watcher.send_due()
    assert out.sent == [(0xB0, 0, 32)]  # only the newest value


def test_start_is_off_without_flags_and_patch_only_needs_no_ports(tmp_path):
    show = ControlShow()
    assert start(namespace(tmp_path), show) is None
    ctl = start(namespace(tmp_path, patch=[REPO / "patches" / "osc_apps.toml"]), show)
    assert ctl.watcher is None and "/brightness" in show.osc_routes
    ctl.close()


def test_learn_with_the_l_key_in_a_real_show(real_show, tmp_path):
    show = real_show
    be = FakeMidiBackend(["desk"])
    ctl = MidiControl(namespace(tmp_path, midi_in=["desk"]), show, backend_factory=lambda: be)
    ctl.watcher.poll()
    show.queue.put(Event("set", "/deck/a/truncation", 0.5, source="osc"))  # touch a param
    show.run(frames=1)
    show.output.keys[show.output._polls] = ["learn"]  # press L on the next frame
    show.run(frames=1)
    assert "move a control for /deck/a/truncation" in show.output.title
    be.send("desk", 0xB0, 40, 10)
    show.run(frames=2)
    assert "learned cc 40 ch 1 on 'desk' -> /deck/a/truncation" in show.output.title
    be.send("desk", 0xB0, 40, 127)
    show.run(frames=2)
    assert show.registry.param("/deck/a/truncation").target == 2.0
    assert "/deck/a/truncation" in (tmp_path / "learned.toml").read_text()


@pytest.mark.parametrize("prime", [False, True])
def test_unrouted_keys_prime_the_melody_only_when_asked(tmp_path, prime):
    show = ControlShow()
    be = FakeMidiBackend(["keys"])
    f = tmp_path / "p.toml"
    f.write_text('[[route]]\nsource = { type = "midi", note = 36 }\nverb = "/show/next"\n')
    ctl = MidiControl(
        namespace(tmp_path, midi_in=["keys"], patch=[f], notes_prime=prime), show, backend_factory=lambda: be
    )
    ctl.watcher.poll()
    be.send("keys", 0x90, 36, 100)  # routed: a verb, never a played note
    be.send("keys", 0x80, 36, 0)  # ...nor its release (which fires nothing)
    be.send("keys", 0x90, 60, 90)
    be.send("keys", 0x80, 60, 0)
    got = [(e.address, e.value) for e in show.queue.drain()]
    played = [("/notes/played", "60:90"), ("/notes/played", "60:0")] if prime else []
    assert got == [("/show/next", None)] + played


def test_random_bytes_through_every_shipped_patch_never_reach_the_show_as_errors(tmp_path):
    """Fuzz (fixed seed) at the ports' entry point: the receive callback, with every shipped
    patch, clock sync and feedback on; relative encoders, 14-bit halves, NRPN parts, program
    changes past the scenes, pitch bend ends and clock bursts, mixed with garbage bytes."""
    rng = random.Random(5)
    patches = sorted((REPO / "patches").glob("*.toml"))
    args = namespace(tmp_path, patch=patches, midi_in=["all"], midi_feedback="fb", tempo_source="midi")
    show = ControlShow()
    tempo = Tempo(show.registry, "midi")
    show.provide("tempo", tempo)
    be = FakeMidiBackend(list(PORTS.values()), ["fb"])
    c = MidiControl(args, show, backend_factory=lambda: be, clock=Clock())
    c.watcher.poll()
    t = 0.0
    for k in range(4000):
        kind = rng.randrange(4)
        if kind == 0:
            status = rng.choice((0x80, 0x90, 0xB0, 0xC0, 0xE0)) | rng.randrange(16)
            data = [
                rng.choice((0, 1, 6, 38, 63, 64, 65, 96, 97, 98, 99, 127, rng.randrange(128)))
                for _ in range(1 if status >> 4 == 0xC else 2)
            ]
            msg = [status, *data]
        elif kind == 1:
            msg = rng.choice(([0xF8], [0xFA], [0xFB], [0xFC], [0xF2, rng.randrange(128), rng.randrange(128)]))
        else:
            msg = [rng.randrange(256 if kind == 2 else 1000) for _ in range(rng.randrange(4))]
        t += rng.choice((0.0, 1e-6, 1e-4, 0.02, 3600.0))
        be.send(rng.choice(list(PORTS.values())), *msg, t=t)
        if k % 20 == 0:
            show.pump()
            tempo.advance(show.dt)
            c.watcher.send_due()
            assert 20.0 <= tempo.bpm <= 300.0 and math.isfinite(tempo.beat)
    stats = c.stats()["midi"]
    assert stats["errors"] == 0 and stats["received"] == 4000 and stats["malformed"] > 0
    assert all(math.isfinite(p.target) and math.isfinite(p.value) for p in show.registry)


# -- a patch whose port filter matches no open input says so -----------------------------


def _filter_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "port filter" in r.getMessage()]


def test_a_patch_port_filter_matching_no_open_input_is_warned_once_per_port_change(tmp_path, caplog):
    """The stage case: `--midi-in lsbar --patch nanokontrol2.toml` with a controller whose
    port name lacks "nanoKONTROL2" dropped every message without a word."""
    caplog.set_level(logging.INFO, logger="engine.control")
    file = REPO / "patches" / "nanokontrol2.toml"
    be = FakeMidiBackend(["LSBar MIDI 1"])
    ctl = MidiControl(namespace(tmp_path, midi_in=["lsbar"], patch=[file]), ControlShow(), backend_factory=lambda: be)
    ctl.watcher.poll()
    (msg,) = _filter_warnings(caplog)
    assert str(file) in msg and "'nanoKONTROL2'" in msg and "'LSBar MIDI 1'" in msg
    for _ in range(3):  # the same ports: nothing new to say
        ctl.watcher.poll()
    assert be.send("LSBar MIDI 1", 0xB0, 0, 64)  # messages are dropped quietly, not warned one by one
    assert len(_filter_warnings(caplog)) == 1
    be.sources.append("LSBar MIDI 2")  # the port set changes, still no match: said again
    ctl.watcher.poll()
    assert len(_filter_warnings(caplog)) == 2 and "'LSBar MIDI 2'" in _filter_warnings(caplog)[-1]
    ctl.close()


def test_a_matching_port_arriving_ends_the_warning(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="engine.control")
    be = FakeMidiBackend(["Other Synth"])
    ctl = MidiControl(
        namespace(tmp_path, midi_in=["all"], patch=[REPO / "patches" / "nanokontrol2.toml"]),
        ControlShow(),
        backend_factory=lambda: be,
    )
    ctl.watcher.poll()
    assert len(_filter_warnings(caplog)) == 1
    be.sources.append("nanoKONTROL2 MIDI 1")
    ctl.watcher.poll()
    assert len(_filter_warnings(caplog)) == 1
    assert "port filter 'nanoKONTROL2' now matches" in caplog.text
    be.sources.remove("nanoKONTROL2 MIDI 1")  # unplugged: the other port alone again
    ctl.watcher.poll()
    assert len(_filter_warnings(caplog)) == 2
    ctl.close()


@pytest.mark.parametrize(
    "text",
    [
        '[[route]]\nsource = { type = "midi", note = 1 }\nverb = "/show/next"\n',  # no filter: any port
        '[midi]\nport = ""\n[[route]]\nsource = { type = "midi", note = 1 }\nverb = "/show/next"\n',  # empty: any
        '[midi]\nport = "synth"\n[[route]]\nsource = { type = "midi", note = 1 }\nverb = "/show/next"\n',
        '[[route]]\nsource = { type = "osc", address = "/x" }\nverb = "/show/next"\n',  # no MIDI route at all
    ],
)
def test_no_warning_when_every_filter_matches_or_there_is_none(tmp_path, caplog, text):
    caplog.set_level(logging.INFO, logger="engine.control")
    f = tmp_path / "p.toml"
    f.write_text(text)
    be = FakeMidiBackend(["Other SYNTH 1"])
    ctl = MidiControl(namespace(tmp_path, midi_in=["all"], patch=[f]), ControlShow(), backend_factory=lambda: be)
    ctl.watcher.poll()
    assert _filter_warnings(caplog) == []
    ctl.close()


def test_port_filters_are_checked_per_file_and_per_route(tmp_path, caplog):
    """A route's own `port` overrides the file's [midi] port; each unmatched (file, filter)
    pair is one line with its route count. With no input open at all (the watcher already
    says it is waiting) nothing is warned, and when the MIDI system goes away and comes back
    the check runs again."""
    caplog.set_level(logging.INFO, logger="engine.control")
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(
        '[midi]\nport = "nano"\n'
        '[[route]]\nsource = { type = "midi", note = 1 }\nverb = "/show/next"\n'
        '[[route]]\nsource = { type = "midi", note = 2 }\nverb = "/show/prev"\n'
        '[[route]]\nsource = { type = "midi", note = 3, port = "keys" }\nverb = "/show/next"\n'
    )
    b.write_text('[[route]]\nsource = { type = "midi", note = 4, port = "nano" }\nverb = "/show/prev"\n')
    be = FakeMidiBackend([])
    ctl = MidiControl(namespace(tmp_path, midi_in=["all"], patch=[a, b]), ControlShow(), backend_factory=lambda: be)
    ctl.watcher.poll()
    assert _filter_warnings(caplog) == []  # no input open: the watcher's "waiting" line covers it
    be.sources.append("Keys 49")
    ctl.watcher.poll()
    warned = sorted(_filter_warnings(caplog))
    assert len(warned) == 2
    assert str(a) in warned[0] and "'nano'" in warned[0] and "2 route(s)" in warned[0]
    assert str(b) in warned[1] and "'nano'" in warned[1] and "1 route(s)" in warned[1]
    be.available = False
    ctl.watcher.poll()  # the MIDI system went away: every input closed, nothing to check against
    be.available = True
    ctl.watcher.poll()
    assert len(_filter_warnings(caplog)) == 4
    ctl.close()
