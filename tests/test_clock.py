import pytest

from engine.clock import FixedClock, LiveClock, Pacer


def test_fixed_clock_exact_times():
    c = FixedClock(30)
    ticks = [c.tick() for _ in range(301)]
    assert ticks[0] == (0.0, 0.0)
    assert ticks[300][0] == 10.0
    assert all(dt == pytest.approx(1 / 30) for _, dt in ticks[1:])


def test_fixed_clock_rejects_bad_fps():
    with pytest.raises(ValueError):
        FixedClock(0)


class FakeTime:
    def __init__(self):
        self.t = 100.0
        self.sleeps = []

    def now(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += max(s, 1e-5)


def test_live_clock_uses_injected_time_and_clamps_stalls():
    ft = FakeTime()
    c = LiveClock(now=ft.now, max_dt=0.1)
    assert c.tick() == (0.0, 0.0)
    ft.t += 0.016
    t, dt = c.tick()
    assert t == pytest.approx(0.016) and dt == pytest.approx(0.016)
    ft.t += 5.0  # a stall
    t, dt = c.tick()
    assert t == pytest.approx(5.016) and dt == pytest.approx(0.1)


def test_pacer_holds_a_fixed_grid_without_drift():
    ft = FakeTime()
    p = Pacer(60, now=ft.now, sleep=ft.sleep)
    p.wait()
    start = ft.t
    times = []
    for _ in range(120):
        ft.t += 0.004  # work
        p.wait()
        times.append(ft.t - start)
    # each wait ends at (or just after) the k-th deadline; no accumulated drift
    assert times[-1] == pytest.approx(120 / 60, abs=1e-3)


def test_pacer_restarts_grid_after_stall():
    ft = FakeTime()
    p = Pacer(60, now=ft.now, sleep=ft.sleep)
    p.wait()
    ft.t += 1.0
    n = len(ft.sleeps)
    p.wait()  # late by far more than a period: no catch-up burst, no sleep
    assert len(ft.sleeps) == n
