"""The OSC dispatcher, fed OSC bytes built by python-osc (no sockets)."""

from __future__ import annotations

import math
import random
import struct

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from engine.control.osc import parse_allow
from engine.control.osc_decode import MAX_ARGS, MAX_DEPTH, Malformed, decode
from engine.control.osc_dispatch import MAX_REPLIES, NEW_PATTERN_BURST, VERB_BURST, Dispatcher, encode
from engine.control.osc_pattern import Matcher, PatternError, compile_pattern
from engine.core.events import Event, EventQueue
from engine.core.space import build_registry

SENDER = ("127.0.0.1", 54321)
NOW = 100.0  # perf_counter reading the fake clock gives
WALL = 1_700_000_000.0  # Unix seconds the fake wall clock gives


def msg(address: str, *args, types: str | None = None) -> bytes:
    b = OscMessageBuilder(address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


def bundle(wall, *contents) -> bytes:
    b = OscBundleBuilder(wall)
    for c in contents:
        b.add_content(c)
    return b.build().dgram


class Rig:
    def __init__(self, allow=None, routes=None, capacity=4096):
        self.registry = build_registry()
        self.queue = EventQueue(capacity)
        self.replies: list[tuple[bytes, tuple]] = []
        self.subs: list[tuple[str, int, bool]] = []
        self.clock = 0.0  # seconds added to NOW (rate budgets refill with it)
        self.d = Dispatcher(
            self.registry,
            self.queue,
            routes if routes is not None else {},
            lambda data, to: self.replies.append((data, to)),
            subscribe=lambda h, p, on: self.subs.append((h, p, on)),
            allow=parse_allow(allow),
            now=lambda: NOW + self.clock,
            wall=lambda: WALL + self.clock,
        )

    def send(self, data: bytes, sender=SENDER) -> list[Event]:
        self.d.handle(data, sender)
        return self.queue.drain(None)

    @property
    def c(self):
        return self.d.counters

    def reply_messages(self) -> list[tuple[str, list]]:
        return [(m.address, m.params) for m in (OscMessage(d) for d, _ in self.replies)]


@pytest.fixture
def rig() -> Rig:
    return Rig()


# -- params -----------------------------------------------------------------


@pytest.mark.parametrize(
    "arg,types,expected",
    [(0.25, "f", 0.25), (0.5, "d", 0.5), (1, "i", 1.0), (0, "h", 0.0), (True, "T", 1.0), (False, "F", 0.0)],
)
def test_a_number_of_any_osc_type_sets_a_param(rig, arg, types, expected):
    (ev,) = rig.send(msg("/master/brightness", arg, types=types))
    assert (ev.kind, ev.address, ev.value, ev.source, ev.t, ev.due) == (
        "set",
        "/master/brightness",
        expected,
        "osc",
        NOW,
        None,
    )
    assert (rig.c.received, rig.c.malformed, rig.c.dropped) == (1, 0, 0)


def test_out_of_range_is_clamped_when_applied(rig):
    (ev,) = rig.send(msg("/master/brightness", 7.0))
    assert rig.registry.set(ev.address, ev.value) == 1.0


@pytest.mark.parametrize(
    "data",
    [
        msg("/master/brightness", "bright"),
        msg("/master/brightness"),
        msg("/master/brightness", 0.1, 0.2),
        msg("/master/brightness", float("nan"), types="f"),
        msg("/master/brightness", float("inf"), types="d"),
        msg("/master/brightness", -math.inf, types="f"),
        msg("/master/brightness", b"\x00\x01", types="b"),
    ],
)
def test_wrong_types_are_malformed_and_dropped(rig, data):
    assert rig.send(data) == []
    assert rig.c.malformed == 1


def test_query_answers_the_target_to_the_sender(rig):
    rig.registry.set("/master/brightness", 0.3)
    rig.registry.set("/master/freeze", 1.0)
    assert rig.send(msg("/master/brightness", "?")) == []
    assert rig.send(msg("/master/freeze", "?")) == []
    assert [to for _, to in rig.replies] == [SENDER, SENDER]
    (a1, v1), (a2, v2) = rig.reply_messages()
    assert a1 == "/master/brightness" and v1[0] == pytest.approx(0.3)
    assert (a2, v2) == ("/master/freeze", [True])


def test_unknown_address_is_counted_as_dropped(rig, caplog):
    assert rig.send(msg("/nope/nothing", 1.0)) == []
    assert (rig.c.unknown, rig.c.dropped, rig.c.malformed) == (1, 1, 0)
    assert rig.send(msg("/nope/again", 1.0)) == []
    logged = [r.getMessage() for r in caplog.records if "unknown OSC address" in r.getMessage()]
    assert len(logged) == 1 and "'/nope/nothing'" in logged[0] and "run_show.py params" in logged[0]  # once


# -- wildcards ----------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern,expected",
    [
        ("/deck/a/latent/*", [f"/deck/a/latent/{i}" for i in range(1, 9)]),
        ("/deck/a/latent/[1-3]", ["/deck/a/latent/1", "/deck/a/latent/2", "/deck/a/latent/3"]),
        ("/deck/a/latent/[!2-8]", ["/deck/a/latent/1"]),
        ("/master/{speed,freeze}", ["/master/speed", "/master/freeze"]),
        ("/*/a/speed", ["/deck/a/speed"]),
        ("/master/brightnes?", ["/master/brightness"]),
        (
            "/master/*",
            ["/master/brightness", "/master/speed", "/master/blackout", "/master/blackout_fade", "/master/freeze"],
        ),
    ],
)
def test_wildcards_set_every_matching_param(rig, pattern, expected):
    evs = rig.send(msg(pattern, 0.0))
    assert [e.address for e in evs] == expected


