"""`train notes` end to end at tiny size on MIDI files made here; MIDI loading rules."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import pytest
import torch
from safetensors import safe_open

import run_show as cli  # the entry point: engine.cli.run plus the printing
from engine.flags import build_parser, train_options
from engine.models.checkpoint import read_state
from engine.models.notes import NoteVocab
from engine.models.seq import load_seq_model
from engine.train.midi_data import load_midi_folder, read_midi_melodies, split_by_file
from engine.train.notes import Bigram, NotesTrainOptions, _NotesData, train_notes

TINY = {"hidden": 16, "layers": 1, "embed": 8, "batch": 4, "seq_len": 16}
TPB = 96


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _track(pitches: list[int], channel: int = 0, beats: float = 0.5, start: float = 0.0) -> mido.MidiTrack:
    track = mido.MidiTrack()
    delay = round(start * TPB)
    for p in pitches:
        track.append(mido.Message("note_on", note=p, velocity=80, channel=channel, time=delay))
        track.append(mido.Message("note_off", note=p, velocity=0, channel=channel, time=round(beats * TPB)))
        delay = 0
    return track


def _save(path: Path, tracks: list[mido.MidiTrack], kind: int = 1) -> Path:
    mid = mido.MidiFile(type=kind, ticks_per_beat=TPB)
    mid.tracks.extend(tracks)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def _tune(i: int) -> list[int]:
    root = 60 + i % 5
    return [root + step for step in (0, 2, 4, 5, 7, 5, 4, 2) * 3 + (0, 4, 7, 12)]


@pytest.fixture()
def midi_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "midi"
    for i in range(10):
        drums = _track([36, 38] * 8, channel=9)
        if i % 2:  # type 1: melody track, drum track, bass track
            _save(folder / "sub" / f"tune{i}.mid", [_track(_tune(i)), drums, _track([36, 43] * 8, channel=1)])
        else:  # type 0: everything in one track, melody on channel 3
            _save(folder / f"tune{i}.MIDI", [_track(_tune(i), channel=3)], kind=0)
    return folder


def _opts(data: Path, out: Path, **kwargs: object) -> NotesTrainOptions:
    # first_checkpoint_s large: only the final checkpoint is written (keeps tests fast).
    return NotesTrainOptions(data=str(data), out=str(out), device="cpu", first_checkpoint_s=1e9, **{**TINY, **kwargs})  # type: ignore[arg-type]


def test_melody_extraction_skips_drums_and_bass(midi_dir: Path) -> None:
    melodies = read_midi_melodies(midi_dir / "sub" / "tune1.mid")
    assert len(melodies) == 1
    assert [n.pitch for n in melodies[0]] == _tune(1)
    assert melodies[0][1].beat == 0.5 and melodies[0][0].duration_beats == 0.5
    assert [n.pitch for n in read_midi_melodies(midi_dir / "tune0.MIDI")[0]] == _tune(0)


def test_skyline_and_bar_offset(tmp_path: Path) -> None:
    chords = mido.MidiTrack()
    for k in range(8):  # C major triads, one per beat, starting at beat 5 (bar 2, beat 2)
        for j, p in enumerate((60, 64, 67 + k)):
            chords.append(
                mido.Message("note_on", note=p, velocity=70, time=(5 * TPB if k == 0 else 0) if j == 0 else 0)
            )
        for j, p in enumerate((60, 64, 67 + k)):
            chords.append(mido.Message("note_off", note=p, velocity=0, time=TPB if j == 0 else 0))
    melody = read_midi_melodies(_save(tmp_path / "c.mid", [chords]))[0]
    assert [n.pitch for n in melody] == [67 + k for k in range(8)]  # the top voice
    assert melody[0].beat == 1.0  # 5 beats in 4/4: one beat into its bar


def test_bad_files_are_skipped_with_reasons(midi_dir: Path) -> None:
    (midi_dir / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage" + bytes(range(40)))
    (midi_dir / "empty.mid").write_bytes(b"")
    _save(midi_dir / "drums.mid", [_track([36, 38] * 8, channel=9)])
    _save(midi_dir / "type2.mid", [_track(_tune(1)), _track(_tune(2))], kind=2)
    (midi_dir / "readme.txt").write_text("not midi")
    scan = load_midi_folder(midi_dir)
    assert scan.loaded == 10 and scan.skipped == 5
    assert sorted(scan.skipped_names) == ["corrupt.mid", "drums.mid", "empty.mid", "readme.txt", "type2.mid"]
    assert "drum-only" in scan.skip_reasons["drums.mid"] and "type 2" in scan.skip_reasons["type2.mid"]
    assert "not a readable" in scan.skip_reasons["corrupt.mid"]


def test_folder_without_melody_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "only_drums"
    _save(folder / "d.mid", [_track([36] * 20, channel=9)])
    with pytest.raises(ValueError, match="only_drums.*no usable melody.*drum-only"):
        load_midi_folder(folder)
    with pytest.raises(ValueError, match="does not exist"):
        load_midi_folder(tmp_path / "missing")


def test_split_by_file_is_fixed_by_the_seed() -> None:
    train, val = split_by_file(40, seed=3)
    assert (train, val) == split_by_file(40, seed=3)
    assert len(val) == 4 and sorted(train + val) == list(range(40))
    assert split_by_file(40, seed=4)[1] != val
    assert len(split_by_file(3, seed=0)[1]) == 1
    with pytest.raises(ValueError, match="at least 2"):
        split_by_file(1, seed=0)


def test_bigram_add_one() -> None:
    bigram = Bigram(3, [[0, 1, 1, 2]], alpha=1.0)
    # After 1: counts 1->1 once, 1->2 once, plus one each: 2/5, 2/5, 1/5 for 1->0.
    assert bigram.loss([[1, 0]]) == pytest.approx(-torch.log(torch.tensor(1 / 5)).item())
    assert bigram.loss([[0, 1]]) == pytest.approx(-torch.log(torch.tensor(2 / 4)).item())


def test_transposed_windows_stay_in_range(midi_dir: Path) -> None:
    vocab = NoteVocab()
    data = _NotesData(load_midi_folder(midi_dir), vocab, seed=0)
    gen = torch.Generator().manual_seed(0)
    plain = data.windows(64, 20, 0, torch.Generator().manual_seed(1))
    moved = data.windows(64, 20, 12, torch.Generator().manual_seed(1))
    assert plain.shape == moved.shape == (64, 21)
    is_pitch = (plain >= vocab.note0) & (plain < vocab.dur0)
    assert torch.equal(plain[~is_pitch], moved[~is_pitch])  # only pitches move
    shifts = {int((moved - plain)[r][is_pitch[r]].unique().numel()) for r in range(64)}
    assert shifts <= {0, 1}  # one shift per window (intervals kept)
    assert (moved != plain).any()
    assert data.windows(8, 20, 12, gen).max() < vocab.size


def test_train_writes_files_and_resumes(midi_dir: Path, tmp_path: Path) -> None:
    (midi_dir / "empty.mid").write_bytes(b"")
    out = tmp_path / "trained" / "tiny"
    summary = train_notes(_opts(midi_dir, out, steps=3), progress=False)
    assert summary["steps"] == 3 and summary["resumed_from_step"] is None
    assert (summary["files"], summary["train_files"], summary["val_files"]) == (10, 9, 1)
    assert summary["skipped"] == 1 and summary["skipped_names"] == ["empty.mid"]
    assert summary["val_loss"] < summary["val_loss_start"]
    model, meta = load_seq_model(out.with_suffix(".safetensors"), "notes")
    assert meta["kind"] == "notes" and meta["steps"] == 3
    assert meta["metrics"]["val_loss"] == pytest.approx(summary["val_loss"], abs=1e-5)
    assert meta["metrics"]["baseline_loss"] == pytest.approx(summary["baseline_loss"], abs=1e-5)
    assert meta["data"]["files"] == 10 and meta["data"]["skipped"] == 1
    with safe_open(str(out.with_suffix(".safetensors")), framework="pt") as fh:
        assert {fh.get_slice(k).get_dtype() for k in fh.keys()} == {"F16"}
    sample = mido.MidiFile(str(out.with_suffix(".mid")))
    assert sum(1 for m in sample.tracks[0] if m.type == "note_on") > 0
    _, state = read_state(out.with_name("tiny.state.safetensors"), "notes")
    assert state["step"] == 3

    resumed = train_notes(_opts(midi_dir, out, steps=2, resume=True, seed=9), progress=False)
    assert resumed["resumed_from_step"] == 3 and resumed["steps"] == 5
    assert resumed["baseline_loss"] == summary["baseline_loss"]  # same held-out file (seed from state)
    assert resumed["val_loss_start"] == summary["val_loss_start"]
    with pytest.raises(ValueError, match="--hidden"):
        train_notes(_opts(midi_dir, out, steps=1, resume=True, hidden=32), progress=False)
    with pytest.raises(ValueError, match="no training state"):
        train_notes(_opts(midi_dir, tmp_path / "none", steps=1, resume=True), progress=False)


def test_cli_train_notes(midi_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    flags = ["--hidden", "16", "--layers", "1", "--embed", "8", "--batch", "4", "--seq-len", "16", "--no-eval"]
    assert (
        cli.main(
            ["train", "notes", "--data", str(midi_dir), "--out", str(out), "--steps", "2", "--device", "cpu", *flags]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["paths"]["mid"] == str(out) + ".mid"
    assert cli.main(["train", "notes", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_flags_round_trip() -> None:
    opts = train_options(
        build_parser().parse_args(
            [
                "train",
                "notes",
                "--data",
                "d",
                "--out",
                "o",
                "--steps",
                "4",
                "--hidden",
                "64",
                "--transpose",
                "0",
                "--seed",
                "2",
            ]
        )
    )
    assert isinstance(opts, NotesTrainOptions)
    assert (opts.layers, opts.embed, opts.seq_len) == (2, 64, 128)
    assert (opts.steps, opts.hidden, opts.transpose, opts.seed, opts.minutes) == (4, 64, 0, 2, None)
    assert (opts.checkpoint_every_s, opts.first_checkpoint_s) == (60.0, 30.0)
    with pytest.raises(ValueError, match="--transpose"):
        train_notes(NotesTrainOptions(data="d", out="o", transpose=20), progress=False)
