import math

import pytest

from engine.core.params import Param, ParamError
from engine.core.space import LATENT_OFFSETS, build_registry


def test_address_scheme_fixed_for_later_issues():
    reg = build_registry()
    for a in (
        "/master/brightness",
        "/master/speed",
        "/master/blackout",
        "/master/freeze",
        "/master/blackout_fade",
        "/deck/a/speed",
        "/deck/a/truncation",
    ):
        assert a in reg
    assert f"/deck/a/latent/{LATENT_OFFSETS}" in reg and "/deck/a/latent/1" in reg
    assert "/deck/a/latent/0" not in reg  # indices are 1-based
    b = reg.param("/master/brightness")
    assert (b.lo, b.hi, b.default) == (0.0, 1.0, 1.0)
    s = reg.param("/master/speed")
    assert (s.lo, s.hi) == (0.0, 4.0)


def test_set_clamps_and_coerces():
    reg = build_registry()
    assert reg.set("/master/brightness", 7.5) == 1.0
    assert reg.get("/master/brightness") == 1.0
    assert reg.set("/master/brightness", -3) == 0.0
    assert reg.set("/master/blackout", 0.7) == 1.0  # bool threshold
    assert reg.set("/master/blackout", 0.2) == 0.0


@pytest.mark.parametrize("bad", [math.nan, "abc", None, object()])
def test_bad_values_are_rejected_and_counted_not_raised(bad):
    reg = build_registry()
    before = reg.get("/master/brightness")
    assert reg.set("/master/brightness", bad) is None
    assert reg.get("/master/brightness") == before
    assert reg.rejected == 1


def test_infinity_clamps():
    reg = build_registry()
    assert reg.set("/master/speed", math.inf) == 4.0


def test_unknown_address_is_counted():
    reg = build_registry()
    assert reg.set("/nope", 1.0) is None
    assert reg.toggle("/master/brightness") is None  # not a bool
    assert reg.rejected == 2


def test_smoothing_is_frame_rate_independent():
    a, b = build_registry(), build_registry()
    a.set("/deck/a/latent/1", 2.0)
    b.set("/deck/a/latent/1", 2.0)
    for _ in range(3):  # 0.1 s at 30 fps ...
        a.smooth(1 / 30)
    for _ in range(6):  # ... and at 60 fps
        b.smooth(1 / 60)
    va, vb = a.get("/deck/a/latent/1"), b.get("/deck/a/latent/1")
    assert 0.0 < va < 2.0
    assert va == pytest.approx(vb, rel=1e-9)
    tau = a.param("/deck/a/latent/1").smoothing
    assert va == pytest.approx(2.0 * (1 - math.exp(-0.1 / tau)))


def test_unsmoothed_params_jump():
    reg = build_registry()
    reg.set("/master/brightness", 0.25)
    assert reg.get("/master/brightness") == 0.25


def test_toggle_and_scale():
    reg = build_registry()
    reg.toggle("/master/freeze")
    assert reg.param("/master/freeze").target == 1.0
    reg.toggle("/master/freeze")
    assert reg.param("/master/freeze").target == 0.0
    reg.scale("/master/speed", 100)
    assert reg.param("/master/speed").target == 4.0


def test_configure_narrows_within_hard_range_only():
    reg = build_registry()
    reg.configure("/deck/a/speed", default=0.5, lo=0.25, hi=1.0)
    assert reg.set("/deck/a/speed", 3.0) == 1.0
    reg.configure("/deck/a/speed", default=2.0, lo=0.0, hi=4.0)  # widen back to hard range
    assert reg.param("/deck/a/speed").value == 2.0
    with pytest.raises(ParamError):
        reg.configure("/deck/a/speed", default=1.0, lo=0.0, hi=9.0)


def test_definitions_are_strict():
    with pytest.raises(ParamError, match="address"):
        Param("no-slash", "float", 0, 0, 1)
    with pytest.raises(ParamError, match="outside"):
        Param("/x", "float", 2, 0, 1)
    reg = build_registry()
    with pytest.raises(ParamError, match="twice"):
        reg.add(Param("/master/brightness", "float", 0, 0, 1))


def test_describe_lists_everything_needed_for_discovery():
    d = build_registry().param("/master/blackout_fade").describe()
    assert d["unit"] == "s" and d["type"] == "float" and d["description"]
