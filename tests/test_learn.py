"""MIDI learn: arm, move, bound at once, saved atomically, reloaded, unlearned."""

import logging

import pytest

from engine.control.learn import MSB_WAIT, default_learn_file, save_atomically, stable_port
from engine.control.midi import MidiControl
from engine.core.events import Event
from engine.errors import StartupError
from engine.files.patch import load_patch
from tests.fakes import ControlShow, FakeMidiBackend, show_config

PORT = "nanoKONTROL2 MIDI 1 20:0"


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def control(tmp_path, show=None, backend=None, clock=None, patches=()):
    args = show_config(
        midi_in=["nano"],
        midi_api=None,
        patch=list(patches),
        learn_save=tmp_path / "cfg" / "learned.toml",
        midi_feedback=None,
    )
    show = show or ControlShow()
    backend = backend or FakeMidiBackend([PORT])
    c = MidiControl(args, show, backend_factory=lambda: backend, clock=clock or Clock())
    c.watcher.poll()  # no thread in unit tests: one scan opens the port
    return c, show, backend


def learn(show, address=None):
    show.queue.put(Event("verb", "/learn/start", address, 0.0, "osc"))
    show.pump()


def test_learn_cc_round_trip(tmp_path):
    c, show, be = control(tmp_path)
    reg = show.registry
    show.apply(Event("set", "/master/speed", 2.0, source="osc"))  # the VJ touches a param...
    learn(show)  # ...presses L
    assert "move a control for /master/speed" in show.title
    be.send(PORT, 0xB0, 16, 64)  # CC 16 could be a 14-bit MSB: learn waits for the next message
    be.send(PORT, 0xB0, 16, 66)
    show.pump()
    assert reg.param("/master/speed").target == 2.0  # learning moves nothing
    assert "learned cc 16 ch 1" in show.title
    saved = load_patch(c.learn_file, reg)
    [r] = saved.routes
    assert (r.source.kind, r.source.number, r.address) == ("cc", 16, "/master/speed")
    assert r.source.port == "nanoKONTROL2 MIDI 1"  # without ALSA's client:port numbers
    assert [p.name for p in c.learn_file.parent.iterdir()] == ["learned.toml"]  # no temp file left
    be.send(PORT, 0xB0, 16, 127)
    show.pump()
    assert reg.param("/master/speed").target == 4.0  # active at once
    c.close()
    # a new show loads the learn file: the binding still works
    c2, show2, be2 = control(tmp_path)
    be2.send(PORT, 0xB0, 16, 0)
    show2.pump()
    assert show2.registry.param("/master/speed").target == 0.0
    show2.queue.put(Event("verb", "/learn/unlearn", "/master/speed", 0.0, "osc"))
    show2.pump()
    assert load_patch(c2.learn_file, show2.registry).routes == []
    be2.send(PORT, 0xB0, 16, 127)
    show2.pump()
    assert show2.registry.param("/master/speed").target == 0.0


def test_learn_14bit_nrpn_and_note(tmp_path):
    c, show, be = control(tmp_path)
    reg = show.registry
    learn(show, "/deck/a/speed")
    be.send(PORT, 0xB0, 1, 64)
    be.send(PORT, 0xB0, 33, 0)
    show.pump()
    be.send(PORT, 0xB0, 1, 127)
    be.send(PORT, 0xB0, 33, 127)
    show.pump()
    assert reg.param("/deck/a/speed").target == pytest.approx(4.0)
    be.send(PORT, 0xB0, 1, 64)
    be.send(PORT, 0xB0, 33, 0)
    show.pump()
    assert reg.param("/deck/a/speed").target == pytest.approx(4.0 * (64 << 7) / 16383)
    learn(show, "/deck/a/latent/2")
    for cc, v in ((99, 3), (98, 1), (6, 10), (38, 0)):
        be.send(PORT, 0xB0, cc, v)
    show.pump()
    for cc, v in ((99, 3), (98, 1), (6, 127), (38, 127)):
        be.send(PORT, 0xB0, cc, v)
    show.pump()
    assert reg.param("/deck/a/latent/2").target == pytest.approx(3.0)
    learn(show, "/master/freeze")
    be.send(PORT, 0x90, 36, 100)
    be.send(PORT, 0x90, 36, 0)
    show.pump()
    be.send(PORT, 0x90, 36, 100)
    show.pump()
    assert reg.param("/master/freeze").target == 1.0  # a note on a bool param toggles
    kinds = sorted(r.source.kind for r in load_patch(c.learn_file, reg).routes)
    assert kinds == ["cc14", "note", "nrpn"]


def test_lone_msb_becomes_a_7bit_binding_after_a_pause(tmp_path):
    clock = Clock()
    c, show, be = control(tmp_path, clock=clock)
    learn(show, "/master/brightness")
    be.send(PORT, 0xB0, 5, 10, t=0.0)
    show.pump()
    assert c.learner.armed == "/master/brightness"
    clock.now = MSB_WAIT + 0.01
    show.pump()
    show.pump()
    [r] = c.learner.learned
    assert (r.source.kind, r.source.number) == ("cc", 5)


