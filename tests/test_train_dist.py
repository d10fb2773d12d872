"""engine.train.dist in one process: a plain process is the only rank and every helper a no-op;
torchrun's environment without its process group is refused. The real thing, two processes
under torchrun, is tests/test_train_ddp.py."""

from __future__ import annotations

import pytest
import torch

from engine.cli import run
from engine.errors import TrainSetupError
from engine.train import dist
from engine.train.gan import GanTrainOptions, train_gan

_TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture()
def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """No torchrun variables, whatever the shell running the tests has."""
    for name in _TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def torchrun_rank1(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables torchrun gives the second of two processes (no group is joined)."""
    values = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("plain")
def test_a_plain_process_is_the_only_rank_and_the_writer() -> None:
    assert not dist.launched() and not dist.is_distributed()
    assert (dist.rank(), dist.world_size(), dist.is_writer()) == (0, 1, True)
    assert dist.local_device(torch.device("cuda")) == torch.device("cuda")  # unchanged: no index chosen


@pytest.mark.usefixtures("plain")
def test_collectives_are_no_ops_in_one_process() -> None:
    assert dist.broadcast_floats((True, False, 0.25)) == [1.0, 0.0, 0.25]
    for op in ("sum", "min", "max", "mean"):
        assert dist.all_reduce_float(2.5, op) == 2.5
    with pytest.raises(ValueError, match="unknown op"):
        dist.all_reduce_float(1.0, "prod")
    dist.barrier()
    dist.check_same("the step", 7)


@pytest.mark.usefixtures("plain")
def test_wrap_and_unwrap_leave_a_plain_module_alone() -> None:
    module = torch.nn.Linear(2, 2)
    assert dist.wrap(module, torch.device("cpu")) is module
    assert dist.unwrap(module) is module


@pytest.mark.usefixtures("plain")
def test_process_group_joins_nothing_in_a_plain_process() -> None:
    with dist.process_group("cpu"):
        assert not torch.distributed.is_initialized()


def test_world_size_one_is_a_plain_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # torchrun --nproc_per_node 1: one process, no group needed.
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert not dist.launched() and dist.is_writer()


@pytest.mark.usefixtures("plain")
def test_rank_zero_keeps_the_seed_and_other_streams_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dist.rank_seed(5) == 5  # one process trains exactly as before
    resumed = dist.rank_seed(5, salt=100)
    monkeypatch.setenv("WORLD_SIZE", "4")
    seeds = set()
    for r in range(1, 4):
        monkeypatch.setenv("RANK", str(r))
        seeds.add(dist.rank_seed(5))
        seeds.add(dist.rank_seed(5, salt=100))
    assert len(seeds | {5, resumed}) == 8
    monkeypatch.setenv("RANK", "1")
    assert dist.rank_seed(0) != dist.rank_seed(1)  # not seed + rank: rank 1 of seed 0 is not rank 0 of seed 1
    assert dist.rank_seed(-3) >= 0


@pytest.mark.usefixtures("torchrun_rank1")
def test_torchrun_rank_is_read_from_its_environment() -> None:
    assert dist.launched() and not dist.is_distributed()
    assert (dist.rank(), dist.is_writer()) == (1, False)
    assert dist.local_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert dist.local_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.usefixtures("torchrun_rank1")
def test_training_under_torchrun_without_its_group_is_refused(tmp_path) -> None:
    opts = GanTrainOptions(data=str(tmp_path), out=str(tmp_path / "m"), steps=1, device="cpu")
    with pytest.raises(TrainSetupError, match="process group"):
        train_gan(opts, progress=False)


@pytest.mark.usefixtures("torchrun_rank1")
@pytest.mark.parametrize("family", ["notes", "text"])
def test_only_image_trainers_run_under_torchrun(family: str, tmp_path) -> None:
    code, out, err = run(["-q", "train", family, "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--steps", "1"])
    assert (code, out) == (2, "")
    assert "only `train gan` and `train vae` support torchrun" in err and f"train {family}" in err
