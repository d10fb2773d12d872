"""`train text` at tiny size: reading files (binary, Latin-1, short), metrics, files, resume."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from engine.flags import build_parser, train_options
from engine.models.checkpoint import read_model, read_state
from engine.models.seq import load_seq_model
from engine.train.common import out_paths, warmup_cosine
from engine.train.text import (
    MIN_LR_FRACTION,
    WARMUP_STEPS,
    TextTrainOptions,
    read_text_file,
    split_text,
    train_text,
    unigram_loss,
)
from run_show import main

TINY = {"hidden": 16, "embed": 8, "batch": 4, "seq": 16, "sample_chars": 40}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def text_file(tmp_path: Path) -> Path:
    words = "the stage is dark and the light comes up slowly over the sea".split()
    lines = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(3 + i % 5)) for i in range(200)]
    path = tmp_path / "words.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _opts(data: Path, out: Path, **kwargs: object) -> TextTrainOptions:
    # first_checkpoint_s large: only the final checkpoint is written (keeps tests fast).
    return TextTrainOptions(data=str(data), out=str(out), device="cpu", first_checkpoint_s=1e9, **{**TINY, **kwargs})  # type: ignore[arg-type]


def test_train_writes_files_and_resumes(text_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "trained" / "words"
    summary = train_text(_opts(text_file, out, steps=4), progress=False)
    model_path, _, state_path = out_paths(out)
    txt = out.with_name("words.txt")
    assert summary["steps"] == 4 and summary["resumed_from_step"] is None
    assert summary["paths"] == {"model": str(model_path), "txt": str(txt), "state": str(state_path)}
    assert math.isfinite(summary["val_loss"]) and summary["val_loss"] < summary["val_loss_start"] + 0.1
    assert 2.0 < summary["baseline_loss"] < 3.5
    tensors, meta = read_model(model_path, "text")
    assert meta["kind"] == "text" and meta["steps"] == 4
    assert {t.dtype for t in tensors.values()} == {torch.float16}
    assert set(meta["metrics"]) == {"val_loss", "baseline_loss", "val_loss_start", "chars_per_s"}
    assert meta["metrics"]["val_loss"] == pytest.approx(summary["val_loss"], abs=1e-5)
    assert meta["data"]["file"] == "words.txt" and meta["data"]["encoding"] == "utf-8"
    assert meta["config"]["vocab"] == "".join(sorted(set(text_file.read_text())))
    assert len(txt.read_text(encoding="utf-8")) == TINY["sample_chars"] + 1
    model, _ = load_seq_model(model_path, "text")
    assert model(torch.zeros(1, 3, dtype=torch.int64)).shape == (1, 3, len(meta["config"]["vocab"]) + 1)
    assert read_state(state_path, "text")[1]["step"] == 4

    resumed = train_text(_opts(text_file, out, steps=3, resume=True), progress=False)
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == 7
    assert resumed["val_loss_start"] == pytest.approx(summary["val_loss_start"])
    assert read_model(model_path, "text")[1]["steps"] == 7


def test_resume_is_the_same_as_training_straight_through(text_file: Path, tmp_path: Path) -> None:
    straight = train_text(_opts(text_file, tmp_path / "a", steps=6), progress=False)
    # One checkpoint at step 3, then 3 more steps: the lr schedule restarts with the new
    # budget, so compare the state files' stream positions and step counts, not losses.
    train_text(_opts(text_file, tmp_path / "b", steps=3), progress=False)
    resumed = train_text(_opts(text_file, tmp_path / "b", steps=3, resume=True), progress=False)
    a = read_state(out_paths(tmp_path / "a")[2], "text")[1]
    b = read_state(out_paths(tmp_path / "b")[2], "text")[1]
    assert a["streams"] == b["streams"] and straight["steps"] == resumed["steps"] == 6


def test_resume_errors_are_clear(text_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training state"):
        train_text(_opts(text_file, tmp_path / "none", steps=1, resume=True), progress=False)
    out = tmp_path / "cfg"
    train_text(_opts(text_file, out, steps=1), progress=False)
    with pytest.raises(ValueError, match="--hidden"):
        train_text(_opts(text_file, out, steps=1, resume=True, hidden=32), progress=False)
    other = tmp_path / "other.txt"
    other.write_text("completely different CHARACTERS 0123456789 " * 40)
    with pytest.raises(ValueError, match="same --data"):
        train_text(_opts(other, out, steps=1, resume=True), progress=False)


def test_binary_file_is_refused_with_its_name(tmp_path: Path) -> None:
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(ValueError, match=r"model\.bin' looks like a binary file.*NUL"):
        read_text_file(binary)
    noisy = tmp_path / "noise.dat"  # no NUL bytes, but mostly control codes
    noisy.write_bytes(bytes(b % 31 + 1 for b in range(5000)))
    with pytest.raises(ValueError, match=r"noise\.dat' looks like a binary file.*control"):
        read_text_file(noisy)


def test_cli_prints_one_line_for_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" * 200)
    rc = main(["train", "text", "--data", str(binary), "--out", str(tmp_path / "x"), "--steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "photo.jpg" in err[0] and "binary" in err[0]


def test_latin1_file_is_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "latin.txt"
    text = "Déjà vu, señor: ça coûte cher à Zürich.\r\n" * 40
    path.write_bytes(text.encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        data = read_text_file(path)
    assert data.text == text.replace("\r\n", "\n")
    assert data.encoding in ("windows-1252", "latin-1")
    assert "not valid UTF-8" in caplog.text and "latin.txt" in caplog.text
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + "caf\u00e9 ".encode() * 300)
    assert read_text_file(bom).text.startswith("caf\u00e9") and read_text_file(bom).encoding == "utf-8"


def test_empty_short_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    with pytest.raises(ValueError, match=r"empty\.txt' is empty"):
        read_text_file(empty)
    short = tmp_path / "short.txt"
    short.write_text("To be or not to be.\n")
    with pytest.raises(ValueError, match=r"short\.txt' has only 20 characters"):
        read_text_file(short)
    with pytest.raises(ValueError, match="does not exist"):
        read_text_file(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="is a folder"):
        read_text_file(tmp_path)


def test_split_and_unigram_baseline() -> None:
    train, val = split_text("a" * 90 + "b" * 10)
    assert (train, val) == ("a" * 90, "b" * 10)
    # Add-one over the alphabet {a, b, c}: p(b) = (0 + 1) / (90 + 3).
    assert unigram_loss(train, val, "abc") == pytest.approx(math.log(93))
    assert unigram_loss("abab", "ab", "ab") == pytest.approx(math.log(2))


def test_lr_schedule() -> None:
    def lr_factor(step: int, fraction: float) -> float:
        return warmup_cosine(step, fraction, WARMUP_STEPS, MIN_LR_FRACTION)

    assert lr_factor(0, 0.0) == pytest.approx(0.01)  # warm-up
    assert lr_factor(1000, 0.0) == pytest.approx(1.0)
    assert lr_factor(1000, 0.5) == pytest.approx(0.525)
    assert lr_factor(1000, 1.0) == pytest.approx(0.05)


def test_cli_flags_round_trip() -> None:
    ns = build_parser().parse_args(
        [
            "train",
            "text",
            "--data",
            "t.txt",
            "--out",
            "trained/x",
            "--steps",
            "7",
            "--hidden",
            "64",
            "--seq",
            "32",
            "--seed",
            "3",
        ]
    )
    opts = train_options(ns)
    assert isinstance(opts, TextTrainOptions)
    assert (opts.data, opts.out, opts.steps, opts.minutes, opts.hidden, opts.seq, opts.seed) == (
        "t.txt",
        "trained/x",
        7,
        None,
        64,
        32,
        3,
    )
    assert (opts.checkpoint_every_s, opts.first_checkpoint_s) == (60.0, 30.0)
    assert (opts.layers, opts.embed, opts.lr) == (TextTrainOptions.layers, 64, 2e-3)  # defaults: the dataclass's
    with pytest.raises(ValueError, match="--seq"):
        train_text(TextTrainOptions(data="t.txt", out="x", seq=1), progress=False)


def test_seq_longer_than_the_text(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("just enough words to pass the minimum length check. " * 22)
    with pytest.raises(ValueError, match="--seq 2000 is longer"):
        train_text(_opts(short, tmp_path / "x", steps=1, seq=2000), progress=False)