def test_learn_without_a_touched_param_says_so(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    c, show, be = control(tmp_path)
    learn(show)
    assert "touch a param first" in show.title and "no param touched yet" in caplog.text
    learn(show, "/no/such")
    assert "unknown param" in show.title
    learn(show, "/master/brightness")
    show.queue.put(Event("verb", "/learn/cancel", None, 0.0, "key"))
    show.pump()
    be.send(PORT, 0xB0, 70, 1)
    show.pump()
    assert c.learner.learned == [] and c.learner.armed is None


def test_learned_binding_replaces_a_patch_route(tmp_path):
    patch = tmp_path / "p.toml"
    patch.write_text('[[route]]\nsource = { type = "midi", cc = 70 }\naddress = "/master/speed"\n')
    c, show, be = control(tmp_path, patches=[patch])
    learn(show, "/deck/a/truncation")
    be.send(PORT, 0xB0, 70, 0)
    show.pump()
    be.send(PORT, 0xB0, 70, 127)
    show.pump()
    assert show.registry.param("/deck/a/truncation").target == 2.0
    assert show.registry.param("/master/speed").target == 1.0


def test_helpers(tmp_path, monkeypatch):
    assert stable_port("nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0") == "nanoKONTROL2:nanoKONTROL2 MIDI 1"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_learn_file() == tmp_path / "latent-stage" / "learned.toml"
    f = tmp_path / "a" / "b.toml"
    save_atomically(f, "x = 1\n")
    save_atomically(f, "x = 2\n")
    assert f.read_text() == "x = 2\n" and len(list(f.parent.iterdir())) == 1


def test_a_save_that_fails_mid_show_is_logged_and_the_show_goes_on(tmp_path, caplog):
    """With no port thread (no --midi-in: OSC /learn/unlearn still saves) the save runs in
    the loop's drain: an OSError there once escaped the verb and cost the frame."""
    learned = tmp_path / "learned.toml"
    learned.write_text('[[route]]\nsource = { type = "midi", cc = 3 }\naddress = "/master/speed"\n')
    args = show_config(midi_in=[], midi_api=None, patch=[], learn_save=learned, midi_feedback=None)
    show = ControlShow()
    c = MidiControl(args, show)
    assert c.watcher is None and len(c.learner.learned) == 1
    learned.unlink()
    learned.mkdir()  # the place can no longer take the file
    show.queue.put(Event("verb", "/learn/unlearn", "/master/speed", 0.0, "osc"))
    show.queue.put(Event("set", "/master/brightness", 0.25, 0.0, "osc"))  # the same drain goes on
    with caplog.at_level(logging.ERROR, logger="engine.control.learn"):
        show.pump()
    assert c.learner.learned == [] and show.registry.get("/master/brightness") == 0.25
    assert "could not save" in caplog.text and str(learned) in caplog.text


def test_learning_where_the_file_cannot_go_still_binds(tmp_path, caplog):
    c, show, be = control(tmp_path)
    c.learn_file.parent.parent.mkdir(exist_ok=True)
    c.learn_file.parent.write_text("")  # a file where the learn folder should be
    learn(show, "/master/speed")
    be.send(PORT, 0xB0, 70, 1)
    with caplog.at_level(logging.ERROR, logger="engine.control.learn"):
        show.pump()
    assert [r.source.number for r in c.learner.learned] == [70]  # bound all the same
    assert "could not save" in caplog.text


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda f: f.mkdir(), "expected a file for learned bindings"),
        (lambda f: f.write_bytes(b'[[route]]\nname = "caf\xc3'), "not valid TOML"),  # cut mid-character
        (
            lambda f: f.write_text('[[route]]\nsource = { type = "midi", cc = 3 }\naddress = "/master/'),
            "not valid TOML",
        ),
        (
            lambda f: f.write_text('[[route]]\nsource = { type = "midi", cc = 300 }\naddress = "/master/speed"\n'),
            "key 'source.cc'",
        ),
    ],
)
def test_a_bad_learn_file_stops_startup_with_one_line(tmp_path, make, expected):
    f = tmp_path / "learned.toml"
    make(f)
    args = show_config(midi_in=[], midi_api=None, patch=[], learn_save=f, midi_feedback=None)
    with pytest.raises(StartupError) as err:
        MidiControl(args, ControlShow())
    assert str(f) in str(err.value) and expected in str(err.value)


def test_an_empty_learn_file_is_no_bindings(tmp_path):
    f = tmp_path / "learned.toml"
    f.write_text("")
    args = show_config(midi_in=[], midi_api=None, patch=[], learn_save=f, midi_feedback=None)
    assert MidiControl(args, ControlShow()).learner.learned == []
