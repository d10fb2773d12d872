"""scripts/colour_sensitivity.py: the patch distance and KID of colour-only changes, on a tiny folder."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("colour_sensitivity", REPO / "scripts" / "colour_sensitivity.py")
assert _spec is not None and _spec.loader is not None
colour_sensitivity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colour_sensitivity)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_colour_changes_and_noise_score_further_than_other_crops(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:96, 0:96] / 95.0
    for i in range(2):  # smooth gradients in brown-ish, correlated colours
        rgb = np.stack([0.6 * xx + 0.2 * i, 0.5 * xx + 0.3 * yy, 0.3 * yy + 0.1], axis=-1)
        Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    scores = colour_sensitivity.colour_sensitivity(str(tmp_path), 64, 0, n=32)
    assert list(scores) == ["other crops", "chroma inverted", "chroma x3", "uniform noise"]
    assert all(math.isfinite(d) and math.isfinite(k) for d, k in scores.values())
    same = scores["other crops"][0]
    assert all(scores[name][0] > same for name in ("chroma inverted", "chroma x3", "uniform noise"))
