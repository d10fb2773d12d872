"""Offline outputs: H.264 MP4 files, PNG sequences, and frame composition.

Rendering offline is a pure function of the inputs (see DESIGN.md, time is
injected), so these writers are deterministic too: the same frames give the
same PNG files and, with the fixed encoder settings below, the same MP4
bytes with the same ffmpeg build.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Protocol

import imageio_ffmpeg
import numpy as np
from PIL import Image

from engine.stage.layout import ASPECT_MODES, fit_rect

__all__ = ["FrameWriter", "Mp4Writer", "PngSequenceWriter", "compose", "open_writer"]

log = logging.getLogger(__name__)

# Suffix of the file being written; renamed to the final name on close, so an
# interrupted render never leaves a truncated file under the name asked for.
PARTIAL_SUFFIX = ".partial"


def _check_size(size: tuple[int, int], *, even: bool) -> tuple[int, int]:
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"size: expected positive (w, h) in pixels, got {size!r}")
    if even and (w % 2 or h % 2):
        raise ValueError(
            f"size {w}x{h}: H.264 with yuv420p needs an even width and height "
            "(chroma is stored at half resolution); use e.g. "
            f"{w + w % 2}x{h + h % 2}"
        )
    return w, h


def _check_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Frames must be (h, w, 3) uint8 matching the writer's size."""
    w, h = size
    if frame.dtype != np.uint8 or frame.shape != (h, w, 3):
        raise ValueError(f"frame: expected ({h}, {w}, 3) uint8, got {frame.shape} {frame.dtype}")
    return np.ascontiguousarray(frame)


class FrameWriter(Protocol):
    """What the render loop writes to: one (h, w, 3) uint8 frame per call."""

    def write(self, frame: np.ndarray) -> None: ...

    def close(self, audio: Path | None = None) -> None:
        """Finish; `audio` (a WAV) becomes the sound track (MP4) or audio.wav beside the frames."""
        ...

    def abort(self) -> None:
        """Stop after a failure; never leaves a half file under the final name."""
        ...


