"""SeqLayer: the melody and text of the playing scene, attached to a Show.

Models for every scene are loaded here, before the first frame (one load per
distinct file), so a scene change never stalls. See engine.seq.stage for what
happens each frame. The note sinks are given by the caller: the live show
passes the sound output, MIDI out and the note log; `render` passes the
offline synth.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import ShowConfig
from engine.dsp.synth import setting_specs
from engine.models.checkpoint import ModelFileError
from engine.seq.stage import NoteLog, NotePlayer, PhraseListener, TextPlayer

if TYPE_CHECKING:
    from engine.seq.overlay import TextOverlay
    from engine.stage.show import Show

log = logging.getLogger(__name__)

WARMUP_S = 2.0  # seconds of show time before audio underruns count as the engine's
SYNTH_SETTINGS = tuple(spec["name"] for spec in setting_specs())  # /synth/<name> -> Synth.settings
GEN_MS_FRAMES = 36_000  # the stats' generation cost covers the last 10 minutes at 60 fps


class NoteRouter:
    """Fans every generated note out to the synth (on its audio clock), MIDI out
    (perf_counter time = origin + show time) and the note log."""

    def __init__(
        self,
        audio: Any = None,
        midi: Any = None,
        note_log: NoteLog | None = None,
        origin: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.audio, self.midi, self.note_log = audio, midi, note_log
        self.origin = origin
        self._s0: int | None = None  # synth sample at show time 0

    def note(self, t: float, pitch: int, velocity: int, duration_s: float) -> float:
        t_log = t
        origin = self.origin()
        if self.audio is not None:
            if origin is not None and hasattr(self.audio, "origin"):
                self.audio.origin = origin  # perf_counter time of show time 0 (live sound out)
            # the sample the synth got: reading the clock again could give another (it is re-anchored
            # on the producer thread), and the log would then disagree with the sound
            sample = self.audio.schedule(t, pitch, velocity, duration_s)
            if self._s0 is None:
                self._s0 = self.audio.sample_at(0.0)
            t_log = (sample - self._s0) / self.audio.sample_rate  # seconds on the audio clock
        if self.midi is not None and origin is not None:
            self.midi.note(origin + t, pitch, velocity, duration_s)
        if self.note_log is not None:
            self.note_log.write(t_log, pitch, velocity, duration_s)
        return t_log

    def panic(self) -> None:
        for out in (self.audio, self.midi):
            if out is not None:
                out.panic()

    def close(self) -> None:
        if self.note_log is not None:
            self.note_log.close()


def _load_players(scenes: list[Any], base: str) -> list[tuple[NotePlayer | None, TextPlayer | None]]:
    """Per scene: its note and text players (None where the scene has no such table)."""
    from engine.models.seq import load_seq_model
    from engine.seq.notes import NoteStream
    from engine.seq.text import TextStream
    from engine.train.midi_data import read_midi_melodies

    notes_cache: dict[Path, Any] = {}
    text_cache: dict[Path, Any] = {}
    out: list[tuple[NotePlayer | None, TextPlayer | None]] = []
    for sc in scenes:
        seq = sc.spec.seq
        notes = text = None
        if seq is not None and seq.notes is not None:
            if seq.notes.model not in notes_cache:
                notes_cache[seq.notes.model] = load_seq_model(seq.notes.model, "notes")[0]
                log.info("loaded %s (notes)", seq.notes.model.name)
            melodies = read_midi_melodies(seq.notes.primer) if seq.notes.primer else []
            primer = melodies[0] if melodies else []  # the first melody line of the file
            notes = NotePlayer(NoteStream(notes_cache[seq.notes.model], seed=sc.spec.seed, primer=primer), base)
        if seq is not None and seq.text is not None:
            if seq.text.model not in text_cache:
                text_cache[seq.text.model] = load_seq_model(seq.text.model, "text")[0]
                log.info("loaded %s (text)", seq.text.model.name)
            text = TextPlayer(TextStream(text_cache[seq.text.model]), base, seq.text.primer)
        out.append((notes, text))
    return out


class SeqLayer:
    """Melody and text for a show; call attach() once, close() at the end."""

    def __init__(
        self, show: Show, router: NoteRouter, text_layer: TextOverlay | None = None, synth: Any = None
    ) -> None:
        self.show = show
        self.router = router
        self.text_layer = text_layer
        self.synth = synth  # a Synth whose settings follow /synth/*, or None
        self.base = show.deck.base  # the melody and text follow the params of the show's deck
        self._notes_on, self._text_on = f"{self.base}/notes/on", f"{self.base}/text/on"  # read every frame
        try:
            self.players = _load_players(show.scenes, self.base)
        except (ModelFileError, ValueError, OSError) as e:
            from engine.errors import StartupError

            raise StartupError(str(e)) from None
        self.listener = PhraseListener()  # live MIDI notes (--notes-prime) that prime the melody
        self.primed = 0
        self._scene = -1
        self._muted = False
        self._synth_applied: dict[str, float] = {}
        self.gen_ms: deque[float] = deque(maxlen=GEN_MS_FRAMES)  # per frame: melody + text cost, ms

    def attach(self) -> None:
        self.show.frame_hooks.append(self.frame)
        self.show.provide("seq", self)

    # Verbs of owner "seq" (engine.core.space.VERBS). The layer plays the show's deck only:
    # a reset sent to another deck is rejected and counted.
    def played(self, ev: Any) -> None:
        self.listener.played(ev.value, self.show.t)

    def _mine(self, ev: Any) -> bool:
        if ev.address.startswith(self.base + "/"):
            return True
        self.show.registry.rejected += 1
        return False

    def reset_notes(self, ev: Any) -> None:
        if not self._mine(ev):
            return
        notes, _ = self.players[self.show.scene_index]
        if notes is not None:
            self.router.panic()
            notes.playing = False  # restarted, with the current seed, on the next whole beat

    def reset_text(self, ev: Any) -> None:
        if not self._mine(ev):
            return
        _, text = self.players[self.show.scene_index]
        if text is not None:
            text.restart()
            if self.text_layer is not None:
                self.text_layer.clear()

    def prime(self, ev: Any) -> None:
        _, text = self.players[self.show.scene_index]
        if text is not None and isinstance(ev.value, str):
            # On its own line: a primer joined to the half-written line read as one garbled word.
            lead = "\n" if text.stream.current_line else ""
            text.stream.prime(lead + ev.value[:255])

    def frame(self, show: Show) -> None:
        start = time.perf_counter()
        reg = show.registry
        get = reg.get
        if show.scene_index != self._scene:
            self._switch(show.scene_index)
        notes, text = self.players[show.scene_index]
        self._apply_synth(get)
        if notes is not None:
            self._notes(notes, get, show)
        if text is not None:
            self._text(text, get, show)
        if self.router.note_log is not None:
            self.router.note_log.flush()
        self.gen_ms.append((time.perf_counter() - start) * 1000.0)

    def _switch(self, index: int) -> None:
        if self._scene >= 0:
            self.router.panic()
        self._scene = index
        notes, text = self.players[index]
        if notes is not None:
            notes.playing = False
        if text is not None and self.text_layer is not None:
            self.text_layer.clear()
        seq = self.show.scenes[index].spec.seq
        for name, value in seq.synth.items() if seq is not None else ():
            self.show.registry.set(f"/synth/{name}", value)

    def _notes(self, notes: NotePlayer, get: Callable[[str], float], show: Show) -> None:
        silent = get("/master/blackout") >= 0.5 or get(self._notes_on) < 0.5
        if silent:
            if not self._muted:
                self.router.panic()
                notes.counts.panics += 1
                notes.playing = False
            self._muted = True
            return
        self._muted = False
        notes.apply_params(get)
        phrase = self.listener.phrase(show.t, show.tempo.bpm)
        if phrase:  # call and response: the model continues from what was just played
            notes.stream.prime(phrase)
            self.primed += 1
        notes.step(show.t, show.tempo.beat, show.tempo.bpm, get, self.router)

    def _text(self, text: TextPlayer, get: Callable[[str], float], show: Show) -> None:
        if get(self._text_on) < 0.5:
            return
        text.apply_params(get)
        for line in text.step(show.dt):
            if self.text_layer is not None:
                self.text_layer.add_line(line, show.t)
            for announce in show.announcers:
                announce("/text/line", line)

    def _apply_synth(self, get: Callable[[str], float]) -> None:
        if self.synth is None:
            return
        for name in SYNTH_SETTINGS:
            v = get(f"/synth/{name}")
            if self._synth_applied.get(name) != v:
                self._synth_applied[name] = self.synth.settings.set(name, v)

    def stats(self) -> dict[str, Any]:
        counts = [n.counts for n, _ in self.players if n is not None]
        notes = sum(c.notes for c in counts)
        texts = [t for _, t in self.players if t is not None]
        lines = sum(t.lines for t in texts)
        costs = sorted(self.gen_ms) or [0.0]
        return {
            "seq": {
                "notes": notes,
                "lines": lines,
                "primed_phrases": self.primed,
                "note_panics": sum(c.panics for c in counts),  # silenced by blackout / notes off
                "note_param_errors": sum(c.param_errors for c in counts),  # mixes refused
                "primer_dropped": sum(t.stream.primer_dropped for t in texts),  # /text/prime flood
                "gen_ms": {
                    "p50": round(costs[len(costs) // 2], 3),
                    "p99": round(costs[min(len(costs) - 1, int(0.99 * len(costs)))], 3),
                },
            }
        }

    def close(self) -> None:
        self.router.panic()
        self.router.close()


def _text_font(show: Show) -> Path | None:
    """The first scene's text font (one overlay for the whole show)."""
    for sc in show.scenes:
        seq = sc.spec.seq
        if seq is not None and seq.text is not None and seq.text.font is not None:
            return seq.text.font
    return None


