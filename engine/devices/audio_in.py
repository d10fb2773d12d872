"""Audio input for analysis: `--audio-in DEVICE`.

The InputStream callback only copies each block into a ring (engine.dsp.ring)
and counts what it could not keep; `update()`, called from any ONE thread, drains
the ring through the FeatureExtractor and returns the newest AudioFeatures.
In a show, `start_analysis()` runs update() on its own thread every few
milliseconds (an FFT per 256-sample hop, and a burst of them to catch up after
a stall: kept off the loop's input-to-forward path); the loop reads
`latest()`, a frozen AudioFeatures swapped in whole. Nothing heavier than a
copy ever runs in the callback.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from engine.config import ShowConfig
from engine.devices.audio_devices import HostWatch, choose, close_stream, import_sounddevice, query, stream_rate
from engine.dsp.analysis import AnalysisConfig, AudioFeatures, FeatureExtractor
from engine.dsp.ring import BlockRing
from engine.errors import StartupError

log = logging.getLogger(__name__)

RING_SECONDS = 0.5  # input kept when update() is late; older blocks are dropped and counted
ANALYSIS_S = 0.004  # seconds between the analysis thread's drains (a 256-frame block is 5.3 ms at 48 kHz)


class Capture:
    """Ring + callback + analysis; the stream itself is opened by open_audio_in (or a test)."""

    def __init__(self, sample_rate: int, block: int, channels: int, config: AnalysisConfig | None = None) -> None:
        slots = max(4, round(RING_SECONDS * sample_rate / block))
        self.ring = BlockRing(slots, block, channels)
        self.extractor = FeatureExtractor(sample_rate, config)
        self.blocks = 0  # callbacks
        self.overflows = 0  # blocks dropped because update() fell behind
        self.xruns = 0  # callbacks whose status flags the host set
        self.errors = 0  # exceptions caught in the callback (PortAudio's thread)
        self.analysis_errors = 0  # blocks the analysis thread failed on (its own counter: two writers race)
        self.last_call: float | None = None  # perf_counter time of the latest callback (host health)
        self.host = HostWatch("audio in")
        self.stream: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """sounddevice InputStream callback: copy the block in, nothing else."""
        try:
            self.last_call = time.perf_counter()
            self.blocks += 1
            if status:
                self.xruns += 1
            if not self.ring.write_from(indata):
                self.overflows += 1
        except BaseException:  # noqa: BLE001 - nothing may leave a PortAudio callback
            self.errors += 1

    def update(self) -> AudioFeatures:
        """Analyse every block captured since the last call; the newest features."""
        while True:
            block = self.ring.read_slot()
            if block is None:
                return self.extractor.features
            try:
                self.extractor.process(block)
            finally:
                self.ring.release()  # a block that fails is dropped, not retried for ever

    def start_analysis(self, interval: float = ANALYSIS_S) -> None:
        """Run update() on its own thread from now on (then only it may call update())."""

        def run() -> None:
            while not self._stop.wait(interval):
                if self.host.check(self.last_call, time.perf_counter()) and self.host.lost:
                    # An input that is gone reads as silence, not as its last block held for ever.
                    self.extractor.features = AudioFeatures(onsets=self.extractor.features.onsets)
                try:
                    self.update()
                except Exception:  # noqa: BLE001 - a bad block must not end the analysis
                    self.analysis_errors += 1
                    if self.analysis_errors == 1:
                        log.exception("audio analysis failed on a block (counted from now on)")

        self._thread = threading.Thread(target=run, name="audio-analysis", daemon=True)
        self._thread.start()

    def latest(self) -> AudioFeatures:
        """The newest features (a frozen object: safe to read from any thread)."""
        return self.extractor.features

    def stats(self) -> dict[str, Any]:
        return {
            "blocks": self.blocks,
            "overflows": self.overflows,
            "xruns": self.xruns,
            "callback_errors": self.errors,
            "analysis_errors": self.analysis_errors,
            "onsets": self.extractor.features.onsets,
            **self.host.stats(),
        }

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        stream, self.stream = self.stream, None
        if stream is not None:
            close_stream(stream, self.last_call, "audio in")


def open_audio_in(config: ShowConfig) -> Capture | None:
    """Open `--audio-in` for analysis; None when the flag is absent. Failures are StartupErrors."""
    spec = config.audio_in
    if not spec:
        return None
    sd, why = import_sounddevice()
    if sd is None:
        raise StartupError(f"--audio-in {spec}: {why}")
    device = choose(query(sd), spec, "input", "--audio-in")
    if device is None:
        raise StartupError(f"--audio-in {spec}: no input device (no sound card and no JACK server)")
    rate = stream_rate(config.sample_rate, device)
    channels = min(2, device.inputs)
    capture = Capture(rate, config.block_size, channels)
    try:
        capture.stream = sd.InputStream(
            device=device.index,
            samplerate=rate,
            blocksize=config.block_size,
            channels=channels,
            dtype="float32",
            latency="low",
            callback=capture.callback,
        )
        capture.stream.start()
    except sd.PortAudioError as e:
        capture.close()
        raise StartupError(
            f"--audio-in {spec}: cannot open {device.label()} at {rate} Hz, {config.block_size}-frame blocks: {e}"
        ) from None
    log.info("audio in: %s, %d Hz, %d channel(s)", device.label(), rate, channels)
    return capture
