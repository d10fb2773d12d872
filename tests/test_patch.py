"""Patch files: validation messages, every shipped patch, mapping curves, merging, writing."""

import copy
import math
import random
from pathlib import Path

import pytest
import tomllib

from engine.core.space import build_registry
from engine.errors import PatchError, StartupError
from engine.files.patch import (
    MidiSource,
    OscSource,
    Route,
    _toml_value,
    dump_routes,
    load_patch,
    load_patches,
    shape,
    to_position,
    to_value,
    unshape,
)
from tests.conftest import REPO

PATCHES = sorted((REPO / "patches").glob("*.toml"))


def write(tmp_path: Path, body: str, name: str = "p.toml") -> Path:
    f = tmp_path / name
    f.write_text(body)
    return f


@pytest.mark.parametrize("path", PATCHES, ids=lambda p: p.name)
def test_every_shipped_patch_loads(path):
    patch = load_patch(path, build_registry())
    assert patch.routes and patch.name


def test_shipped_patches_cover_the_controllers():
    names = {p.name for p in PATCHES}
    assert {
        "nanokontrol2.toml",
        "launch_control_xl.toml",
        "apc_mini_mk2.toml",
        "midifighter_twister.toml",
        "osc_apps.toml",
        "audio_reactive.toml",
    } <= names


ROUTE = '[[route]]\nname = "f1"\nsource = { type = "midi", cc = 0 }\naddress = "/master/brightness"\n'


HUGE = "9" * 400

_MALFORMED = [  # (route text, key, expected): the same checks as scenes (engine.core.checks)
    (ROUTE.replace("cc = 0", f"cc = {HUGE}"), "source.cc", "an integer from 0 to 127"),
    (ROUTE.replace("cc = 0", "cc = 1.0"), "source.cc", "an integer from 0 to 127"),
    (ROUTE.replace("cc = 0", "cc = true"), "source.cc", "an integer from 0 to 127"),
    (ROUTE.replace("cc = 0", "cc = nan"), "source.cc", "an integer from 0 to 127"),
    (ROUTE.replace("cc = 0", 'cc = "0"'), "source.cc", "an integer from 0 to 127"),
    (ROUTE.replace("cc = 0", "cc = { x = 1 }"), "source.cc", "an integer from 0 to 127"),
    (ROUTE + "smoothing = nan\n", "smoothing", "a finite number"),
    (ROUTE + "smoothing = inf\n", "smoothing", "a finite number"),
    (ROUTE + "smoothing = 1e400\n", "smoothing", "a finite number"),
    (ROUTE + "smoothing = true\n", "smoothing", "a finite number"),
    (ROUTE + 'smoothing = "0.1"\n', "smoothing", "a finite number"),
    (ROUTE + "smoothing = [0.1]\n", "smoothing", "a finite number"),
    (ROUTE + "smoothing = { a = { b = 1 } }\n", "smoothing", "a finite number"),
    (ROUTE + f"range = [0, {HUGE}]\n", "range", "a finite number"),
    (ROUTE + "range = [nan, 1]\n", "range", "a finite number"),
    (ROUTE + "range = [0, [1]]\n", "range", "a finite number"),
    (ROUTE + f'mode = "trigger"\nvalue = -{HUGE}\n', "value", "a finite number"),
    (ROUTE + "invert = 0\n", "invert", "true or false"),
    (ROUTE + 'curve = ["linear"]\n', "curve", "one of linear"),
    ("name = { a = 1 }\n", "name", "a string"),
    (
        f'[[route]]\nsource = {{ type = "lfo", rate = {HUGE} }}\naddress = "/deck/a/latent/1"\n',
        "source.rate",
        "a finite number",
    ),
    (
        f'[[route]]\nsource = {{ type = "lfo", rate = 1, seed = {HUGE} }}\naddress = "/deck/a/latent/1"\n',
        "source.seed",
        "an integer from 0 to",
    ),
    (
        '[[route]]\nsource = { type = "beat", phase = -inf }\naddress = "/deck/a/latent/1"\n',
        "source.phase",
        "a finite number",
    ),
]


