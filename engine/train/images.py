"""Image folders for training: forgiving loading, multi-scale random crops, PNG grids.

Loading rules (load_image_folder):
- The folder is searched recursively (artists keep sub-folders); files are read
  in sorted path order so runs are reproducible. Dotfiles and dot-folders
  (.DS_Store, .git) are ignored and not counted.
- Files ending in .png/.jpg/.jpeg/.webp (any case) are decoded with Pillow;
  every other file, and every image Pillow cannot decode (corrupt, truncated),
  is skipped and counted in ImageScan.skipped / skipped_names.
- EXIF orientation is applied. Any mode becomes RGB: grayscale is replicated,
  palette is expanded, and transparency (RGBA, LA, palette with a transparent
  index) is composited onto black, because the engine draws on a black stage.
- Images whose short side is below `size` are upscaled (bicubic) so it equals
  `size`; images whose short side exceeds 4 * size are downscaled to 4 * size,
  which bounds memory and keeps the largest crop scale at "a quarter of the
  picture per side", plenty for texture and composition.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from engine.errors import TrainSetupError
from engine.files.atomic import atomic_write_bytes
from engine.files.folders import IMAGE_SUFFIXES, folder_files

log = logging.getLogger(__name__)

MAX_SIDE_FACTOR = 4  # short side is capped at MAX_SIDE_FACTOR * size


@dataclass
class ImageScan:
    """What load_image_folder found: counts plus the skipped files (relative paths)."""

    folder: str
    loaded: int = 0
    skipped: int = 0
    skipped_names: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the loaded files (relative paths), in load order


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; alpha composited onto black."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit / float grayscale: Pillow's convert("L") clips, so rescale by the max.
        arr = np.asarray(img, dtype=np.float32)
        peak = float(arr.max()) or 1.0
        img = Image.fromarray(np.clip(arr / peak * 255.0, 0, 255).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba)
    return img.convert("RGB")


def _fit(img: Image.Image, size: int) -> Image.Image:
    """Scale so that size <= short side <= MAX_SIDE_FACTOR * size (keeps aspect)."""
    w, h = img.size
    short = min(w, h)
    target = min(max(short, size), MAX_SIDE_FACTOR * size)
    if target == short:
        return img
    scale = target / short
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img.resize(new, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)


def _decode(path: Path, size: int) -> torch.Tensor:
    """One file -> uint8 tensor (3, H, W); raises OSError/ValueError if unreadable."""
    with Image.open(path) as img:
        img.load()
        rgb = _fit(to_rgb(img), size)
    arr = np.asarray(rgb, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()  # (3, H, W)


def load_image_folder(path: str | os.PathLike[str], size: int) -> tuple[list[torch.Tensor], ImageScan]:
    """Load every usable image under `path` as uint8 (3, H, W) tensors, short side >= size."""
    root = Path(path)
    if not root.is_dir():
        raise TrainSetupError(f"image folder '{root}' does not exist or is not a folder")
    scan = ImageScan(folder=str(root))
    images: list[torch.Tensor] = []
    for file in folder_files(root):
        rel = str(file.relative_to(root))
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            scan.skipped += 1
            scan.skipped_names.append(rel)
            continue
        try:
            images.append(_decode(file, size))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            # OSError covers UnidentifiedImageError and truncated files.
            log.warning("skipping unreadable image %s: %s", file, exc)
            scan.skipped += 1
            scan.skipped_names.append(rel)
            continue
        scan.loaded += 1
        scan.names.append(rel)
    if not images:
        raise TrainSetupError(
            f"image folder '{root}' holds no readable .png/.jpg/.jpeg/.webp images "
            f"({scan.skipped} other file(s) skipped)"
        )
    return images, scan


def on_device(images: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """The training pictures where random_crops should cut them: on a GPU, copied there once
    (uint8, a few MB); on the CPU, the same list."""
    return images if device.type == "cpu" else [img.to(device) for img in images]


def random_crops(images: list[torch.Tensor], batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Random multi-scale crops: float (batch, 3, size, size) in [-1, 1].

    Per sample: a random image, a crop side drawn log-uniformly from `size` to
    the image's short side (so fine texture and whole-picture composition are
    equally likely), a random position, a resize to `size` and a random
    horizontal flip. Deterministic given `generator`.
    """
    # On the pictures' device: pictures kept on a GPU are cropped and resized there (on an H200,
    # moving the crops there took the 512 px gpu preset from 31 to 61 img/s).
    out = torch.empty(batch, 3, size, size, device=images[0].device)
    u = torch.rand(batch, 4, generator=generator)  # side, x, y, flip (host draws: no device sync)
    idx = torch.randint(len(images), (batch,), generator=generator)
    for i in range(batch):
        img = images[int(idx[i])]
        _, h, w = img.shape
        short = min(h, w)
        side = int(round(math.exp(math.log(size) + float(u[i, 0]) * math.log(short / size))))
        side = min(max(side, size), short)
        x0 = int(float(u[i, 1]) * (w - side + 1))
        y0 = int(float(u[i, 2]) * (h - side + 1))
        crop = img[:, y0 : y0 + side, x0 : x0 + side].float().unsqueeze(0)  # (1, 3, side, side)
        if side != size:
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        if float(u[i, 3]) < 0.5:
            crop = crop.flip(3)
        out[i] = crop[0]
    return (out / 127.5 - 1.0).clamp_(-1.0, 1.0)


def whole_pictures(pictures: list[torch.Tensor], size: int) -> torch.Tensor:
    """Each picture's largest centred square resized to size x size: (P, 3, S, S) in [-1, 1].

    The view of a whole picture that the VAE encodes as a keyframe and the evaluation's bank holds.
    """
    out = []
    for img in pictures:
        _, h, w = img.shape
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        square = img[:, y0 : y0 + side, x0 : x0 + side].float().unsqueeze(0)  # (1, 3, side, side)
        out.append(F.interpolate(square, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return (torch.cat(out) / 127.5 - 1.0).clamp_(-1.0, 1.0)


def to_uint8_grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (rows*H, nrow*W, 3) uint8 grid, row-major."""
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    grid = torch.zeros(rows * nrow, c, h, w)
    grid[:n] = images.detach().float().cpu()
    grid = grid.view(rows, nrow, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, nrow * w, c)
    return ((grid.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).numpy()


def save_image_grid(images: torch.Tensor, path: str | os.PathLike[str], nrow: int = 4) -> None:
    """Write a PNG grid of (N, 3, H, W) images in [-1, 1], atomically."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8_grid(images, nrow)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
