"""Train the character-level text model on one text file; see docs/TEXT.md.

Recipe (chosen to reach a good loss within minutes on one CPU thread): the
sequence network of engine.models.seq over a CharVocab, one GRU layer
(hidden 512), trained with truncated backpropagation through time on `batch`
parallel streams of the text, each read in order, `seq` characters per step,
with the GRU state carried from one step to the next (detached) so the model
sees context far beyond `seq` at the cost of `seq`;
Adam with a short warm-up and a cosine decay of the learning rate over the
budget (minutes or steps); gradient-norm clipping; 0.5% of input characters
replaced by <unk> so the show can feed characters the text never had.

Validation is the LAST 10% of the file, never trained on. Metrics, in nats
per character: val_loss (the model) and baseline_loss (a unigram model fit on
the first 90% with add-one smoothing over the file's alphabet).

Outputs per checkpoint (first within 30 s, then every 60 s, and at the end):
NAME.safetensors (fp16), NAME.txt (a sample from a fixed seed),
NAME.state.safetensors (everything --resume needs). All written atomically.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import TrainSetupError
from engine.files.atomic import atomic_write_bytes
from engine.models.seq import SeqModel, rename_prefix, save_seq_model
from engine.models.text import CharVocab, probabilities
from engine.train.common import SeqTrainOptions, TrainingParts, resolve_device
from engine.train.run import SeqTrainRun

log = logging.getLogger(__name__)

HELP = "a character-level text model (GRU) from one text file"

VAL_FRACTION = 0.1  # the last 10% of the file
MIN_CHARS = 1000  # below this there is nothing to learn and no validation split worth the name
MAX_CONTROL_FRACTION = 0.01  # more control characters than this: not text
UNK_RATE = 0.005  # input characters replaced by <unk> in training
WARMUP_STEPS = 100
MIN_LR_FRACTION = 0.05  # the cosine decay ends at this fraction of --lr
EVAL_STREAMS = 32  # validation text cut into this many streams, run in parallel
SAMPLE_SEED_OFFSET = 7919  # the sample file uses its own seed: it never moves with training
# Unicode category Cc except tab, newline, vertical tab and form feed (and CR, already gone).
_CONTROL_CODES = re.compile("[\x00-\x08\x0d-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class TextTrainOptions(SeqTrainOptions):
    """Everything train_text needs; the `train text` flags (engine.flags) take their defaults from here."""

    # The network's size and lr are SeqTrainOptions' fields; text wants a wider, shallower GRU.
    hidden: int = 512
    layers: int = 1
    lr: float = 2e-3
    seq: int = 64
    batch: int = 32
    sample_chars: int = 600
    temperature: float = 0.8


def _validate(opts: TextTrainOptions) -> None:
    for flag, value, low, high in (
        ("--seq", opts.seq, 2, 4096),
        ("--batch", opts.batch, 1, 4096),
        ("--sample-chars", opts.sample_chars, 1, 100_000),
    ):
        if not low <= value <= high:
            raise TrainSetupError(f"{flag} must be from {low} to {high}, got {value}")
    if not 0.0 < opts.lr < 1.0:
        raise TrainSetupError(f"--lr must be between 0 and 1, got {opts.lr}")
    if not opts.temperature > 0.0:
        raise TrainSetupError(f"--temperature must be positive, got {opts.temperature}")


# ---------------------------------------------------------------- reading the text


@dataclass
class TextData:
    """The decoded text and how it was read."""

    text: str
    encoding: str  # "utf-8", "windows-1252" or "latin-1"
    name: str  # file name, for summaries


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    """bytes -> (text, encoding): UTF-8 (BOM stripped), else Windows-1252, else Latin-1."""
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        where = exc.start
    # Windows-1252 is Latin-1 plus printable characters (curly quotes, dashes) in
    # 0x80-0x9F, where Latin-1 has control codes; it fails on 5 unused bytes only.
    for encoding in ("windows-1252", "latin-1"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        log.warning("'%s' is not valid UTF-8 (byte %d); read it as %s", path, where, encoding)
        return text, encoding
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def read_text_file(path: str | Path) -> TextData:
    """Read a training text; ValueError naming the file if it is missing, binary or too short.

    Line ends are normalised to "\\n" (so a Windows file and a Unix file give the
    same model).
    """
    p = Path(path)
    if not p.is_file():
        what = "is a folder; give one text file" if p.is_dir() else "does not exist"
        raise TrainSetupError(f"--data '{p}' {what}")
    raw = p.read_bytes()
    if not raw.strip():
        raise TrainSetupError(f"--data '{p}' is empty; give a plain text file of at least {MIN_CHARS} characters")
    if b"\x00" in raw:
        raise TrainSetupError(
            f"--data '{p}' looks like a binary file, not text (it contains NUL bytes; "
            "UTF-16 text must be saved as UTF-8 first)"
        )
    text, encoding = _decode(raw, p)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    controls = len(_CONTROL_CODES.findall(text))
    if controls > MAX_CONTROL_FRACTION * len(text):
        raise TrainSetupError(
            f"--data '{p}' looks like a binary file, not text ({controls} of {len(text)} characters are control codes)"
        )
    if len(text) < MIN_CHARS:
        raise TrainSetupError(
            f"--data '{p}' has only {len(text)} characters; text training needs at least "
            f"{MIN_CHARS} (the last {VAL_FRACTION:.0%} are held out for validation)"
        )
    return TextData(text, encoding, p.name)


def split_text(text: str) -> tuple[str, str]:
    """(train, val): val is the last VAL_FRACTION of the text."""
    n_val = max(1, int(len(text) * VAL_FRACTION))
    return text[:-n_val], text[-n_val:]


def unigram_loss(train: str, val: str, alphabet: str) -> float:
    """Nats per character of `val` under character frequencies of `train`.

    Add-one (Laplace) smoothing over `alphabet` (every character of the file),
    so a character that only occurs in `val` costs a finite amount.
    """
    counts = dict.fromkeys(alphabet, 1)
    for c in train:
        counts[c] += 1
    total = sum(counts.values())
    logp = {c: math.log(n / total) for c, n in counts.items()}
    return -sum(logp[c] for c in val) / len(val)


# ---------------------------------------------------------------- the run


class _TextRun(SeqTrainRun[TextTrainOptions]):
    """Model, optimiser, data streams and carried state of one training run."""

    KIND = "text"
    SAMPLE = ".txt"  # a sample text from a fixed seed
    SCHEDULE = (WARMUP_STEPS, MIN_LR_FRACTION)

    def __init__(self, opts: TextTrainOptions, device: torch.device) -> None:
        super().__init__(opts, device)
        self.data = read_text_file(opts.data)
        train, val = split_text(self.data.text)
        self.vocab = CharVocab("".join(sorted(set(self.data.text))))  # the model's vocabulary, typed as such
        self.config = opts.seq_config(self.vocab)
        try:
            self.config.validate()
        except ValueError as exc:
            raise TrainSetupError(f"--data '{opts.data}': {exc}") from None
        self.baseline_loss = unigram_loss(train, val, self.vocab.chars)
        self.init_model(lambda: _init_weights(SeqModel(self.config)))
        self.train_ids = self._encode(train)  # (N_train,) int64
        self.val_ids = self._encode(val)  # (N_val,) int64
        self.streams = _Streams(self.train_ids, opts.batch, opts.seq, opts.seed)
        self.hidden = self.model.initial_state(self.streams.batch)  # (layers, B, hidden), carried
        self.val_loss_start = math.nan
        self.val_loss = math.nan
        self.items_per_step = self.streams.batch * opts.seq  # characters

    def _encode(self, text: str) -> torch.Tensor:
        index = self.vocab.index
        return torch.tensor([index[c] for c in text], dtype=torch.int64)

    def train_step(self, fraction: float) -> float:
        """One truncated-BPTT step on the next `seq` characters of every stream; returns the loss."""
        x, y, fresh = self.streams.next()  # (B, T) inputs and targets; fresh: a new epoch began
        if fresh:
            self.hidden = self.model.initial_state(self.streams.batch)
        unk = torch.rand(x.shape, generator=self.streams.gen) < UNK_RATE
        x = x.masked_fill(unk, self.vocab.unk).to(self.device)
        self.schedule_lr(fraction)
        logits, hidden = self.model.forward_state(x, self.hidden)  # (B, T, V), (layers, B, hidden)
        self.hidden = hidden.detach()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(self.device).reshape(-1))
        return self.optimise(loss)

    def bar_fields(self, _loss: float) -> dict[str, str]:
        return {"loss": f"{self.avg_loss:.3f}", "val": f"{self.val_loss:.3f}", "chars_s": f"{self.rate:.0f}"}

    @torch.inference_mode()
    def measure(self) -> float:
        """Validation loss, nats per character: the val split as EVAL_STREAMS streams, state carried."""
        self.model.eval()
        try:
            return stream_loss(self.model, self.val_ids.to(self.device), self.opts.seq * 4)
        finally:
            self.model.train()

    @torch.inference_mode()
    def sample(self) -> str:
        """A sample text from a fixed seed, primed with a newline (or the file's first character)."""
        self.model.eval()
        try:
            gen = torch.Generator().manual_seed(self.opts.seed + SAMPLE_SEED_OFFSET)
            vocab = self.vocab
            idx = torch.tensor([[vocab.lookup("\n")]], device=self.device)  # (1, 1)
            state = self.model.initial_state(1)
            out = []
            for _ in range(self.opts.sample_chars):
                logits, state = self.model.forward_state(idx, state)  # (1, 1, V)
                probs = probabilities(logits[0, 0].float().cpu() / self.opts.temperature)
                nxt = int(torch.multinomial(probs, 1, generator=gen))
                out.append(nxt)
                idx = torch.tensor([[nxt]], device=self.device)
            return vocab.decode(out)
        finally:
            self.model.train()

    def checkpoint(self) -> None:
        """Measure, then write sample text, model file and state file (each atomic)."""
        self.val_loss = self.measure()
        atomic_write_bytes(self.sample_path, (self.sample() + "\n").encode("utf-8"))
        save_seq_model(self.model_path, self.model, data=self.data_summary(), metrics=self.metrics(), steps=self.step)
        # The carried GRU state goes too, so a resume goes on mid-stream.
        self.save_training_state({"hidden": self.hidden})
        log.info(
            "checkpoint at step %d: val loss %.4f nats/char (unigram %.4f) -> %s",
            self.step,
            self.val_loss,
            self.baseline_loss,
            self.model_path,
        )

    def data_summary(self) -> dict[str, Any]:
        return {
            "file": self.data.name,
            "chars": len(self.data.text),
            "encoding": self.data.encoding,
            "train_chars": int(self.train_ids.numel()),
            "val_chars": int(self.val_ids.numel()),
        }

    def metrics(self) -> dict[str, float]:
        return {
            "val_loss": round(self.val_loss, 6),
            "baseline_loss": round(self.baseline_loss, 6),
            "val_loss_start": round(self.val_loss_start, 6),
            "chars_per_s": round(self.rate, 1),
        }

    def state_parts(self) -> TrainingParts:
        return {"model": self.model}, {"opt": self.opt}, self.streams.gen

    def state_meta(self) -> dict[str, Any]:
        return {
            "seed": self.opts.seed,
            "config": self.config.to_dict(),
            "batch": self.streams.batch,
            "seq": self.opts.seq,
            "lr": self.opts.lr,
            "streams": self.streams.position(),
            "val_loss_start": self.val_loss_start,
            "val_loss": self.val_loss,
            "data": self.data_summary(),
        }

    def outcome(self) -> str:
        return (
            f"{self.rate:.0f} chars/s, val loss {self.val_loss_start:.4f} -> {self.val_loss:.4f} nats/char "
            f"(unigram {self.baseline_loss:.4f})"
        )

    def results(self) -> dict[str, Any]:
        epochs = self.step * self.streams.batch * self.opts.seq / max(1, self.train_ids.numel())
        return {
            "chars_per_s": round(self.rate, 1),
            "val_loss_start": self.val_loss_start,
            "val_loss": self.val_loss,
            "baseline_loss": self.baseline_loss,
            "epochs": round(epochs, 2),
            "paths": self.paths(),
            "data": self.data_summary(),
        }

    def resume(self) -> None:
        """Load the state file; ValueError if it is missing or was trained differently."""
        tensors, state = self.read_resume()
        _check_resumable(self, state)
        # State files written before the one sequence network named its GRU "rnn".
        tensors = rename_prefix(tensors, "model.rnn.", "model.gru.")
        self.load_training_state(tensors, state)
        self.streams.restore(state["streams"])
        self.hidden = tensors["hidden"].to(self.device)
        self.val_loss_start = float(state["val_loss_start"])
        self.val_loss = float(state.get("val_loss", math.nan))
        log.info(
            "resuming from step %d (%s, %.0f s trained so far, val loss %.4f)",
            self.step,
            self.state_path,
            self.total_seconds,
            self.val_loss,
        )


def _init_weights(model: SeqModel) -> SeqModel:
    """The text recipe's start: embedding N(0, 1), a small head (std hidden^-0.5) and zero bias.

    The small head starts the model near uniform over the characters. The
    embedding is drawn again though N(0, 1) is nn.Embedding's own init: that
    keeps the random draws, and so a run from a given --seed, what they were
    before the note and text networks became one.
    """
    with torch.no_grad():
        nn.init.normal_(model.embed.weight, std=1.0)
        nn.init.normal_(model.head.weight, std=model.config.hidden**-0.5)
        nn.init.zeros_(model.head.bias)
    return model


def _check_resumable(run: _TextRun, state: dict[str, Any]) -> None:
    saved = state.get("config") or {}
    if saved.get("vocab") != run.vocab.chars:
        raise TrainSetupError(
            f"--resume: '{run.state_path}' was trained on a text with other characters "
            f"than '{run.opts.data}'; resume with the same --data"
        )
    if saved != run.config.to_dict():
        mine = {k: v for k, v in run.config.to_dict().items() if k != "vocab"}
        theirs = {k: v for k, v in saved.items() if k != "vocab"}
        raise TrainSetupError(
            f"--resume: '{run.state_path}' was trained with {theirs}, but this run asks "
            f"for {mine}; use the same --hidden/--layers/--embed/--dropout"
        )
    if (state.get("batch"), state.get("seq")) != (run.streams.batch, run.opts.seq):
        raise TrainSetupError(
            f"--resume: '{run.state_path}' was trained with --batch {state.get('batch')} "
            f"--seq {state.get('seq')}; use the same values"
        )


def stream_loss(model: SeqModel, ids: torch.Tensor, chunk: int) -> float:
    """Mean next-character cross-entropy over `ids` (N,), cut into parallel streams.

    Each stream starts from the zero state and carries its state from chunk to
    chunk, as the model runs live; the first character of a stream is context only.
    """
    k = max(1, min(EVAL_STREAMS, (ids.numel() - 1) // 2))
    length = ids.numel() // k
    data = ids[: k * length].view(k, length)  # (k, L)
    state = None
    total, count = 0.0, 0
    for start in range(0, length - 1, chunk):
        x = data[:, start : min(start + chunk, length - 1)]  # (k, c)
        y = data[:, start + 1 : start + 1 + x.shape[1]]  # (k, c)
        logits, state = model.forward_state(x, state)  # (k, c, V)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), reduction="sum"))
        count += y.numel()
    return total / max(count, 1)


class _Streams:
    """`batch` contiguous streams over the training text, read `seq` characters per step.

    Each epoch starts at a random offset below `seq`, so the cuts between steps
    move from epoch to epoch.
    """

    def __init__(self, ids: torch.Tensor, batch: int, seq: int, seed: int) -> None:
        self.ids = ids
        self.seq = seq
        # A short text cannot fill `batch` streams of at least two steps each.
        self.batch = max(1, min(batch, (ids.numel() - seq - 1) // (2 * seq)))
        if self.batch < batch:
            log.warning("the training text is short: %d stream(s) instead of --batch %d", self.batch, batch)
        self.gen = torch.Generator().manual_seed(seed)
        self.epoch, self.offset, self.pos = 0, 0, 0
        self._x = self._y = torch.empty(0)
        self._layout()
        if self.steps_per_epoch < 1:
            raise TrainSetupError(
                f"--seq {seq} is longer than the training text ({ids.numel()} characters); use a smaller --seq"
            )

    def _layout(self) -> None:
        length = (self.ids.numel() - self.offset - 1) // self.batch
        self.steps_per_epoch = length // self.seq
        n = self.batch * length
        self._x = self.ids[self.offset : self.offset + n].view(self.batch, length)  # (B, L)
        self._y = self.ids[self.offset + 1 : self.offset + 1 + n].view(self.batch, length)  # (B, L)

    def next(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(inputs (B, seq), targets (B, seq), True if this step starts a new epoch)."""
        fresh = self.pos == 0
        if self.pos >= self.steps_per_epoch:
            self.epoch += 1
            self.offset = int(torch.randint(0, self.seq, (1,), generator=self.gen))
            self.pos = 0
            fresh = True
            self._layout()
        cols = slice(self.pos * self.seq, (self.pos + 1) * self.seq)
        self.pos += 1
        return self._x[:, cols], self._y[:, cols], fresh

    def position(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset, "pos": self.pos}

    def restore(self, where: dict[str, int]) -> None:
        self.epoch, self.offset, self.pos = int(where["epoch"]), int(where["offset"]), int(where["pos"])
        self._layout()


# ---------------------------------------------------------------- driving it


def _start(opts: TextTrainOptions) -> _TextRun:
    _validate(opts)
    run = _TextRun(opts, resolve_device(opts.device))
    if opts.resume:
        run.resume()
    else:
        run.val_loss_start = run.val_loss = run.start_fresh()  # untrained model, before step 0
    log.info(
        "training text model %s on %s (%d characters, %s, %d distinct), device %s, batch %d x %d",
        json.dumps({k: v for k, v in run.config.to_dict().items() if k != "vocab"}),
        opts.data,
        len(run.data.text),
        run.data.encoding,
        len(run.vocab.chars),
        run.device,
        run.streams.batch,
        opts.seq,
    )
    log.info("unigram baseline on the validation split: %.4f nats/char", run.baseline_loss)
    return run


def train_text(opts: TextTrainOptions, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a text model; returns a summary dict (see docs/TEXT.md)."""
    return _start(opts).train(progress)


train = train_text  # the family interface engine.cli calls (engine.train)
