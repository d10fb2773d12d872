"""Training in several processes (torchrun): the process group, who writes, what ranks agree on.

`torchrun --nproc_per_node N run_show.py train gan ...` starts N copies of the command with
RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set. `process_group` (the CLI wraps
`train` in it) joins them: backend nccl on CUDA (each process on cuda:LOCAL_RANK), gloo on the
CPU, torn down again on return, error or Ctrl-C. A plain process (no WORLD_SIZE, or 1) gets a
no-op: every helper here then answers as the one and only rank, so the trainers have one code
path.

What the ranks share and what they do not:
- Rank 0 is the writer: it alone writes checkpoints, sample grids and state files, and logs
  below WARNING (the progress bar, "checkpoint at step ..."); other ranks log warnings only.
- Rank 0's clock decides: the step loop (engine.train.loop) broadcasts its "stop", "checkpoint
  now" and budget fraction every step, so all ranks end on the same step (a rank that stopped
  alone would leave the others waiting in DDP's gradient all-reduce forever).
- Each rank draws its own random stream (`rank_seed`): different crops, latents, augmentation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel

from engine.errors import TrainSetupError
from engine.models.device import resolve_device

log = logging.getLogger(__name__)

_ENGINE_LOGGER = "engine"  # quieted to warnings on every rank but the writer


def launched() -> bool:
    """True in a process torchrun started as one of several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    """True while this process is in a process group of several."""
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def world_size() -> int:
    """Processes training together (1 in a plain process)."""
    return tdist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank: 0 in a plain process. Read from torchrun's RANK when the group is
    not (or no longer) up, so the CLI knows after teardown whether it is the writer."""
    if is_distributed():
        return tdist.get_rank()
    return int(os.environ.get("RANK", "0")) if launched() else 0


def is_writer() -> bool:
    """True on the one process that writes files and logs progress (rank 0)."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """The device this rank trains on: cuda:LOCAL_RANK under torchrun (one GPU per process),
    `device` unchanged otherwise."""
    if device.type == "cuda" and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@contextmanager
def process_group(device_name: str) -> Iterator[None]:
    """Join torchrun's process group for the body (a no-op in a plain process).

    `device_name` is the --device flag: nccl when it resolves to CUDA, gloo on the CPU. The
    group is destroyed on the way out whatever happens, so a failed or interrupted rank does
    not leave its peers' sockets half open. Non-writer ranks log warnings only meanwhile.
    """
    if not launched():
        yield
        return
    device = local_device(resolve_device(device_name))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before init: NCCL's communicators use each rank's current device
    tdist.init_process_group(backend)  # env:// rendezvous: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    engine_log = logging.getLogger(_ENGINE_LOGGER)
    level = engine_log.level
    if not is_writer():
        engine_log.setLevel(logging.WARNING)
    try:
        log.info(
            "distributed: %d processes (%s), this is rank %d on %s; rank 0 writes the files",
            world_size(),
            backend,
            rank(),
            device,
        )
        yield
        # Leave together: in one CI run (2-core VM, under load) rank 1 aborted at exit with
        # "terminate called without an active exception" after training had finished; a rank
        # tearing its group down while its peer still has work in flight is the known cause.
        # Only on success: after a failure the peer may never reach a barrier.
        tdist.barrier()
    finally:
        engine_log.setLevel(level)
        tdist.destroy_process_group()


def _comm_device() -> torch.device:
    # NCCL only moves CUDA tensors; gloo wants CPU ones.
    if tdist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_floats(values: Sequence[float]) -> list[float]:
    """Rank 0's `values` on every rank (one small broadcast); in a plain process, `values`.
    Flags travel as 0.0 / 1.0."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    tdist.broadcast(t, src=0)
    return [float(v) for v in t.tolist()]


def all_reduce_float(value: float, op: str = "sum") -> float:
    """`value` reduced over all ranks: op "sum", "min", "max" or "mean"; in a plain process, `value`."""
    ops = {"sum": tdist.ReduceOp.SUM, "min": tdist.ReduceOp.MIN, "max": tdist.ReduceOp.MAX, "mean": tdist.ReduceOp.SUM}
    if op not in ops:
        raise ValueError(f"unknown op {op!r}; expected one of {sorted(ops)}")
    if not is_distributed():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device())
    tdist.all_reduce(t, op=ops[op])
    total = float(t.item())
    return total / world_size() if op == "mean" else total


def barrier() -> None:
    """Wait until every rank gets here (a no-op in a plain process)."""
    if is_distributed():
        tdist.barrier()


def check_same(what: str, value: int) -> None:
    """TrainSetupError on every rank unless all ranks hold the same `value` (e.g. the step a
    resume starts from: ranks on other machines read their own copy of the state file)."""
    low, high = all_reduce_float(value, "min"), all_reduce_float(value, "max")
    if low != high:
        raise TrainSetupError(
            f"the ranks disagree on {what} ({low:g} .. {high:g}): every machine needs the same "
            "state file at --out (a shared folder, or a copy of rank 0's)"
        )


def rank_seed(seed: int, salt: int = 0) -> int:
    """The seed of this rank's random stream (crops, latents, augmentation).

    Rank 0 of a fresh run keeps `seed`, so one plain process trains exactly as before; every
    other (rank, salt) pair gets an independent stream from numpy's SeedSequence (seed + rank
    would make rank 1 of --seed 0 repeat rank 0 of --seed 1). A resume passes its step as
    `salt`: the state file holds rank 0's stream only, and ranks > 0 must not replay it.
    """
    r = rank()
    if r == 0 and salt == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2**63, r, salt]).generate_state(1, np.uint64)[0] % 2**63)


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`module` under DistributedDataParallel when distributed, else `module` itself.

    Construction broadcasts rank 0's parameters and buffers, so wrap after loading a resume
    state: every rank then starts from rank 0's weights. find_unused_parameters stays off: every
    trainable parameter gets a gradient in each backward that syncs (D's are frozen, not unused,
    in G's step, so no gradient hook waits for them). Buffers keep DDP's default, synced from
    rank 0 at every training forward (the argument is broadcast_buffers in older torch,
    forward_sync_buffers in newer, so it is left unnamed): spectral norm's power-iteration
    vectors (u, v) are buffers updated in each of D's forwards, and taking rank 0's keeps sigma,
    hence the normalised weights, bit-identical on all ranks; they are a few small vectors. The
    parametrisation clones u and v before using them, so the in-place sync at D's fake pass does
    not disturb the real pass's autograd graph (one backward then covers both passes).
    """
    if not is_distributed():
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=False)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DistributedDataParallel (state dicts without "module." keys)."""
    return module.module if isinstance(module, DistributedDataParallel) else module
