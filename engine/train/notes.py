"""Train the melody RNN on a folder of MIDI files; see docs/NOTES.md.

Recipe: melodies from every usable file (engine.train.midi_data), 10% of the
files held out (split by file, fixed by the seed), tokens as in
engine.models.notes, the network engine.models.seq's SeqModel. Training
takes random windows of --seq-len tokens from the training files' token
stream, each transposed by a random shift of up to --transpose semitones
(clamped so every pitch stays in range); Adam with gradient clipping and a
cosine learning-rate decay over the budget.

Metrics (nats per event, on the held-out files' tokens, each melody read from
its BOS; every token after the BOS is scored):
  val_loss       the RNN
  baseline_loss  a token bigram fitted on the training files (add-one smoothing)

Outputs per checkpoint (first within 30 s, then every 60 s, and at the end):
NAME.safetensors (fp16), NAME.mid (a few generated melodies),
NAME.state.safetensors (everything --resume needs). All written atomically.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import TrainSetupError
from engine.files.atomic import atomic_write_bytes
from engine.models.notes import NoteVocab
from engine.models.seq import SeqConfig, SeqModel, save_seq_model
from engine.seq.notes import NoteStream, StreamParams
from engine.train.common import (
    SeqTrainOptions,
    TrainingParts,
    check_resume_config,
    count_params,
    out_paths,
    read_resume_state,
    resolve_device,
)
from engine.train.midi_data import MidiScan, load_midi_folder, melody_tokens, notes_to_midi_bytes, split_by_file
from engine.train.run import SeqTrainRun

log = logging.getLogger(__name__)

HELP = "a melody RNN from a folder of MIDI files (.mid/.midi)"
SAMPLE_MELODIES = 4  # in NAME.mid
SAMPLE_BEATS = 32.0  # per melody (8 bars of 4/4), then 4 beats of silence
WARMUP_STEPS = 50
MIN_LR_FRACTION = 0.1  # the cosine decay ends at lr * this
EVAL_BATCH = 32  # held-out melodies per forward pass


@dataclass(frozen=True)
class NotesTrainOptions(SeqTrainOptions):
    """Everything train_notes needs; the `train notes` flags (engine.flags) take their defaults from
    here. The network's size (hidden, layers, embed, dropout), lr and their defaults: SeqTrainOptions."""

    batch: int = 32
    seq_len: int = 128
    transpose: int = 5

    def note_config(self) -> SeqConfig:
        config = self.seq_config(NoteVocab())
        config.validate()
        return config


def _validate(opts: NotesTrainOptions) -> None:
    try:
        opts.note_config()
    except ValueError as exc:  # name the flag, not the config key
        raise TrainSetupError(f"bad model size flag: {exc}") from None
    for flag, value, lo in (("--batch", opts.batch, 1), ("--seq-len", opts.seq_len, 2)):
        if value < lo:
            raise TrainSetupError(f"{flag} must be at least {lo}, got {value}")
    if not 0.0 < opts.lr < 1.0:
        raise TrainSetupError(f"--lr must be between 0 and 1, got {opts.lr}")
    if not 0 <= opts.transpose <= 12:
        raise TrainSetupError(f"--transpose must be from 0 to 12 semitones, got {opts.transpose}")


class Bigram:
    """Token bigram with add-alpha smoothing: P(next | previous); the baseline."""

    def __init__(self, vocab_size: int, sequences: Sequence[Sequence[int]], alpha: float = 1.0) -> None:
        counts = np.zeros((vocab_size, vocab_size), np.float64)
        for seq in sequences:
            s = np.asarray(seq, np.int64)
            np.add.at(counts, (s[:-1], s[1:]), 1.0)
        counts += alpha
        self.logp = np.log(counts / counts.sum(axis=1, keepdims=True))  # (V, V)

    def loss(self, sequences: Sequence[Sequence[int]]) -> float:
        """Mean negative log-likelihood (nats) of every token after the first."""
        total, count = 0.0, 0
        for seq in sequences:
            s = np.asarray(seq, np.int64)
            total -= float(self.logp[s[:-1], s[1:]].sum())
            count += len(s) - 1
        return total / max(count, 1)


