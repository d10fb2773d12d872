"""WAV writing and reading, and the offline render of the synth (exact frame counts)."""

from __future__ import annotations

import numpy as np

from engine.devices.wav import OfflineAudio, WavWriter, read_wav
from engine.dsp.synth import Synth

RATE = 48000


def test_wav_round_trip(tmp_path):
    x = (0.5 * np.sin(np.linspace(0, 60, 2000))[:, None] * np.array([[1.0, -1.0]])).astype(np.float32)
    with WavWriter(tmp_path / "a.wav", RATE, 2) as w:
        w.write(x[:700])
        w.write(x[700:])
        w.write(np.full((10, 2), 3.0, np.float32))  # clipped, not wrapped
    rate, y = read_wav(tmp_path / "a.wav")
    assert rate == RATE and y.shape == (2010, 2)
    np.testing.assert_allclose(y[:2000], x, atol=1 / 32767)
    assert np.all(y[2000:] > 0.999)


def song(audio: OfflineAudio) -> None:
    for i, pitch in enumerate([60, 64, 67, 72]):
        audio.schedule(0.1 + 0.25 * i, pitch, 100, 0.2)


def test_offline_render_is_exact_and_deterministic(tmp_path):
    outs = []
    for name in ("a.wav", "b.wav"):
        audio = OfflineAudio(Synth(RATE), channels=2, sink=WavWriter(tmp_path / name, RATE, 2))
        song(audio)
        chunks = [audio.advance_to(frame / 30) for frame in range(1, 46)]  # 1.5 s of 30 fps frames
        audio.close()
        assert sum(len(c) for c in chunks) == round(1.5 * RATE) == audio.synth.time
        outs.append(np.concatenate(chunks))
    assert np.array_equal(outs[0], outs[1])
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    first = np.flatnonzero(outs[0][:, 0])[0]
    assert first == round(0.1 * RATE)  # the first note lands on its sample
    assert len(OfflineAudio(Synth(RATE)).render(12345)) == 12345
