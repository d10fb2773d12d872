"""Ring, callback, producer and clock, with fakes: no sound card and no real time."""

from __future__ import annotations

import os
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from engine.devices import audio_devices
from engine.devices.audio_out import AudioOut
from engine.devices.playback import AudioClock, Playback
from engine.devices.producer import Producer
from engine.devices.wav import OfflineAudio, WavStream
from engine.dsp.ring import BlockRing
from engine.dsp.synth import Synth

RATE, BLOCK = 48000, 256


def info(t: float = 0.0, dac: float | None = None) -> SimpleNamespace:
    return SimpleNamespace(currentTime=t, outputBufferDacTime=t + 0.005 if dac is None else dac)


def test_ring_hands_blocks_over_in_order_and_refuses_when_full():
    ring = BlockRing(3, 4, 2)
    for i in range(3):
        assert ring.write_from(np.full((4, 2), i, np.float32))
    assert not ring.write_from(np.zeros((4, 2), np.float32)) and ring.write_slot() is None
    out = np.empty((4, 2), np.float32)
    for i in range(3):
        assert ring.read_into(out) and out[0, 0] == i
    assert not ring.read_into(out) and ring.ready() == 0 and ring.free() == 3


def test_callback_copies_ready_blocks_and_counts_underruns():
    ring = BlockRing(2, BLOCK, 2)
    playback = Playback(ring)
    ring.write_from(np.full((BLOCK, 2), 0.5, np.float32))
    out = np.ones((BLOCK, 2), np.float32)
    playback.callback(out, BLOCK, info(), None)
    assert np.all(out == 0.5) and playback.underruns == 0 and playback.next_sample == BLOCK
    playback.callback(out, BLOCK, info(), None)  # nothing ready
    assert np.all(out == 0.0) and playback.underruns == 1
    playback.callback(out, BLOCK, info(), SimpleNamespace(output_underflow=True))  # any set flag is truthy
    assert playback.stats() == {"underruns": 2, "xruns": 1, "blocks": 3, "callback_errors": 0}
    assert playback.wake.is_set()


class BrokenRing(BlockRing):
    def read_into(self, out):
        raise RuntimeError("producer state is corrupt")


def test_callback_never_raises_on_a_broken_producer_or_buffer():
    playback = Playback(BrokenRing(2, BLOCK, 2))
    out = np.ones((BLOCK, 2), np.float32)
    playback.callback(out, BLOCK, info(), None)
    assert playback.errors == 1 and np.all(out == 0.0)
    playback.callback(None, BLOCK, None, None)  # even outdata itself unusable
    assert playback.errors == 2


def test_producer_fills_the_ring_and_survives_a_failing_render():
    ring = BlockRing(3, BLOCK, 1)
    calls = []

    def render(block):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("bad setting")
        block.fill(len(calls))

    producer = Producer(render, ring)
    producer.step()
    assert producer.errors == 1 and ring.ready() == 1  # the failed block is not published
    producer.step()
    assert ring.ready() == 3 and producer.cost_ms()["p50"] >= 0.0


def test_producer_thread_keeps_up_when_woken_by_the_callback():
    synth = Synth(RATE)
    ring = BlockRing(3, BLOCK, 2)
    playback = Playback(ring)
    # It polls once an hour: only the callback's wake can make it refill (within milliseconds;
    # how fast on a real stream is `bench --audio`'s to measure, not this test's).
    producer = Producer(synth.render, ring, playback, poll_s=3600.0)
    producer.fill()
    producer.start()
    try:
        out = np.zeros((BLOCK, 2), np.float32)
        pause = threading.Event()
        for k in range(50):
            playback.callback(out, BLOCK, info(), None)
            for _ in range(2000):  # waiting for the thread (up to 10 s on a loaded machine), not timing it
                if ring.ready() == 3:
                    break
                pause.wait(0.005)
            assert ring.ready() == 3, f"not refilled after wake {k + 1}"
        assert playback.underruns == 0 and producer.rendered == 53
    finally:
        producer.close()


