"""The base of every trainer's run object (engine.train.gan, notes, text).

A run holds its options, device and output paths, and the step and time counters
that the step loop (engine.train.loop) and the state file share. The base saves and
loads the state file's shared part (engine.train.common.pack_training_state), warns
before a fresh run overwrites a model, and drives the training (`train`: the step
loop, the closing log line, the summary). A family's run adds its models, data and
metrics, says what its state file holds (`state_parts`, `state_meta`) and what its
summary and closing line say (`results`, `outcome`). SeqTrainRun adds the recipe
the two sequence-network trainers (notes, text) share.

Under torchrun (engine.train.dist) every rank builds its run and, on --resume, loads the same
state file; the ranks then check that they resume from the same step, and ranks other than 0
reseed their random stream (the file holds rank 0's).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import torch

from engine.errors import TrainSetupError
from engine.models.checkpoint import save_state
from engine.models.seq import SeqModel
from engine.train import dist
from engine.train.common import (
    SeqTrainOptions,
    TrainingParts,
    TrainOptions,
    descend,
    out_paths,
    pack_training_state,
    read_resume_state,
    seeded,
    set_base_lr,
    unpack_training_state,
    warmup_cosine,
)
from engine.train.loop import train_loop

Options = TypeVar("Options", bound=TrainOptions)
SeqOptions = TypeVar("SeqOptions", bound=SeqTrainOptions)


class TrainRun(Generic[Options]):
    """Options, device, output paths and counters of one training run (see the module doc)."""

    KIND: ClassVar[str]  # the model file's kind; the state file is its "-state"
    SAMPLE: ClassVar[str]  # the sample file's suffix beside the model: ".png", ".mid", ".txt"

    def __init__(self, opts: Options, device: torch.device) -> None:
        if dist.launched() and not dist.is_distributed():
            # Each of torchrun's processes would train alone and all would write the same files.
            raise TrainSetupError(
                "started by torchrun but not in its process group: run training inside "
                "engine.train.dist.process_group (the `train` command does)"
            )
        self.opts = opts
        self.device = device
        self.model_path, self.sample_path, self.state_path = out_paths(opts.out, self.SAMPLE)
        self.step = 0
        self.total_seconds = 0.0  # training seconds over all runs (resumes included)
        self.resumed_from: int | None = None
        self.rate = 0.0  # items (images, tokens, characters) per second of training, set by the step loop
        # The family module's logger: its lines read as the trainer's, wherever the code is.
        self.log = logging.getLogger(type(self).__module__)

    def state_parts(self) -> TrainingParts:
        """The modules, optimisers and RNG the state file holds (pack_training_state)."""
        raise NotImplementedError

    def state_meta(self) -> dict[str, Any]:
        """The family's own entries of the state file (seed, config, metrics ...)."""
        raise NotImplementedError

    def measure(self) -> float:
        """The run's score on its fixed evaluation set (lower is better)."""
        raise NotImplementedError

    def title(self) -> str:
        """The progress bar's name for the run."""
        return self.KIND

    def outcome(self) -> str:
        """The end of the closing log line: throughput and the score from start to end."""
        raise NotImplementedError

    def results(self) -> dict[str, Any]:
        """The family's fields of the summary (throughput, scores, paths, data)."""
        raise NotImplementedError

    def train(self, progress: bool) -> dict[str, Any]:
        """Step the run until its budget is spent (engine.train.loop); returns the summary: steps
        (resumes included), this run's seconds, the family's results, and the step a resume
        started from (None on a fresh run)."""
        budget = train_loop(self, self.opts, progress, self.title())
        self.log.info("done: %d steps (%s), %s", self.step, budget.describe(), self.outcome())
        return {
            "steps": self.step,
            "seconds": round(budget.elapsed(), 2),
            **self.results(),
            "resumed_from_step": self.resumed_from,
        }

    def read_resume(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The state file --resume continues from; TrainSetupError if there is none."""
        return read_resume_state(self.state_path, self.KIND)

    def load_training_state(self, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> None:
        """Load the modules, optimisers, RNG and counters from a state file already read."""
        modules, optimizers, gen = self.state_parts()
        self.step, self.total_seconds = unpack_training_state(tensors, state, modules, optimizers, gen)
        dist.check_same("the step to resume from", self.step)
        if not dist.is_writer():
            gen.manual_seed(dist.rank_seed(self.opts.seed, salt=self.step))
        self.resumed_from = self.step

    def save_training_state(self, extra: Mapping[str, torch.Tensor] | None = None) -> None:
        """Write the state file (atomically): the shared part, the family's entries, `extra` tensors."""
        tensors, state = pack_training_state(self.step, self.total_seconds, *self.state_parts())
        tensors.update(extra or {})
        save_state(self.state_path, tensors, kind=self.KIND, state={**state, **self.state_meta()})

    def start_fresh(self) -> float:
        """A run without --resume: warn before overwriting a model; returns the untrained model's score."""
        if self.model_path.exists() and dist.is_writer():
            self.log.warning("overwriting existing model %s (use --resume to continue it)", self.model_path)
        return self.measure()

    def warn_skipped(self, names: Sequence[str]) -> None:
        """Log the files the data folder's scan skipped (if any): how many, and the first ten."""
        if names:
            self.log.warning(
                "skipped %d file(s) in %s: %s",
                len(names),
                self.opts.data,
                ", ".join(names[:10]) + (" ..." if len(names) > 10 else ""),
            )

    def paths(self) -> dict[str, str]:
        """The output files by kind: model, sample ("png", "mid" or "txt") and state."""
        return {"model": str(self.model_path), self.SAMPLE[1:]: str(self.sample_path), "state": str(self.state_path)}


class SeqTrainRun(TrainRun[SeqOptions]):
    """A run of one sequence network (engine.models.seq) with the recipe notes and text share:
    seeded init, Adam at --lr with a linear warm-up and a cosine decay over the budget
    (SCHEDULE), gradient-norm clipping, and a moving average of the loss for the progress bar."""

    SCHEDULE: ClassVar[tuple[int, float]]  # (warm-up steps, final lr as a fraction of --lr)
    # A GRU's gradients spike now and then; clipping their norm to 1 keeps Adam's steps sane.
    CLIP_NORM: ClassVar[float] = 1.0
    model: SeqModel
    opt: torch.optim.Adam
    avg_loss: float  # moving average of the training loss (nan before the first step)

    def init_model(self, build: Callable[[], SeqModel]) -> None:
        """The network from `build` (seeded by --seed), on the device, and its optimiser."""
        self.model = seeded(self.opts.seed, lambda: build().to(self.device))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.opts.lr)
        self.avg_loss = math.nan

    def schedule_lr(self, fraction: float) -> None:
        """Set this step's learning rate; `fraction` of the budget is spent."""
        set_base_lr(self.opt, self.opts.lr * warmup_cosine(self.step, fraction, *self.SCHEDULE))

    def optimise(self, loss: torch.Tensor) -> float:
        """One clipped Adam step on `loss`, counted; returns the loss's value."""
        descend(self.opt, loss, clip=self.CLIP_NORM)
        self.step += 1
        value = float(loss.detach())
        self.avg_loss = value if math.isnan(self.avg_loss) else 0.98 * self.avg_loss + 0.02 * value
        return value
