"""engine.errors: every startup error is a StartupError, defined in one leaf module."""

import ast
from pathlib import Path

import pytest

from engine import errors
from engine.errors import StartupError
from tests.conftest import REPO


def test_every_error_is_a_startup_error_and_keeps_its_old_base():
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), StartupError), name
    assert issubclass(errors.SceneError, ValueError) and issubclass(errors.ParamError, ValueError)
    assert issubclass(errors.TrainSetupError, ValueError) and issubclass(errors.DisplayError, RuntimeError)


def test_old_homes_name_the_same_classes():
    from engine.core.eventlog import EventLogError
    from engine.core.params import ParamError
    from engine.devices.window import DisplayError
    from engine.files.scene import SceneError
    from engine.files.scene_seq import SceneError as SeqSceneError
    from engine.models.checkpoint import ModelFileError

    assert (SceneError, SeqSceneError, ModelFileError, DisplayError, ParamError, EventLogError) == (
        errors.SceneError,
        errors.SceneError,
        errors.ModelFileError,
        errors.DisplayError,
        errors.ParamError,
        errors.EventLogError,
    )


def _engine_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.split(".")[0] == "engine"}


def test_errors_is_a_leaf_and_the_scene_modules_do_not_import_each_other_back():
    assert _engine_imports(REPO / "engine" / "errors.py") == set()
    assert _engine_imports(REPO / "engine" / "core" / "checks.py") == {"engine.errors"}
    assert "engine.files.scene" not in _engine_imports(REPO / "engine" / "files" / "scene_seq.py")


def test_trainer_setup_errors_are_startup_errors(tmp_path):
    from engine.train.common import out_paths, read_resume_state

    with pytest.raises(errors.TrainSetupError, match="--out needs a file name"):
        out_paths("trained/")
    with pytest.raises(StartupError, match="--resume: no training state"):
        read_resume_state(tmp_path / "none.state.safetensors", "gan")
