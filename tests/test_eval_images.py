"""`eval` of picture models: novelty tells a memoriser from a model that never saw the pictures, the
report and its figures are written, the model file's metrics equal the report's numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

import run_show as cli
from engine.eval import figures
from engine.eval.images import ROWS, evaluate_generator, load_pictures, whole_pictures
from engine.eval.options import EvalOptions
from engine.eval.report import evaluate
from engine.models.checkpoint import update_metrics
from engine.train.images import random_crops
from tests.conftest import make_tiny_gan

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 64


def _folder(path: Path, seed: int, count: int = 4) -> Path:
    """`count` pictures of smooth colour blobs plus grain, a bit larger than SIZE."""
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        coarse = rng.integers(0, 255, (3, 4, 3)).astype(np.uint8)
        blobs = np.asarray(Image.fromarray(coarse).resize((80, 72 + 8 * i), Image.Resampling.BICUBIC), np.int16)
        grain = rng.integers(-20, 20, blobs.shape)
        Image.fromarray(np.clip(blobs + grain, 0, 255).astype(np.uint8)).save(path / f"pic{i}.png")
    return path


class Memoriser(torch.nn.Module):
    """A "generator" that only ever draws its training pictures whole: z picks one."""

    def __init__(self, pictures: torch.Tensor) -> None:
        super().__init__()
        self.pictures = pictures  # (P, 3, S, S) in [-1, 1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        pick = (z[:, 0].abs() * 1000).long() % len(self.pictures)  # (B,)
        return self.pictures[pick]


def test_novelty_tells_a_memoriser_from_unseen_pictures(tmp_path: Path) -> None:
    own = load_pictures(_folder(tmp_path / "own", 1), SIZE)
    unseen = load_pictures(_folder(tmp_path / "unseen", 2), SIZE)
    model = Memoriser(whole_pictures(own, SIZE))
    copied = evaluate_generator(model, 8, own, SIZE, samples=12, seed=0)
    novel = evaluate_generator(model, 8, unseen, SIZE, samples=12, seed=0)
    assert set(copied.numbers) == set(ROWS)
    assert copied.numbers["nearest_median"] < 0.005 and copied.numbers["copy_share"] == 1.0
    assert novel.numbers["nearest_median"] > 0.05 and novel.numbers["copy_share"] == 0.0
    assert novel.numbers["nearest_median"] > 10 * copied.numbers["nearest_median"]
    assert copied.numbers["nearest_ratio"] < 0.1 < 1.0 < novel.numbers["nearest_ratio"]
    assert float(copied.nearest.max()) < float(novel.nearest.min())  # no overlap at all
    # ... and the novelty figures show it: the histograms and the closest pairs differ.
    for result, name in ((copied, "copied"), (novel, "novel")):
        figures.save_png(
            figures.histogram({"samples": result.nearest, "real crops": result.nearest_real}, 10, name, "d"),
            tmp_path / f"{name}_hist.png",
        )
        left, right, captions = result.pairs
        assert torch.allclose(left, right, atol=1e-3) == (name == "copied")
        assert all(c.startswith("0.000 to picture") for c in captions) == (name == "copied")
    assert (tmp_path / "copied_hist.png").read_bytes() != (tmp_path / "novel_hist.png").read_bytes()


class CropDrawer(torch.nn.Module):
    """A perfect "generator": each call draws fresh random crops of the pictures, as the trainer does."""

    def __init__(self, pictures: list[torch.Tensor]) -> None:
        super().__init__()
        self.pictures, self.gen = pictures, torch.Generator().manual_seed(99)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return random_crops(self.pictures, z.shape[0], SIZE, self.gen)


def test_the_patch_distance_floor_is_what_real_crops_score(tmp_path: Path) -> None:
    pictures = load_pictures(_folder(tmp_path / "pics", 5), SIZE)
    perfect = evaluate_generator(CropDrawer(pictures), 8, pictures, SIZE, samples=24, seed=0).numbers
    drawer = CropDrawer(pictures)  # one drawer: each generator chunk gets fresh crops

    def blurred_crops(z: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(drawer(z), 3, 1, 1, count_include_pad=False)

    blurred = evaluate_generator(blurred_crops, 8, pictures, SIZE, samples=24, seed=0).numbers
    floor = perfect["sample_distance_real"]
    # Two sets of crops of the same pictures are not 0 apart: the floor is well above 0 ...
    assert floor > 0.02 and perfect["sample_distance_fine_real"] > 0.0 and perfect["sample_distance_coarse_real"] > 0.0
    # ... a model that draws real crops lands on it, and one that blurs them (the grain gone) far above it,
    # above all on the finest level; the floor does not depend on the model.
    assert abs(perfect["sample_distance"] - floor) < 0.3 * floor
    assert blurred["sample_distance"] - floor > 2 * abs(perfect["sample_distance"] - floor)
    assert blurred["sample_distance_fine"] > 2 * blurred["sample_distance_fine_real"]
    assert all(blurred[k] == perfect[k] for k in ("sample_distance_real", "sample_distance_fine_real"))


def _report_numbers(report: Path) -> dict[str, float]:
    """The numbers table of report.md: metric -> value as printed."""
    text = report.read_text()
    table = text.split("## Numbers", 1)[1].split("##", 1)[0]
    return {m[1]: float(m[2]) for m in re.finditer(r"^\| (\w+) \| ([^ |]+) \|", table, re.M) if m[1] != "metric"}


def test_report_figures_and_metadata_agree(tmp_path: Path) -> None:
    data = _folder(tmp_path / "pics", 3)
    model = make_tiny_gan(tmp_path / "tiny.safetensors", size=SIZE)
    before = load_file(str(model))
    result = evaluate(EvalOptions(model=str(model), data=str(data), samples=8, device="cpu"))
    folder = tmp_path / "tiny.report"
    assert result.report == folder / "report.md" and result.kind == "gan"
    names = {"samples.png", "nearest_pairs.png", "nearest_hist.png", "walk.png", "walk_change.png"}
    assert {p.name for p in result.figures} == names
    for name in names:
        with Image.open(folder / name) as im:
            assert im.format == "PNG" and im.width > 100
    text = result.report.read_text()
    assert f"`{model}`" in text.splitlines()[0] and "randconv" in text and "Ustyuzhaninov" in text
    assert all(f"]({name})" in text for name in names)  # embedded by relative links
    printed = _report_numbers(result.report)
    assert list(printed) == list(ROWS)
    with safe_open(str(model), framework="pt") as fh:
        raw = fh.metadata()
    stored = json.loads(raw["metrics"])
    assert {k: stored[f"eval_{k}"] for k in ROWS} == printed == result.numbers
    assert stored["eval_feature_net"].startswith("randconv") and stored["eval_samples"] == 8
    # Only the metrics changed: the same tensors, the same other metadata.
    after = load_file(str(model))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads(raw["config"])["size"] == SIZE and raw["steps"] == "0" and raw["kind"] == "gan"


def test_update_metrics_merges_and_keeps_the_rest(tmp_path: Path) -> None:
    model = make_tiny_gan(tmp_path / "m.safetensors")
    with safe_open(str(model), framework="pt") as fh:
        raw_before = fh.metadata()
    merged = update_metrics(model, {"eval_kid": 0.5})
    merged = update_metrics(model, {"eval_kid": 0.25, "eval_x": 1.0})
    with safe_open(str(model), framework="pt") as fh:
        raw_after = fh.metadata()
    assert merged == {"eval_kid": 0.25, "eval_x": 1.0} == json.loads(raw_after["metrics"])
    assert {k: v for k, v in raw_after.items() if k != "metrics"} == {
        k: v for k, v in raw_before.items() if k != "metrics"
    }


def test_cli_eval_and_train_end_with_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folder(tmp_path / "pics", 4)
    model = make_tiny_gan(tmp_path / "m.safetensors", size=SIZE)
    out = tmp_path / "elsewhere"
    argv = ["eval", str(model), "--data", str(data), "--samples", "6", "--device", "cpu", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"evaluation report: {out / 'report.md'}" in printed and "kid" in printed
    tiny = ["--size", "64", "--latent-dim", "16", "--channels", "32", "--batch", "4", "--device", "cpu"]
    train = ["train", "gan", "--data", str(data), "--steps", "1", *tiny]
    assert cli.main([*train, "--out", str(tmp_path / "t")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["report"] == str(tmp_path / "t.report" / "report.md") and "kid" in summary["eval"]
    assert cli.main([*train, "--out", str(tmp_path / "quick"), "--no-eval"]) == 0
    assert "report" not in json.loads(capsys.readouterr().out) and not (tmp_path / "quick.report").exists()
