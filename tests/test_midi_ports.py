"""The port watcher with a fake backend: waiting, opening, vanishing, reopening; API choice."""

import logging

import pytest

from engine.control.midi_ports import PortWatcher, resolve_api
from engine.errors import StartupError
from tests.fakes import FakeMidiBackend


def watcher(backend, inputs=("nano",), output=None, received=None, **kw):
    received = [] if received is None else received

    def on_input(name):
        return lambda data, t: received.append((name, list(data)))

    return PortWatcher(lambda: backend, list(inputs), output, on_input, **kw), received


def test_absent_port_is_waited_for_then_opened(caplog):
    caplog.set_level(logging.INFO)
    be = FakeMidiBackend()
    w, got = watcher(be)
    assert w.poll() and w.inputs == {}
    assert "waiting for a port matching 'nano'" in caplog.text
    be.sources.append("nanoKONTROL2 MIDI 1")
    w.poll()
    assert list(w.inputs) == ["nanoKONTROL2 MIDI 1"]
    assert be.send("nanoKONTROL2 MIDI 1", 0xB0, 0, 5)
    assert got == [("nanoKONTROL2 MIDI 1", [0xB0, 0, 5])]


def test_vanished_port_is_closed_and_reopened_by_name(caplog):
    caplog.set_level(logging.INFO)
    be = FakeMidiBackend(["nanoKONTROL2 MIDI 1", "Other"])
    w, got = watcher(be)
    w.poll()
    first = be.inputs["nanoKONTROL2 MIDI 1"]
    be.sources.remove("nanoKONTROL2 MIDI 1")
    w.poll()
    assert first.closed and w.inputs == {}
    assert "is gone; waiting for it to come back" in caplog.text
    w.poll()  # still gone: nothing happens
    be.sources.append("nanoKONTROL2 MIDI 1")
    w.poll()
    assert be.opens == ["nanoKONTROL2 MIDI 1", "nanoKONTROL2 MIDI 1"]
    assert "reconnected 'nanoKONTROL2 MIDI 1'" in caplog.text
    be.send("nanoKONTROL2 MIDI 1", 0x90, 1, 2)
    assert got == [("nanoKONTROL2 MIDI 1", [0x90, 1, 2])]


def test_all_opens_everything_but_our_own_ports():
    be = FakeMidiBackend(["A", "B", "latent-stage:feedback"])
    w, _ = watcher(be, inputs=("all",))
    w.poll()
    assert sorted(w.inputs) == ["A", "B"]


def test_clock_filter_follows_clock_sync():
    be = FakeMidiBackend(["nano"])
    w, _ = watcher(be, clock_sync=True)
    w.poll()
    assert be.inputs["nano"].clock is True


def test_feedback_output_reconnects_and_resyncs():
    be = FakeMidiBackend([], ["Twister out"])
    msgs = [[(0xB0, 1, 2)]]
    opened = []
    w, _ = watcher(
        be,
        inputs=(),
        output="twister",
        take_feedback=lambda: (msgs.pop() if msgs else [], None),
        on_output_open=lambda: opened.append(1),
    )
    w.poll()
    assert w.output is not None and opened == [1]
    w.send_due()
    assert be.outputs["Twister out"].sent == [(0xB0, 1, 2)] and w.sent == 1
    be.destinations.clear()
    msgs.append([(0xB0, 1, 3)])
    w.send_due()  # the send fails: the port is closed, to be reopened
    assert w.output is None and w.send_errors == 1
    be.destinations.append("Twister out")
    w.poll()
    assert w.output is not None and opened == [1, 1]


def test_midi_system_down_then_back(caplog):
    be = FakeMidiBackend(["nano"])
    w, _ = watcher(be)
    w.poll()
    be.available = False
    assert not w.poll()
    assert w.inputs == {} and be.closed
    be.available = True
    assert w.poll() and list(w.inputs) == ["nano"]


def test_jobs_run_inline_without_a_thread_and_close_closes_ports():
    be = FakeMidiBackend(["nano"])
    w, _ = watcher(be)
    done = []
    w.submit(lambda: done.append(1))
    assert done == [1]
    w.poll()
    w.close()
    assert be.inputs["nano"].closed and w.inputs == {}


def test_resolve_api():
    assert resolve_api("jack") == "UNIX_JACK"
    assert resolve_api(None, {}) is None
    assert resolve_api(None, {"MIDO_BACKEND": "mido.backends.rtmidi/UNIX_JACK"}) == "UNIX_JACK"
    assert resolve_api(None, {"MIDO_BACKEND": "mido.backends.rtmidi"}) is None
    with pytest.raises(StartupError, match="MIDO_BACKEND"):
        resolve_api(None, {"MIDO_BACKEND": "mido.backends.portmidi"})
    with pytest.raises(StartupError, match="MIDO_BACKEND"):
        resolve_api(None, {"MIDO_BACKEND": "mido.backends.rtmidi/NOPE"})


def test_open_inputs_are_reported_once_per_change_of_their_set():
    be = FakeMidiBackend(["nano 1"])
    seen: list[list[str]] = []
    w, _ = watcher(be, inputs=("all",), on_inputs_changed=seen.append)
    w.poll()
    w.poll()  # the same set: not again
    assert seen == [["nano 1"]]
    be.sources.append("keys")
    w.poll()
    be.sources.remove("nano 1")
    w.poll()
    w.poll()
    assert seen == [["nano 1"], ["keys", "nano 1"], ["keys"]]
    be.available = False  # the MIDI system went away: every input closed
    w.poll()
    w.poll()
    be.available = True
    w.poll()
    assert seen[3:] == [[], ["keys"]]


def test_an_empty_first_scan_is_reported_too():
    seen: list[list[str]] = []
    w, _ = watcher(FakeMidiBackend([]), on_inputs_changed=seen.append)
    w.poll()
    assert seen == [[]]
