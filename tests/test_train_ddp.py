"""`train gan` under torchrun as a user runs it: two CPU processes (gloo) train one model, rank 0
alone writes and reports, `--resume` continues under torchrun, and a scene plays the result."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.files.scene import load_scene
from engine.models.checkpoint import load_generator, read_state
from engine.stage.deck import load_scenes
from tests.conftest import REPO
from tests.fakes import FakeOutput, built_show

pytestmark = pytest.mark.integration

TINY = ["--size", "64", "--latent-dim", "16", "--channels", "32", "--batch", "4", "--device", "cpu", "--threads", "1"]


def _data(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (70 + 8 * i, 80, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def _torchrun(*args: str, family: str = "gan", tiny: list[str] = TINY) -> tuple[dict, str]:
    """Two processes on this machine (--standalone: a free local port); (rank 0's summary, the log)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
    done = subprocess.run(
        [*cmd, str(REPO / "run_show.py"), "train", family, *tiny, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr  # one JSON document: only rank 0 printed


def _checkpoint_steps(log: str) -> list[int]:
    return [int(n) for n in re.findall(r"checkpoint at step (\d+)", log)]


def test_two_processes_train_write_once_resume_and_play(tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    out = tmp_path / "m"
    files = ["--data", str(data), "--out", str(out)]
    # --checkpoint-every 0.05: a checkpoint after nearly every step, each one written by rank 0 alone.
    # --keep last: the model file follows the resumed run's last step (the rank-0 writes are the point).
    files += ["--keep", "last"]
    summary, log = _torchrun(*files, "--steps", "6", "--checkpoint-every", "0.05")
    assert summary["steps"] == 6 and summary["resumed_from_step"] is None
    assert log.count("distributed: 2 processes (gloo), this is rank 0") == 1
    assert "this is rank 1" not in log  # rank 1 logs warnings only
    steps = _checkpoint_steps(log)
    assert steps[-1] == 6 and steps == sorted(set(steps))  # no step written twice (by two ranks)
    names = ["data", "m.png", "m.report", "m.safetensors", "m.state.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # m.report: rank 0's evaluation
    assert log.count("evaluation report: ") == 1
    assert read_state(tmp_path / "m.state.safetensors", "gan")[1]["step"] == 6

    resumed, log = _torchrun(*files, "--steps", "2", "--resume")
    assert log.count("resuming from step 6") == 1
    assert _checkpoint_steps(log) == [8]  # the final one only (the first is due after 30 s)
    assert (resumed["resumed_from_step"], resumed["steps"]) == (6, 8)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]

    g, meta = load_generator(tmp_path / "m.safetensors")
    assert meta["steps"] == 8 and g(torch.randn(2, 16)).shape == (2, 3, 64, 64)
    scene = tmp_path / "scene.toml"
    scene.write_text('name = "ddp"\nmodel = "m.safetensors"\n')
    output = FakeOutput()
    built_show(load_scenes([load_scene(scene)], torch.device("cpu")), output=output).run(frames=2)
    assert output.presents == 2 and output.frames[-1].std() > 0


VAE_TINY = [
    "--size",
    "64",
    "--latent-side",
    "4",
    "--channels",
    "32",
    "--batch",
    "4",
    "--device",
    "cpu",
    "--threads",
    "1",
]


def test_a_vae_trains_under_torchrun_writes_once_and_resumes(tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    out = tmp_path / "v"
    common = ["--data", str(data), "--out", str(out), "--no-eval", "--adv-start", "0.3"]
    summary, log = _torchrun(*common, "--steps", "6", family="vae", tiny=VAE_TINY)
    assert summary["steps"] == 6 and len(summary["held_out"]) == 1
    assert _checkpoint_steps(log) == [6]  # rank 0 alone checkpoints
    resumed, _ = _torchrun(*common, "--steps", "3", "--resume", family="vae", tiny=VAE_TINY)
    assert resumed["resumed_from_step"] == 6 and resumed["steps"] == 9
    from engine.models.checkpoint import load_vae

    vae, meta = load_vae(str(out) + ".safetensors")
    assert meta["steps"] == 9 and vae(torch.zeros(1, vae.config.latent_dim)).shape == (1, 3, 64, 64)