@pytest.mark.parametrize(
    "body,key,expected",
    [
        (ROUTE.replace("/master/brightness", "/master/nope"), "address", "a param address"),
        (ROUTE.replace("cc = 0", "cc = 200"), "source.cc", "an integer from 0 to 127"),
        (ROUTE + 'curve = "wobbly"\n', "curve", "one of linear, exponential, logarithmic"),
        (ROUTE.replace('type = "midi", ', 'type = "midi", channel = 17, '), "source.channel", "from 1 to 16"),
        (ROUTE + "colour = 3\n", "colour", "unknown key"),
        (ROUTE + "invert = 1\n", "invert", "true or false"),
        (ROUTE + 'takeover = "grab"\n', "takeover", "one of jump, pickup, scale"),
        (ROUTE + "range = [0, 5]\n", "range", "inside 0.0..1.0"),
        (ROUTE.replace("cc = 0", "cc14 = 40"), "source.cc14", "from 0 to 31"),
        (ROUTE.replace("cc = 0", "cc = 0, note = 1"), "source", "exactly one of"),
        (ROUTE.replace('type = "midi"', 'type = "video"'), "source.type", "one of midi, osc, audio, lfo, beat"),
        (ROUTE + "amount = 0.5\n", "amount", "no amount on a MIDI or OSC route"),
        (ROUTE.replace('address = "/master/brightness"', 'verb = "/show/explode"'), "verb", "one of"),
        (ROUTE + 'mode = "toggle"\n', "mode", "not a bool param"),
        (ROUTE + 'mode = "relative"\n'.replace("relative", "velocity"), "mode", "one of absolute"),
        (ROUTE + "feedback = true\nsmoothing = -1\n", "smoothing", "seconds from 0 to 60"),
        (
            '[[route]]\nsource = { type = "osc", address = "brightness" }\naddress = "/master/brightness"\n',
            "source.address",
            "an OSC address",
        ),
        ('[[route]]\nsource = { type = "midi", cc = 1 }\n', "address", "either address"),
        ("[midi]\nchannel = 0\n", "midi.channel", "from 1 to 16"),
        ("nonsense = 1\n", "nonsense", "unknown key"),
        # TOML integers are unbounded: 10**400 once leaked OverflowError out of the number check
        (ROUTE + "smoothing = 1" + "0" * 400 + "\n", "smoothing", "a finite number"),
        (ROUTE + "range = [0, -1" + "0" * 400 + "]\n", "range", "a finite number"),
    ]
    + _MALFORMED,
)
def test_bad_patches_name_file_route_and_key(tmp_path, body, key, expected):
    f = write(tmp_path, body)
    with pytest.raises(StartupError) as err:
        load_patch(f, build_registry())
    msg = str(err.value)
    assert str(f) in msg and f"key '{key}'" in msg and expected in msg, msg
    assert isinstance(err.value, PatchError) and "\n" not in msg and "9" * 100 not in msg, msg  # one short line
    if "[[route]]" in body:
        assert "route #1" in msg


MOD = '[[route]]\nname = "m"\nsource = {src}\naddress = "/deck/a/latent/1"\n'
LFO = '{ type = "lfo", shape = "sine", rate = 1.0 }'


