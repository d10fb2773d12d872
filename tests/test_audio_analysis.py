"""Audio features on synthetic signals, and the capture callback that only copies."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.devices.audio_in import Capture
from engine.dsp.analysis import AnalysisConfig, FeatureExtractor, db_to_unit

RATE = 48000
T = np.arange(4 * RATE) / RATE


def faded(n: int) -> np.ndarray:
    """A 10 ms fade in and out, so a burst's end is not a click."""
    w = np.ones(n)
    k = min(480, n // 4)
    w[:k], w[-k:] = np.linspace(0, 1, k), np.linspace(1, 0, k)
    return w


def onsets(x: np.ndarray, chunk: int = 512) -> list[float]:
    """Feed x in chunks; the times (s) at which the onset count rose."""
    fe, times, count = FeatureExtractor(RATE), [], 0
    for i in range(0, len(x), chunk):
        f = fe.process(x[i : i + chunk])
        if f.onsets > count:
            times.append(i / RATE)
            count = f.onsets
    return times


@pytest.mark.parametrize("hz,band", [(100, "low"), (800, "mid"), (5000, "high")])
def test_a_sine_raises_its_own_band_only(hz, band):
    f = FeatureExtractor(RATE).process(0.5 * np.sin(2 * np.pi * hz * T[:RATE]))
    levels = {"low": f.low, "mid": f.mid, "high": f.high}
    assert levels[band] == pytest.approx(db_to_unit(0.5, -60.0), abs=0.02)  # 0.5 = -6 dBFS -> 0.9
    assert all(v < 0.2 for k, v in levels.items() if k != band)
    assert f.rms == pytest.approx(0.9, abs=0.02)


def test_silence_is_zero_everywhere():
    f = FeatureExtractor(RATE).process(np.zeros(RATE))
    assert (f.rms, f.low, f.mid, f.high, f.onset, f.onsets) == (0, 0, 0, 0, 0, 0)


def test_a_sine_burst_gives_one_onset_at_its_start():
    x = np.zeros(2 * RATE)
    x[RATE // 2 : RATE // 2 + 6000] = 0.5 * np.sin(2 * np.pi * 440 * T[:6000]) * faded(6000)
    assert onsets(x) == [pytest.approx(0.5, abs=0.015)]


def test_bursts_in_noise_each_give_an_onset_and_noise_alone_none_after_its_start():
    noise = 0.1 * np.random.default_rng(0).standard_normal(4 * RATE)
    assert onsets(noise) == [0.0]
    x = noise.copy()
    starts = [0.5 + 0.5 * k for k in range(6)]
    for s in starts:
        i = int(s * RATE)
        x[i : i + 4000] += 0.8 * np.sin(2 * np.pi * 300 * T[:4000]) * faded(4000)
    assert onsets(x)[1:] == [pytest.approx(s, abs=0.015) for s in starts]


def test_a_sustained_chord_with_beating_partials_fires_only_on_the_hits():
    rng = np.random.default_rng(1)
    x = sum(0.15 * np.sin(2 * np.pi * f * T) for f in (220, 277, 330))  # partials about a bin apart beat
    hits = [0.5 + 0.5 * k for k in range(7)]
    for s in hits:
        i = int(s * RATE)
        x[i : i + 6000] += 0.5 * rng.standard_normal(6000) * np.exp(-np.arange(6000) / 800)
    assert onsets(x)[1:] == [pytest.approx(s, abs=0.015) for s in hits]


def test_onset_pulse_and_levels_are_smoothed():
    fe = FeatureExtractor(RATE, AnalysisConfig(release_s=0.1, onset_release_s=0.1))
    loud = 0.5 * np.sin(2 * np.pi * 440 * T[: RATE // 4]) * faded(RATE // 4)  # a hard stop is an onset too
    f = fe.process(loud)
    assert f.onsets == 1 and f.mid > 0.85
    f = fe.process(np.zeros(int(0.1 * RATE)))  # one release time constant of silence
    assert 0.2 < f.mid < 0.45 and f.onset < 0.2


def test_capture_callback_only_copies_and_update_analyses():
    cap = Capture(RATE, 256, 2)
    block = np.stack([0.5 * np.sin(2 * np.pi * 100 * T[:256])] * 2, axis=1).astype(np.float32)
    for i in range(200):
        cap.callback(block if i % 2 else -block, 256, None, None)
    # 200 blocks into a ring of about 0.5 s (94 blocks): the rest were dropped and counted
    assert cap.ring.ready() == cap.ring.slots and cap.overflows == 200 - cap.ring.slots
    f = cap.update()
    assert cap.ring.ready() == 0 and f.low > 0.5
    cap.callback(None, 256, None, None)  # a broken block never escapes the callback
    assert cap.errors == 1 and cap.stats()["overflows"] == cap.overflows


def test_a_block_the_analysis_fails_on_is_counted_dropped_and_the_next_ones_analysed():
    cap = Capture(RATE, 256, 2)
    block = np.stack([0.5 * np.sin(2 * np.pi * 100 * T[:256])] * 2, axis=1).astype(np.float32)
    real = cap.extractor.process
    calls = []

    def process_failing_once(b: np.ndarray) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ValueError("bad block")
        real(b)

    cap.extractor.process = process_failing_once
    cap.start_analysis(interval=0.001)
    try:
        for _ in range(8):
            cap.callback(block, 256, None, None)
        deadline = time.monotonic() + 10.0  # waiting for its thread, not timing it
        while cap.ring.ready() and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        cap.close()
    stats = cap.stats()
    # the failing block is released (not retried for ever) and the seven after it are analysed
    assert len(calls) == 8 and cap.ring.ready() == 0 and cap.latest().low > 0.5
    assert stats["analysis_errors"] == 1 and stats["callback_errors"] == 0


def test_an_input_whose_host_stops_calling_back_is_reported_by_the_analysis_thread(caplog):
    cap = Capture(RATE, 256, 2)
    loud = np.stack([0.5 * np.sin(2 * np.pi * 100 * T[:256])] * 2, axis=1).astype(np.float32)
    for _ in range(8):
        cap.callback(loud, 256, None, None)
    assert cap.update().low > 0.5
    cap.last_call -= 5.0  # its last callback was 5 s ago: the JACK server died, the interface went
    cap.start_analysis(interval=0.001)
    try:
        deadline = time.monotonic() + 10.0  # waiting for its thread, not timing it
        while not cap.host.lost and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        cap.close()
    assert cap.stats()["host_lost"] and cap.stats()["host_losses"] == 1
    assert caplog.text.count("audio in stopped calling back") == 1
    assert cap.latest().low == 0.0 and cap.latest().rms == 0.0  # silence, not the last loud block held
