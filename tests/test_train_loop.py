"""The step loop every trainer shares (engine.train.loop), with a fake run: budgets,
Ctrl-C, non-finite losses. The trainers' own tests run it for real."""

from __future__ import annotations

import math

import pytest

from engine.train import dist
from engine.train.common import TrainOptions
from engine.train.loop import train_loop


class FakeRun:
    """A Trainable whose steps return scripted losses; Ctrl-C (KeyboardInterrupt) at `interrupt_at`."""

    def __init__(self, interrupt_at: int | None = None, losses: tuple[float, ...] = ()) -> None:
        self.step = 0
        self.total_seconds = 0.0
        self.items_per_step = 4
        self.rate = 0.0
        self.interrupt_at = interrupt_at
        self.losses = losses
        self.checkpoints: list[int] = []  # the step of each checkpoint

    def train_step(self, fraction: float) -> float:
        if self.step == self.interrupt_at:
            raise KeyboardInterrupt
        loss = self.losses[self.step] if self.step < len(self.losses) else 1.0
        self.step += 1
        return loss

    def checkpoint(self) -> None:
        self.checkpoints.append(self.step)

    def bar_fields(self, losses: float | tuple[float, ...]) -> dict[str, str]:
        return {}


def _opts(**kwargs: object) -> TrainOptions:
    # first_checkpoint_s large: only the final checkpoint is written.
    return TrainOptions(data="d", out="o", first_checkpoint_s=1e9, **kwargs)  # type: ignore[arg-type]


def test_steps_budget_ends_with_one_checkpoint() -> None:
    run = FakeRun()
    budget = train_loop(run, _opts(steps=5), progress=False, desc="fake")
    assert (run.step, budget.done_steps, run.checkpoints) == (5, 5, [5])
    assert run.rate > 0 and run.total_seconds > 0


def test_keyboard_interrupt_writes_final_checkpoint() -> None:
    run = FakeRun(interrupt_at=2)
    train_loop(run, _opts(steps=50), progress=False, desc="fake")
    assert run.step == 2 and run.checkpoints == [2]


def test_non_finite_loss_stops_with_a_hint() -> None:
    run = FakeRun(losses=(1.0, math.nan))
    with pytest.raises(FloatingPointError, match="lower --lr"):
        train_loop(run, _opts(steps=5), progress=False, desc="fake")


def test_other_ranks_follow_rank_zeros_decisions_and_never_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """As rank 1 under torchrun: rank 0's broadcast says "checkpoint" after step 2 and "stop"
    after step 3 (its clock ran out) though this rank's own budget has 50 steps left; this rank
    writes nothing and waits at the barrier of each checkpoint."""
    run = FakeRun()
    decisions = iter([(0.0, 0.0, 0.0), (0.0, 0.0, 0.1), (0.0, 1.0, 0.2), (1.0, 0.0, 0.3)])
    fractions: list[float] = []
    barriers: list[int] = []
    monkeypatch.setattr(dist, "is_writer", lambda: False)
    monkeypatch.setattr(dist, "broadcast_floats", lambda values: list(next(decisions)))
    monkeypatch.setattr(dist, "barrier", lambda: barriers.append(run.step))
    step = run.train_step
    monkeypatch.setattr(run, "train_step", lambda fraction: fractions.append(fraction) or step(fraction))
    train_loop(run, _opts(steps=50), progress=True, desc="fake")
    assert run.step == 3 and run.checkpoints == []
    assert fractions == [0.0, 0.1, 0.2]  # rank 0's schedule, not this rank's own clock
    assert barriers == [2, 3]  # the timed checkpoint and the final one
