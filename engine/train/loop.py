"""The step loop every trainer shares: budget, checkpoints, progress bar, Ctrl-C.

A trainer's run object provides (see `Trainable`) one optimisation step, its
checkpoint and what its progress bar shows; `train_loop` steps it until the
budget (--steps or --minutes) is spent, checkpoints on the timer (first within
30 s, then every --checkpoint-every seconds) and once at the end, and turns
Ctrl-C into an early end with a final checkpoint. Throughput counts training
time only (checkpoints excluded).

Under torchrun (engine.train.dist) rank 0's clock decides: after every step it broadcasts
"stop", "checkpoint now" and the budget fraction the next step's schedule uses, so every rank
takes the same steps with the same learning rate and stops on the same one. Only rank 0 calls
the run's checkpoint() (it uses no collectives) and shows the bar; the others wait at a barrier.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Protocol

from tqdm import tqdm

from engine.train import dist
from engine.train.common import Budget, CheckpointTimer, TrainOptions

log = logging.getLogger(__name__)

BAR_EVERY_S = 0.5  # progress bar refresh


class Trainable(Protocol):
    step: int
    total_seconds: float  # training seconds over all runs (resumes included)
    items_per_step: int  # images, tokens or characters per step and rank, for the rate
    rate: float  # items per second of training time over all ranks, set by the loop

    def train_step(self, fraction: float) -> float | tuple[float, ...]:
        """One step; `fraction` of the budget spent so far (for schedules); returns the loss(es)."""
        ...

    def checkpoint(self) -> None: ...

    def bar_fields(self, losses: float | tuple[float, ...]) -> dict[str, Any]:
        """What the progress bar shows after the step number."""
        ...


class _StepLoop:
    def __init__(self, run: Trainable, budget: Budget, progress: bool, desc: str) -> None:
        self.run_, self.budget = run, budget
        self.train_seconds = 0.0
        self.steps = 0
        self.last_checkpoint_step = -1
        total = budget.steps if budget.steps is not None else round(budget.seconds or 0)
        unit = "step" if budget.steps is not None else "s"
        shown = progress and dist.is_writer()  # one bar, rank 0's, under torchrun
        self.bar = tqdm(total=total, unit=unit, disable=not shown, dynamic_ncols=True, desc=desc)
        self._last_bar = 0.0

    def run(self, timer: CheckpointTimer) -> None:
        run = self.run_
        stop, _, fraction = self._decide(timer, time.perf_counter())
        while not stop:
            t0 = time.perf_counter()
            losses = run.train_step(fraction)
            t1 = time.perf_counter()
            self.train_seconds += t1 - t0
            run.total_seconds += t1 - t0
            self.steps += 1
            self.budget.step()
            run.rate = self.steps * run.items_per_step * dist.world_size() / max(self.train_seconds, 1e-9)
            values = losses if isinstance(losses, tuple) else (losses,)
            if not all(math.isfinite(v) for v in values):
                raise FloatingPointError(f"loss became {values} at step {run.step}; try a lower --lr")
            stop, save, fraction = self._decide(timer, t1)
            if save:
                self.checkpoint()
                timer.mark(time.perf_counter())
            self._update_bar(t1, losses)

    def _decide(self, timer: CheckpointTimer, now: float) -> tuple[bool, bool, float]:
        """(stop, checkpoint now, budget fraction) by rank 0's clock, the same on every rank."""
        stop, save, fraction = dist.broadcast_floats(
            (self.budget.exhausted(now), timer.due(now), self.budget.fraction(now))
        )
        return bool(stop), bool(save), fraction

    def checkpoint(self, together: bool = True) -> None:
        """The run's checkpoint, written by rank 0 alone; with `together` the other ranks wait
        for it (not after Ctrl-C, when they may be gone)."""
        if dist.is_writer():
            self.run_.checkpoint()
        if together:
            dist.barrier()
        self.last_checkpoint_step = self.run_.step

    def _update_bar(self, now: float, losses: float | tuple[float, ...]) -> None:
        if self.bar.disable or now - self._last_bar < BAR_EVERY_S:
            return
        self._last_bar = now
        b = self.budget
        self.bar.n = b.done_steps if b.steps is not None else min(round(b.elapsed(now)), self.bar.total)
        self.bar.set_postfix(step=self.run_.step, **self.run_.bar_fields(losses), refresh=True)

    def close(self) -> None:
        self.bar.close()


def train_loop(run: Trainable, opts: TrainOptions, progress: bool, desc: str) -> Budget:
    """Train `run` for opts' budget (steps / minutes) with its checkpoint timing; returns the
    spent budget (for the summary)."""
    budget = Budget(steps=opts.steps, minutes=opts.minutes)
    timer = CheckpointTimer(opts.checkpoint_every_s, opts.first_checkpoint_s, start=budget.start)
    loop = _StepLoop(run, budget, progress, desc)
    interrupted = False
    try:
        loop.run(timer)
    except KeyboardInterrupt:
        interrupted = True
        if dist.is_writer():
            log.warning("interrupted at step %d; writing a final checkpoint", run.step)
    finally:
        loop.close()
    if loop.last_checkpoint_step != run.step:
        loop.checkpoint(together=not interrupted)
    return budget
