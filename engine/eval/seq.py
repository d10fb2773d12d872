"""Evaluate note and text models (kinds "notes", "text") against their data.

Held-out loss is measured exactly as the trainers measure it, on the same
held-out part: for notes the files split_by_file holds out with the split seed
recorded in the model file (0 for files written before it was recorded), each
melody scored from its BOS (engine.train.notes.sequence_loss), against the
token bigram fitted on the training files; for text the last 10% of the file,
read as parallel streams with the state carried (engine.train.text.stream_loss),
against the unigram of the first 90%.

Generated material is compared with the data through histograms: pitches,
melodic intervals and note durations (notes), characters and word lengths
(text). Each pair of histograms gives a total variation distance: half the sum
of absolute differences of the shares, 0 = the same distribution, 1 = disjoint.
Generation samples the model's own distribution (temperature 1, no top-k).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from engine.eval.metrics import total_variation
from engine.models.notes import Note, NoteVocab
from engine.models.seq import SeqModel
from engine.models.text import CharVocab, probabilities
from engine.seq.notes import NoteStream, StreamParams
from engine.train.midi_data import MidiScan, melody_tokens, split_by_file
from engine.train.notes import Bigram, sequence_loss
from engine.train.text import split_text, stream_loss, unigram_loss

MELODY_BEATS = 32.0  # beats per generated melody (8 bars of 4/4)
TEXT_CHARS = 300  # characters per generated passage
TEXT_CHUNK = 256  # characters per forward pass when scoring (the state carries, so the loss does not depend on it)
INTERVAL_CLIP = 12  # intervals beyond an octave share the outermost bins
DURATIONS = (0.125, 0.25, 1 / 3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # beats: duration classes (nearest, in log)
DURATION_LABELS = ("1/8", "1/4", "1/3", "1/2", "3/4", "1", "1.5", "2", "3", "4+")
MAX_WORD = 15  # longer words share the last bin
CHART_CHARS = 32  # the most common characters shown in the chart (the distance uses all)

NOTE_ROWS: dict[str, tuple[str, str]] = {
    "val_loss": ("held-out loss, nats per event (the trainer's held-out files)", "lower"),
    "baseline_loss": ("token bigram of the training files on the same held-out files", "-"),
    "val_ratio": ("val_loss / baseline_loss", "below 1"),
    "pitch_tv": ("total variation, pitch histogram, generated vs data", "lower"),
    "interval_tv": ("total variation, melodic interval histogram", "lower"),
    "duration_tv": ("total variation, note duration histogram", "lower"),
    "notes_generated": ("notes in the generated melodies", "-"),
}
TEXT_ROWS: dict[str, tuple[str, str]] = {
    "val_loss": ("held-out loss, nats per character (the last 10% of the file)", "lower"),
    "baseline_loss": ("character unigram of the first 90% on the same 10%", "-"),
    "val_ratio": ("val_loss / baseline_loss", "below 1"),
    "char_tv": ("total variation, character histogram, generated vs data", "lower"),
    "word_length_tv": ("total variation, word length histogram", "lower"),
    "chars_generated": ("characters generated", "-"),
}


@dataclass
class Chart:
    """One bar chart of the report: bin labels and each series' shares."""

    name: str  # file stem
    title: str
    xlabel: str
    labels: list[str]
    series: dict[str, list[float]]


@dataclass
class SeqEval:
    """The numbers (NOTE_ROWS' or TEXT_ROWS' keys), the charts and a sample of the output."""

    numbers: dict[str, float]
    charts: list[Chart] = field(default_factory=list)
    excerpt: str = ""


def _shares(counts: torch.Tensor, total: float | None) -> list[float]:
    """Counts as shares of `total` (default: their sum), so a chart of some bins shows true shares."""
    return (counts.double() / max(float(counts.sum()) if total is None else total, 1.0)).tolist()


