"""Character-level text model: embedding -> GRU -> linear, small enough to step live.

One character in, a distribution over the next character out. The batch path
(`forward`, used in training) and the streaming path (`step`, one character at
a time with an explicit state, used by engine.seq.text) run the same weights
and give the same probabilities; tests prove it.

Vocabulary: the characters of the training file in sorted order, stored in the
model file's config as a JSON string, plus one extra index at the end for
<unk>: a character the model never saw. At show time unseen characters (from
an OSC primer, say) are first mapped to a close seen one (accents stripped,
other letter case, a space) and only then to <unk>; the trainer replaces a
small fraction of input characters by <unk> so its embedding means "some
character", not noise. The model never has to predict <unk> (samplers mask it).

Why a GRU: on the 2-core CPU the GRU and LSTM trained at the same speed
(~10k characters/s at hidden 512, 1 thread) and the GRU's state is one tensor,
which keeps the state API and the numpy streaming step simple.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.checkpoint import load_module
from engine.models.config import config_from_dict

log = logging.getLogger(__name__)

Tensor = torch.Tensor

_MAX_VOCAB = 4096  # characters; a text with more distinct ones is not what this model is for
_MAX_WIDTH = 4096
_MAX_LAYERS = 8


@dataclass
class TextConfig:
    """Constructor arguments of TextModel; stored (as JSON) in model files.

    vocab: the known characters in index order (no duplicates); index
        len(vocab) is <unk>.
    embed: embedding width per character.
    hidden: GRU state width per layer.
    layers: stacked GRU layers.
    dropout: between GRU layers and before the head, in training only.
    """

    vocab: str
    embed: int = 64
    hidden: int = 512
    layers: int = 1
    dropout: float = 0.0

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what was expected."""
        if not isinstance(self.vocab, str) or not self.vocab:
            raise ValueError(f"text config 'vocab' must be a non-empty string, got {self.vocab!r:.40}")
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("text config 'vocab' has repeated characters")
        if len(self.vocab) > _MAX_VOCAB:
            raise ValueError(f"text config 'vocab' has {len(self.vocab)} characters; at most {_MAX_VOCAB}")
        for name, top in (("embed", _MAX_WIDTH), ("hidden", _MAX_WIDTH), ("layers", _MAX_LAYERS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise ValueError(f"text config '{name}' must be an integer from 1 to {top}, got {value!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"text config 'dropout' must be a number in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TextConfig":
        """Build and validate a config; unknown keys are an error, missing keys default."""
        return config_from_dict(cls, data, "text config")

    @property
    def vocab_size(self) -> int:
        """Output classes: the known characters plus <unk>."""
        return len(self.vocab) + 1

    @property
    def unk(self) -> int:
        return len(self.vocab)


class Vocab:
    """Characters <-> indices, with the show-time fallback for unseen characters."""

    def __init__(self, chars: str) -> None:
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.unk = len(chars)
        self._fallback: dict[str, int] = {}  # cache: unseen char -> index

    def encode(self, text: str) -> list[int]:
        """Text -> indices; unseen characters go through `lookup`'s fallbacks."""
        index = self.index
        return [index[c] if c in index else self.lookup(c) for c in text]

    def lookup(self, char: str) -> int:
        """One character -> index: itself, without accents, other case, space, else <unk>."""
        if char in self.index:
            return self.index[char]
        if char not in self._fallback:
            self._fallback[char] = self._nearest(char)
        return self._fallback[char]

    def _nearest(self, char: str) -> int:
        base = unicodedata.normalize("NFKD", char)[:1]  # 'é' -> 'e' (+ combining accent, dropped)
        candidates = [base, char.lower(), char.upper(), base.lower(), base.upper()]
        if char.isspace():
            candidates.insert(0, "\n" if char in "\r\u2028\u2029" else " ")
        for c in candidates:
            if c and c in self.index:
                return self.index[c]
        if not char.isprintable() or char.isspace():
            return self.index.get(" ", self.unk)
        return self.unk

    def decode(self, indices: list[int]) -> str:
        """Indices -> text; <unk> (never sampled) decodes to U+FFFD."""
        chars = self.chars
        return "".join(chars[i] if i < len(chars) else "\ufffd" for i in indices)


class TextModel(nn.Module):
    """idx (B, T) int64 -> logits (B, T, V) over the next character (V = len(vocab) + 1)."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.vocab = Vocab(config.vocab)
        self.embed = nn.Embedding(config.vocab_size, config.embed)
        self.rnn = nn.GRU(config.embed, config.hidden, config.layers, batch_first=True,
                          dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)
        nn.init.normal_(self.embed.weight, std=1.0)
        nn.init.normal_(self.head.weight, std=config.hidden ** -0.5)
        nn.init.zeros_(self.head.bias)

    def initial_state(self, batch: int = 1, device: torch.device | str | None = None) -> Tensor:
        """Zero state (layers, B, hidden) float32: what every text starts from."""
        dev = device if device is not None else self.head.weight.device
        return torch.zeros(self.config.layers, batch, self.config.hidden, device=dev,
                           dtype=self.head.weight.dtype)

    def scan(self, idx: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """idx (B, T) -> (logits (B, T, V), state (layers, B, hidden) after the last character)."""
        if idx.dim() != 2:
            raise ValueError(f"TextModel expects idx of shape (B, T), got {tuple(idx.shape)}")
        x = self.embed(idx)  # (B, T, embed)
        out, state = self.rnn(x, state)  # (B, T, hidden), (layers, B, hidden)
        return self.head(self.drop(out)), state  # (B, T, V)

    def forward(self, idx: Tensor, state: Tensor | None = None) -> Tensor:
        """Batch path: idx (B, T) -> logits (B, T, V); `state` None starts from zeros."""
        return self.scan(idx, state)[0]

    def step(self, idx: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Streaming path: one character per row, idx (B,) -> (logits (B, V), new state)."""
        logits, state = self.scan(idx.view(-1, 1), state)  # (B, 1, V)
        return logits[:, 0], state


def probabilities(logits: Tensor) -> Tensor:
    """logits (..., V) -> next-character probabilities with <unk> (the last class) masked."""
    masked = logits.clone()
    masked[..., -1] = float("-inf")
    return F.softmax(masked, dim=-1)


def load_text_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[TextModel, dict[str, Any]]:
    """Build the text model a model file describes (float32, eval mode, no gradients).

    Only safetensors is read (never a pickle); every problem is a ModelFileError
    naming the file.
    """
    return load_module(path, "text", lambda config: TextModel(TextConfig.from_dict(config)), device)
