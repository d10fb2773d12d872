"""The built-in synth: deterministic, sample-accurate, in tune, polyphonic, and its
block filter equal to the per-sample recurrence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.dsp.filter import BlockFilter, _coefficients
from engine.dsp.synth import Synth, SynthSettings, envelope, midi_to_hz, oscillator, setting_specs, synth_params

RATE = 48000


def render(synth: Synth, frames: int, block: int = 256, channels: int = 1) -> np.ndarray:
    out = np.zeros((frames, channels), dtype=np.float32)
    for i in range(0, frames, block):
        synth.render(out[i : i + block])
    return out


def clean(waveform: int = 0, **kw) -> Synth:
    """A synth whose filter is wide open, so tests see the oscillators and envelope."""
    voices = kw.pop("voices", 8)
    settings = SynthSettings(waveform=waveform, cutoff=20000.0, resonance=0.0, gain=0.0, **kw)
    return Synth(RATE, voices=voices, settings=settings)


def peak_hz(x: np.ndarray) -> float:
    """Frequency of the strongest spectral peak, refined by parabolic interpolation."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-20)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / len(x)


def cents(f: float, ref: float) -> float:
    return 1200.0 * math.log2(f / ref)


def test_same_schedule_gives_identical_samples():
    outs = []
    for _ in range(2):
        synth = Synth(RATE, voices=4)
        for i, pitch in enumerate([60, 64, 67, 72, 76, 79]):
            synth.schedule(300 * i + 17, pitch, 90 + i, 2000)
        outs.append(render(synth, 8192, channels=2))
    assert np.array_equal(outs[0], outs[1])
    assert np.abs(outs[0]).max() > 0.01


@pytest.mark.parametrize("waveform", [0, 1, 2, 3])
@pytest.mark.parametrize("at", [0, 1, 255, 256, 1000, 1023])
def test_first_nonzero_sample_is_the_scheduled_one(waveform, at):
    synth = Synth(RATE, settings=SynthSettings(waveform=waveform))  # default filter and gain on
    synth.schedule(at, 69, 100, 500)
    out = render(synth, 2048)
    assert np.flatnonzero(out[:, 0])[0] == at


def test_note_scheduled_from_another_block_size_lands_the_same():
    a, b = clean(1), clean(1)
    for s in (a, b):
        s.schedule(700, 57, 100, 3000)
        s.schedule(2900, 64, 80, 3000)
    x, y = render(a, 8192, block=256), render(b, 8192, block=100)  # streaming in other blocks
    np.testing.assert_allclose(x, y, atol=1e-6)


@pytest.mark.parametrize("waveform", [0, 1, 2, 3])
@pytest.mark.parametrize("pitch", [45, 69, 93])
def test_pitch_within_50_cents(waveform, pitch):
    synth = clean(waveform, sustain=1.0)
    synth.schedule(0, pitch, 100, RATE)
    x = render(synth, RATE)[4800:, 0]  # skip the attack
    assert abs(cents(peak_hz(x), midi_to_hz(pitch))) < 50


def test_band_limited_saw_aliases_far_less_than_naive():
    f = 4700.0  # harmonics above Nyquist fold back between the true ones
    n = np.arange(RATE)
    phase = ((n + 1) * f / RATE) % 1.0
    inc = np.full((1, 1), f / RATE)

    def alias_db(x):
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
        freqs = np.fft.rfftfreq(len(x), 1.0 / RATE)
        harmonic = np.min(np.abs(freqs[:, None] - f * np.arange(1, 6)[None, :]), axis=1) < 30
        return 10 * np.log10(spec[~harmonic].sum() / spec[harmonic].sum())

    blep = alias_db(oscillator(1, phase[None, :], inc)[0])
    naive = alias_db(2 * phase - 1)
    tri = alias_db(oscillator(3, phase[None, :], inc)[0])
    assert blep < naive - 15 and tri < -40, (blep, naive, tri)


def test_adsr_shape():
    a, d, s, r, gate = (np.array([[v]], dtype=float) for v in (10, 10, 0.5, 20, 50))
    n = np.arange(-2, 80, dtype=float)[None, :]
    env = envelope(n, a, d, s, r, gate)[0]
    at = dict(zip(range(-2, 80), env))
    assert at[-1] == 0.0 and at[0] == pytest.approx(0.1) and at[9] == pytest.approx(1.0)
    assert at[14] == pytest.approx(0.75)  # halfway down the decay
    assert at[30] == pytest.approx(0.5) and at[49] == pytest.approx(0.5)  # sustain
    assert at[50] == pytest.approx(0.475) and at[69] == 0.0 and at[79] == 0.0  # release, then silence
    assert np.all(np.diff(env[2:12]) > 0) and np.all(np.diff(env[52:]) <= 0)


def test_release_starts_from_the_level_reached_when_released_during_attack():
    a, d, s, r, gate = (np.array([[v]], dtype=float) for v in (100, 10, 0.5, 10, 20))
    env = envelope(np.arange(40, dtype=float)[None, :], a, d, s, r, gate)[0]
    assert env[19] == pytest.approx(0.2) and env[20] == pytest.approx(0.18) and env[30] == 0.0