def test_streamed_path_equals_offline_render():
    """producer -> ring -> callback (driven by a fake stream) plays exactly the offline samples."""

    def schedule(synth):
        for i, pitch in enumerate([60, 67, 72, 79]):
            synth.schedule(1000 + 3000 * i, pitch, 100, 4000)

    live, offline = Synth(RATE), Synth(RATE)
    schedule(live)
    schedule(offline)
    ring = BlockRing(3, BLOCK, 2)
    playback = Playback(ring)
    producer = Producer(live.render, ring, playback)
    stream = WavStream(playback.callback, RATE, BLOCK, 2)
    for _ in range(80):
        producer.step()
        stream.pump()
    expected = OfflineAudio(offline, channels=2, block=BLOCK).render(80 * BLOCK)
    assert np.array_equal(stream.output(), expected) and playback.underruns == 0


def test_audio_clock_maps_perf_time_to_samples_with_the_smallest_offset():
    clock = AudioClock(RATE)
    assert clock.sample_at(1.0) is None
    clock.observe((4800, 0.105, 100.0 + 0.004))  # this callback ran 4 ms late
    clock.observe((5056, 0.1103333, 100.0))
    # sample 5056 reaches the DAC at perf 100.1103333 (stream time + the smallest offset)
    assert clock.sample_at(100.1103333) == 5056
    assert clock.sample_at(100.1103333 + 0.5) == 5056 + 24000
    assert clock.time_of(5056 + 480) == pytest.approx(100.1103333 + 0.01)


class FakeStream:
    latency = 0.01

    def __init__(self):
        self.started = self.closed = False

    def start(self):
        self.started = True

    def stop(self):
        pass

    def close(self):
        self.closed = True


def test_audio_out_schedules_at_show_time_through_the_clock():
    out = AudioOut(Synth(RATE), BLOCK, 2, latency_blocks=3)
    stream = FakeStream()
    out.start(stream, "fake")
    try:
        assert stream.started and out.ring.ready() == 3
        assert out.latency_s == pytest.approx(3 * BLOCK / RATE + 0.01)
        buf = np.zeros((BLOCK, 2), np.float32)
        out.playback.callback(buf, BLOCK, SimpleNamespace(currentTime=5.0, outputBufferDacTime=5.01), None)
        out.producer.step()  # the producer thread would do this on the wake
        t_dac = out.clock.time_of(0)
        assert out.schedule(t_dac + 1.0, 69, 100, 0.5) == RATE
        out.origin = t_dac - 2.0  # the show's t = 0 was 2 s before sample 0 reached the DAC
        assert out.schedule(2.5, 69, 100, 0.5) == RATE // 2
        st = out.stats()
        assert {"underruns", "xruns", "blocks"} <= set(st) and st["blocks"] == 1
    finally:
        out.close()
    assert stream.closed and out.stream is None
    out.close()  # idempotent


class DeadHostStream(FakeStream):
    """A stream whose host died: PortAudio's stop would block for good (JACK killed mid-show)."""

    def stop(self):
        raise AssertionError("stop() on a stream whose host is gone blocks the show's exit")


def test_a_host_that_stops_calling_back_is_reported_once_and_its_stream_left_alone(monkeypatch, caplog):
    unregistered, pinned = [], []
    monkeypatch.setitem(sys.modules, "sounddevice", SimpleNamespace(_exit_handler=len, _libname="libportaudio.so.2"))
    monkeypatch.setattr("atexit.unregister", unregistered.append)
    monkeypatch.setattr(audio_devices.ctypes, "CDLL", lambda name, mode: pinned.append((name, mode)))
    out = AudioOut(Synth(RATE), BLOCK, 2, latency_blocks=3)
    stream = DeadHostStream()
    out.start(stream, "jack")
    out.producer.close()  # its thread checks the host on the real clock; this test drives check_host itself
    buf = np.zeros((BLOCK, 2), np.float32)
    out.playback.callback(buf, BLOCK, info(), None)
    called = out.playback.last_call
    with caplog.at_level("WARNING", logger="engine.devices.audio_devices"):
        for now in (called + 0.5, called + 1.5, called + 2.0, called + 3.0):
            out.check_host(now)
    assert out.stats()["host_lost"] and out.stats()["host_losses"] == 1
    assert [r.levelname for r in caplog.records if "calling back" in r.message] == ["ERROR"]  # once
    out.playback.callback(buf, BLOCK, info(), None)  # an xrun storm that passed, not a dead host
    out.check_host(out.playback.last_call + 0.01)
    assert not out.stats()["host_lost"] and "calls back again" in caplog.text
    out.playback.last_call -= 5.0  # and now it is gone for good
    out.close()  # must not call stop() nor close(): with JACK dead, PortAudio hangs, then aborts
    assert not stream.closed and out.stream is None and unregistered == [len]
    # ...and PortAudio (with libjack) stays mapped while its JACK threads may still run
    assert pinned == [("libportaudio.so.2", os.RTLD_NODELETE | os.RTLD_NOLOAD)]


