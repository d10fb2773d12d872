"""Audio without a sound card: WAV files, a fake stream, and offline rendering.

- `WavWriter` writes float32 blocks (frames, channels) as 16-bit PCM with the
  stdlib `wave` module; `read_wav` reads 16- or 32-bit PCM back as float32.
- `WavStream` stands in for a sounddevice OutputStream: `pump(n)` calls the
  stream callback n times with fake time stamps and writes what it produced
  to a WavWriter (or keeps it), so the producer -> ring -> callback path runs
  in tests with no device and no real time.
- `OfflineAudio` renders the synth for exactly the frames a render needs,
  deterministically: show time t seconds is sample round(t * rate).

Pure module (numpy and the stdlib).
"""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from engine.dsp.synth import Synth

FULL_SCALE = 32767.0  # int16 peak


class WavWriter:
    def __init__(self, path: Path | str, sample_rate: int, channels: int) -> None:
        self.path = Path(path)
        self.channels = channels
        self.frames = 0
        self._wav = wave.open(str(self.path), "wb")
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)

    def write(self, block: np.ndarray) -> None:
        """Append a (frames, channels) float block; values are clipped to -1..1."""
        pcm = np.round(np.clip(block, -1.0, 1.0) * FULL_SCALE).astype("<i2")
        self._wav.writeframes(pcm.tobytes())
        self.frames += block.shape[0]

    def close(self) -> None:
        self._wav.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_wav(path: Path | str) -> tuple[int, np.ndarray]:
    """(sample rate, samples (frames, channels) float32 in -1..1) of a 16- or 32-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width not in (2, 4):
        raise ValueError(f"{path}: {8 * width}-bit PCM is not supported (16 or 32)")
    data = np.frombuffer(raw, dtype="<i2" if width == 2 else "<i4").astype(np.float32)
    return rate, data.reshape(-1, channels) / float(2 ** (8 * width - 1))


class WavStream:
    """A fake OutputStream: drives `callback(outdata, frames, time_info, status)` by hand.

    Time stamps advance by exactly one block per call, from `start_time` (s).
    """

    def __init__(
        self,
        callback: Callable,
        sample_rate: int,
        frames: int,
        channels: int,
        writer: WavWriter | None = None,
        start_time: float = 0.0,
    ) -> None:
        self.callback = callback
        self.sample_rate, self.frames, self.channels = sample_rate, frames, channels
        self.writer = writer
        self.blocks: list[np.ndarray] = []  # kept when there is no writer
        self._out = np.zeros((frames, channels), dtype=np.float32)
        self._t = start_time

    def pump(self, blocks: int = 1, status: object = None) -> None:
        for _ in range(blocks):
            info = SimpleNamespace(currentTime=self._t, outputBufferDacTime=self._t + self.frames / self.sample_rate)
            self.callback(self._out, self.frames, info, status)
            if self.writer is not None:
                self.writer.write(self._out)
            else:
                self.blocks.append(self._out.copy())
            self._t += self.frames / self.sample_rate

    def output(self) -> np.ndarray:
        """Everything pumped so far (without a writer), (frames, channels)."""
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, self.channels), np.float32)


class OfflineAudio:
    """The synth rendered to exact sample counts, for `render` (and tests).

    Notes are scheduled in show seconds; `advance_to(t)` renders every sample
    before round(t * rate), in blocks of at most `block` frames, and writes them
    to `sink` if one is given. The same schedule and calls give the same samples.
    """

    def __init__(self, synth: Synth, channels: int = 2, block: int = 256, sink: WavWriter | None = None) -> None:
        self.synth = synth
        self.sample_rate = synth.sample_rate
        self.channels = channels
        self.block = block
        self.sink = sink

    def sample_at(self, t: float) -> int:
        return round(t * self.sample_rate)

    def schedule(self, t: float, pitch: int, velocity: int, duration_s: float) -> int:
        """Play a note at show time t seconds for duration_s seconds; returns its synth sample time."""
        sample = self.sample_at(t)
        self.synth.schedule(sample, pitch, velocity, round(duration_s * self.sample_rate))
        return sample

    def panic(self) -> None:
        """Release everything from the next rendered block (scene change, blackout)."""
        self.synth.panic()

    def advance_to(self, t: float) -> np.ndarray:
        """Render up to show time t; returns the new samples (frames, channels) float32."""
        return self.render(max(0, self.sample_at(t) - self.synth.time))

    def render(self, frames: int) -> np.ndarray:
        """Render exactly `frames` more samples."""
        out = np.zeros((frames, self.channels), dtype=np.float32)
        for i in range(0, frames, self.block):
            self.synth.render(out[i : i + self.block])
        if self.sink is not None:
            self.sink.write(out)
        return out

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