def _overlay(show: Show) -> Any:
    from engine.seq.overlay import TextOverlay

    return TextOverlay(
        show.registry.get, lambda: show.t, lambda: show.blackout_level, _text_font(show), deck=show.deck.name
    )


def has_seq(show: Show) -> bool:
    return any(sc.spec.seq is not None for sc in show.scenes)


class OfflineSeq:
    """Melody, text and sound for `render`: the synth rendered to a WAV in step with
    the frames (show time t = sample round(t * rate)), the text drawn into each frame."""

    SAMPLE_RATE = 48000

    def __init__(self, show: Show, output: Any, fps: float, wav: Path) -> None:
        from engine.devices.wav import OfflineAudio, WavWriter
        from engine.dsp.synth import Synth

        self.fps = fps
        self.wav = wav
        synth = Synth(self.SAMPLE_RATE)
        self.audio = OfflineAudio(synth, channels=2, sink=WavWriter(wav, self.SAMPLE_RATE, 2))
        overlay = _overlay(show)
        output.overlay = overlay
        self.layer = SeqLayer(show, NoteRouter(audio=self.audio), overlay, synth=synth)
        self.layer.attach()
        show.frame_hooks.append(self._advance)

    def _advance(self, show: Show) -> None:
        self.audio.advance_to(show.t + 1.0 / self.fps)  # sound up to the next frame's time

    def finish(self, seconds: float) -> Path:
        """Sound up to `seconds` exactly; the closed WAV."""
        self.audio.advance_to(seconds)
        self.audio.close()
        self.layer.close()
        return self.wav