@torch.inference_mode()
def sequence_loss(model: SeqModel, sequences: Sequence[Sequence[int]], device: torch.device) -> float:
    """Mean NLL (nats per token) of every token after the first, each sequence from a fresh state."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    total, count = 0.0, 0
    for start in range(0, len(order), EVAL_BATCH):
        group = [sequences[i] for i in order[start : start + EVAL_BATCH]]
        longest = max(len(s) for s in group)
        tokens = torch.zeros(len(group), longest, dtype=torch.long)  # (B, T) padded with BOS
        mask = torch.zeros(len(group), longest - 1, dtype=torch.bool)  # (B, T-1) real targets
        for row, seq in enumerate(group):
            tokens[row, : len(seq)] = torch.as_tensor(seq)
            mask[row, : len(seq) - 1] = True
        tokens = tokens.to(device)
        logits = model(tokens[:, :-1]).float()  # (B, T-1, V)
        nll = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")  # (B, T-1)
        total += float(nll[mask.to(device)].sum())
        count += int(mask.sum())
    model.train(was_training)
    return total / max(count, 1)


class _NotesData:
    """Tokens of the training files (one stream) and of the held-out files (per melody)."""

    def __init__(self, scan: MidiScan, vocab: NoteVocab, seed: int) -> None:
        self.scan = scan
        self.split_seed = seed  # recorded in the model file, so `eval` scores the same held-out files
        train_idx, val_idx = split_by_file(scan.loaded, seed)
        self.train_names = [scan.files[i].name for i in train_idx]
        self.val_names = [scan.files[i].name for i in val_idx]
        self.train_seqs = [t for i in train_idx for t in melody_tokens(scan.files[i].melodies, vocab)]
        self.val_seqs = [t for i in val_idx for t in melody_tokens(scan.files[i].melodies, vocab)]
        self.stream = torch.as_tensor(np.concatenate([np.asarray(s, np.int64) for s in self.train_seqs]))
        self.val_tokens = sum(len(s) - 1 for s in self.val_seqs)
        self.note0, self.pitches = vocab.note0, vocab.pitch_high - vocab.pitch_low + 1

    def windows(self, batch: int, length: int, transpose: int, gen: torch.Generator) -> torch.Tensor:
        """(batch, length + 1) random windows of the training stream, each randomly transposed."""
        n = self.stream.numel()
        length = min(length, n - 1)
        starts = torch.randint(0, n - length, (batch,), generator=gen)
        win = self.stream[starts.unsqueeze(1) + torch.arange(length + 1)]  # (B, L+1)
        if transpose <= 0:
            return win
        pitch = win - self.note0  # (B, L+1) pitch index where is_pitch
        is_pitch = (pitch >= 0) & (pitch < self.pitches)
        lowest = torch.where(is_pitch, pitch, self.pitches).min(dim=1).values  # (B,)
        highest = torch.where(is_pitch, pitch, -1).max(dim=1).values
        shift = torch.randint(-transpose, transpose + 1, (batch,), generator=gen)
        shift = torch.minimum(torch.maximum(shift, -lowest), self.pitches - 1 - highest)  # stay in range
        return torch.where(is_pitch, win + shift.unsqueeze(1), win)

    def summary(self, folder: str) -> dict[str, Any]:
        return {
            "folder": Path(folder).resolve().name,
            "files": self.scan.loaded,
            "train_files": len(self.train_names),
            "val_files": len(self.val_names),
            "skipped": self.scan.skipped,
            "melodies": len(self.train_seqs) + len(self.val_seqs),
            "train_tokens": int(self.stream.numel()),
            "val_tokens": self.val_tokens,
            "split_seed": self.split_seed,
        }


class _NotesRun(SeqTrainRun[NotesTrainOptions]):
    """Model, optimiser, data and metrics of one training run."""

    KIND = NoteVocab.KIND
    SAMPLE = ".mid"  # a few generated melodies
    SCHEDULE = (WARMUP_STEPS, MIN_LR_FRACTION)

    def __init__(self, opts: NotesTrainOptions, device: torch.device, split_seed: int) -> None:
        super().__init__(opts, device)
        self.config = opts.note_config()
        self.vocab = cast(NoteVocab, self.config.vocab)  # note_config builds on a NoteVocab
        self.split_seed = split_seed
        self.data = _NotesData(load_midi_folder(opts.data), self.vocab, split_seed)
        self.init_model(lambda: SeqModel(self.config))
        self.gen = torch.Generator().manual_seed(opts.seed)  # windows and transpositions
        self.baseline_loss = Bigram(self.vocab.size, self.data.train_seqs).loss(self.data.val_seqs)
        self.val_loss_start = self.val_loss = math.nan
        self.items_per_step = opts.batch * opts.seq_len  # tokens

    def bar_fields(self, _loss: float) -> dict[str, str]:
        return {
            "loss": f"{self.avg_loss:.3f}",
            "val": f"{self.val_loss:.3f}",
            "base": f"{self.baseline_loss:.3f}",
            "tok_s": f"{self.rate:.0f}",
        }

    def train_step(self, fraction: float) -> float:
        """One Adam step on a batch of random windows; returns the loss (nats per token)."""
        self.schedule_lr(fraction)
        win = self.data.windows(self.opts.batch, self.opts.seq_len, self.opts.transpose, self.gen)
        win = win.to(self.device)
        logits = self.model(win[:, :-1])  # (B, L, V)
        loss = F.cross_entropy(logits.transpose(1, 2), win[:, 1:])
        return self.optimise(loss)

    def measure(self) -> float:
        return sequence_loss(self.model, self.data.val_seqs, self.device)

    def checkpoint(self) -> None:
        """Measure, then write the sample MIDI, the model file and the state file (each atomic)."""
        self.val_loss = self.measure()
        atomic_write_bytes(self.sample_path, notes_to_midi_bytes(self.sample_notes()))
        save_seq_model(
            self.model_path, self.model, data=self.data.summary(self.opts.data), metrics=self.metrics(), steps=self.step
        )
        self.save_training_state()
        log.info(
            "checkpoint at step %d: val_loss %.4f, baseline %.4f (ratio %.3f) -> %s",
            self.step,
            self.val_loss,
            self.baseline_loss,
            self.val_loss / self.baseline_loss,
            self.model_path,
        )

    def sample_notes(self) -> list:
        """SAMPLE_MELODIES melodies of SAMPLE_BEATS beats each, 4 beats apart, fixed seeds."""
        model = SeqModel(self.config)
        model.load_state_dict({k: v.detach().float().cpu() for k, v in self.model.state_dict().items()})
        stream = NoteStream(model.eval(), StreamParams(temperature=0.9, top_k=20, allow_restart=False))
        notes = []
        for i in range(SAMPLE_MELODIES):
            start = i * (SAMPLE_BEATS + 4.0)
            stream.reset(seed=self.split_seed + i, beat=start)
            notes += [n for n in stream.next_notes(start + SAMPLE_BEATS) if n.beat < start + SAMPLE_BEATS]
        return notes

    def metrics(self) -> dict[str, float]:
        return {
            "val_loss": round(self.val_loss, 6),
            "baseline_loss": round(self.baseline_loss, 6),
            "val_loss_start": round(self.val_loss_start, 6),
            "val_ratio": round(self.val_loss / self.baseline_loss, 6),
            "train_loss": round(self.avg_loss, 6),
            "tokens_per_s": round(self.rate, 1),
        }

    def state_parts(self) -> TrainingParts:
        return {"model": self.model}, {"opt": self.opt}, self.gen

    def state_meta(self) -> dict[str, Any]:
        return {
            "seed": self.split_seed,
            "config": self.config.to_dict(),
            "batch": self.opts.batch,
            "seq_len": self.opts.seq_len,
            "lr": self.opts.lr,
            "transpose": self.opts.transpose,
            "val_loss_start": self.val_loss_start,
            "val_loss": self.val_loss,
            "baseline_loss": self.baseline_loss,
            "data": self.data.summary(self.opts.data),
            "val_files": self.data.val_names,
        }

    def outcome(self) -> str:
        return (
            f"{self.rate:.0f} tokens/s, val_loss {self.val_loss_start:.4f} -> {self.val_loss:.4f}, "
            f"baseline {self.baseline_loss:.4f} (ratio {self.val_loss / self.baseline_loss:.3f})"
        )

    def results(self) -> dict[str, Any]:
        scan = self.data.scan
        return {
            "tokens_per_s": round(self.rate, 1),
            "val_loss_start": self.val_loss_start,
            "val_loss": self.val_loss,
            "baseline_loss": self.baseline_loss,
            "val_ratio": self.val_loss / self.baseline_loss,
            "paths": self.paths(),
            "files": scan.loaded,
            "train_files": len(self.data.train_names),
            "val_files": len(self.data.val_names),
            "skipped": scan.skipped,
            "skipped_names": list(scan.skipped_names),
            "skip_reasons": dict(scan.skip_reasons),
        }

    def load_state(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        """Continue from a state file already read (and checked) by _read_resume_state."""
        self.load_training_state(tensors, state)
        self.val_loss_start = float(state["val_loss_start"])
        self.val_loss = float(state.get("val_loss", math.nan))
        if state.get("val_files") != self.data.val_names:
            log.warning(
                "the held-out files differ from the first run's (the data folder changed?); "
                "val_loss is not comparable across the resume"
            )
        log.info(
            "resuming from step %d (%s, %.0f s trained so far, val_loss %.4f)",
            self.step,
            self.state_path,
            self.total_seconds,
            self.val_loss,
        )


def _read_resume_state(opts: NotesTrainOptions) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state file for --resume; ValueError if it is missing or was trained differently."""
    state_path = out_paths(opts.out)[2]
    tensors, state = read_resume_state(state_path, NoteVocab.KIND)
    check_resume_config(state_path, state, opts.note_config().to_dict(), "--hidden/--layers/--embed/--dropout")
    return tensors, state