def _chart(
    name: str,
    title: str,
    xlabel: str,
    labels: list[str],
    data: torch.Tensor,
    gen: torch.Tensor,
    totals: tuple[float, float] | None = None,
) -> Chart:
    d_total, g_total = totals if totals is not None else (None, None)
    return Chart(name, title, xlabel, labels, {"data": _shares(data, d_total), "generated": _shares(gen, g_total)})


# ---------------------------------------------------------------- notes


def generate_melodies(model: SeqModel, samples: int, seed: int) -> list[list[Note]]:
    """`samples` melodies of MELODY_BEATS beats, each from a fresh state and seed + i (numpy PCG64)."""
    stream = NoteStream(model, StreamParams(allow_restart=False))
    melodies = []
    for i in range(samples):
        stream.reset(seed=seed + i)
        notes: list[Note] = []
        for _ in range(64):  # next_notes stops after 256 events; a melody of rests may need more calls
            if stream.position >= MELODY_BEATS:
                break
            notes += stream.next_notes(MELODY_BEATS)
        melodies.append([n for n in notes if n.beat < MELODY_BEATS])
    return melodies


def _note_counts(melodies: Sequence[Sequence[Note]], vocab: NoteVocab) -> tuple[torch.Tensor, ...]:
    """(pitch counts over the vocab's range, interval counts -12..12, duration-class counts)."""
    pitches = torch.zeros(vocab.pitch_high - vocab.pitch_low + 1)
    intervals = torch.zeros(2 * INTERVAL_CLIP + 1)
    durations = torch.zeros(len(DURATIONS))
    logs = torch.tensor([math.log(d) for d in DURATIONS])
    for melody in melodies:
        for k, note in enumerate(melody):
            pitches[vocab.fold(note.pitch) - vocab.pitch_low] += 1
            durations[int((logs - math.log(max(note.duration_beats, 1e-3))).abs().argmin())] += 1
            if k:
                step = max(-INTERVAL_CLIP, min(INTERVAL_CLIP, note.pitch - melody[k - 1].pitch))
                intervals[step + INTERVAL_CLIP] += 1
    return pitches, intervals, durations


def evaluate_notes(model: SeqModel, scan: MidiScan, split_seed: int, samples: int, seed: int) -> SeqEval:
    """Held-out and baseline loss on the trainer's split, and histograms of generated vs data melodies."""
    vocab = model.vocab
    if not isinstance(vocab, NoteVocab):
        raise TypeError(f"evaluate_notes needs a note model, got one of kind {vocab.KIND!r}")
    train_idx, val_idx = split_by_file(scan.loaded, split_seed)
    train = [t for i in train_idx for t in melody_tokens(scan.files[i].melodies, vocab)]
    val = [t for i in val_idx for t in melody_tokens(scan.files[i].melodies, vocab)]
    val_loss = sequence_loss(model, val, torch.device("cpu"))
    baseline = Bigram(vocab.size, train).loss(val)
    # The data as the model sees it: every melody through the tokens and back (grid, folding, legato).
    data = [vocab.decode(t) for f in scan.files for t in melody_tokens(f.melodies, vocab)]
    generated = generate_melodies(model, samples, seed)
    d_counts, g_counts = _note_counts(data, vocab), _note_counts(generated, vocab)
    used = torch.nonzero(d_counts[0] + g_counts[0]).flatten()
    lo, hi = (int(used.min()), int(used.max()) + 1) if len(used) else (0, 1)
    interval_labels = [str(i) for i in range(-INTERVAL_CLIP, INTERVAL_CLIP + 1)]
    interval_labels[0], interval_labels[-1] = f"<={-INTERVAL_CLIP}", f">={INTERVAL_CLIP}"
    charts = [
        _chart(
            "pitches",
            "pitches (MIDI note numbers)",
            "MIDI pitch",
            [str(vocab.pitch_low + p) for p in range(lo, hi)],
            d_counts[0][lo:hi],
            g_counts[0][lo:hi],
        ),
        _chart("intervals", "melodic intervals", "semitones", interval_labels, d_counts[1], g_counts[1]),
        _chart("durations", "note durations", "beats (nearest class)", list(DURATION_LABELS), d_counts[2], g_counts[2]),
    ]
    numbers = {
        "val_loss": val_loss,
        "baseline_loss": baseline,
        "val_ratio": val_loss / baseline,
        "pitch_tv": total_variation(g_counts[0], d_counts[0]),
        "interval_tv": total_variation(g_counts[1], d_counts[1]),
        "duration_tv": total_variation(g_counts[2], d_counts[2]),
        "notes_generated": float(sum(len(m) for m in generated)),
    }
    first = generated[0] if generated else []
    excerpt = " ".join(f"{n.pitch}/{n.duration_beats:g}" for n in first[:24])
    return SeqEval(numbers, charts, excerpt)