@pytest.mark.parametrize(
    "src,extra,key,expected",
    [
        ('{ type = "audio", feature = "bass" }', "", "source.feature", "one of rms, low, mid, high, onset"),
        ('{ type = "audio" }', "", "source.feature", "one of rms"),
        ('{ type = "audio", feature = "rms", input = [0.5, 0.5] }', "", "source.input", "two different numbers"),
        ('{ type = "audio", feature = "rms", gain = 2 }', "", "source.gain", "unknown key"),
        ('{ type = "lfo", shape = "sine", rate = -1.0 }', "", "source.rate", "Hz above 0"),
        ('{ type = "lfo", shape = "sine", rate = 0 }', "", "source.rate", "Hz above 0"),
        ('{ type = "lfo", shape = "sine", rate = 1.0, beats = 4 }', "", "source.rate", "either rate (Hz) or beats"),
        ('{ type = "lfo", shape = "sine" }', "", "source.rate", "not both or neither"),
        ('{ type = "lfo", shape = "wobble", rate = 1.0 }', "", "source.shape", "one of sine, triangle, saw"),
        ('{ type = "lfo", rate = 1.0, phase = 1.5 }', "", "source.phase", "from 0 to 1"),
        ('{ type = "lfo", rate = "fast" }', "", "source.rate", "a finite number"),
        ('{ type = "lfo", beats = 0 }', "", "source.beats", "beats above 0"),
        ('{ type = "lfo", shape = "random", beats = 4, seed = -1 }', "", "source.seed", "an integer from 0"),
        ('{ type = "beat", division = 0 }', "", "source.division", "beats above 0"),
        ('{ type = "beat", shape = "ramp", decay = 0.2 }', "", "source.decay", "no decay on a ramp"),
        ('{ type = "beat", decay = -0.2 }', "", "source.decay", "seconds above 0"),
        ('{ type = "beat", shape = "sine" }', "", "source.shape", "one of pulse, ramp"),
        (LFO, 'mode = "add"\n', "amount", "the largest offset"),
        (LFO, 'mode = "add"\namount = 9\n', "amount", "a number from -6 to 6"),
        (LFO, 'mode = "add"\namount = 1\nrange = [0, 1]\n', "range", "amount instead"),
        (LFO, "amount = 1\n", "amount", 'no amount unless mode = "add"'),
        (LFO, 'mode = "relative"\n', "mode", "one of absolute, add"),
        (LFO, 'takeover = "pickup"\n', "takeover", "lfo sources modulate params"),
        (LFO, "feedback = true\n", "feedback", "lfo sources modulate params"),
        (LFO, "range = [0, 9]\n", "range", "inside -3.0..3.0"),
        (LFO, "smoothing = 100\n", "smoothing", "seconds from 0 to 60"),
    ],
)
def test_bad_modulation_routes_name_file_route_and_key(tmp_path, src, extra, key, expected):
    f = write(tmp_path, MOD.format(src=src) + extra)
    with pytest.raises(StartupError) as err:
        load_patch(f, build_registry())
    msg = str(err.value)
    assert str(f) in msg and "route #1 ('m')" in msg and f"key '{key}'" in msg and expected in msg, msg


def test_modulation_route_needs_an_address_not_a_verb(tmp_path):
    f = write(tmp_path, '[[route]]\nsource = { type = "beat" }\nverb = "/show/next"\n')
    with pytest.raises(StartupError, match="key 'verb': expected address"):
        load_patch(f, build_registry())
    f = write(tmp_path, '[[route]]\nsource = { type = "beat" }\n')
    with pytest.raises(StartupError, match="key 'address': expected a param address to modulate"):
        load_patch(f, build_registry())


def test_modulation_sources_and_defaults(tmp_path):
    f = write(
        tmp_path,
        MOD.format(src='{ type = "beat" }')
        + MOD.format(src='{ type = "lfo", beats = 8 }')
        + MOD.format(src='{ type = "audio", feature = "low", input = [0.2, 0.8] }')
        + 'mode = "add"\namount = -1.5\nsmoothing = 0.3\n',
    )
    beat, lfo, audio = load_patch(f, build_registry()).routes
    assert (beat.source.division, beat.source.shape, beat.source.decay, beat.source.phase) == (1.0, "pulse", 0.1, 0.0)
    assert (lfo.source.shape, lfo.source.rate, lfo.source.beats, lfo.source.seed) == ("sine", None, 8.0, 2)
    assert audio.source.input == (0.2, 0.8) and audio.mode == "add" and audio.amount == -1.5
    assert all(r.is_modulation and not r.needs_loop for r in (beat, lfo, audio)) and beat.mode == "absolute"


def test_later_files_win_for_the_same_modulation_source(tmp_path):
    a = write(
        tmp_path,
        MOD.format(src='{ type = "audio", feature = "rms" }') + MOD.format(src='{ type = "audio", feature = "low" }'),
        "a.toml",
    )
    b = write(tmp_path, MOD.format(src='{ type = "audio", feature = "rms" }').replace("latent/1", "latent/2"), "b.toml")
    routes = load_patches([a, b], build_registry())
    assert {r.source.feature: r.address for r in routes} == {"low": "/deck/a/latent/1", "rms": "/deck/a/latent/2"}


