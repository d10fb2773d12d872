import pytest

from engine.core.clock import FixedClock, LiveClock, Pacer


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


def test_pacer_hold_wakes_lead_seconds_before_the_deadline():
    ft = FakeTime()
    p = Pacer(60, now=ft.now, sleep=ft.sleep)
    p.wait()  # starts the grid: the next deadline is 1/60 s from now
    start = ft.t
    p.hold(0.010)  # wake 10 ms before the deadline, do the work ...
    assert ft.t - start == pytest.approx(1 / 60 - 0.010, abs=1e-3)
    ft.t += 0.004
    p.wait(0.002)  # ... then the last part 2 ms before it
    assert ft.t - start == pytest.approx(1 / 60 - 0.002, abs=1e-3)
    p.hold(1.0)  # a lead longer than a period: never before the previous deadline
    assert ft.t - start == pytest.approx(1 / 60, abs=1e-3)


def test_work_estimate_follows_a_high_quantile_not_one_spike():
    from engine.core.clock import WorkEstimate

    w = WorkEstimate(quantile=0.9, window=100, margin=0.0005, initial=0.004)
    for _ in range(100):
        w.observe(0.002)
    assert w.lead == pytest.approx(0.0025)
    w.observe(0.030)  # one preempted frame does not move every later frame's start
    for _ in range(7):
        w.observe(0.002)
    assert w.lead == pytest.approx(0.0025)
    for _ in range(100):
        w.observe(0.006)
    assert w.lead == pytest.approx(0.0065)
