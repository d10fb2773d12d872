"""OSC feedback (rate limit, subscribers, status) and the address-space listings,
with an injected clock and a fake send (no sockets, no sleeps)."""

from __future__ import annotations

import json

import pytest
from pythonosc.osc_message import OscMessage

from engine.control.osc_out import Feedback
from engine.control.oscquery import answer, document, host_info
from engine.core.space import build_registry, build_space, params_json, params_table
from tests.fakes import ControlShow

OUT = ("127.0.0.1", 9001)


class Clock:
    def __init__(self) -> None:
        self.t = 10.0

    def __call__(self) -> float:
        return self.t


class Rig:
    def __init__(self, targets=(OUT,), counts=dict, max_subscribers=8):
        self.clock = Clock()
        self.sent: list[tuple[str, list, tuple]] = []
        reg = build_registry()
        self.fb = Feedback(
            self.send,
            list(targets),
            {p.address: p.type for p in reg},
            counts=counts,
            max_subscribers=max_subscribers,
            clock=self.clock,
        )

    def send(self, data: bytes, to) -> bool:
        m = OscMessage(data)
        self.sent.append((m.address, m.params, to))
        return True

    def values(self, address: str) -> list:
        return [p[0] for a, p, _ in self.sent if a == address]


def fake_show(frame_count=0, bpm=120.0, beat=0.0):
    show = ControlShow()
    show.frame_count, show.scene_name = frame_count, "Paintings"
    show.registry.set("/tempo/bpm", bpm)
    show.tempo.beat = beat
    return show


def test_changes_are_echoed_with_the_param_type():
    r = Rig()
    r.fb.on_change("/master/brightness", 0.0, "osc")
    r.fb.on_change("/master/freeze", 1.0, "key")
    assert r.sent == [("/master/brightness", [0.0], OUT), ("/master/freeze", [True], OUT)]


def test_rate_limit_per_address_and_the_last_value_always_arrives():
    r = Rig()
    fb, clock = r.fb, r.clock
    for i in range(10):  # 10 changes inside one 1/30 s interval
        fb.on_change("/master/speed", float(i), "osc")
        clock.t += 0.001
    fb.on_change("/master/brightness", 0.5, "osc")  # another address is not held back
    assert r.values("/master/speed") == [0.0] and r.values("/master/brightness") == [0.5]
    fb.flush(clock.t)  # still inside the interval
    assert r.values("/master/speed") == [0.0]
    clock.t = 10.0 + 1.0 / 30.0
    fb.flush(clock.t)
    assert r.values("/master/speed") == [0.0, 9.0]
    fb.flush(clock.t + 1.0)  # nothing pending: nothing more
    assert r.values("/master/speed") == [0.0, 9.0]


def test_no_targets_no_work():
    r = Rig(targets=())
    r.fb.on_change("/master/speed", 2.0, "osc")
    r.fb.frame_hook(fake_show())
    assert r.sent == [] and r.fb._pending == {}


def test_subscribers_are_bounded_and_can_leave():
    r = Rig(targets=(), max_subscribers=2)
    fb = r.fb
    fb.subscribe("10.0.0.1", 9001)
    fb.subscribe("10.0.0.2", 9001)
    fb.subscribe("10.0.0.1", 9001)  # again: moves to the back, no duplicate
    fb.subscribe("10.0.0.3", 9001)  # evicts the oldest (10.0.0.2)
    assert fb.targets == (("10.0.0.1", 9001), ("10.0.0.3", 9001))
    fb.subscribe("10.0.0.1", 9001, on=False)
    fb.on_change("/master/speed", 2.0, "osc")
    assert [to for *_, to in r.sent] == [("10.0.0.3", 9001)]


