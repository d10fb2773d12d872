"""The import-cycle check that `make test` runs (scripts/import_cycles.py), on planted trees."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "import_cycles.py"
_spec = importlib.util.spec_from_file_location("import_cycles", SCRIPT)
assert _spec is not None and _spec.loader is not None
import_cycles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_cycles)


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def check(root: Path, capsys) -> tuple[int, str]:
    """The script's exit status and what it prints, run in this process."""
    status = import_cycles.main(["import_cycles.py", str(root)])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("lazy", [False, True])
def test_a_planted_cycle_fails_even_through_a_lazy_import(tmp_path, lazy, capsys):
    b_import = "def f():\n    from engine.a import x\n" if lazy else "from engine.a import x\n"
    root = tree(
        tmp_path,
        {
            "engine/__init__.py": "",
            "engine/a.py": "from engine.core import b\nx = 1\n",
            "engine/core/__init__.py": "",
            "engine/core/b.py": b_import,
        },
    )
    status, out = check(root, capsys)
    assert status == 1 and "import cycle: engine.a <-> engine.core.b" in out


def test_type_checking_imports_and_acyclic_trees_pass(tmp_path, capsys):
    root = tree(
        tmp_path,
        {
            "engine/__init__.py": "",
            "engine/a.py": "import engine.b\n",
            "engine/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import engine.a\n",
        },
    )
    status, out = check(root, capsys)
    assert status == 0 and "0 cycle(s)" in out


def test_the_engine_has_no_import_cycle(capsys):
    status, out = check(REPO, capsys)
    assert status == 0, out


# What the pure core may import: itself, the error types, and the pure tables of the
# synth's and the sequencers' params that the address space is assembled from.
CORE_MAY_IMPORT = (
    "engine.core",
    "engine.errors",
    "engine.dsp.synth",
    "engine.dsp.filter",
    "engine.seq.params",
    "engine.seq.scales",
)
DEVICE_LIBRARIES = {"pygame", "torch", "sounddevice", "rtmidi", "mido", "socket", "pythonosc", "imageio_ffmpeg"}


def test_the_core_is_pure():
    import ast

    edges = import_cycles.graph(REPO)
    for module, targets in edges.items():
        if module.startswith("engine.core"):
            stray = [t for t in targets if not t.startswith(CORE_MAY_IMPORT)]
            assert not stray, f"{module} imports {stray}"
    for path in sorted((REPO / "engine" / "core").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        assert not names & DEVICE_LIBRARIES, f"{path.name} imports {names & DEVICE_LIBRARIES}"
