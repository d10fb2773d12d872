"""Data folders as the trainers and the picture scenes read them. Pure module (no torch)."""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")  # any case


def folder_files(root: Path) -> list[Path]:
    """Every file under `root`, sorted, skipping dotfiles and dot-folders (data folders for the trainers)."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(files)


def picture_files(root: Path) -> list[Path]:
    """The pictures under `root` (by suffix), sorted."""
    return [f for f in folder_files(root) if f.suffix.lower() in IMAGE_SUFFIXES]
