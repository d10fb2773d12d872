"""Character vocabulary: what the text models read and write, one character per token.

Vocabulary: the characters of the training file in sorted order, stored in the
model file's config as the JSON string ``vocab``, plus one extra index at the
end for <unk>: a character the model never saw. At show time unseen characters
(from an OSC primer, say) are first mapped to a close seen one (accents
stripped, other letter case, a space) and only then to <unk>; the trainer
replaces a small fraction of input characters by <unk> so its embedding means
"some character", not noise. The model never has to predict <unk> (samplers
mask it: `probabilities`, engine.seq.text.sample_index).

The network is engine.models.seq's SeqModel with a CharVocab as its
vocabulary (model files of kind "text").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

_MAX_VOCAB = 4096  # characters; a text with more distinct ones is not what this model is for


@dataclass
class CharVocab:
    """Characters <-> indices, with the show-time fallback for unseen characters.

    chars: the known characters in index order (no duplicates); index
    len(chars) is <unk>.
    """

    chars: str
    index: dict[str, int] = field(init=False, repr=False, compare=False)
    _fallback: dict[str, int] = field(init=False, repr=False, compare=False)  # cache: unseen char -> index

    KIND: ClassVar[str] = "text"  # the model-file kind of this vocabulary
    KEYS: ClassVar[tuple[str, ...]] = ("vocab",)  # its keys in a model file's config

    def __post_init__(self) -> None:
        self.index = {c: i for i, c in enumerate(self.chars)} if isinstance(self.chars, str) else {}
        self._fallback = {}

    @property
    def size(self) -> int:
        """Tokens: the known characters plus <unk>."""
        return len(self.chars) + 1

    @property
    def unk(self) -> int:
        return len(self.chars)

    def validate(self) -> None:
        """Raise ValueError naming what is wrong with the characters."""
        if not isinstance(self.chars, str) or not self.chars:
            raise ValueError(f"text config 'vocab' must be a non-empty string, got {self.chars!r:.40}")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("text config 'vocab' has repeated characters")
        if len(self.chars) > _MAX_VOCAB:
            raise ValueError(f"text config 'vocab' has {len(self.chars)} characters; at most {_MAX_VOCAB}")

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.chars}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CharVocab:
        """Build and validate from a model file's config keys (KEYS)."""
        if "vocab" not in data:
            raise ValueError("text config lacks 'vocab'")
        vocab = cls(data["vocab"])
        vocab.validate()
        return vocab

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


def probabilities(logits: Tensor) -> Tensor:
    """logits (..., V) -> next-character probabilities with <unk> (the last class) masked."""
    masked = logits.clone()
    masked[..., -1] = float("-inf")
    return F.softmax(masked, dim=-1)
