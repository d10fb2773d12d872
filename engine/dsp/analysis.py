"""Audio features for visuals: level, three bands and onsets, each roughly 0..1.

Everything here runs outside any audio callback (the capture callback only
copies blocks into a ring; see engine.devices.audio_in). Every `hop` samples
(256, 5.3 ms at 48 kHz) one analysis frame of the last `fft_size` samples
(1024, Hann window) gives:

- rms: RMS of the newest hop;
- low / mid / high: spectral amplitude below 200 Hz, 200-2000 Hz and above
  2000 Hz, scaled so that a full-scale sine inside a band reads 0 dBFS;
- onset: spectral flux above an adaptive threshold (the median flux of the
  last 0.5 s times 1.5, plus a floor), at most one per 60 ms; each onset is a
  pulse of 1. The flux is the mean rise of log-compressed amplitudes in 16
  log-spaced bands (40 Hz - 16 kHz), not single FFT bins: two partials a bin
  apart beat, and per-bin flux then fires all through a sustained chord.

Levels map dBFS to 0..1 linearly from `floor_db` (-60 dB -> 0) to 0 dBFS (-> 1),
then each feature is smoothed with its own attack and release (seconds), so
it rises fast and falls slowly. `onsets` counts onsets since the start.

Pure module (numpy only): feed it synthetic signals in tests.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.core.params import one_pole  # pure module: no devices

FEATURES = ("rms", "low", "mid", "high", "onset")


@dataclass(frozen=True)
class AudioFeatures:
    rms: float = 0.0
    low: float = 0.0
    mid: float = 0.0
    high: float = 0.0
    onset: float = 0.0  # 1 at an onset, then released towards 0
    onsets: int = 0  # onsets detected since the start

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in FEATURES}


@dataclass(frozen=True)
class AnalysisConfig:
    fft_size: int = 1024  # samples per analysis frame
    hop: int = 256  # samples between frames
    low_hz: float = 200.0  # low band: below this
    high_hz: float = 2000.0  # high band: above this
    floor_db: float = -60.0  # dBFS that maps to 0
    attack_s: float = 0.01  # level smoothing, rising
    release_s: float = 0.15  # level smoothing, falling
    onset_release_s: float = 0.12  # how long an onset pulse takes to fade (time constant)
    onset_window_s: float = 0.5  # history for the adaptive threshold
    onset_ratio: float = 1.5  # threshold = median flux * ratio + onset_floor
    onset_floor: float = 0.1  # mean band rise (log1p(100 * amplitude) units) that never counts as an onset
    onset_bands: int = 16  # log-spaced bands between 40 Hz and 16 kHz
    refractory_s: float = 0.06  # minimum time between onsets


def db_to_unit(amplitude: float, floor_db: float) -> float:
    """Amplitude (1 = full scale) -> 0..1 on a dB scale from floor_db to 0 dBFS."""
    db = 20.0 * math.log10(max(amplitude, 1e-12))
    return min(max((db - floor_db) / -floor_db, 0.0), 1.0)


def _band_starts(freqs: np.ndarray, count: int) -> np.ndarray:
    """First FFT bin of each of `count` log-spaced bands from 40 Hz to 16 kHz (each at least one bin)."""
    edges = np.searchsorted(freqs, np.geomspace(40.0, 16000.0, count + 1))
    return np.unique(np.minimum(edges[:-1], freqs.size - 1))


class FeatureExtractor:
    def __init__(self, sample_rate: int, config: AnalysisConfig | None = None) -> None:
        self.config = c = config or AnalysisConfig()
        self.sample_rate = sample_rate
        self._window = np.hanning(c.fft_size)
        self._scale = 2.0 / self._window.sum()  # |rfft| -> amplitude of a sine on a bin
        # Sum of squared scaled bins for a unit sine = the window's equivalent noise bandwidth in bins.
        self._enbw = c.fft_size * float((self._window**2).sum()) / float(self._window.sum()) ** 2
        freqs = np.fft.rfftfreq(c.fft_size, 1.0 / sample_rate)
        self._bands = (freqs < c.low_hz, (freqs >= c.low_hz) & (freqs < c.high_hz), freqs >= c.high_hz)
        self._frame = np.zeros(c.fft_size)
        self._carry = np.zeros(0)
        self._band_starts = _band_starts(freqs, c.onset_bands)
        self._prev_log = np.zeros(self._band_starts.size)
        hop_s = c.hop / sample_rate
        self._rise, self._fall = one_pole(hop_s, c.attack_s), one_pole(hop_s, c.release_s)
        self._onset_fall = one_pole(hop_s, c.onset_release_s)
        self._flux: deque[float] = deque(maxlen=max(1, round(c.onset_window_s / hop_s)))
        self._refractory = round(c.refractory_s / hop_s)  # hops
        self._since_onset = self._refractory
        self.features = AudioFeatures()

    def process(self, samples: np.ndarray) -> AudioFeatures:
        """Analyse every complete hop in `samples` ((n,) or (n, channels), any float); latest features."""
        x = samples if samples.ndim == 1 else samples.mean(axis=1)
        data = np.concatenate([self._carry, x.astype(np.float64)])
        hop = self.config.hop
        whole = data.shape[0] // hop
        for i in range(whole):
            self._hop(data[i * hop : (i + 1) * hop])
        self._carry = data[whole * hop :]
        return self.features

    def _hop(self, block: np.ndarray) -> None:
        c = self.config
        self._frame[: -c.hop] = self._frame[c.hop :]
        self._frame[-c.hop :] = block
        mag = np.abs(np.fft.rfft(self._frame * self._window)) * self._scale  # (bins,) sine amplitude
        power = mag * mag
        raw = [db_to_unit(math.sqrt(float(np.mean(block * block)) * 2.0), c.floor_db)]  # a sine's RMS*sqrt2 = peak
        raw += [db_to_unit(math.sqrt(float(power[band].sum()) / self._enbw), c.floor_db) for band in self._bands]
        onset = self._detect_onset(power)
        self.features = self._smooth(raw, onset)

    def _detect_onset(self, power: np.ndarray) -> bool:
        bands = np.sqrt(np.add.reduceat(power, self._band_starts) / self._enbw)  # amplitude per band
        log_mag = np.log1p(100.0 * bands)  # compressed: a -40 dBFS partial gives log(2)
        flux = float(np.maximum(log_mag - self._prev_log, 0.0).mean())
        self._prev_log = log_mag
        c = self.config
        threshold = (float(np.median(self._flux)) if self._flux else 0.0) * c.onset_ratio + c.onset_floor
        self._flux.append(flux)
        self._since_onset += 1
        if flux > threshold and self._since_onset > self._refractory:
            self._since_onset = 0
            return True
        return False

    def _smooth(self, raw: list[float], onset: bool) -> AudioFeatures:
        f = self.features
        levels = []
        for old, new in zip((f.rms, f.low, f.mid, f.high), raw):
            k = self._rise if new > old else self._fall
            levels.append(old + k * (new - old))
        pulse = 1.0 if onset else f.onset * (1.0 - self._onset_fall)
        rms, low, mid, high = levels
        return AudioFeatures(rms, low, mid, high, onset=pulse, onsets=f.onsets + int(onset))