def test_wildcards_never_cross_a_slash_and_user_text_is_not_regex():
    m = Matcher(["/master/brightness", "/deck/a/speed", "/a.b/c"])
    assert m.match("/*") == ()
    assert m.match("/a.b/c") == ("/a.b/c",)
    assert m.match("/a?b/c") == ("/a.b/c",)
    assert m.match("/master/(brightness|x)*") == ()
    assert m.match("/master/bri.*") == ()
    for bad in ("/master/[abc", "/master/{a,b", "/x]", "/x}", "/" + "*a" * 20, "/" + "x" * 300, "/[]"):
        with pytest.raises(PatternError):
            m.match(bad)
    with pytest.raises(PatternError):  # cached as bad
        m.match("/master/[abc")
    assert compile_pattern("/a\\[b]").match("/a\\b")


def test_a_bad_pattern_is_malformed_and_a_pattern_matching_nothing_is_unknown(rig):
    assert rig.send(msg("/master/[brightness", 0.5)) == []
    assert rig.send(msg("/nothing/*", 0.5)) == []
    assert (rig.c.malformed, rig.c.unknown) == (1, 1)


def test_query_with_a_wildcard_answers_each_match(rig):
    rig.send(msg("/master/{speed,brightness}", "?"))
    assert sorted(a for a, _ in rig.reply_messages()) == ["/master/brightness", "/master/speed"]


# -- bundles ------------------------------------------------------------------


def test_future_bundle_gets_a_due_time_on_the_perf_counter_clock(rig):
    inner = bundle(WALL + 0.5, OscMessageBuilder("/deck/a/speed").build())
    data = bundle(WALL + 0.25, msg_obj("/master/brightness", 0.0), OscBundle(inner))
    rig.d.handle(data, SENDER)
    assert rig.queue.drain(NOW) == []  # not due yet
    assert rig.queue.scheduled == 1  # /deck/a/speed has no value: malformed
    assert rig.c.malformed == 1
    (ev,) = rig.queue.drain(NOW + 0.3)
    assert ev.address == "/master/brightness" and ev.due == pytest.approx(NOW + 0.25)


