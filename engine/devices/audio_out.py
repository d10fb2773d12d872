"""Sound out: the built-in synth through a sounddevice OutputStream.

    synth.render --(producer thread)--> BlockRing --(PortAudio callback: copy)--> DAC

Before the stream opens, `AudioOut.prime()` warms the synth (a discarded block)
and fills the ring, so the stream's first callback finds ready blocks.

`open_audio(config)` picks the device (engine.devices.audio_devices), opens the stream
and returns an `AudioOut`, or None when audio is off (--no-audio, no
PortAudio, no device at all: said once in the log). The show then calls
`schedule(t, pitch, velocity, duration_s)` with t in show seconds (perf_counter
seconds minus `origin`, which the show sets to the perf_counter time of its
t = 0; left at 0, t is plain perf_counter time). The audio clock turns t into
the synth sample that reaches the DAC at t, so a note plays exactly when asked
provided it is asked at least `latency_s` ahead. OfflineAudio (engine.devices.wav)
has the same `schedule(t, ...)` for offline renders.

Its settings come from engine.config.ShowConfig (flags in engine/flags.py), which also
carries --audio-in, opened by engine.devices.audio_in.open_audio_in.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from engine.config import ShowConfig
from engine.devices.audio_devices import HostWatch, choose, close_stream, import_sounddevice, query, stream_rate
from engine.devices.playback import AudioClock, Playback
from engine.devices.producer import Producer
from engine.dsp.ring import BlockRing
from engine.dsp.synth import Synth
from engine.errors import StartupError

log = logging.getLogger(__name__)


class AudioOut:
    """Synth + ring + producer + callback + clock; `start(stream)` plays through any stream
    created with `self.playback.callback` (a sounddevice one, or a test's fake)."""

    def __init__(self, synth: Synth, block: int = 256, channels: int = 2, latency_blocks: int = 4) -> None:
        self.synth = synth
        self.sample_rate = synth.sample_rate
        self.block = block
        self.ring = BlockRing(latency_blocks, block, channels)
        self.playback = Playback(self.ring, origin=synth.time)
        self.clock = AudioClock(self.sample_rate)
        self.producer = Producer(
            synth.render, self.ring, self.playback, self.clock, after_step=lambda: self.check_host(time.perf_counter())
        )
        self.stream: Any = None
        self.device = ""
        self.host = HostWatch("audio out")
        self.origin = 0.0  # perf_counter time of show time 0 (s)
        self._warm = False  # synth.warm_up() has run

    def prime(self) -> None:
        """Warm the synth (a discarded block: first-call costs paid now) and fill the ring with
        its first `latency_blocks` blocks. open_audio calls it before it opens the stream, so the
        first callback finds a full ring rendered by a warm synth."""
        if not self._warm:
            self.synth.warm_up(self.block)
            self._warm = True
        self.producer.fill()

    def start(self, stream: Any, device: str = "") -> None:
        """Prime (if not yet done: warm the synth, fill the ring), start the producer thread, then the stream."""
        self.device = device
        self.host = HostWatch(f"audio out {device}".rstrip())
        self.stream = stream
        self.playback.output_latency = float(getattr(stream, "latency", 0.0) or 0.0)
        self.prime()  # the ring is already full when open_audio primed it: nothing more to render
        self.producer.start()
        stream.start()

    @property
    def latency_s(self) -> float:
        """Seconds from rendering a block to hearing it, about: the ring plus the host's buffer."""
        return self.ring.slots * self.block / self.sample_rate + self.playback.output_latency

    def sample_at(self, t: float) -> int:
        """Synth sample that reaches the DAC at show time t (perf_counter time origin + t)."""
        sample = self.clock.sample_at(self.origin + t)
        if sample is None:  # nothing played yet: the first ring block goes out about now
            sample = self.playback.origin + round((self.origin + t - time.perf_counter()) * self.sample_rate)
        return sample

    def schedule(self, t: float, pitch: int, velocity: int, duration_s: float) -> int:
        """Play a note that reaches the DAC at show time t (s); returns its synth sample time.
        A note asked for less than `latency_s` ahead plays late (counted in stats "late")."""
        sample = self.sample_at(t)
        self.synth.schedule(sample, pitch, velocity, round(duration_s * self.sample_rate))
        return sample

    def panic(self) -> None:
        self.synth.panic()

    def stats(self) -> dict[str, Any]:
        active = bool(getattr(self.stream, "active", False))
        return {
            **self.playback.stats(),
            "render_errors": self.producer.errors,
            "synth_ms": self.producer.cost_ms(),
            **self.synth.counts,
            "active": active,
            **self.host.stats(),
            "latency_ms": round(self.latency_s * 1000.0, 2),
            "device": self.device,
            "sample_rate": self.sample_rate,
            "block_size": self.block,
        }

    def close(self) -> None:
        """Stop the stream, then the producer (idempotent)."""
        stream, self.stream = self.stream, None
        if stream is not None:
            close_stream(stream, self.playback.last_call, "audio")
        self.producer.close()

    def check_host(self, now: float) -> None:
        """Is the sound card still calling back (see HostWatch)? Run by the producer thread
        after each round, at least every 50 ms. The show goes on silently meanwhile; notes
        keep their MIDI out."""
        if self.stream is not None:
            self.host.check(self.playback.last_call, now)


def open_audio(config: ShowConfig, synth: Synth | None = None) -> AudioOut | None:
    """Open sound output per the flags; None (said once in the log) when audio is off or impossible.

    A device named with --audio-device that is absent, or a stream that will
    not open, is a StartupError. `synth` must then run at `stream rate`; by
    default a new Synth with --synth-voices is made.
    """
    if config.no_audio:
        return None
    spec = config.audio_device
    sd, why = import_sounddevice()
    if sd is None:
        if spec:
            raise StartupError(f"--audio-device {spec}: {why}")
        log.warning("audio: off, %s", why)
        return None
    device = choose(query(sd), spec, "output", "--audio-device")
    if device is None:
        log.warning("audio: off, no output device (no sound card and no JACK server); the show runs silently")
        return None
    rate = stream_rate(config.sample_rate, device)
    if synth is None:
        synth = Synth(rate, voices=config.synth_voices)
    elif synth.sample_rate != rate:
        raise ValueError(f"the synth runs at {synth.sample_rate} Hz but the stream opens at {rate} Hz")
    out = AudioOut(synth, config.block_size, min(2, device.outputs), config.audio_latency)
    out.prime()  # before the stream opens: its first callback must find warm, ready blocks
    try:
        stream = sd.OutputStream(
            device=device.index,
            samplerate=rate,
            blocksize=config.block_size,
            channels=out.ring.channels,
            dtype="float32",
            latency="low",
            callback=out.playback.callback,
        )
        out.start(stream, device.label())
    except sd.PortAudioError as e:
        out.close()
        raise StartupError(
            f"--audio-device: cannot open {device.label()} at --sample-rate {rate} Hz with "
            f"--block-size {config.block_size} ({e}); its default rate is "
            f"{device.default_rate:.0f} Hz; --no-audio runs without sound"
        ) from None
    log.info(
        "audio: %s, %d Hz, %d-frame blocks, %d ahead (about %.1f ms)",
        device.label(),
        rate,
        config.block_size,
        config.audio_latency,
        out.latency_s * 1000.0,
    )
    return out
