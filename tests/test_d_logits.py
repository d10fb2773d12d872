"""scripts/d_logits.py: D's mean logits on real crops and samples, read from a tiny run's state file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.train.gan import GanTrainOptions, train_gan
from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("d_logits", REPO / "scripts" / "d_logits.py")
assert _spec is not None and _spec.loader is not None
d_logits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(d_logits)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(("arch", "paths"), [("fast", 3), ("classic", 1)])  # fast: main, small, fine
def test_logits_per_path_from_a_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arch: str, paths: int
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "run"
    opts = GanTrainOptions(
        data=str(data), out=str(out), device="cpu", arch=arch, size=64, latent_dim=8, channels=16, batch=2, steps=2
    )
    train_gan(opts, progress=False)
    assert d_logits.main(["d_logits.py", str(out), "--data", str(data), "--samples", "4"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["step"] == 2
    for name in ("plain", "augmented"):
        assert len(line[name]["real"]) == len(line[name]["fake"]) == paths
        assert all(np.isfinite(line[name]["real"] + line[name]["fake"]))
    # No state file: a clear error naming it, exit 2.
    assert d_logits.main(["d_logits.py", str(tmp_path / "none"), "--data", str(data)]) == 2
    assert "none.state.safetensors" in capsys.readouterr().err
