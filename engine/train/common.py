"""Pieces every trainer shares: their options' common fields, device choice, budgets,
checkpoint timing, output paths, seeded init, the optimiser step, the learning-rate
schedule, and training state for --resume (modules, optimiser state as flat tensors
plus JSON, RNG) in safetensors state files.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from engine.errors import TrainSetupError
from engine.files.folders import folder_files  # noqa: F401  (the trainers import it from here)
from engine.models.checkpoint import read_state
from engine.models.device import resolve_device  # noqa: F401  (the trainers and their tests import it from here)
from engine.models.seq import SeqConfig, Vocabulary
from engine.train import dist

DEFAULT_MINUTES = 10.0
MODEL_SUFFIX = ".safetensors"
STATE_SUFFIX = ".state.safetensors"


@dataclass(frozen=True)
class TrainOptions:
    """What every trainer's options share (the common `train` flags, engine.flags); each
    family's dataclass adds its own model and recipe fields, named as its flags' dests.
    The defaults live here and on the family classes; the flags take theirs from them."""

    data: str
    out: str
    minutes: float | None = None  # None (and no steps): DEFAULT_MINUTES
    steps: int | None = None
    resume: bool = False
    device: str = "auto"
    seed: int = 0
    checkpoint_every_s: float = 60.0
    first_checkpoint_s: float = 30.0


@dataclass(frozen=True)
class SeqTrainOptions(TrainOptions):
    """The options of the sequence-network trainers (notes, text): the network's size,
    which is SeqConfig's fields but the vocabulary (with SeqConfig's defaults), and the
    peak learning rate of the recipe they share (engine.train.run.SeqTrainRun)."""

    hidden: int = 256
    layers: int = 2
    embed: int = 64
    dropout: float = 0.0
    lr: float = 3e-3

    def seq_config(self, vocab: Vocabulary) -> SeqConfig:
        """The network these options ask for over `vocab` (not validated yet)."""
        return SeqConfig(vocab, embed=self.embed, hidden=self.hidden, layers=self.layers, dropout=self.dropout)


class Budget:
    """How long to train: a step count or wall-clock minutes (default 10 minutes).

    The budget always counts from the start of this run, also on --resume:
    `--steps 100 --resume` trains 100 more steps.
    """

    def __init__(self, steps: int | None = None, minutes: float | None = None) -> None:
        if steps is not None and minutes is not None:
            raise ValueError("give either steps or minutes, not both")
        if steps is not None and steps <= 0:
            raise ValueError(f"steps must be positive, got {steps}")
        if minutes is not None and not minutes > 0:
            raise ValueError(f"minutes must be positive, got {minutes}")
        self.steps = steps
        self.seconds = None if steps is not None else 60.0 * (minutes or DEFAULT_MINUTES)
        self.start = time.perf_counter()
        self.done_steps = 0

    def step(self) -> None:
        self.done_steps += 1

    def elapsed(self, now: float | None = None) -> float:
        return (time.perf_counter() if now is None else now) - self.start

    def exhausted(self, now: float | None = None) -> bool:
        if self.steps is not None:
            return self.done_steps >= self.steps
        return self.elapsed(now) >= self.seconds  # type: ignore[operator]

    def fraction(self, now: float | None = None) -> float:
        """Progress 0..1, for progress bars."""
        if self.steps is not None:
            return min(1.0, self.done_steps / self.steps)
        return min(1.0, self.elapsed(now) / self.seconds)  # type: ignore[operator]

    def describe(self) -> str:
        return f"{self.steps} steps" if self.steps is not None else f"{(self.seconds or 0.0) / 60:g} minutes"


class CheckpointTimer:
    """Decides when to write checkpoints: first after `first_s`, then every `every_s`.

    Times come from the caller (time.perf_counter values) so tests need no sleeps.
    """

    def __init__(self, every_s: float = 60.0, first_s: float = 30.0, start: float | None = None) -> None:
        if every_s <= 0 or first_s < 0:
            raise ValueError("every_s must be positive and first_s not negative")
        self.every_s = every_s
        self.next_due = (time.perf_counter() if start is None else start) + first_s

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def mark(self, now: float) -> None:
        """Call after writing a checkpoint at time `now`."""
        self.next_due = now + self.every_s


def out_paths(out: str | os.PathLike[str], sample: str = ".png") -> tuple[Path, Path, Path]:
    """`trained/NAME` -> (trained/NAME.safetensors, trained/NAME.png, trained/NAME.state.safetensors);
    `sample` is the sample file's suffix (".png" for gan, ".mid" for notes, ".txt" for text).

    A trailing .safetensors on `out` is tolerated (people paste the model path).
    """
    text = os.fspath(out)
    if text.endswith(STATE_SUFFIX):
        text = text[: -len(STATE_SUFFIX)]
    elif text.endswith(MODEL_SUFFIX):
        text = text[: -len(MODEL_SUFFIX)]
    if not text or text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise TrainSetupError(f"--out needs a file name such as trained/NAME, got {os.fspath(out)!r}")
    base = Path(text)
    return (
        base.with_name(base.name + MODEL_SUFFIX),
        base.with_name(base.name + sample),
        base.with_name(base.name + STATE_SUFFIX),
    )


def equalized_param_groups(module: torch.nn.Module, lr: float) -> list[dict[str, Any]]:
    """Adam parameter groups in which every layer takes the same *relative* step.

    Weight tensors get lr / sqrt(fan_in), 1-D tensors (biases) get lr; with
    weights initialised N(0, 1/fan_in) (engine.models.gan.init_weights) that is
    ProGAN's equalized learning rate, because Adam's step does not depend on
    the gradient's scale. Plain Adam at one lr moves a 16-channel output layer
    ~50x slower, relative to its weights, than a 256-channel conv; on 4 images
    the generator then collapsed to flat grey or to borders. Each group stores
    its "lr_scale" so a new base lr can be applied on resume (set_base_lr).
    """
    groups = []
    for param in module.parameters():
        if not param.requires_grad:
            continue
        scale = 1.0 / math.sqrt(param[0].numel()) if param.dim() > 1 else 1.0
        groups.append({"params": [param], "lr": lr * scale, "lr_scale": scale})
    return groups


def count_params(module: torch.nn.Module) -> int:
    """Number of parameters (trainable or not) in a module, for training logs."""
    return sum(p.numel() for p in module.parameters())


def warmup_cosine(step: int, fraction: float, warmup_steps: int, min_fraction: float) -> float:
    """Multiplier of the base lr: linear warm-up over `warmup_steps`, then cosine to `min_fraction`.

    `fraction` is the budget used (0..1, time or steps), so a short and a long
    run both end at the low learning rate that settles the loss.
    """
    warm = min(1.0, (step + 1) / warmup_steps)
    cos = 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, fraction))))
    return warm * (min_fraction + (1.0 - min_fraction) * cos)


T = TypeVar("T")


def seeded(seed: int, build: Callable[[], T]) -> T:
    """build() with torch's global RNG seeded by `seed`, leaving the caller's RNG as it was
    (a run's model init)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, clip: float | None = None) -> None:
    """One optimiser step on `loss`: fresh gradients, and their norm clipped to `clip` (over
    the optimiser's parameters) when given."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], clip)
    opt.step()


def set_base_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Apply a base lr to groups made by equalized_param_groups (or plain groups)."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def optimizer_to_flat(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], str]:
    """Optimiser state -> ({f'{prefix}.{param}.{key}': tensor}, JSON of everything else).

    safetensors holds only tensors, so per-parameter tensors (Adam moments,
    step counters) become flat entries and the param groups (lr, betas, ...)
    go to JSON.
    """
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, json.dumps({"param_groups": sd["param_groups"], "scalars": scalars})


def optimizer_from_flat(
    opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], prefix: str, extra_json: str
) -> None:
    """Inverse of optimizer_to_flat; loads into `opt` (which defines the param layout)."""
    extra = json.loads(extra_json)
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix + "."):
            continue
        pid, key = name[len(prefix) + 1 :].split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, scalars in extra["scalars"].items():
        state.setdefault(int(pid), {}).update(scalars)
    opt.load_state_dict({"state": state, "param_groups": extra["param_groups"]})


# What a trainer's state file holds besides its own entries: modules and optimisers by
# their state-file prefix, and the training RNG (see pack_training_state).
TrainingParts = tuple[dict[str, torch.nn.Module], dict[str, torch.optim.Optimizer], torch.Generator]


def pack_training_state(
    step: int,
    total_seconds: float,
    modules: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    gen: torch.Generator,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What every trainer's state file holds, as (tensors, state entries).

    Tensors: each module's weights under f"{prefix}.", each optimiser's per-parameter
    tensors under its prefix, and the training RNG as "rng.train". State: step,
    total_seconds and each optimiser's JSON under its prefix. Each optimiser is
    flattened once per save, for both its tensors and its JSON.
    """
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        # unwrap: a DDP-wrapped module's keys would start with "module." (engine.train.dist)
        tensors.update({f"{prefix}.{k}": v for k, v in dist.unwrap(module).state_dict().items()})
    state: dict[str, Any] = {"step": step, "total_seconds": total_seconds}
    for prefix, opt in optimizers.items():
        flat, state[prefix] = optimizer_to_flat(opt, prefix)
        tensors.update(flat)
    tensors["rng.train"] = gen.get_state()
    return tensors, state


def unpack_training_state(
    tensors: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
    modules: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    gen: torch.Generator,
) -> tuple[int, float]:
    """Inverse of pack_training_state: loads the modules (strict), optimisers and RNG in
    place; returns (step, total_seconds)."""
    for prefix, module in modules.items():
        sub = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        dist.unwrap(module).load_state_dict(sub, strict=True)
    for prefix, opt in optimizers.items():
        optimizer_from_flat(opt, tensors, prefix, state[prefix])
    gen.set_state(tensors["rng.train"])
    return int(state["step"]), float(state.get("total_seconds", 0.0))


def read_resume_state(state_path: Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The training state --resume continues from; ValueError if there is none at `state_path`."""
    if not state_path.is_file():
        raise TrainSetupError(
            f"--resume: no training state at '{state_path}'; train without --resume first (or check --out)"
        )
    return read_state(state_path, kind)


def check_resume_config(state_path: Path, state: Mapping[str, Any], want: dict[str, Any], flags: str) -> None:
    """ValueError unless the state file was trained with the model config `want` (`flags` set it)."""
    if state.get("config") != want:
        raise TrainSetupError(
            f"--resume: '{state_path}' was trained with config {state.get('config')}, but this run "
            f"asks for {want}; use the same {flags}"
        )