def test_immediate_and_past_bundles_apply_at_the_next_frame(rig):
    data = bundle(
        IMMEDIATELY, msg_obj("/master/speed", 2.0), OscBundle(bundle(WALL - 10.0, msg_obj("/master/brightness", 0.5)))
    )
    evs = rig.send(data)
    assert [(e.address, e.value, e.due) for e in evs] == [
        ("/master/speed", 2.0, None),
        ("/master/brightness", 0.5, None),
    ]


def test_nested_bundle_inherits_a_later_outer_time(rig):
    data = bundle(WALL + 1.0, OscBundle(bundle(IMMEDIATELY, msg_obj("/master/speed", 2.0))))
    rig.d.handle(data, SENDER)
    assert rig.queue.drain(NOW + 0.9) == []
    assert rig.queue.drain(NOW + 1.0)[0].due == pytest.approx(NOW + 1.0)


def test_a_timetag_far_in_the_future_is_dropped(rig):
    assert rig.send(bundle(WALL + 3600.0, msg_obj("/master/speed", 2.0))) == []
    assert rig.queue.scheduled == 0 and rig.c.dropped == 1


def test_bundles_nested_too_deep_are_malformed(rig):
    data = bundle(IMMEDIATELY, msg_obj("/master/speed", 2.0))
    for _ in range(MAX_DEPTH):
        data = bundle(IMMEDIATELY, OscBundle(data))
    assert rig.send(data) == []
    assert rig.c.malformed == 1


def test_a_huge_bundle_is_handled(rig):
    data = bundle(IMMEDIATELY, *[msg_obj(f"/deck/a/latent/{i % 8 + 1}", float(i % 3)) for i in range(1000)])
    assert len(rig.send(data)) == 1000


# -- verbs ----------------------------------------------------------------------


@pytest.mark.parametrize("address", ["/show/next", "/show/prev", "/show/blackout", "/show/freeze", "/tempo/tap"])
def test_triggers_fire_on_1_or_nothing_and_ignore_0(rig, address):
    evs = (
        rig.send(msg(address, 1))
        + rig.send(msg(address, 0))
        + rig.send(msg(address))
        + rig.send(msg(address, 1.0))
        + rig.send(msg(address, 0.0))
        + rig.send(msg(address, True))
    )
    assert [(e.kind, e.address, e.value) for e in evs] == [("verb", address, None)] * 4
    assert rig.send(msg(address, "go")) == [] and rig.c.malformed == 1


def test_scene_by_name_or_index(rig):
    evs = rig.send(msg("/show/scene", "Paintings")) + rig.send(msg("/show/scene", 2))
    assert [(e.kind, e.address, e.value) for e in evs] == [
        ("verb", "/show/scene", "Paintings"),
        ("verb", "/show/scene", 2),
    ]
    for bad in (msg("/show/scene"), msg("/show/scene", float("nan"), types="f"), msg("/show/scene", "")):
        assert rig.send(bad) == []
    assert rig.c.malformed == 3


def test_learn_start_passes_the_address_through(rig):
    evs = rig.send(msg("/learn/start", "/deck/a/latent/3")) + rig.send(msg("/learn/start"))
    assert [(e.address, e.value) for e in evs] == [("/learn/start", "/deck/a/latent/3"), ("/learn/start", None)]


def test_ping_gets_pong_to_the_sender(rig):
    assert rig.send(msg("/ping")) == []
    assert rig.reply_messages() == [("/pong", [])] and rig.replies[0][1] == SENDER


def test_feedback_subscribe_uses_the_sender_ip_and_the_given_port(rig):
    rig.send(msg("/feedback/subscribe", 9001))
    rig.send(msg("/feedback/unsubscribe", 9001))
    for bad in (
        msg("/feedback/subscribe", 0),
        msg("/feedback/subscribe", 70000),
        msg("/feedback/subscribe", "x"),
        msg("/feedback/subscribe", 9001.5),
    ):
        rig.send(bad)
    assert rig.subs == [("127.0.0.1", 9001, True), ("127.0.0.1", 9001, False)]
    assert rig.c.malformed == 4