def test_route_is_named_by_number_and_name(tmp_path):
    f = write(tmp_path, ROUTE + ROUTE.replace('"f1"', '"fader two"').replace("cc = 0", "cc = 999"))
    with pytest.raises(StartupError, match=r"route #2 \('fader two'\): key 'source.cc'"):
        load_patch(f, build_registry())


def test_malformed_toml_and_missing_file(tmp_path):
    with pytest.raises(StartupError, match="not valid TOML"):
        load_patch(write(tmp_path, "[[route]\nx ="), build_registry())
    with pytest.raises(StartupError, match="patch file not found"):
        load_patch(tmp_path / "absent.toml", build_registry())


@pytest.mark.parametrize(
    "raw",
    [
        ROUTE.encode().replace(b"f1", b"f\xe9"),  # Latin-1, not UTF-8
        'name = "caf\u00e9"\n'.encode()[:-3],  # cut inside a two-byte character (a half-written file)
        b"x = 1" + b"0" * 5000 + b"\n",  # past int()'s 4300-digit limit
        b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",  # nested deeper than the recursion limit
    ],
)
def test_files_tomllib_chokes_on_are_startup_errors(tmp_path, raw):
    """tomllib lets UnicodeDecodeError, ValueError and RecursionError through: each once
    reached the CLI as a traceback instead of one line naming the file."""
    f = tmp_path / "p.toml"
    f.write_bytes(raw)
    with pytest.raises(StartupError, match="not valid TOML") as err:
        load_patch(f, build_registry())
    assert str(f) in str(err.value) and len(str(err.value)) < 400


def _mutations(rng, value, depth=0):
    """A replacement value for a patch key: every TOML type, edges, NaN/inf, huge, empty."""
    pool = [
        "",
        "linear",
        "exponential",
        "pickup",
        "scale",
        "relative",
        "toggle",
        "gate",
        "velocity",
        "add",
        "twos",
        "offset",
        "osc",
        "lfo",
        "beat",
        "audio",
        "random",
        "/x",
        "/master/brightness",
        "/show/next",
        0,
        1,
        -1,
        16,
        17,
        31,
        32,
        127,
        128,
        200,
        16383,
        16384,
        2**63 - 1,
        -(2**63),
        10**400,
        0.0,
        0.5,
        -1.0,
        1e308,
        5e-324,
        float("nan"),
        float("inf"),
        float("-inf"),
        60.5,
        True,
        False,
        [],
        [1, 0],
        [0.5, 0.5],
        [0, 1, 2],
        ["a", 1],
        {},
        {"cc": 64},
        {"note": 3, "channel": 17},
        {"type": "midi", "nrpn": 16384},
        {"type": "midi", "note": -1},
        {"type": "midi", "cc": 128, "channel": 0},
    ]
    v = rng.choice(pool)
    if depth < 2 and rng.random() < 0.1:
        v = [_mutations(rng, value, depth + 1) for _ in range(rng.randrange(3))]
    return v


def _toml(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(x)}' for k, x in v.items()) + " }"
    return _toml_value(v)


def _dump(d: dict) -> str:
    routes = d.get("route")
    as_tables = isinstance(routes, list) and routes and all(isinstance(r, dict) for r in routes)
    lines = [f'"{k}" = {_toml(v)}' for k, v in d.items() if not (k == "route" and as_tables)]
    for r in routes if as_tables else ():
        lines += ["[[route]]"] + [f'"{k}" = {_toml(v)}' for k, v in r.items()]
    return "\n".join(lines) + "\n"


