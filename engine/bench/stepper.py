"""The sequence models' streaming step, timed: what a melody token or a text character costs
the show (docs/NOTES.md, docs/TEXT.md)."""

from __future__ import annotations

import time

import numpy as np

from engine.models.seq import SeqModel, Stepper


def token_step_cost(model: SeqModel, steps: int = 2000) -> float:
    """Microseconds per Stepper.step (one token, batch 1) over `steps` random tokens."""
    stepper = Stepper(model)
    state = stepper.initial_state()
    tokens = np.random.default_rng(0).integers(0, model.vocab.size, steps)
    t0 = time.perf_counter()
    for token in tokens:
        _, state = stepper.step(int(token), state)
    return (time.perf_counter() - t0) / steps * 1e6