# -- patch routes ------------------------------------------------------------------


def test_osc_routes_enqueue_what_the_route_returns():
    seen = []

    def route(args, t):
        seen.append((args, t))
        return [Event("set", "/master/speed", float(args[0]) * 2, t, "osc")]

    def broken(args, t):
        raise ZeroDivisionError("patch bug")

    rig = Rig(routes={"/fader/1": route, "/fader/2": broken})
    (ev,) = rig.send(msg("/fader/1", 0.75))
    assert (ev.address, ev.value) == ("/master/speed", 1.5) and seen == [([0.75], NOW)]
    assert rig.send(msg("/fader/2", 1.0)) == [] and rig.c.malformed == 1


# -- allow list and queue --------------------------------------------------------------


def test_allow_list_drops_other_senders():
    rig = Rig(allow="192.168.1.0/24,10.0.0.7")
    assert rig.send(msg("/master/speed", 2.0), ("192.168.1.20", 1)) != []
    assert rig.send(msg("/master/speed", 2.0), ("10.0.0.7", 1)) != []
    assert rig.send(msg("/master/speed", 2.0), ("127.0.0.1", 1)) == []
    assert rig.send(msg("/ping"), ("10.0.0.8", 1)) == [] and rig.replies == []
    assert (rig.c.not_allowed, rig.c.dropped) == (2, 2)


def test_bad_allow_list_is_a_startup_error_naming_the_flag():
    from engine.errors import StartupError

    with pytest.raises(StartupError, match="--osc-allow.*'300.1.1.1/8'"):
        parse_allow("127.0.0.1/32,300.1.1.1/8")


def test_a_full_queue_counts_drops():
    rig = Rig(capacity=2)
    for v in ("/show/next", "/show/prev", "/show/next"):
        rig.d.handle(msg(v), SENDER)
    assert rig.c.dropped == 1


# -- malformed bytes ---------------------------------------------------------------------


def _malformed_samples() -> list[bytes]:
    rnd = random.Random(1)
    good = msg("/master/brightness", 0.5)
    samples = [
        b"",
        b"\x00",
        b"/",
        b"#bundle",
        b"#bundle\x00" + b"\x00" * 7,
        bytes(rnd.randrange(256) for _ in range(64)),
    ]
    samples += [good[:n] for n in range(1, len(good))]  # every truncation
    samples += [msg("/master/brightness", "x" * 65000), msg("/" + "a" * 65000, 1.0)]
    samples += [b"/master/brightness\x00\x00,f\x00\x00", b"/master/brightness\x00\x00,Q\x00\x00\x00\x00\x00\x00"]
    samples += [b"/master/brightness\x00\x00,s\x00\x00\xff\xfe\x00\x00"]  # invalid UTF-8
    samples += [b"#bundle\x00" + b"\x00" * 7 + b"\x01" + struct.pack(">i", 1000) + good]  # element size lies
    samples += [b"#bundle\x00" + b"\x00" * 7 + b"\x01" + struct.pack(">i", -4) + good]
    samples += [b"#bundle\x00" + b"\x00" * 7 + b"\x01" + struct.pack(">i", 8) + b"garbage!"]
    samples += [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 2000))) for _ in range(300)]
    samples += [b"/" + bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))) for _ in range(300)]
    return samples


def test_nothing_received_raises(rig):
    samples = _malformed_samples()
    for data in samples:
        rig.d.handle(data, SENDER)
    c = rig.c
    assert c.received == len(samples)
    assert c.malformed + c.dropped >= len(samples) - 5  # a random "/..." may decode as an unknown address
    assert all(isinstance(e.value, (float, int, str, type(None))) for e in rig.queue.drain(None))