def test_mutated_shipped_patches_load_or_fail_with_one_line(tmp_path):
    """Fuzz (fixed seed): drop keys, swap types, edge numbers, unknown keys, duplicate routes.
    The only acceptable outcomes are a loaded patch or a StartupError naming the file and a key."""
    rng = random.Random(7)
    bases = [tomllib.loads(p.read_text()) for p in PATCHES]
    keys = (
        "name source address verb value mode range curve invert takeover smoothing feedback "
        "feedback_channel feedback_on step encoding bits amount pickup_led bogus type channel cc cc14 "
        "nrpn note program pitchbend input shape rate beats phase division decay"
    ).split()
    registry, loaded, refused = build_registry(), 0, 0
    f = tmp_path / "m.toml"
    for _ in range(1000):
        base = rng.choice(bases)
        d = copy.deepcopy({**base, "route": rng.sample(base["route"], 3)})  # routes are checked one by one
        routes = d["route"]
        for _ in range(rng.randrange(1, 4)):
            r = rng.choice(routes)
            table = r["source"] if rng.random() < 0.4 and isinstance(r.get("source"), dict) else r
            op = rng.randrange(6)
            if op == 0 and table:
                del table[rng.choice(list(table))]
            elif op in (1, 2) and table:
                table[rng.choice(list(table))] = _mutations(rng, None)
            elif op == 3:
                table[rng.choice(keys)] = _mutations(rng, None)
            elif op == 4:
                routes.append(copy.deepcopy(r))  # two routes for the same source
            else:
                d[rng.choice(["name", "midi", "bogus"])] = _mutations(rng, None)
        f.write_text(_dump(d))
        try:
            load_patch(f, registry)
            loaded += 1
        except StartupError as e:
            refused += 1
            msg = str(e)
            assert str(f) in msg and ("key '" in msg or "not valid TOML" in msg), msg
    assert loaded > 100 and refused > 100  # both outcomes were exercised


def test_defaults_and_modes(tmp_path):
    f = write(
        tmp_path,
        '[midi]\nport = "nano"\nchannel = 3\n'
        + ROUTE
        + '[[route]]\nsource = { type = "midi", note = 5 }\naddress = "/master/freeze"\n'
        + '[[route]]\nsource = { type = "midi", note = 6, channel = 1 }\naddress = "/master/speed"\n'
        + '[[route]]\nsource = { type = "midi", cc = 9 }\nverb = "/show/scene"\nvalue = 2\n',
    )
    r = load_patch(f, build_registry()).routes
    assert r[0].source == MidiSource("cc", 0, 2, "nano") and r[0].mode == "absolute"
    assert r[1].mode == "toggle" and r[2].mode == "velocity" and r[2].source.channel == 0
    assert r[3].mode == "trigger" and r[3].value == 2


def test_later_files_win_for_the_same_source(tmp_path):
    a = write(tmp_path, ROUTE + ROUTE.replace("cc = 0", "cc = 1"), "a.toml")
    b = write(tmp_path, ROUTE.replace("/master/brightness", "/master/speed"), "b.toml")
    routes = load_patches([a, b], build_registry())
    by_cc = {r.source.number: r.address for r in routes}
    assert by_cc == {0: "/master/speed", 1: "/master/brightness"}
    fan = write(tmp_path, ROUTE + ROUTE.replace("/master/brightness", "/master/speed"), "fan.toml")
    assert len(load_patches([fan], build_registry())) == 2  # one fader, two params: allowed in one file


def _route(**kw):
    return Route(Path("x"), 1, "", MidiSource("cc", 0, 0), "absolute", address="/master/speed", **kw)


@pytest.mark.parametrize("curve", ["linear", "exponential", "logarithmic"])
def test_curves_are_monotonic_and_invertible(curve):
    xs = [i / 20 for i in range(21)]
    ys = [shape(x, curve) for x in xs]
    assert ys[0] == pytest.approx(0) and ys[-1] == pytest.approx(1)
    assert all(a < b for a, b in zip(ys, ys[1:]))
    assert all(unshape(y, curve) == pytest.approx(x) for x, y in zip(xs, ys))


def test_exponential_is_slow_at_first_and_log_fast():
    assert shape(0.5, "exponential") < 0.5 < shape(0.5, "logarithmic")


