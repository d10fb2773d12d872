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