def test_decode_refuses_oversized_messages_without_parsing_them():
    with pytest.raises(Malformed, match="longer than"):
        decode(msg("/master/brightness", "x" * 65000))


def test_encode_round_trips():
    m = OscMessage(encode("/status/scene", "Paintings"))
    assert (m.address, m.params) == ("/status/scene", ["Paintings"])


# -- helpers ----------------------------------------------------------------------------


def msg_obj(address: str, *args) -> OscMessage:
    return OscMessage(msg(address, *args))


class OscBundle:
    """Wraps raw bundle bytes so OscBundleBuilder can nest them."""

    def __new__(cls, dgram: bytes):
        from pythonosc.osc_bundle import OscBundle as Real

        return Real(dgram)


@pytest.mark.parametrize(
    "good",
    [
        msg("/master/brightness", 0.5),
        msg("/master/speed", 2.0, types="d"),
        msg("/show/scene", 2, types="h"),
        msg("/show/scene", "Paintings"),
        bundle(IMMEDIATELY, msg_obj("/master/speed", 2.0)),
    ],
)
def test_every_truncation_is_malformed_never_a_value(rig, good):
    assert rig.send(good) != []
    for n in range(len(good)):
        assert rig.send(good[:n]) == [], good[:n]
    empty_bundle = 1 if good.startswith(b"#bundle") else 0  # the 16-byte prefix alone is a valid empty bundle
    assert rig.c.malformed == len(good) - empty_bundle


# -- adversarial senders: nothing they send may crash the show or stall its frames ----------------


def test_scene_as_a_non_decimal_digit_string_is_malformed(rig):
    # "²".isdigit() is True but int("²") raises: the show's scene lookup raised on the loop
    # thread (a failed frame) for /show/scene s "²".
    for bad in ("²", "1²", " ³ "):
        assert rig.send(msg("/show/scene", bad)) == []
    assert rig.c.malformed == 3
    (ev,) = rig.send(msg("/show/scene", "٣"))  # Arabic-Indic 3: a decimal digit int() reads
    assert ev.value == "٣"


def test_pattern_with_many_wildcards_is_malformed_without_compiling(rig):
    # 48 groups compiled in about 1 ms, 100 times an ordinary message.
    for bad in ("/master/" + "{a,b}" * 48, "/master/" + "?" * 200, "/deck/a/latent/" + "[1-8]" * 20):
        with pytest.raises(PatternError, match="wildcards"):
            compile_pattern(bad)
        assert rig.send(msg(bad, 0.5)) == []
    assert rig.c.malformed == 3
    assert len(compile_pattern("/*/*/{a,b}/[1-4]?").pattern) > 0  # a few wildcards are fine


def test_new_patterns_are_compiled_within_a_budget_known_ones_always_match(rig):
    # A 64 KB bundle of distinct patterns took 200 ms on the receive thread; now only a burst
    # of new ones is compiled, the rest are dropped and counted until the budget refills.
    rig.send(msg("/deck/a/latent/*", 0.0))  # known before the flood
    data = bundle(IMMEDIATELY, *[msg_obj(f"/master/{{speed,x{i}}}", 1.0) for i in range(500)])
    evs = rig.send(data)
    assert len(evs) == NEW_PATTERN_BURST - 1
    assert rig.c.limited == 500 - (NEW_PATTERN_BURST - 1) and rig.c.dropped == rig.c.limited
    assert len(rig.send(msg("/deck/a/latent/*", 0.0))) == 8  # cached: never limited
    assert rig.send(msg("/master/{speed,brightness}", 1.0)) == []  # new, budget spent
    rig.clock += 1.0
    assert len(rig.send(msg("/master/{speed,brightness}", 1.0))) == 2


def test_wildcard_with_a_wrong_argument_counts_one_malformed_message(rig):
    assert rig.send(msg("/deck/a/latent/*", "loud")) == []
    assert rig.c.malformed == 1