def test_range_invert_and_position_round_trip():
    r = _route(range=(1.0, 3.0), invert=True, curve="exponential")
    assert to_value(r, 0.0, 0, 4) == pytest.approx(3.0) and to_value(r, 1.0, 0, 4) == pytest.approx(1.0)
    assert to_value(r, 2.0, 0, 4) == pytest.approx(1.0)  # positions clamp
    for pos in (0.0, 0.3, 0.8, 1.0):
        assert to_position(r, to_value(r, pos, 0, 4), 0, 4) == pytest.approx(pos)
    plain = _route()
    assert to_value(plain, 0.5, 0.0, 4.0) == 2.0  # no range: the param's current range


def test_dump_round_trips(tmp_path):
    routes = [
        _route(range=(0.5, 2.0), curve="logarithmic", takeover="pickup", feedback=True, smoothing=0.2),
        Route(
            Path("x"),
            2,
            'quote " and \\ and \x07',
            MidiSource("note", 36, 9, "APC mini"),
            "toggle",
            address="/master/blackout",
            feedback=True,
            feedback_channel=6,
            feedback_on=5,
        ),
        Route(Path("x"), 3, "", MidiSource("pitchbend", 0, 0), "absolute", address="/deck/a/latent/1"),
        Route(Path("x"), 4, "", OscSource("/go", (0.0, 127.0)), "trigger", verb="/show/scene", value=3.0),
        Route(
            Path("x"), 5, "", MidiSource("cc", 7, 1), "relative", address="/master/speed", step=0.1, encoding="offset"
        ),
    ]
    f = write(tmp_path, dump_routes("learned", routes, "a header\nsecond line"))
    back = load_patch(f, build_registry()).routes
    from dataclasses import replace

    assert [replace(r, file=Path("x"), index=0) for r in back] == [replace(r, index=0) for r in routes]


def test_modulation_routes_round_trip_through_dump(tmp_path):
    reg = build_registry()
    routes = load_patch(REPO / "patches" / "audio_reactive.toml", reg).routes
    f = write(tmp_path, dump_routes("again", routes), "again.toml")
    again = load_patch(f, reg).routes
    strip = [(r.name, r.source, r.mode, r.address, r.range, r.curve, r.invert, r.smoothing, r.amount) for r in routes]
    assert [
        (r.name, r.source, r.mode, r.address, r.range, r.curve, r.invert, r.smoothing, r.amount) for r in again
    ] == strip


def test_pickup_led_is_checked(tmp_path):
    reg = build_registry()
    ok = write(
        tmp_path,
        '[[route]]\nsource = { type = "midi", cc = 0 }\naddress = "/master/brightness"\n'
        'takeover = "pickup"\npickup_led = { note = 8, channel = 2, on = 3 }\n',
    )
    led = load_patch(ok, reg).routes[0].pickup_led
    assert (led.kind, led.number, led.channel, led.on, led.off) == ("note", 8, 1, 3, 0)
    assert led.message(True, 0) == (0x91, 8, 3) and led.message(False, 0) == (0x91, 8, 0)
    bad = {
        'takeover = "jump"\npickup_led = { cc = 64 }': r"key 'pickup_led': expected a route with takeover = \"pickup\"",
        'takeover = "pickup"\npickup_led = { cc = 200 }': r"key 'pickup_led\.cc': expected an integer from 0 to 127",
        'takeover = "pickup"\npickup_led = 64': r"key 'pickup_led': expected a table with cc",
        'takeover = "pickup"\npickup_led = { cc = 1, colour = 3 }': r"pickup_led\.colour",
    }
    for body, message in bad.items():
        f = write(
            tmp_path, '[[route]]\nsource = { type = "midi", cc = 0 }\naddress = "/master/brightness"\n' + body + "\n"
        )
        with pytest.raises(StartupError, match=message):
            load_patch(f, reg)


def test_edge_values_that_are_fine(tmp_path):
    f = write(tmp_path, ROUTE.replace("cc = 0", "cc = -0") + "smoothing = -0.0\nrange = [-0.0, 1]\n")
    r = load_patch(f, build_registry()).routes[0]
    assert r.source.number == 0 and r.smoothing == 0.0 and str(r.range[0]) == "0.0"
