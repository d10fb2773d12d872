"""Offline writers: MP4 via imageio-ffmpeg (checked with ffprobe), PNG sequences, compose."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from engine.devices.recorder import Mp4Writer, PngSequenceWriter, compose, open_writer
from tests.probe import ffprobe_video

W, H, N = 64, 48, 30


def _frames(n: int = N, w: int = W, h: int = H) -> list[np.ndarray]:
    """A moving gradient with a noise patch: enough to give the encoder work."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        f = np.stack([(xx * 4 + i * 8) % 256, (yy * 5) % 256, np.full_like(xx, 128)], axis=-1)
        f[8:16, 8:24] = rng.integers(0, 256, (8, 16, 3))
        out.append(f.astype(np.uint8))
    return out


def _write_mp4(path: Path, frames: list[np.ndarray]) -> None:
    with Mp4Writer(path, (W, H), fps=30) as writer:
        for frame in frames:
            writer.write(frame)


def _decode(path: Path) -> list[np.ndarray]:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return [np.frombuffer(buf, np.uint8).reshape(h, w, 3).copy() for buf in gen]


@pytest.mark.integration
def test_mp4_has_all_frames_and_the_size(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    _write_mp4(out, _frames())
    stream = ffprobe_video(out)
    assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
    assert (stream["width"], stream["height"]) == (W, H)
    assert int(stream["nb_read_frames"]) == N
    assert stream["r_frame_rate"] == "30/1"
    assert stream["color_space"] == "bt709"


@pytest.mark.integration  # ffmpeg in a subprocess
def test_mp4_is_deterministic_and_close_to_the_input(tmp_path: Path) -> None:
    frames = _frames()
    _write_mp4(tmp_path / "a.mp4", frames)
    _write_mp4(tmp_path / "b.mp4", frames)
    a, b = _decode(tmp_path / "a.mp4"), _decode(tmp_path / "b.mp4")
    assert len(a) == N
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    # Lossy, but a flat region (outside the noise patch) comes back within a few levels.
    err = np.abs(a[5][30:, 30:].astype(int) - frames[5][30:, 30:]).mean()
    assert err < 4.0


@pytest.mark.integration  # ffmpeg in a subprocess
def test_mp4_final_name_appears_only_on_close(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "clip.mp4"
    writer = Mp4Writer(out, (W, H), fps=24)
    writer.write(_frames(1)[0])
    assert not out.exists()  # ffmpeg writes only to the .partial name
    writer.close()
    writer.close()  # idempotent
    assert out.exists() and not writer.partial_path.exists()
    with pytest.raises(ValueError, match="closed"):
        writer.write(_frames(1)[0])


@pytest.mark.integration  # ffmpeg in a subprocess
def test_mp4_interrupted_render_keeps_only_the_partial(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    with pytest.raises(KeyboardInterrupt):
        with Mp4Writer(out, (W, H), fps=30) as writer:
            writer.write(_frames(1)[0])
            raise KeyboardInterrupt
    assert not out.exists()
    assert writer.partial_path.exists()


@pytest.mark.integration  # ffmpeg in a subprocess
def test_mp4_rejects_odd_sizes_and_bad_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even width and height"):
        Mp4Writer(tmp_path / "odd.mp4", (63, 48), fps=30)
    with pytest.raises(ValueError, match="fps"):
        Mp4Writer(tmp_path / "x.mp4", (64, 48), fps=0)
    with Mp4Writer(tmp_path / "x.mp4", (W, H), fps=30) as writer:
        with pytest.raises(ValueError, match=r"\(48, 64, 3\) uint8"):
            writer.write(np.zeros((48, 64, 3), np.float32))
        writer.write(_frames(1)[0])


def test_png_sequence(tmp_path: Path) -> None:
    frames = _frames(5)
    folder = tmp_path / "frames"
    with PngSequenceWriter(folder, (W, H)) as writer:
        for frame in frames:
            writer.write(frame)
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"frame_{i:06d}.png" for i in range(5)]
    assert np.array_equal(np.asarray(Image.open(folder / "frame_000003.png")), frames[3])
    with pytest.raises(ValueError, match="already holds 5 frame"):
        PngSequenceWriter(folder, (W, H))
    with PngSequenceWriter(folder, (W, H), overwrite=True) as writer:
        writer.write(frames[0])
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000000.png"]


@pytest.mark.integration  # ffmpeg in a subprocess
def test_open_writer_dispatch(tmp_path: Path) -> None:
    png = open_writer(str(tmp_path / "seq") + "/", (W, H), 30)
    assert isinstance(png, PngSequenceWriter)
    existing = tmp_path / "existing"
    existing.mkdir()
    assert isinstance(open_writer(str(existing), (W, H), 30), PngSequenceWriter)
    mp4 = open_writer(str(tmp_path / "show.MP4"), (W, H), 30)
    assert isinstance(mp4, Mp4Writer)
    mp4.close()


@pytest.mark.parametrize("bad", ["show.avi", "show", "show.mp4.txt", ""])
def test_open_writer_rejects_bad_out(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="--out"):
        open_writer(str(tmp_path / bad) if bad else bad, (W, H), 30)


def test_compose_fit_fill_stretch() -> None:
    frame = np.full((64, 64, 3), 200, np.uint8)
    fit = compose(frame, (128, 64), "fit")
    assert fit.shape == (64, 128, 3)
    assert (fit[:, :32] == 0).all() and (fit[:, 96:] == 0).all() and (fit[:, 32:96] == 200).all()
    fill = compose(frame, (128, 64), "fill")
    assert (fill == 200).all()
    stretch = compose(frame, (96, 32), "stretch")
    assert stretch.shape == (32, 96, 3) and (stretch == 200).all()
    same = compose(frame, (64, 64), "fit")
    assert np.array_equal(same, frame) and same is not frame


def test_compose_fill_crops_the_centre_and_is_deterministic() -> None:
    frame = np.full((32, 32, 3), 100, np.uint8)
    frame[:8] = (0, 255, 0)  # top quarter green
    frame[24:] = (255, 0, 0)  # bottom quarter red
    out = compose(frame, (64, 32), "fill")  # scaled x2 to 64x64 at y = -16: both bands cropped
    assert out.shape == (32, 64, 3)
    assert (out[2:-2] == 100).all()  # rows next to the cut may blend one source row
    assert np.array_equal(out, compose(frame, (64, 32), "fill"))
    with pytest.raises(ValueError, match="aspect"):
        compose(frame, (64, 32), "zoom")
