"""Sequence models: token embedding -> GRU -> linear head, one network for melodies and text.

What a model reads and writes is its vocabulary: NoteVocab (engine.models.notes:
pitch / duration / rest / velocity tokens; model files of kind "notes") or
CharVocab (engine.models.text: characters plus <unk>; kind "text"). The
network is the same for both (nanoGPT style: SeqConfig beside SeqModel):

    tokens (B, T) -> embedding (B, T, E) -> GRU (layers x hidden) -> head -> logits (B, T, V)

``SeqModel.forward`` is the batch path (training, scoring); ``Stepper`` is
the streaming path of the live samplers (engine.seq.notes, engine.seq.text):
one token at a time from the same weights, in plain float32 numpy. Tests
prove the two give the same logits.

Why a GRU: on the 2-core CPU the GRU and LSTM trained at the same speed
(~10k characters/s at hidden 512, 1 thread) and the GRU's state is one
tensor, which keeps the state API and the numpy step simple.

Model files (engine.models.checkpoint): the config is the vocabulary's keys
and the network size, flat (``SeqConfig.to_dict``). Text files name the GRU's
tensors ``rnn.*`` (as trained/shakespeare.safetensors does) where the network
says ``gru.*``; save and load map the prefix, so the files stay as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from engine.models.checkpoint import load_module, save_model
from engine.models.notes import NoteVocab
from engine.models.text import CharVocab

Tensor = torch.Tensor
Vocabulary = NoteVocab | CharVocab
VOCABULARIES: dict[str, type[NoteVocab] | type[CharVocab]] = {"notes": NoteVocab, "text": CharVocab}
_GRU_IN_FILES = {"notes": "gru.", "text": "rnn."}  # how each kind's files name the GRU's tensors
_MAX_WIDTH = 4096
_MAX_LAYERS = 8
T = TypeVar("T")


@dataclass
class SeqConfig:
    """Constructor arguments of SeqModel; stored (flat, see to_dict) in model files.

    vocab: a NoteVocab or a CharVocab; its size is the embedding's rows and the head's outputs.
    embed: embedding width per token. hidden: GRU state width per layer.
    layers: stacked GRU layers. dropout: between GRU layers and before the head, training only.
    """

    vocab: Vocabulary
    embed: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what was expected."""
        self.vocab.validate()
        name = self.vocab.KIND
        for key, top in (("embed", _MAX_WIDTH), ("hidden", _MAX_WIDTH), ("layers", _MAX_LAYERS)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise ValueError(f"{name} config '{key}' must be an integer from 1 to {top}, got {value!r}")
        if (
            isinstance(self.dropout, bool)
            or not isinstance(self.dropout, (int, float))
            or not 0.0 <= self.dropout < 1.0
        ):
            raise ValueError(f"{name} config 'dropout' must be a number in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        """The vocabulary's keys and the network size in one flat dict (a model file's config)."""
        return {
            **self.vocab.to_dict(),
            "embed": self.embed,
            "hidden": self.hidden,
            "layers": self.layers,
            "dropout": self.dropout,
        }

    @classmethod
    def from_dict(cls, kind: str, data: Mapping[str, Any]) -> SeqConfig:
        """Build and validate a `kind` config; unknown keys are an error, missing keys default."""
        name = f"{kind} config"
        if not isinstance(data, Mapping):
            raise ValueError(f"{name} must be a mapping, got {type(data).__name__}")
        vocab_type = VOCABULARIES[kind]
        net_keys = ("embed", "hidden", "layers", "dropout")
        unknown = sorted(set(data) - set(net_keys) - set(vocab_type.KEYS))
        if unknown:
            raise ValueError(f"unknown {name} key(s) {unknown}; expected some of {sorted(net_keys + vocab_type.KEYS)}")
        vocab = vocab_type.from_dict({k: v for k, v in data.items() if k in vocab_type.KEYS})
        config = cls(vocab, **{k: v for k, v in data.items() if k in net_keys})
        config.validate()
        return config


class SeqModel(nn.Module):
    """tokens (B, T) -> next-token logits (B, T, V); GRU state (layers, B, hidden)."""

    def __init__(self, config: SeqConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.vocab = config.vocab
        v = config.vocab.size
        self.embed = nn.Embedding(v, config.embed)
        self.gru = nn.GRU(
            config.embed,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, v)

    def initial_state(self, batch: int = 1) -> Tensor:
        """Zero GRU state (layers, batch, hidden) on the model's device: what every sequence starts from."""
        w = self.head.weight
        return torch.zeros(self.config.layers, batch, self.config.hidden, device=w.device, dtype=w.dtype)

    def forward_state(self, tokens: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T) int tokens and optional state -> (logits (B, T, V), state after the last token (L, B, H))."""
        if tokens.dim() != 2:
            raise ValueError(f"SeqModel expects tokens of shape (B, T), got {tuple(tokens.shape)}")
        x = self.embed(tokens)  # (B, T, E)
        out, state = self.gru(x, state)  # (B, T, H), (L, B, H)
        return self.head(self.drop(out)), state  # (B, T, V)

    def forward(self, tokens: Tensor, state: Tensor | None = None) -> Tensor:
        """Batch path: tokens (B, T) -> logits (B, T, V); `state` None starts from zeros."""
        return self.forward_state(tokens, state)[0]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """In place: x is a fresh temporary, so no copy is made."""
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    return np.reciprocal(x, out=x)


class Stepper:
    """The streaming path: one token -> next-token logits, in float32 numpy from a SeqModel's weights.

    The same maths as nn.GRU. Layer 0's input projection of every token is
    precomputed into a (V, 3H) table, so a step is a row lookup plus, per
    layer, one (3H, H) matrix-vector product (two above layer 0) and the head.
    Numpy because it is the fastest measured at batch 1 on the CPU (one
    token, one OpenBLAS thread): 66 us per token for the shipped note model
    against 286 us for nn.GRU on a (1, 1) input (docs/NOTES.md), and 0.08 ms
    per character for the shipped text model against 0.10 ms for the same
    steps as torch ops (docs/TEXT.md). One BLAS thread matters: with
    OpenBLAS's default threads and the other core busy, one matrix-vector
    product took 5-8 ms, so engine.cli sets OPENBLAS_NUM_THREADS=1 before
    numpy is loaded.
    """

    def __init__(self, model: SeqModel) -> None:
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        self.layers, self.hidden = model.config.layers, model.config.hidden
        emb = sd["embed.weight"]  # (V, E)
        self.table0 = np.ascontiguousarray(emb @ sd["gru.weight_ih_l0"].T + sd["gru.bias_ih_l0"])  # (V, 3H)
        # Entry 0 is unused: layer 0's input gates come from table0 (one row per token).
        unused = np.empty((0,), np.float32)
        self.w_ih = [unused] + [np.ascontiguousarray(sd[f"gru.weight_ih_l{k}"]) for k in range(1, self.layers)]
        self.b_ih = [unused] + [sd[f"gru.bias_ih_l{k}"] for k in range(1, self.layers)]
        self.w_hh = [np.ascontiguousarray(sd[f"gru.weight_hh_l{k}"]) for k in range(self.layers)]  # (3H, H)
        self.b_hh = [sd[f"gru.bias_hh_l{k}"] for k in range(self.layers)]
        self.w_out = np.ascontiguousarray(sd["head.weight"])  # (V, H)
        self.b_out = sd["head.bias"]
        h3 = 3 * self.hidden
        self._gh = np.empty(h3, np.float32)  # scratch buffers, reused every step
        self._gi = np.empty(h3, np.float32)

    def initial_state(self) -> np.ndarray:
        """Zero state (layers, hidden) float32."""
        return np.zeros((self.layers, self.hidden), np.float32)

    def step(self, token: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One token -> (logits (V,) float32, new state (layers, hidden)); `state` is not changed."""
        hid = self.hidden
        new = np.empty_like(state)
        x = state[0]  # the input of layer k > 0: the new state of layer k - 1
        for k in range(self.layers):
            if k == 0:
                gi = self.table0[token]  # (3H,) input gates of this token
            else:
                gi = np.dot(self.w_ih[k], x, out=self._gi)
                gi += self.b_ih[k]
            gh = np.dot(self.w_hh[k], state[k], out=self._gh)
            gh += self.b_hh[k]
            rz = _sigmoid(gi[: 2 * hid] + gh[: 2 * hid])  # (2H,) reset and update gates
            n = np.tanh(gi[2 * hid :] + rz[:hid] * gh[2 * hid :])  # (H,) candidate
            # h' = (1 - z) * n + z * h, written as n + z * (h - n)
            new[k] = n + rz[hid:] * (state[k] - n)
            x = new[k]
        return self.w_out @ x + self.b_out, new


def rename_prefix(tensors: Mapping[str, T], old: str, new: str) -> dict[str, T]:
    """The same tensors with the name prefix `old` replaced by `new`."""
    return {(new + k[len(old) :] if k.startswith(old) else k): v for k, v in tensors.items()}


def save_seq_model(
    path: str | Path, model: SeqModel, *, data: Mapping[str, Any], metrics: Mapping[str, Any], steps: int
) -> None:
    """Write a model file of the vocabulary's kind (fp16 weights; config = SeqConfig.to_dict())."""
    kind = model.vocab.KIND
    tensors = rename_prefix(model.state_dict(), "gru.", _GRU_IN_FILES[kind])
    save_model(path, tensors, kind=kind, config=model.config.to_dict(), data=data, metrics=metrics, steps=steps)


def load_seq_model(path: str | Path, kind: str, device: str | torch.device = "cpu") -> tuple[SeqModel, dict[str, Any]]:
    """Build the SeqModel a model file of `kind` ("notes" or "text") describes.

    Float32, eval mode, no gradients. Only safetensors is read (never a
    pickle); every problem is a ModelFileError naming the file.
    """
    if kind not in VOCABULARIES:
        raise ValueError(f"unknown sequence model kind {kind!r}; expected one of {sorted(VOCABULARIES)}")
    return load_module(
        path,
        kind,
        lambda config: SeqModel(SeqConfig.from_dict(kind, config)),
        device,
        rename=lambda tensors: rename_prefix(tensors, _GRU_IN_FILES[kind], "gru."),
    )