class LiveSeq:
    """Melody, text and sound for the live show: the sound card (or JACK) through
    engine.devices.audio_out, --notes-out, --note-log, and the text drawn by the window."""

    def __init__(self, config: ShowConfig, show: Show, clock_origin: Callable[[], float | None]) -> None:
        from engine.devices.audio_out import open_audio

        wants_sound = _wants_sound(show)
        note_log = _open_note_log(config)  # first: a bad path stops startup before any device opens
        self.audio = open_audio(config) if wants_sound else None
        self.midi = _open_notes_out(config) if wants_sound else None
        overlay = _overlay(show)
        show.output.overlay = overlay
        router = NoteRouter(self.audio, self.midi, note_log, origin=clock_origin)
        self.layer = SeqLayer(show, router, overlay, synth=self.audio.synth if self.audio is not None else None)
        self.layer.attach()
        self._warm_underruns: int | None = None  # underruns when the show passed WARMUP_S
        if self.audio is not None:
            show.frame_hooks.append(self._warm_up)

    def _warm_up(self, show: Show) -> None:
        if self._warm_underruns is None and show.t >= WARMUP_S and self.audio is not None:
            self._warm_underruns = self.audio.playback.underruns
            show.frame_hooks.remove(self._warm_up)

    def stats(self) -> dict[str, Any]:
        out = self.layer.stats()
        out.update(self.audio_stats())
        if self.midi is not None:
            out["notes_out"] = self.midi.stats()
        return out

    def audio_stats(self) -> dict[str, Any]:
        """{"audio": underruns, xruns, blocks, active}: cheap enough for the frame loop's status
        (stats() also sorts the last 10 minutes of generation costs, ~3.6 ms)."""
        # "audio" is always there: a silent show (no device) says so with zero blocks.
        if self.audio is None:
            return {"audio": {"underruns": 0, "xruns": 0, "blocks": 0, "active": False}}
        audio = self.audio.stats()
        warm = self._warm_underruns  # the stream's start-up is not the engine keeping up
        audio["underruns_after_2s"] = None if warm is None else audio["underruns"] - warm
        return {"audio": audio}

    def close(self) -> None:
        self.layer.close()  # panic first: the note-offs go out before the ports close
        if self.midi is not None:
            self.midi.close()
        if self.audio is not None:
            self.audio.close()


def _open_notes_out(config: ShowConfig) -> Any:
    name = config.notes_out
    if not name:
        return None
    from engine.control.midi import _rtmidi_factory
    from engine.devices.midi_out import MidiNotesOut

    out = MidiNotesOut(name, config.notes_channel, _rtmidi_factory(config))
    out.start()
    return out


def _open_note_log(config: ShowConfig) -> NoteLog | None:
    path = config.note_log
    if path is None:
        return None
    try:
        return NoteLog(Path(path))
    except OSError as e:
        from engine.errors import StartupError

        raise StartupError(f"--note-log {path}: cannot write ({e.strerror or e})") from None


def start_live_seq(config: ShowConfig, show: Show, clock_origin: Callable[[], float | None]) -> LiveSeq | None:
    """The live melody/text/sound, or None when no scene has [notes] or [text]."""
    if not _wants_sound(show):
        given = [
            flag
            for flag, value in (
                ("--audio-device", config.audio_device),
                ("--notes-out", config.notes_out),
                ("--note-log", config.note_log),
            )
            if value is not None
        ]
        if given:  # else the flag would do nothing without a word (the device not even checked)
            log.warning("%s: no scene has a [notes] table; no sound or notes will be made", "/".join(given))
    if not has_seq(show):
        return None
    return LiveSeq(config, show, clock_origin)


def _wants_sound(show: Show) -> bool:
    return any(sc.spec.seq is not None and sc.spec.seq.notes is not None for sc in show.scenes)