def _start(opts: NotesTrainOptions) -> _NotesRun:
    _validate(opts)
    device = resolve_device(opts.device)
    resume = _read_resume_state(opts) if opts.resume else None
    # The split seed comes from the first run, so a resume scores the same held-out files.
    run = _NotesRun(opts, device, int(resume[1]["seed"]) if resume else opts.seed)
    scan = run.data.scan
    run.warn_skipped([f"{n} ({scan.skip_reasons[n]})" for n in scan.skipped_names])
    if resume:
        run.load_state(*resume)
    else:
        run.val_loss_start = run.val_loss = run.start_fresh()
    d = run.data
    log.info(
        "training notes RNN (%d parameters, hidden %d x %d layers) on %d file(s) from %s "
        "(%d train: %d tokens; %d held out: %d tokens), device %s; bigram baseline %.4f nats/event",
        count_params(run.model),
        opts.hidden,
        opts.layers,
        scan.loaded,
        opts.data,
        len(d.train_names),
        d.stream.numel(),
        len(d.val_names),
        d.val_tokens,
        device,
        run.baseline_loss,
    )
    return run


def train_notes(opts: NotesTrainOptions, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a note model; returns a summary dict (see docs/NOTES.md)."""
    return _start(opts).train(progress)


train = train_notes  # the family interface engine.cli calls (engine.train)
