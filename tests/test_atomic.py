"""engine.files.atomic: the old file or the new one, never half, and no temp files left."""

import os

import pytest

from engine.files import atomic
from engine.files.atomic import atomic_write_bytes, atomic_write_text


def test_writes_replace_and_leave_nothing_else(tmp_path):
    f = tmp_path / "a" / "b.bin"
    atomic_write_bytes(f, b"one")
    atomic_write_text(f, "twö\n")
    assert f.read_bytes() == "twö\n".encode() and os.listdir(f.parent) == ["b.bin"]


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch):
    f = tmp_path / "b.txt"
    atomic_write_text(f, "old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(f, "new")
    assert f.read_text() == "old" and os.listdir(tmp_path) == ["b.txt"]


def test_text_that_cannot_be_encoded_writes_nothing(tmp_path):
    f = tmp_path / "b.txt"
    with pytest.raises(ValueError):  # UnicodeEncodeError: a lone surrogate (a port name that was bytes)
        atomic_write_text(f, "port \udcff")
    assert not f.exists() and os.listdir(tmp_path) == []
