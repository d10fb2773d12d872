"""engine.core.checks: the value checks scenes, patches and latent paths share."""

import math
from pathlib import Path

import pytest

from engine.core.checks import Checker, parse_toml, shown
from engine.errors import SceneError, StartupError

HUGE = 10**400 - 1  # 400 nines


def ck(where: str = "") -> Checker:
    return Checker(Path("f.toml"), SceneError, where)


def fails(call, *fragments: str) -> str:
    with pytest.raises(SceneError) as e:
        call()
    msg = str(e.value)
    assert msg.startswith("f.toml: ") and "\n" not in msg, msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_message_names_file_place_key_expectation_and_value():
    msg = fails(lambda: ck("route #2 ('x'): ").integer("cc", 300, 0, 127))
    assert msg == "f.toml: route #2 ('x'): key 'cc': expected an integer from 0 to 127, got 300"
    assert str(ck().fail("k", "something")) == "f.toml: key 'k': expected something"  # no value: no tail
    assert ck().at("here: ").where == "here: " and ck().at("x").error is SceneError


@pytest.mark.parametrize("value", [True, False, 1.0, 2.5, "3", None, [1], {"a": 1}, math.nan, math.inf])
def test_integer_refuses_what_is_not_a_whole_toml_integer(value):
    fails(lambda: ck().integer("seed", value), "key 'seed'", "an integer")


def test_integer_bounds_and_huge_values():
    assert ck().integer("n", 5, 0, 9) == 5 and ck().integer("n", -0) == 0 and ck().integer("n", HUGE) == HUGE
    fails(lambda: ck().integer("n", HUGE, 0, 9), "an integer from 0 to 9", "(400 digits)")
    fails(lambda: ck().integer("n", -1, 0, 9), "an integer from 0 to 9, got -1")


@pytest.mark.parametrize(
    "value", [True, "1.0", None, [1.0], {"a": {"b": 1}}, math.nan, math.inf, -math.inf, HUGE, -HUGE]
)
def test_number_refuses_what_is_not_a_finite_number(value):
    fails(lambda: ck().number("x", value), "key 'x'", "a finite number")


def test_number_converts_ranges_and_words_the_range():
    x = ck().number("x", 3)
    assert x == 3.0 and isinstance(x, float)
    z = ck().number("x", -0.0)
    assert z == 0.0 and math.copysign(1.0, z) == 1.0  # -0.0 is read as 0.0
    assert ck().number("x", 2**1000) == float(2**1000)  # large but finite
    fails(lambda: ck().number("x", 5, 0, 1), "a number from 0 to 1, got 5")
    fails(lambda: ck().number("x", 5, 0, 1, "seconds from 0 to 1"), "seconds from 0 to 1, got 5")
    fails(lambda: ck().number("x", "5", 0, 1, "seconds from 0 to 1"), "a finite number")  # not a number at all


def test_the_other_checks():
    assert ck().boolean("b", True) is True
    fails(lambda: ck().boolean("b", 1), "true or false, got 1")
    assert ck().choice("c", "a", ("a", "b")) == "a"
    fails(lambda: ck().choice("c", ["a"], ("a", "b")), "one of a, b, got ['a']")
    assert ck().text("t", "") == ""
    fails(lambda: ck().text("t", 3), "a string, got 3")
    assert ck().pair("p", [0, 1.5]) == (0.0, 1.5)
    fails(lambda: ck().pair("p", [0, 1, 2]), "[low, high] (two numbers)")
    fails(lambda: ck().pair("p", [0, math.nan]), "key 'p'", "a finite number")
    assert ck().table("t", {}, "a table") == {}
    fails(lambda: ck().table("t", [], "a [t] table"), "a [t] table, got []")
    ck().unknown({"a": 1}, {"a", "b"})
    fails(lambda: ck().unknown({"a": 1, "c": 2}, {"a", "b"}, "s."), "key 's.c'", "one of a, b (unknown key)")


def test_existing_file(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "m.bin").write_bytes(b"")
    roots = (tmp_path / "a", tmp_path / "b")
    assert ck().existing_file("m", "m.bin", "model file", roots) == (tmp_path / "b" / "m.bin").resolve()
    fails(lambda: ck().existing_file("m", "x.bin", "model file", roots), "an existing model file (tried", " or ")
    fails(lambda: ck().existing_file("m", "", "model file", roots), "a path to a model file (string)")
    fails(lambda: ck().existing_file("m", 3, "model file", roots), "a path to a model file (string), got 3")


def test_shown_keeps_messages_one_short_line():
    assert shown("abc") == "'abc'" and shown(1.5) == "1.5"
    assert shown(HUGE).endswith("... (400 digits)") and len(shown(HUGE)) < 100
    assert shown("x" * 1000).endswith("... (1002 characters)")
    deep: list = []
    for _ in range(100_000):  # deeper than repr can go
        deep = [deep]
    assert shown(deep) == "a list"


def test_default_error_is_startup_error_and_any_class_will_do():
    with pytest.raises(StartupError):
        raise Checker("f").fail("k", "x")
    with pytest.raises(ValueError, match="^path kind 'walk': key 'k': expected x$"):
        raise Checker("path kind 'walk'", ValueError).fail("k", "x")


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"a = [\n", "not valid TOML"),
        (b'a = "\xff"\n', "not UTF-8 text (byte 0xff"),
        (b"a = " + b"9" * 5000 + b"\n", "ValueError: Exceeds the limit"),
        (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "RecursionError"),
    ],
)
def test_parse_toml_turns_every_tomllib_failure_into_the_error(raw, fragment):
    with pytest.raises(SceneError) as e:
        parse_toml(Path("f.toml"), raw, SceneError)
    msg = str(e.value)
    assert msg.startswith("f.toml: not valid TOML") and fragment in msg and len(msg) < 400, msg
    assert parse_toml(Path("f.toml"), b"a = 1\n", SceneError) == {"a": 1}
