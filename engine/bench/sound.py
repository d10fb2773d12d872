"""`bench --sound SECONDS`: the melody through a real JACK server, recorded and checked.

Starts a private JACK server on the dummy driver (48 kHz, 256-frame periods:
real-time paced, no hardware), `jack_midi_dump` as the MIDI destination, then a
headless show of the scene (default: the shipped combined scene) with
`--audio-device jack --notes-out midi-monitor --note-log`, and `jack_rec` on
the show's audio ports. Afterwards it reports:

- audio underruns after the first 2 s and xruns (from the show's stats);
- timing: for each logged note, the nearest onset in the recording after one
  constant offset (the median lag: when jack_rec started plus the output
  latency), and the share within 30 ms whose pitch is within 50 cents;
- MIDI: note-ons and note-offs seen by jack_midi_dump, and whether every
  note-on got its note-off.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.jackserver import dummy_server, missing_tools
from engine.dsp.synth import midi_to_hz

log = logging.getLogger(__name__)

RATE, PERIOD = 48000, 256
HOP = 128  # samples between onset-detection frames (2.7 ms)
WIN = 1024  # samples per onset-detection frame (21 ms)
TOLERANCE_S = 0.030
LAG_HOP_S = 0.0025  # resolution of the constant-offset search (refined per note afterwards)
CENTS = 50.0
REPO = Path(__file__).resolve().parents[2]  # engine/bench/sound.py -> the repository
SOUND_SCENE = REPO / "scenes" / "verse.toml"


def onsets(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Onset times (s): peaks of the positive spectral flux (log magnitude), adaptive threshold."""
    frames = (len(x) - WIN) // HOP
    if frames < 3:
        return np.zeros(0)
    flux = np.empty(frames - 1)  # positive spectral flux between frames i and i+1
    window, prev = np.hanning(WIN), None
    for a in range(0, frames, 2048):  # in chunks: a whole 60 s STFT would take ~0.5 GB
        idx = np.arange(WIN)[None, :] + HOP * np.arange(a, min(frames, a + 2048))[:, None]  # (n, WIN)
        mag = np.log1p(100.0 * np.abs(np.fft.rfft(x[idx] * window, axis=1)))  # (n, WIN/2+1)
        block = mag if prev is None else np.concatenate([prev[None], mag])
        d = np.maximum(np.diff(block, axis=0), 0.0).sum(axis=1)
        start = a - 1 if prev is not None else 0
        flux[start : start + len(d)] = d
        prev = mag[-1]
    local = np.convolve(flux, np.ones(31) / 31, "same")  # ~80 ms moving mean
    thresh = local * 1.5 + 0.1 * flux.max()
    peaks = (flux > thresh) & (flux >= np.roll(flux, 1)) & (flux >= np.roll(flux, -1))
    # A peak at frame i compares frames i and i+1: the onset is inside frame i+1's window.
    return ((np.flatnonzero(peaks) + 1) * HOP + WIN / 2) / rate


def pitch_at(x: np.ndarray, t: float, rate: int = RATE, band: tuple[float, float] = (40.0, 4000.0)) -> float:
    """Dominant frequency (Hz) of the 60 ms after t, minus what was sounding just before."""
    n = int(0.06 * rate)
    a, b = int(t * rate), int(t * rate) + n
    if a - n < 0 or b > len(x):
        return 0.0
    w = np.hanning(n)
    after = np.abs(np.fft.rfft(x[a:b] * w, 8 * n))
    before = np.abs(np.fft.rfft(x[a - n : a] * w, 8 * n))
    spec = np.maximum(after - before, 0.0)
    freqs = np.fft.rfftfreq(8 * n, 1.0 / rate)
    inside = (freqs > band[0]) & (freqs < band[1])
    return float(freqs[inside][np.argmax(spec[inside])])


