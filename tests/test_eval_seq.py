"""`eval` of note and text models trained a couple of steps at tiny size; clear errors for bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

import run_show as cli
from engine.errors import EvalSetupError, ModelFileError
from engine.eval.options import EvalOptions
from engine.eval.report import evaluate
from engine.eval.seq import NOTE_ROWS, TEXT_ROWS
from engine.train.notes import train_notes
from engine.train.text import train_text
from tests.conftest import make_tiny_gan
from tests.test_eval_images import _report_numbers
from tests.test_notes_train import _opts as notes_opts
from tests.test_notes_train import midi_dir  # noqa: F401  (a fixture)
from tests.test_text_train import _opts as text_opts
from tests.test_text_train import text_file  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _stored_metrics(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as fh:
        return json.loads(fh.metadata()["metrics"])


def test_notes_eval_scores_the_trainers_held_out_files(midi_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    summary = train_notes(notes_opts(midi_dir, tmp_path / "tune", steps=2, seed=3), progress=False)
    model = Path(summary["paths"]["model"])
    result = evaluate(EvalOptions(model=str(model), data=str(midi_dir), samples=6, seed=1, device="cpu"))
    n = result.numbers
    assert list(n) == list(NOTE_ROWS)
    # The same held-out files (split seed 3, recorded in the file) as the trainer: the same bigram baseline.
    assert n["baseline_loss"] == pytest.approx(summary["baseline_loss"], rel=1e-5)
    assert n["val_loss"] == pytest.approx(summary["val_loss"], abs=0.01)  # fp16 weights in the file
    assert all(0.0 <= n[k] <= 1.0 for k in ("pitch_tv", "interval_tv", "duration_tv")) and n["notes_generated"] > 0
    assert {p.name for p in result.figures} == {"pitches.png", "intervals.png", "durations.png"}
    assert _report_numbers(result.report) == n == {k: _stored_metrics(model)[f"eval_{k}"] for k in NOTE_ROWS}
    assert "feature net | none" in result.report.read_text()


def test_text_eval_scores_the_last_tenth(text_file: Path, tmp_path: Path) -> None:  # noqa: F811
    summary = train_text(text_opts(text_file, tmp_path / "chars", steps=2), progress=False)
    model = Path(summary["paths"]["model"])
    result = evaluate(EvalOptions(model=str(model), data=str(text_file), samples=4, device="cpu"))
    n = result.numbers
    assert list(n) == list(TEXT_ROWS)
    assert n["baseline_loss"] == pytest.approx(summary["baseline_loss"], rel=1e-5)
    assert n["val_loss"] == pytest.approx(summary["val_loss"], abs=0.01)
    assert 0.0 <= n["char_tv"] <= 1.0 and 0.0 <= n["word_length_tv"] <= 1.0 and math.isfinite(n["val_ratio"])
    assert {p.name for p in result.figures} == {"characters.png", "word_lengths.png"}
    assert _report_numbers(result.report) == n == {k: _stored_metrics(model)[f"eval_{k}"] for k in TEXT_ROWS}


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    return err


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not found" in _cli_error(["eval", str(tmp_path / "missing.safetensors")], capsys)
    odd = tmp_path / "odd.safetensors"
    meta = {"format": "1", "kind": "banana", "config": "{}", "data": "{}", "metrics": "{}", "steps": "0"}
    save_file({}, str(odd), metadata=meta)
    assert "unknown kind 'banana'" in _cli_error(["eval", str(odd), "--data", str(tmp_path)], capsys)
    model = make_tiny_gan(tmp_path / "g.safetensors")  # records its data folder as "test": not a path here
    err = _cli_error(["eval", str(model)], capsys)
    assert "'test'" in err and "--data" in err
    err = _cli_error(["eval", str(model), "--data", str(tmp_path / "nowhere")], capsys)
    assert "--data" in err and "nowhere" in err and "does not exist" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    err = _cli_error(["eval", str(model), "--data", str(empty)], capsys)
    assert "--data" in err and "holds no readable" in err
    with pytest.raises(EvalSetupError, match="--samples"):
        evaluate(EvalOptions(model=str(model), data=str(empty), samples=2))
    with pytest.raises(ModelFileError):
        evaluate(EvalOptions(model=str(tmp_path)))  # a folder, not a model file


def test_recorded_data_path_is_used_when_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_eval_images import _folder

    _folder(tmp_path / "test", 5)  # beside the model, under the name the tiny model records
    model = make_tiny_gan(tmp_path / "g.safetensors")
    monkeypatch.chdir(tmp_path.parent)
    result = evaluate(EvalOptions(model=str(model), samples=4, device="cpu"))
    assert "test`" in result.report.read_text() and result.metrics["eval_data"] == "test"