def test_replies_per_datagram_are_capped(rig):
    # 1024 "/deck/a/*/* ?" in one 24 KB datagram made 36,864 replies and took 300 ms.
    data = bundle(IMMEDIATELY, *[msg_obj("/deck/a/*/*", "?") for _ in range(1024)])
    rig.send(data)
    assert len(rig.replies) == MAX_REPLIES
    assert rig.c.replies == MAX_REPLIES and rig.c.limited == 1024 * 36 - MAX_REPLIES
    rig.send(msg("/ping"))  # the next datagram is answered again
    assert rig.reply_messages()[-1] == ("/pong", [])


def test_verbs_are_rate_limited_per_address(rig):
    # 1024 /show/next in one bundle were 1024 scene loads in one frame: a 240 ms frame.
    evs = rig.send(bundle(IMMEDIATELY, *[msg_obj("/show/next") for _ in range(1024)]))
    assert len(evs) == VERB_BURST
    assert rig.c.limited == 1024 - VERB_BURST and rig.c.dropped == rig.c.limited
    assert len(rig.send(msg("/show/prev"))) == 1  # another verb has its own budget
    assert rig.send(msg("/show/next", 0)) == [] and rig.c.limited == 1024 - VERB_BURST  # a release costs nothing
    assert len(rig.send(msg("/master/speed", 2.0))) == 1  # params are never limited
    rig.clock += 1.0
    assert len(rig.send(bundle(IMMEDIATELY, *[msg_obj("/show/next") for _ in range(100)]))) == VERB_BURST


def test_text_prime_has_the_verb_limit_and_keeps_256_characters(rig):
    # The text stream types a primer at its rate (engine.seq.text bounds what waits).
    evs = rig.send(bundle(IMMEDIATELY, *[msg_obj("/text/prime", "x" * 300) for _ in range(50)]))
    assert len(evs) == VERB_BURST and all(len(ev.value) == 256 for ev in evs)


def test_feedback_subscribe_floods_are_limited(rig):
    rig.send(bundle(IMMEDIATELY, *[msg_obj("/feedback/subscribe", 9000 + i) for i in range(500)]))
    assert len(rig.subs) == VERB_BURST and rig.c.limited == 500 - VERB_BURST


@pytest.mark.parametrize("address", ["/learn/start", "/learn/unlearn"])
def test_learn_with_something_that_is_not_a_param_is_malformed(rig, address):
    # The learn control logged a warning for every such message, on the loop thread.
    for bad in ("/no/such/param", "/deck/a/latent/*", "x" * 1000):
        assert rig.send(msg(address, bad)) == []
    assert rig.c.malformed == 3
    evs = rig.send(msg(address, " /deck/a/speed ")) + rig.send(msg(address, ""))
    assert [e.value for e in evs] == ["/deck/a/speed", ""]


def test_patch_route_verbs_are_not_rate_limited():
    # Smoothed or pick-up routes turn every fader move into a /patch/route/<id> verb.
    rig = Rig(routes={"/fader/1": lambda args, t: [Event("verb", "/patch/route/1", float(args[0]), t, "osc")]})
    evs = rig.send(bundle(IMMEDIATELY, *[msg_obj("/fader/1", i / 100) for i in range(100)]))
    assert len(evs) == 100 and rig.c.limited == 0


def test_messages_with_more_arguments_than_anything_takes_are_malformed(rig):
    # 2,000 type tags ("[[[...]]]" or "TTT...") in one 2 KB message took 1 to 1.3 ms to parse;
    # nothing this engine understands takes more than one argument.
    nested = b"/master/speed\x00\x00\x00," + b"[" * 1000 + b"]" * 1000 + b"\x00\x00\x00"
    for data in (nested, msg("/master/speed", *[True] * (MAX_ARGS + 1))):
        with pytest.raises(Malformed, match="arguments"):
            decode(data)
        assert rig.send(data) == []
    assert rig.c.malformed == 2
    assert len(decode(msg("/master/speed", *[1.0] * MAX_ARGS))[0].args) == MAX_ARGS
