"""Image folders: every mode loads as RGB, junk is skipped and counted; crops are sane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.train.images import load_image_folder, random_crops, save_image_grid


def _make_folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(root / "rgb.JPG")
    Image.fromarray(rng.integers(0, 255, (70, 70), dtype=np.uint8)).save(root / "gray.png")
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # pure red, but fully transparent on the left half
    rgba[:, 32:, 3] = 255
    Image.fromarray(rgba).save(root / "alpha.png")
    Image.fromarray(rng.integers(0, 255, (90, 66, 3), dtype=np.uint8)).convert("P").save(root / "pal.png")
    Image.fromarray(rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)).save(root / "tiny.webp")
    sub = root / "sub"
    sub.mkdir()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(sub / "nested.jpeg")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (root / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\0\0")


def test_load_folder_modes_and_skips(tmp_path: Path) -> None:
    _make_folder(tmp_path)
    images, scan = load_image_folder(tmp_path, size=32)
    assert scan.loaded == 6 and len(images) == 6
    assert scan.skipped == 2
    assert sorted(scan.skipped_names) == ["corrupt.png", "notes.txt"]
    for img in images:
        assert img.dtype == torch.uint8 and img.shape[0] == 3
        assert min(img.shape[1:]) >= 32


def test_alpha_composited_on_black(tmp_path: Path) -> None:
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:, 32:, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    (img,), _ = load_image_folder(tmp_path, size=64)
    assert img[:, :, :32].max() == 0  # transparent -> black
    assert img[0, :, 40:].min() == 255 and img[1:, :, 40:].max() == 0  # opaque red stays red


def test_tiny_image_upscaled(tmp_path: Path) -> None:
    Image.new("RGB", (5, 9), (10, 20, 30)).save(tmp_path / "t.png")
    (img,), _ = load_image_folder(tmp_path, size=64)
    assert img.shape[1] >= 64 and img.shape[2] == 64


def test_huge_image_capped(tmp_path: Path) -> None:
    Image.new("RGB", (900, 600)).save(tmp_path / "big.png")
    (img,), _ = load_image_folder(tmp_path, size=64)
    assert tuple(img.shape) == (3, 256, 384)  # short side capped at 4 * size


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere"):
        load_image_folder(tmp_path / "nowhere", size=64)
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match=str(tmp_path.name)):
        load_image_folder(tmp_path, size=64)


def test_random_crops_range_and_determinism(tmp_path: Path) -> None:
    _make_folder(tmp_path)
    images, _ = load_image_folder(tmp_path, size=32)
    a = random_crops(images, 8, 32, torch.Generator().manual_seed(3))
    b = random_crops(images, 8, 32, torch.Generator().manual_seed(3))
    c = random_crops(images, 8, 32, torch.Generator().manual_seed(4))
    assert a.shape == (8, 3, 32, 32) and a.dtype == torch.float32
    assert a.min() >= -1.0 and a.max() <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_random_crops_vary_with_few_images() -> None:
    img = torch.arange(3 * 128 * 96, dtype=torch.float32).remainder(251).to(torch.uint8).view(3, 128, 96)
    crops = random_crops([img], 16, 32, torch.Generator().manual_seed(0))
    flat = crops.flatten(1)
    distinct = {tuple(row[:50].tolist()) for row in flat}
    assert len(distinct) == 16  # one image still gives varied samples


def test_save_image_grid(tmp_path: Path) -> None:
    imgs = torch.linspace(-1, 1, 6 * 3 * 8 * 8).view(6, 3, 8, 8)
    path = tmp_path / "grid.png"
    save_image_grid(imgs, path, nrow=4)
    with Image.open(path) as im:
        assert im.size == (32, 16) and im.mode == "RGB"