def test_voice_stealing_takes_a_released_note_before_the_oldest():
    synth = clean(0, voices=2, release=1.0)
    synth.schedule(0, 60, 100, RATE)  # oldest, still held
    synth.schedule(10, 64, 100, 500)  # released at 510, rings for 1 s
    synth.schedule(2000, 67, 100, RATE)
    render(synth, 4096)
    assert synth.counts["stolen"] == 1
    assert sorted(round(n.inc * RATE) for n in synth._slots) == sorted(round(midi_to_hz(p)) for p in (60, 67))


def test_voice_stealing_cuts_the_oldest_and_fades_it_out():
    synth = clean(0, voices=2, sustain=1.0)
    for at, pitch in ((0, 48), (100, 64), (200, 76)):
        synth.schedule(at, pitch, 100, RATE)
    x = render(synth, RATE // 2)[:, 0]
    assert synth.counts["stolen"] == 1
    tail = x[4800:]
    spec = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    bin_of = lambda p: round(midi_to_hz(p) * len(tail) / RATE)  # noqa: E731
    assert spec[bin_of(48)] < 1e-3 * spec[bin_of(64)]  # the stolen note is gone
    assert np.abs(np.diff(x[150:300])).max() < 0.2  # no click where it was cut


def test_late_note_starts_at_the_next_block_and_is_counted():
    synth = clean(0)
    render(synth, 512)
    synth.schedule(100, 69, 100, 1000)
    out = render(synth, 256)
    assert synth.counts["late"] == 1 and out[0, 0] != 0.0


def test_panic_silences_sounding_and_pending_notes():
    synth = clean(1, sustain=1.0, release=5.0)
    synth.schedule(0, 60, 127, RATE)
    synth.schedule(3000, 62, 127, RATE)
    render(synth, 1024)
    synth.panic()
    out = render(synth, 4096)
    assert np.abs(out[512:]).max() < 1e-4


def test_settings_specs_clamp_and_become_params():
    specs = {s["name"]: s for s in setting_specs()}
    assert {"waveform", "attack", "decay", "sustain", "release", "cutoff", "resonance", "gain"} <= set(specs)
    for s in specs.values():
        assert s["lo"] <= s["default"] <= s["hi"] and s["type"] in ("float", "int")
    settings = SynthSettings()
    assert settings.set("cutoff", 1e9) == 20000.0 and settings.set("waveform", 2.6) == 3
    with pytest.raises(KeyError):
        settings.set("nope", 1)
    params = synth_params()
    assert params[0].address == "/synth/waveform" and params[0].type == "int"
    assert {p.unit for p in params} >= {"s", "Hz", "dB"}


def test_block_filter_equals_the_per_sample_recurrence():
    x = np.random.default_rng(1).standard_normal(1000)
    filt = BlockFilter(RATE)
    y = np.concatenate([filt.process(x[i : i + 200], 1000.0, 0.7) for i in range(0, 1000, 200)])
    A, B, C, D = _coefficients(2.0 ** (round(math.log2(1000.0) * 96) / 96), 0.7, RATE)
    s, ref = np.zeros(2), []
    for v in x:
        ref.append(C @ s + D * v)
        s = A @ s + B * v
    np.testing.assert_allclose(y, ref, atol=1e-12)


def test_resonance_peaks_at_the_cutoff():
    impulse = np.zeros(4096)
    impulse[0] = 1.0
    gain = lambda res: np.abs(np.fft.rfft(BlockFilter(RATE).process(impulse, 2000.0, res)))  # noqa: E731
    k = round(2000.0 * 4096 / RATE)
    assert gain(0.0)[k] < 0.6 and gain(0.9)[k] > 3.0  # Q 0.5 (-6 dB) vs a ringing peak
    assert gain(0.0)[round(12000 * 4096 / RATE)] < 0.05  # well above the cutoff: cut


@pytest.mark.parametrize("frames", [1, 64, 256, 0])  # 0: a bad size still warms one frame, never fails
def test_warm_up_renders_a_scratch_block_and_changes_nothing(frames, monkeypatch):
    """warm_up() pays first-call costs on a scratch synth: this synth's time, settings, counts
    and later output are what they would have been without it."""
    rendered: list[int] = []
    real_render = Synth.render

    def counting(self, out):
        rendered.append(id(self))
        real_render(self, out)

    warmed = Synth(RATE, voices=4)
    warmed.settings.set("waveform", 2)
    warmed.schedule(100, 60, 90, 3000)  # a note already pending stays pending, untouched
    monkeypatch.setattr(Synth, "render", counting)
    warmed.warm_up(frames)
    monkeypatch.undo()
    assert len(rendered) == 4 and id(warmed) not in rendered  # a block per waveform, all scratch
    assert warmed.time == 0 and warmed.settings.waveform == 2
    assert warmed.counts == {"notes": 0, "late": 0, "stolen": 0}
    plain = Synth(RATE, voices=4)
    plain.settings.set("waveform", 2)
    plain.schedule(100, 60, 90, 3000)
    assert np.array_equal(render(warmed, 4096, channels=2), render(plain, 4096, channels=2))