def test_a_live_stream_is_stopped_and_closed_and_a_failing_close_is_logged(caplog):
    out = AudioOut(Synth(RATE), BLOCK, 2, latency_blocks=3)
    stream = FakeStream()
    out.start(stream, "fake")
    out.producer.close()  # as above: the test's clock only
    out.playback.callback(np.zeros((BLOCK, 2), np.float32), BLOCK, info(), None)
    out.check_host(out.playback.last_call + 0.02)
    out.close()
    assert stream.closed and not out.stats()["host_lost"]
    failing = AudioOut(Synth(RATE), BLOCK, 2, latency_blocks=3)
    failing.start(DeadHostStream(), "unplugged a moment ago")  # stop() raises: logged, not raised
    failing.close()
    assert "closing the stream" in caplog.text


def test_the_producer_thread_checks_the_host_after_every_round(monkeypatch):
    # close() then leaves the lost stream alone: not by unregistering the real sounddevice's exit
    # handler, which left PortAudio's JACK client running while Python unloaded it (SIGSEGV at exit)
    skipped = []
    monkeypatch.setattr(audio_devices, "_skip_portaudio_exit", lambda: skipped.append(True))
    out = AudioOut(Synth(RATE), BLOCK, 2, latency_blocks=3)
    out.start(FakeStream(), "fake")
    try:
        out.playback.callback(np.zeros((BLOCK, 2), np.float32), BLOCK, info(), None)
        out.playback.last_call -= 5.0  # and then no callback for 5 s
        out.playback.wake.set()
        deadline = time.monotonic() + 10.0  # waiting for its thread, not timing it
        while not out.stats()["host_lost"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out.stats()["host_lost"] and out.stats()["host_losses"] == 1
    finally:
        out.close()
    assert skipped == [True]


class StartSpyStream(FakeStream):
    """Records what the ring and the synth held when the stream was started."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.at_start = None

    def start(self):
        self.at_start = (self.out.ring.ready(), self.out.producer.rendered, self.out._warm)
        super().start()


@pytest.mark.parametrize("latency", [1, 3, 4])
def test_the_stream_starts_on_a_warm_synth_and_a_full_ring(latency):
    """A stream started without prime() (as tests do) is still primed first; the first
    callback then plays a rendered block, not an underrun."""
    out = AudioOut(Synth(RATE), BLOCK, 2, latency_blocks=latency)
    stream = StartSpyStream(out)
    out.start(stream, "fake")
    try:
        out.producer.close()  # no thread racing the callback below
        assert stream.at_start == (latency, latency, True)
        out.playback.callback(np.zeros((BLOCK, 2), np.float32), BLOCK, info(), None)
        assert out.playback.underruns == 0 and out.playback.blocks == 1
    finally:
        out.close()


def test_prime_is_idempotent_and_warms_once(monkeypatch):
    warmups = []
    monkeypatch.setattr(Synth, "warm_up", lambda self, frames=256: warmups.append(frames))
    out = AudioOut(Synth(RATE), BLOCK, 2, latency_blocks=3)
    out.prime()
    out.prime()
    assert warmups == [BLOCK] and out.ring.ready() == 3 and out.producer.rendered == 3
    stream = StartSpyStream(out)
    out.start(stream, "fake")
    try:
        assert stream.at_start == (3, 3, True) and warmups == [BLOCK]  # nothing rendered twice
    finally:
        out.close()