class Mp4Writer:
    """H.264 (libx264, yuv420p, BT.709 tagged) MP4 via imageio-ffmpeg's ffmpeg.

    ``crf`` is x264's constant rate factor (0 lossless .. 51 worst; 18 is
    visually lossless for most material). ``threads`` is fixed, not "auto":
    x264's output depends on its thread count, so a fixed count makes the
    file the same on every machine. Bit-exact flags keep version strings and
    timestamps out of the container.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: tuple[int, int],
        fps: int,
        *,
        crf: int = 18,
        preset: str = "medium",
        threads: int = 2,
    ) -> None:
        self.size = _check_size(size, even=True)
        if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
            raise ValueError(f"fps: expected a positive int, got {fps!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial_path = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        self.fps = fps
        self.frames_written = 0
        self._gen: Generator[None, bytes, None] | None = imageio_ffmpeg.write_frames(
            str(self.partial_path),
            self.size,
            fps=fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=None,  # rate control is set explicitly below
            macro_block_size=2,  # never let imageio rescale: we checked evenness
            output_params=self._output_params(crf, preset, threads),
        )
        self._gen.send(None)  # start ffmpeg

    @staticmethod
    def _output_params(crf: int, preset: str, threads: int) -> list[str]:
        return [
            "-crf",
            str(crf),
            "-preset",
            preset,
            "-threads",
            str(threads),
            # RGB -> limited-range BT.709 YCbCr, and say so in the stream, so
            # players do not guess BT.601 and shift the colours.
            "-vf",
            "scale=out_color_matrix=bt709:out_range=tv,"
            "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            "-map_metadata",
            "-1",
            "-f",
            "mp4",  # the temp name does not end in .mp4
        ]

    def write(self, frame: np.ndarray) -> None:
        """Append one (h, w, 3) uint8 RGB frame."""
        if self._gen is None:
            raise ValueError(f"{self.path}: writer is closed")
        self._gen.send(_check_frame(frame, self.size).tobytes())
        self.frames_written += 1

    def close(self, audio: Path | None = None) -> None:
        """Finish the file (with `audio`, a WAV, as its sound track) and give it its final
        name. Safe to call twice."""
        if self._gen is None:
            return
        gen, self._gen = self._gen, None
        gen.close()  # waits for ffmpeg to write the index and exit
        if audio is not None:
            muxed = self.path.with_name(self.path.name + ".audio" + PARTIAL_SUFFIX)
            mux_audio(self.partial_path, audio, muxed)
            os.replace(muxed, self.path)
            self.partial_path.unlink()
        else:
            os.replace(self.partial_path, self.path)
        log.info(
            "wrote %s: %d frames %dx%d at %d fps%s",
            self.path,
            self.frames_written,
            *self.size,
            self.fps,
            " with sound" if audio is not None else "",
        )

    def abort(self) -> None:
        """Stop encoding, keep what was written under the ``.partial`` name."""
        if self._gen is None:
            return
        gen, self._gen = self._gen, None
        gen.close()
        log.warning("render interrupted: %d frames kept in %s", self.frames_written, self.partial_path)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def mux_audio(video: Path, wav: Path, out: Path) -> None:
    """video (an MP4 with one H.264 stream) + wav -> out: the video stream copied, the
    sound as AAC 192 kb/s; bit-exact flags so the same inputs give the same bytes."""
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-loglevel",
        "error",
        "-i",
        str(video),
        "-i",
        str(wav),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        "-fflags",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-map_metadata",
        "-1",
        "-f",
        "mp4",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"ffmpeg could not add the sound track to {out}: {done.stderr.strip()[-500:]}")


class PngSequenceWriter:
    """Lossless frames as ``folder/frame_000000.png``, ``frame_000001.png``, ...

    Refuses a folder that already holds frame_*.png files (a shorter render
    would otherwise leave stale frames after its own) unless ``overwrite``,
    which deletes them first.
    """

    def __init__(self, folder: str | os.PathLike[str], size: tuple[int, int], *, overwrite: bool = False) -> None:
        self.size = _check_size(size, even=False)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        stale = sorted(self.folder.glob("frame_*.png"))
        if stale and not overwrite:
            raise ValueError(
                f"--out {self.folder}/: already holds {len(stale)} frame_*.png files; "
                "choose an empty folder or delete them"
            )
        for old in stale:
            old.unlink()
        self.frames_written = 0

    def frame_path(self, index: int) -> Path:
        """Path of frame ``index`` (0-based)."""
        return self.folder / f"frame_{index:06d}.png"

    def write(self, frame: np.ndarray) -> None:
        """Save one (h, w, 3) uint8 RGB frame as the next PNG."""
        frame = _check_frame(frame, self.size)
        # compress_level 1: PNG stays lossless; higher levels cost several
        # times the time for ~10% smaller files.
        Image.fromarray(frame, "RGB").save(self.frame_path(self.frames_written), compress_level=1)
        self.frames_written += 1

    def close(self, audio: Path | None = None) -> None:
        """Each frame is a complete file already; the sound, if any, goes beside them."""
        if audio is not None:
            shutil.copyfile(audio, self.folder / "audio.wav")
        log.info("wrote %d frames to %s%s", self.frames_written, self.folder, " and audio.wav" if audio else "")

    def abort(self) -> None:
        """Each frame is a complete file already; keep what was written."""
        log.warning("render stopped: %d frames in %s", self.frames_written, self.folder)

    def __enter__(self) -> PngSequenceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_writer(out: str, size: tuple[int, int], fps: int, *, overwrite: bool = False) -> Mp4Writer | PngSequenceWriter:
    """The writer for an ``--out`` value.

    ``x.mp4`` -> Mp4Writer; ``dir/`` (trailing slash) or an existing folder
    -> PngSequenceWriter; anything else is a ValueError naming ``--out``.
    """
    if not isinstance(out, str) or not out.strip():
        raise ValueError(f"--out: expected a .mp4 file or a folder ending in '/', got {out!r}")
    if out.endswith(("/", os.sep)) or Path(out).is_dir():
        return PngSequenceWriter(out, size, overwrite=overwrite)
    if out.lower().endswith(".mp4"):
        return Mp4Writer(out, size, fps)
    raise ValueError(
        f"--out {out}: expected a .mp4 file (e.g. show.mp4) or a folder for PNG frames ending in '/' (e.g. frames/)"
    )


def _paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    """Copy ``image`` onto ``canvas`` at (x, y), cropping what falls outside."""
    ch, cw = canvas.shape[:2]
    ih, iw = image.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + iw, cw), min(y + ih, ch)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = image[y0 - y : y1 - y, x0 - x : x1 - x]


def compose(frame: np.ndarray, out_size: tuple[int, int], aspect: str) -> np.ndarray:
    """Place a (h, w, 3) uint8 frame on a black (H, W, 3) canvas, ``out_size`` = (W, H).

    Offline only (it allocates and scales on the CPU): geometry from
    ``fit_rect`` as in the live window, bilinear resampling by Pillow
    (deterministic). Returns a new array; the input is not modified.
    """
    if aspect not in ASPECT_MODES:
        raise ValueError(f"aspect: expected one of {', '.join(ASPECT_MODES)}, got {aspect!r}")
    out_w, out_h = _check_size(out_size, even=False)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame: expected (h, w, 3) uint8, got {frame.shape} {frame.dtype}")
    src_h, src_w = frame.shape[:2]
    x, y, w, h = fit_rect(src_w, src_h, out_w, out_h, aspect)
    if (w, h) == (src_w, src_h):
        scaled = frame
    else:
        image = Image.fromarray(np.ascontiguousarray(frame), "RGB")
        scaled = np.asarray(image.resize((w, h), Image.Resampling.BILINEAR))  # (h, w, 3)
    canvas = np.zeros((out_h, out_w, 3), dtype=np.uint8)
    _paste(canvas, scaled, x, y)
    return canvas