def _envelopes(x: np.ndarray, pitches: set[int], rate: int) -> dict[int, np.ndarray]:
    """Magnitude at each pitch's nearest FFT bin, every LAG_HOP_S, over the whole recording
    (a WIN-sample STFT taken in chunks, keeping only those bins: memory stays small)."""
    hop = round(LAG_HOP_S * rate)
    frames = max(0, (len(x) - WIN) // hop + 1)
    bins = {p: round(midi_to_hz(p) * WIN / rate) for p in pitches}
    cols = np.array(sorted(set(bins.values())))
    out = np.zeros((frames, len(cols)), np.float32)
    window = np.hanning(WIN).astype(np.float32)
    for a in range(0, frames, 2048):
        idx = (a + np.arange(min(2048, frames - a)))[:, None] * hop + np.arange(WIN)[None, :]
        out[a : a + idx.shape[0]] = np.abs(np.fft.rfft(x[idx] * window, axis=1)[:, cols])
    return {p: out[:, np.searchsorted(cols, b)] for p, b in bins.items()}


def _rises(e: np.ndarray) -> np.ndarray:
    """How much an envelope grew over the last 20 ms (>= 0)."""
    lag = round(0.020 / LAG_HOP_S)
    return np.maximum(e - np.concatenate([np.full(lag, e[0] if len(e) else 0.0), e[:-lag]]), 0.0)


def _common_lag(notes: list[dict], x: np.ndarray, rate: int) -> float:
    """The constant offset (s, recording time minus logged time) at which the most notes
    start at their own pitch: every note's onset-strength series at its fundamental,
    summed over all candidate offsets at once."""
    t = np.array([n["t"] for n in notes])
    rises = {p: _rises(e) for p, e in _envelopes(x, {n["pitch"] for n in notes}, rate).items()}
    length = len(next(iter(rises.values())))
    shift = int(np.ceil(t.max() / LAG_HOP_S))  # candidate k means offset k * hop - t.max()
    score = np.zeros(length + shift)
    for note, ti in zip(notes, t):
        r = rises[note["pitch"]]
        start = shift - int(round(ti / LAG_HOP_S))  # where recording index 0 falls for this note
        score[start : start + length] += r / (r.max() + 1e-9)
    return float(np.argmax(score) * LAG_HOP_S - shift * LAG_HOP_S)


def _band(x: np.ndarray, centre: np.ndarray, f: float, rate: int) -> np.ndarray:
    """Magnitude at frequency f (Hz) of Hann windows of WIN samples centred at `centre` (s)."""
    n = np.arange(WIN)
    kernel = np.hanning(WIN) * np.exp(-2j * np.pi * f * n / rate)  # (WIN,)
    starts = np.clip(np.round(centre * rate).astype(int) - WIN // 2, 0, len(x) - WIN)
    return np.abs(x[starts[:, None] + n[None, :]] @ kernel)  # (len(centre),)


def note_onset(x: np.ndarray, t: float, pitch: int, rate: int = RATE) -> float | None:
    """When the energy at `pitch`'s fundamental rises near t (s): the crossing of half-way
    between its level just before and its peak just after; None when it does not rise.
    Per note, so legato and repeated notes are found where a broadband detector hears one."""
    f = midi_to_hz(pitch)
    grid = t + np.arange(-0.060, 0.080, 0.001)  # 1 ms steps
    e = _band(x, grid, f, rate)
    before = e[(grid >= t - 0.060) & (grid <= t - 0.015)].min()
    peak = e[grid >= t].max()
    if peak < 1.0 or peak - before < 0.3 * peak:
        return None
    mid = before + 0.5 * (peak - before)
    after = np.flatnonzero((e >= mid) & (grid >= t - 0.045))
    return float(grid[after[0]]) if after.size else None


def in_tune(x: np.ndarray, t: float, pitch: int, rate: int = RATE) -> bool:
    """The strongest new partial within a semitone of `pitch` lies within 50 cents of it."""
    f = pitch_at(x, t, rate, band=(midi_to_hz(pitch - 1), midi_to_hz(pitch + 1)))
    want = midi_to_hz(pitch)
    return f > 0 and abs(1200.0 * np.log2(f / want)) <= CENTS


def match_notes(notes: list[dict], rec: np.ndarray, rate: int = RATE) -> dict[str, Any]:
    """Each logged note's nearest onset after one constant offset, and its pitch."""
    found = onsets(rec, rate)
    if not notes or found.size == 0:
        return {"notes": len(notes), "onsets": int(found.size), "on_time": 0, "in_tune": 0, "share": 0.0}
    t = np.array([n["t"] for n in notes])
    offset = _common_lag(notes, rec, rate)
    # jack_rec starts a moment after the show's first notes: count only notes inside the recording.
    inside = (t + offset >= 0.05) & (t + offset <= len(rec) / rate - 0.1)
    notes, t = [n for n, keep in zip(notes, inside) if keep], t[inside]
    if not notes:
        return {"notes": 0, "onsets": int(found.size), "on_time": 0, "in_tune": 0, "share": 0.0}
    heard = [note_onset(rec, ti + offset, n["pitch"], rate) for n, ti in zip(notes, t)]
    raw = np.array([h - ti if h is not None else np.nan for h, ti in zip(heard, t)])
    if np.isfinite(raw).any():  # the constant offset, as the per-note onsets measure it
        offset = float(np.nanmedian(raw))
    lags = np.where(np.isfinite(raw), raw - offset, np.inf)
    on_time = np.abs(lags) <= TOLERANCE_S
    good = sum(bool(ok) and in_tune(rec, h, n["pitch"], rate) for n, h, ok in zip(notes, heard, on_time))
    finite = np.abs(lags[np.isfinite(lags)]) if np.isfinite(lags).any() else np.zeros(1)
    return {
        "notes": len(notes),
        "before_recording": int((~inside).sum()),
        "onsets": int(found.size),
        "offset_s": round(offset, 4),
        "on_time": int(on_time.sum()),
        "in_tune": int(good),
        "share": round(float(good) / len(notes), 4),
        "lag_p50_ms": round(float(np.median(finite)) * 1000, 2),
        "lag_p95_ms": round(float(np.percentile(finite, 95)) * 1000, 2),
    }


def midi_pairs(dump: str) -> dict[str, Any]:
    """Count note-ons and note-offs in jack_midi_dump's output; every on needs its off."""
    held: dict[tuple[int, int], int] = {}
    ons = offs = orphans = 0
    for line in dump.splitlines():
        parts = line.split(":", 1)[-1].split()
        if len(parts) < 3:
            continue
        try:
            status, pitch, vel = (int(p, 16) for p in parts[:3])
        except ValueError:
            continue
        key = (status & 0x0F, pitch)
        if status & 0xF0 == 0x90 and vel > 0:
            ons += 1
            held[key] = held.get(key, 0) + 1
        elif status & 0xF0 == 0x80 or (status & 0xF0 == 0x90 and vel == 0):
            offs += 1
            if held.get(key, 0) > 0:
                held[key] -= 1
            else:
                orphans += 1
    hanging = sum(held.values())
    return {
        "note_ons": ons,
        "note_offs": offs,
        "hanging": hanging,
        "orphan_offs": orphans,
        "paired": hanging == 0 and orphans == 0,
    }


def _our_ports(timeout: float) -> list[str]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=5).stdout.split("\n")
        ours = [p.strip() for p in ports if p.startswith("PortAudio") and "out_" in p]
        if ours:
            return ours
        time.sleep(0.1)
    return []


def bench_sound(scene: Path = SOUND_SCENE, seconds: float = 60.0, fps: float = 60.0) -> dict[str, Any]:
    missing = missing_tools(("jack_rec", "jack_lsp", "jack_midi_dump", "stdbuf"))
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not installed (apt-get install jackd2)")
    with tempfile.TemporaryDirectory() as tmp_, dummy_server(rate=RATE, period=PERIOD):
        tmp = Path(tmp_)
        dump_f = open(tmp / "dump.txt", "w")
        dump = subprocess.Popen(["stdbuf", "-oL", "jack_midi_dump"], stdout=dump_f, stderr=subprocess.STDOUT)
        show = rec = None
        try:
            time.sleep(0.5)  # midi-monitor:input registered
            show = subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "run_show.py"),
                    "-q",
                    "show",
                    "--headless",
                    "--scene",
                    str(scene),
                    "--seconds",
                    str(seconds),
                    "--fps",
                    str(fps),
                    "--audio-device",
                    "jack",
                    "--midi-api",
                    "jack",
                    "--notes-out",
                    "midi-monitor",
                    "--note-log",
                    str(tmp / "notes.jsonl"),
                    "--stats",
                    str(tmp / "stats.json"),
                    "--osc-port",
                    "0",
                    "--oscquery-port",
                    "0",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ},
            )
            ports = _our_ports(120.0)
            if not ports:
                raise RuntimeError("the show's audio ports never appeared in JACK")
            # jack_rec writes a complete WAV only when its -d duration ends (not when killed); -B holds
            # all of it in memory, so a stalling disk cannot make it drop samples (and notes).
            rec = subprocess.Popen(
                [
                    "jack_rec",
                    "-f",
                    str(tmp / "rec.wav"),
                    "-d",
                    str(seconds + 2),
                    "-b",
                    "16",
                    "-B",
                    str(int((seconds + 2) * RATE)),
                    ports[0],
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _, err = show.communicate(timeout=seconds + 120)
            if show.returncode != 0:
                raise RuntimeError(f"the show failed (exit {show.returncode}): {err[-1500:]}")
            rec.wait(timeout=30)
            time.sleep(0.3)  # the last note-offs reach jack_midi_dump
        finally:
            for p in (rec, show, dump):
                if p is not None and p.poll() is None:
                    p.terminate()
                    p.wait(timeout=10)
            dump_f.close()
        return _report(tmp)


def _report(tmp: Path) -> dict[str, Any]:
    from engine.devices.wav import read_wav

    stats = json.loads((tmp / "stats.json").read_text())
    notes = [json.loads(line) for line in (tmp / "notes.jsonl").read_text().splitlines() if line.strip()]
    rate, rec = read_wav(tmp / "rec.wav")
    audio = stats.get("audio", {})
    return {
        "fps": stats["fps"],
        "late_frames": stats["late_frames"],
        "frame_p99_ms": stats["frame_ms"]["p99"],
        "audio": {k: audio.get(k) for k in ("underruns", "underruns_after_2s", "xruns", "blocks", "late")},
        "timing": match_notes(notes, rec[:, 0], rate),
        "midi": midi_pairs((tmp / "dump.txt").read_text()),
        "notes_out": stats.get("notes_out"),  # what the show's port thread sent, dropped late, failed to send
        "seq": stats.get("seq"),
    }


def format_sound(r: dict[str, Any]) -> str:
    a, t, m = r["audio"], r["timing"], r["midi"]
    return "\n".join(
        [
            f"show: {r['fps']:.1f} fps, frame p99 {r['frame_p99_ms']:.2f} ms, late frames {r['late_frames']}",
            f"audio: {a['blocks']} blocks, underruns {a['underruns']} ({a['underruns_after_2s']} after the first 2 s), "
            f"xruns {a['xruns']}",
            f"notes: {t['notes']} logged inside the recording ({t.get('before_recording', 0)} before it began), "
            f"{t['onsets']} onsets heard; on time (30 ms) and in tune (50 cents): "
            f"{t['in_tune']} = {100 * t['share']:.1f}% "
            f"(lag p50 {t.get('lag_p50_ms')} ms, p95 {t.get('lag_p95_ms')} ms)",
            f"MIDI: {m['note_ons']} note-ons, {m['note_offs']} note-offs, hanging {m['hanging']}, "
            f"every note-on with its note-off: {m['paired']}",
            f"MIDI out (show side): {_notes_out_line(r.get('notes_out'))}",
        ]
    )


def _notes_out_line(n: dict[str, Any] | None) -> str:
    if not n:
        return "no port"
    return (
        f"{n['notes']} notes, {n['sent']} messages sent, {n['late']} note-ons dropped late, "
        f"{n['send_errors']} send errors"
    )