def test_status_once_a_second_with_fps_scene_counts():
    r = Rig(counts=lambda: {"osc/received": 12, "osc/dropped": 1, "osc/malformed": 2**40})
    show = fake_show()
    r.fb.frame_hook(show)
    assert r.sent == []
    for _ in range(60):  # one second at 60 fps
        r.clock.t += 1 / 60
        show.frame_count += 1
        r.fb.frame_hook(show)
    assert r.values("/status/scene") == ["Paintings"]
    assert r.values("/status/osc/received") == [12] and r.values("/status/osc/malformed") == [2**31 - 1]
    assert r.values("/status/bpm") == [120.0]  # the internal tempo
    for _ in range(60):
        r.clock.t += 1 / 60
        show.frame_count += 1
        r.fb.frame_hook(show)
    assert r.values("/status/fps")[-1] == pytest.approx(60.0, rel=0.05)
    assert len(r.values("/status/scene")) == 2


def test_status_reports_tempo_when_a_tempo_source_runs():
    r = Rig()
    show = fake_show(bpm=128.0, beat=3.5)
    msgs = [OscMessage(d) for d in r.fb.status_messages(show, r.clock())]
    got = {m.address: m.params for m in msgs}
    assert got["/status/bpm"] == [128.0] and got["/status/beat"] == [3.5]


# -- listings and OSCQuery --------------------------------------------------------------------


def test_params_listing_has_every_address_and_the_verbs():
    space = build_space()
    reg = space.registry
    rows = params_json(space)
    json.dumps(rows)
    addresses = [r["address"] for r in rows]
    assert addresses[: len(reg)] == [p.address for p in reg]
    assert {a for a, _ in space.osc_verbs()} <= set(addresses)
    assert "/deck/a/notes/reset" in addresses and "/show/quit" not in addresses  # internal verbs are not listed
    table = params_table(space)
    assert "/deck/a/latent/8" in table and "-3..3" in table and "/show/scene s" in table


def test_oscquery_document_is_generated_from_the_registry():
    space = build_space()
    reg = space.registry
    reg.set("/master/brightness", 0.25)
    doc = document(space)
    node = doc["CONTENTS"]["master"]["CONTENTS"]["brightness"]
    assert node["FULL_PATH"] == "/master/brightness" and node["TYPE"] == "f"
    assert node["VALUE"] == [0.25] and node["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}] and node["ACCESS"] == 3
    freeze = doc["CONTENTS"]["master"]["CONTENTS"]["freeze"]
    assert freeze["TYPE"] == "T" and freeze["VALUE"] == [False]
    latent = doc["CONTENTS"]["deck"]["CONTENTS"]["a"]["CONTENTS"]["latent"]["CONTENTS"]["3"]
    assert latent["FULL_PATH"] == "/deck/a/latent/3" and "sigma" in latent["DESCRIPTION"]
    assert doc["CONTENTS"]["show"]["CONTENTS"]["next"]["ACCESS"] == 2
    json.dumps(doc)


def test_oscquery_answers():
    space = build_space()
    info = host_info("127.0.0.1", 9000)
    assert answer(space, info, "/?HOST_INFO") == (200, info)
    assert info["OSC_PORT"] == 9000 and info["OSC_TRANSPORT"] == "UDP"
    assert answer(space, info, "/master/speed?VALUE") == (200, {"VALUE": [1.0]})
    status, node = answer(space, info, "/master")
    assert status == 200 and set(node["CONTENTS"]) >= {"brightness", "speed"}
    assert answer(space, info, "/no/such")[0] == 404
    assert answer(space, info, "/master/speed?TAGS") == (204, None)


def test_oscquery_answers_a_target_it_cannot_parse_with_400():
    # urlsplit raised ValueError for "http://[": the handler died with a traceback printed
    # to stderr (socketserver's print, for every such request) and no response.
    space = build_space()
    info = host_info("127.0.0.1", 9000)
    assert answer(space, info, "http://[") == (400, None)
    assert answer(space, info, "http://localhost/master/speed?VALUE") == (200, {"VALUE": [1.0]})