# ---------------------------------------------------------------- text


@torch.inference_mode()
def generate_text(model: SeqModel, samples: int, seed: int) -> list[str]:
    """`samples` passages of TEXT_CHARS characters, all streams in one batch, each primed with a newline."""
    vocab = model.vocab
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"generate_text needs a text model, got one of kind {vocab.KIND!r}")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.full((samples, 1), vocab.lookup("\n"), dtype=torch.long)  # (B, 1)
    state = model.initial_state(samples)  # (layers, B, hidden)
    out = torch.empty(samples, TEXT_CHARS, dtype=torch.long)
    for t in range(TEXT_CHARS):
        logits, state = model.forward_state(idx, state)  # (B, 1, V)
        idx = torch.multinomial(probabilities(logits[:, 0].float()), 1, generator=gen)  # (B, 1), <unk> masked
        out[:, t] = idx[:, 0]
    return [vocab.decode(row.tolist()) for row in out]


def _word_lengths(text: str) -> torch.Tensor:
    counts = torch.zeros(MAX_WORD)
    for word in re.findall(r"\w+", text):
        counts[min(len(word), MAX_WORD) - 1] += 1
    return counts


def _label(char: str) -> str:
    return {" ": "sp", "\n": "\\n", "\t": "\\t"}.get(char, char)


def evaluate_text(model: SeqModel, text: str, samples: int, seed: int) -> SeqEval:
    """Held-out and unigram loss on the trainer's split of `text`, and histograms of generated vs data text."""
    vocab = model.vocab
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"evaluate_text needs a text model, got one of kind {vocab.KIND!r}")
    train, val = split_text(text)
    ids = torch.tensor(vocab.encode(val), dtype=torch.long)
    with torch.inference_mode():
        val_loss = stream_loss(model, ids, TEXT_CHUNK)
    baseline = unigram_loss(train, val, "".join(sorted(set(text))))
    generated = "".join(generate_text(model, samples, seed))
    data_chars, gen_chars = Counter(text), Counter(generated)
    alphabet = sorted(set(data_chars) | set(gen_chars))
    d_all = torch.tensor([float(data_chars[c]) for c in alphabet])
    g_all = torch.tensor([float(gen_chars[c]) for c in alphabet])
    shown = sorted(alphabet, key=lambda c: -data_chars[c])[:CHART_CHARS]
    pick = torch.tensor([alphabet.index(c) for c in shown], dtype=torch.long)
    d_words, g_words = _word_lengths(text), _word_lengths(generated)
    word_labels = [str(n) for n in range(1, MAX_WORD)] + [f"{MAX_WORD}+"]
    charts = [
        _chart(
            "characters",
            f"the data's {len(shown)} most common characters",
            "character",
            [_label(c) for c in shown],
            d_all[pick],
            g_all[pick],
            (float(d_all.sum()), float(g_all.sum())),
        ),
        _chart("word_lengths", "word lengths", "letters", word_labels, d_words, g_words),
    ]
    numbers = {
        "val_loss": val_loss,
        "baseline_loss": baseline,
        "val_ratio": val_loss / baseline,
        "char_tv": total_variation(g_all, d_all),
        "word_length_tv": total_variation(g_words, d_words),
        "chars_generated": float(len(generated)),
    }
    return SeqEval(numbers, charts, generated[:TEXT_CHARS])
