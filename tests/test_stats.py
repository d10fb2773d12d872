import pytest

from engine.core.stats import FrameStats, format_summary


def test_summary_after_warmup_and_late_frames():
    s = FrameStats(60, warmup_s=1.0)
    t = 0.0
    s.presented(t)
    for i in range(300):
        t += 0.05 if i == 200 else 1 / 60  # one 50 ms hitch
        s.presented(t)
    out = s.summary()
    assert out["frames"] == 301
    assert out["late_frames"] == 1
    assert out["frame_ms"]["p50"] == pytest.approx(16.667, abs=0.01)
    assert out["frame_ms"]["max"] == pytest.approx(50.0, abs=0.01)
    assert 55 < out["fps"] < 60
    assert set(out) >= {"frames", "seconds", "fps", "frame_ms", "late_frames"}
    assert "fps" in format_summary(out)


def test_empty_stats_do_not_crash():
    out = FrameStats(60).summary()
    assert out["frames"] == 0 and out["fps"] == 0.0


def test_percentiles_from_the_histogram_match_the_exact_ones_in_constant_memory():
    import numpy as np

    rng = np.random.default_rng(0)
    iv = rng.gamma(20.0, 16.7 / 20.0, size=20000) / 1000.0  # seconds, around a 60 fps frame
    s = FrameStats(60, warmup_s=0.0)
    t = 0.0
    s.presented(t)
    size = s._hist.nbytes
    for x in iv:
        t += float(x)
        s.presented(t)
    out = s.summary()["frame_ms"]
    exact = np.percentile(iv * 1000.0, [50, 95, 99])
    assert [out["p50"], out["p95"], out["p99"]] == pytest.approx(list(exact), abs=0.02)
    assert out["max"] == pytest.approx(iv.max() * 1000.0, abs=0.001) and s._hist.nbytes == size
